//! The `sessionflow` command.

mod config;
mod replay;

use clap::{Parser, Subcommand, ValueEnum};
use config::Config;
use sessionflow_codec::Encoding;
use std::path::PathBuf;
use std::process::ExitCode;

/// sessionflow: contact-center session lifecycles from Kafka events.
#[derive(Debug, Parser)]
#[command(name = "sessionflow", version, about)]
struct Cli {
    /// Configuration file (TOML). Environment variables SESSIONFLOW_<SECTION>_<KEY> override it.
    #[arg(long, global = true, env = "SESSIONFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SESSIONFLOW_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FileFormat {
    Jsonl,
    Avro,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine over a file of canonical events (JSONL or an Avro container), with a RocksDB store.
    Replay {
        /// Input file, or `-` for stdin.
        input: PathBuf,
        /// Directory for timeline, metadata and dead-letter files.
        #[arg(long)]
        out_dir: PathBuf,
        /// Output file format.
        #[arg(long, value_enum, default_value_t = FileFormat::Jsonl)]
        format: FileFormat,
        /// Records per committed batch.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Keep the RocksDB state in this directory (cleared first) instead of a temporary one.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Never draw a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Validate the configuration and print the effective values.
    CheckConfig,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(key = %e.key, "{e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Replay { input, out_dir, format, batch_size, state_dir, no_progress } => {
            let format = match format {
                FileFormat::Jsonl => Encoding::Json,
                FileFormat::Avro => Encoding::Avro,
            };
            let options = replay::ReplayOptions { input, out_dir: out_dir.clone(), format, batch_size, state_dir, progress: !no_progress };
            replay::replay(&config, &options).map(|summary| print!("{}", replay::render_summary(&summary, &out_dir, format)))
        }
        Command::CheckConfig => toml::to_string_pretty(&config).map(|text| print!("# effective configuration: OK\n{text}")).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
