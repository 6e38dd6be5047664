//! The `sessionflow` command.

mod bench;
mod config;
mod daemon;
mod dlq;
mod replay;

use clap::{Parser, Subcommand, ValueEnum};
use config::Config;
use sessionflow_adapters::{InputFormat, SessionIdentity};
use sessionflow_codec::Encoding;
use std::path::PathBuf;
use std::process::ExitCode;

// The engine allocates and frees many small, short-lived buffers per event
// (decoded events, encoded records, write batches); glibc's allocator spent
// about a third of the engine's time on them (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sessionflow: contact-center session lifecycles from Kafka events.
#[derive(Debug, Parser)]
#[command(name = "sessionflow", version, about)]
struct Cli {
    /// Configuration file (TOML). Environment variables SESSIONFLOW_<SECTION>_<KEY> override it.
    #[arg(long, global = true, env = "SESSIONFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Override one key, over the file and the environment: `--set section.key=value`
    /// (repeatable; `section.key_file=PATH` reads the value from a file).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SESSIONFLOW_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// Dead letters counted by reason, and the newest ones with their details.
    Inspect {
        /// Show only dead letters of this reason (e.g. decode_error).
        #[arg(long)]
        reason: Option<String>,
        /// How many of the newest to show.
        #[arg(long, default_value_t = 5)]
        newest: usize,
        /// Also print the values (the input records: personal data).
        #[arg(long)]
        show_values: bool,
    },
    /// Re-produce chosen dead letters to their input topic (after a fix),
    /// key, value and headers as they came, plus sessionflow.replayed_from.
    Replay {
        /// Only dead letters of this reason.
        #[arg(long)]
        reason: Option<String>,
        /// Only these dead letters: PARTITION:OFFSET of the dead-letter topic, comma-separated.
        #[arg(long, value_delimiter = ',', value_parser = parse_position)]
        offsets: Vec<(i32, i64)>,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// Produce to this topic instead of each record's input topic (dlq.topic).
        #[arg(long)]
        to: Option<String>,
        /// Say what would be replayed; produce nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also replay dead letters whose value was redacted
        /// (`dead_letter.payload = "redact"`), as they are.
        #[arg(long)]
        force_redacted: bool,
    },
}

fn parse_position(text: &str) -> Result<(i32, i64), String> {
    let (partition, offset) = text.split_once(':').ok_or_else(|| format!("{text:?}: write PARTITION:OFFSET, e.g. 0:1234"))?;
    Ok((
        partition.trim().parse().map_err(|_| format!("{partition:?} is not a partition"))?,
        offset.trim().parse().map_err(|_| format!("{offset:?} is not an offset"))?,
    ))
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

/// `--session-identity`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Identity {
    Journey,
    Leg,
}

fn parse_input_format(name: &str) -> Result<InputFormat, String> {
    name.parse().map_err(|e: sessionflow_adapters::UnknownFormat| e.to_string())
}

/// Rates of the simulator's imperfect records.
#[derive(Debug, Clone, Copy, clap::Args)]
struct FaultRates {
    /// Share of records re-sent (duplicates).
    #[arg(long, default_value_t = 0.01)]
    duplicate_rate: f64,
    /// Share of records delivered minutes late.
    #[arg(long, default_value_t = 0.005)]
    late_rate: f64,
    /// Share of records swapped with the next of their session.
    #[arg(long, default_value_t = 0.01)]
    out_of_order_rate: f64,
    /// Share of malformed records.
    #[arg(long, default_value_t = 0.002)]
    malformed_rate: f64,
}

impl FaultRates {
    fn sim_config(self) -> sessionflow_sim::SimConfig {
        sessionflow_sim::SimConfig {
            duplicate_rate: self.duplicate_rate,
            late_rate: self.late_rate,
            out_of_order_rate: self.out_of_order_rate,
            malformed_rate: self.malformed_rate,
            ..sessionflow_sim::SimConfig::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: consume, fold, produce (config: [kafka], [topics], [store], [metrics]).
    Run {
        /// Bootstrap servers (overrides kafka.brokers).
        #[arg(long)]
        brokers: Option<String>,
        /// Where /metrics, /healthz and /readyz are served (overrides metrics.addr).
        #[arg(long)]
        metrics_addr: Option<String>,
    },
    /// The zero-setup demo: embedded broker, traffic simulator, pipeline, live progress.
    Demo {
        /// Stop after this long (e.g. 60s); default: until Ctrl-C.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<std::time::Duration>,
        /// Where /metrics is served.
        #[arg(long, default_value = "127.0.0.1:9898")]
        metrics_addr: String,
        /// Partitions per topic.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
        /// Records per second from the simulator.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        #[command(flatten)]
        faults: FaultRates,
        /// Share of records produced without a key (re-keyed by the daemon).
        #[arg(long, default_value_t = 0.02)]
        keyless_rate: f64,
        /// Also feed one input topic per vendor (Amazon Connect, Genesys Cloud,
        /// Twilio TaskRouter, Zoom, CCAI Platform) with its native records, each
        /// at --rate; the summary shows sessions per source.
        #[arg(long)]
        mixed_vendors: bool,
    },
    /// Run the embedded broker alone (loopback), with the pipeline's topics, for local development.
    Broker {
        /// Partitions per topic.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
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
        /// What each input line is: canonical, amazon-connect, genesys-cloud,
        /// twilio-taskrouter, zoom-contact-center or ccai-platform (one native
        /// record per line, as the bridge writes it to Kafka).
        #[arg(long, default_value = "canonical", value_parser = parse_input_format)]
        input_format: InputFormat,
        /// For vendors that split a contact into legs: journey (one session) or leg.
        #[arg(long, value_enum, default_value_t = Identity::Journey)]
        session_identity: Identity,
    },
    /// Simulated contact-center traffic: to a Kafka topic (--brokers) or as JSONL to a file or stdout.
    Simulate {
        /// How many records.
        #[arg(long, default_value_t = 10_000)]
        records: usize,
        /// Output file, or `-` for stdout (when --brokers is not given).
        #[arg(long, default_value = "-")]
        out: PathBuf,
        /// Produce to this cluster instead of writing a file.
        #[arg(long)]
        brokers: Option<String>,
        /// Topic to produce to.
        #[arg(long, default_value = "cc.events.raw")]
        topic: String,
        /// Records per second when producing.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
        /// Random seed: the same seed gives the same records.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// New sessions per second of event time.
        #[arg(long, default_value_t = 2.0)]
        sessions_per_second: f64,
        /// Extra conversation events per session (transcripts, sentiment, API calls).
        #[arg(long, default_value_t = 6)]
        extra_events: u32,
        /// Records in a vendor's native format instead of canonical events
        /// (amazon-connect, genesys-cloud, twilio-taskrouter, zoom-contact-center,
        /// ccai-platform), with that vendor's redeliveries and disorder.
        #[arg(long, default_value = "canonical", value_parser = parse_input_format)]
        format: InputFormat,
        #[command(flatten)]
        faults: FaultRates,
    },
    /// Validate the configuration and print the effective values (secrets redacted).
    CheckConfig {
        /// Also connect to the brokers and check the topics and the group
        /// the daemon will use.
        #[arg(long)]
        connect: bool,
    },
    /// Print the configuration reference (every key, its type, default and
    /// environment variable) as Markdown.
    ConfigReference,
    /// Write the JSON Schemas of the JSON encoding (`*.schema.json`),
    /// generated from the Avro schemas, into a directory.
    JsonSchemas {
        /// Where to write them (the shipped copies are in `schemas/json`).
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// The dead-letter topic: counts by reason, details, and replay after a fix.
    Dlq {
        /// Bootstrap servers (default: kafka.brokers).
        #[arg(long, global = true)]
        brokers: Option<String>,
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Measure the engine and the pipeline against its passthrough ceiling; writes results.json and chart.svg.
    Bench {
        /// Directory for results.json and chart.svg.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
        /// Also run the broker phases against this cluster (instead of tansu).
        #[arg(long)]
        brokers: Option<String>,
        /// Replication factor of the topics created on --brokers.
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Workloads a tenth the size: a smoke run, not figures to quote.
        #[arg(long)]
        quick: bool,
        /// Only the engine phase, for profiling.
        #[arg(long, hide = true)]
        engine_only: bool,
        /// Only the embedded broker's phases, for profiling.
        #[arg(long, hide = true)]
        embedded_only: bool,
    },
    /// The engine on the simulator's JSON traffic alone: a fixed workload
    /// for profilers (`valgrind --tool=callgrind --toggle-collect='*Engine*process*'`).
    #[command(hide = true)]
    BenchEngine {
        /// Events to process.
        #[arg(long, default_value_t = 100_000)]
        events: usize,
    },
    /// The live-sessions phase of `bench`, run by it in a process of its own.
    #[command(hide = true)]
    BenchLiveSessions {
        /// Live session counts, comma-separated.
        #[arg(long, value_delimiter = ',')]
        live: Vec<u64>,
        /// Events timed at each count.
        #[arg(long)]
        events: usize,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    config::Duration::parse(text).map(|d| std::time::Duration::from_millis(d.millis().max(0) as u64))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Writes simulated records as JSONL; malformed records are written as they
/// are (one per line, newlines inside them replaced by spaces).
fn simulate_to_file(config: sessionflow_sim::SimConfig, records: usize, out: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write;
    let sink: Box<dyn Write> = if out == std::path::Path::new("-") { Box::new(std::io::stdout().lock()) } else { Box::new(std::fs::File::create(out)?) };
    let mut sink = std::io::BufWriter::new(sink);
    let codec = sessionflow_codec::Codec::json();
    for record in sessionflow_sim::Simulator::new(config).take(records) {
        match record {
            sessionflow_sim::SimRecord::Event(event) => sink.write_all(&codec.encode_event(&event)?)?,
            sessionflow_sim::SimRecord::Malformed { value, .. } => {
                let line: Vec<u8> = value.into_iter().map(|b| if b == b'\n' { b' ' } else { b }).collect();
                sink.write_all(&line)?;
            }
        }
        sink.write_all(b"\n")?;
    }
    sink.flush()?;
    Ok(())
}

/// A vendor's native records: one per line to a file (what `replay
/// --input-format` reads), or to a topic at `rate` records a second, keyed
/// as a bridge keys them.
fn simulate_vendor(
    format: InputFormat,
    config: sessionflow_sim::SimConfig,
    records: usize,
    kafka: Option<(&str, &str, u64)>,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use std::io::Write;
    let Some((brokers, topic, rate)) = kafka else {
        let generated = sessionflow_sim::vendors::VendorSimulator::new(format, config).map_err(|e| anyhow::anyhow!("{e}"))?.take(records);
        let sink: Box<dyn Write> = if out == std::path::Path::new("-") { Box::new(std::io::stdout().lock()) } else { Box::new(std::fs::File::create(out)?) };
        let mut sink = std::io::BufWriter::new(sink);
        for record in generated {
            sink.write_all(record.value.as_bytes())?;
            sink.write_all(b"\n")?;
        }
        sink.flush()?;
        return Ok(());
    };
    let (stop, produced) = (sessionflow_kafka::Shared::default(), std::sync::atomic::AtomicU64::new(0));
    daemon::produce_vendor_traffic(brokers, topic, format, config, rate, Some(records as u64), &stop, &produced)?;
    let sent = produced.load(std::sync::atomic::Ordering::Relaxed);
    println!("produced {sent} {format} records to {topic}");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let config = match Config::load(cli.config.as_deref(), &config::Overrides::from_process(cli.set.clone())) {
        Ok((config, warnings)) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            config
        }
        Err(e) => {
            tracing::error!(key = %e.key, "{e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Replay { input, out_dir, format, batch_size, state_dir, no_progress, input_format, session_identity } => {
            let format = match format {
                FileFormat::Jsonl => Encoding::Json,
                FileFormat::Avro => Encoding::Avro,
            };
            let session_identity = match session_identity {
                Identity::Journey => SessionIdentity::Journey,
                Identity::Leg => SessionIdentity::Leg,
            };
            let options = replay::ReplayOptions {
                input,
                out_dir: out_dir.clone(),
                format,
                batch_size,
                state_dir,
                progress: !no_progress,
                input_format,
                session_identity,
            };
            replay::replay(&config, &options).map(|summary| print!("{}", replay::render_summary(&summary, &out_dir, format)))
        }
        Command::Run { brokers, metrics_addr } => {
            let mut config = config;
            if let Some(b) = brokers {
                config.kafka.brokers = b;
            }
            if let Some(a) = metrics_addr {
                config.metrics.addr = a;
            }
            match config.validate() {
                Ok(()) => sessionflow_kafka::failpoints::configure_from_env().and_then(|()| daemon::run(&config)),
                Err(e) => {
                    tracing::error!(key = %e.key, "{e}");
                    return ExitCode::from(2);
                }
            }
        }
        Command::Demo { duration, metrics_addr, partitions, rate, faults, keyless_rate, mixed_vendors } => {
            let sim = faults.sim_config();
            daemon::demo(&config, &daemon::DemoOptions { duration, metrics_addr, partitions, rate, sim, keyless_rate, mixed_vendors })
        }
        Command::Broker { partitions } => daemon::broker(&config, partitions),
        Command::Simulate { records, out, brokers, topic, rate, seed, sessions_per_second, extra_events, format, faults } => {
            let sim = sessionflow_sim::SimConfig { seed, sessions_per_second, extra_events_per_session: extra_events, ..faults.sim_config() };
            match (brokers, format) {
                (Some(brokers), InputFormat::Canonical) => daemon::simulate_to_kafka(&brokers, &topic, sim, records as u64, rate),
                (None, InputFormat::Canonical) => simulate_to_file(sim, records, &out),
                (brokers, format) => simulate_vendor(format, sim, records, brokers.as_deref().map(|b| (b, topic.as_str(), rate)), &out),
            }
        }
        Command::Bench { out, brokers, replication_factor, quick, engine_only, embedded_only } => {
            bench::run(&bench::BenchArgs { out, brokers, replication_factor, quick, engine_only, embedded_only, engine: config.engine_config() })
        }
        Command::BenchEngine { events } => bench::engine_phase(events, &config.engine_config()),
        Command::BenchLiveSessions { live, events } => bench::live_sessions_phase(&live, events),
        Command::CheckConfig { connect } => check_config(&config, connect),
        Command::Dlq { brokers, command } => {
            let mut daemon = config.daemon_config();
            if let Some(brokers) = brokers {
                daemon.kafka.brokers = brokers;
            }
            let report = match command {
                DlqCommand::Inspect { reason, newest, show_values } => dlq::inspect(&daemon, reason.as_deref(), newest, show_values),
                DlqCommand::Replay { reason, offsets, limit, to, dry_run, force_redacted } => {
                    dlq::replay(&daemon, &dlq::Selection { reason, positions: offsets, limit, force_redacted }, to.as_deref(), dry_run)
                }
            };
            report.map(|text| print!("{text}"))
        }
        Command::ConfigReference => {
            print!("{}", config::reference_markdown());
            Ok(())
        }
        Command::JsonSchemas { out_dir } => write_json_schemas(&out_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `check-config`: the effective configuration, secrets redacted; with
/// `connect`, what the brokers say of the topics and the group.
fn check_config(config: &Config, connect: bool) -> anyhow::Result<()> {
    print!("# effective configuration: OK\n{}", toml::to_string_pretty(&config::redacted(config))?);
    if connect {
        let report = daemon::check_cluster(&config.daemon_config())?;
        print!("{report}");
        anyhow::ensure!(!report.contains("MISSING") && !report.contains("REFUSED"), "the cluster is not ready for this configuration (see above)");
    }
    Ok(())
}

/// Writes `schemas/json`'s files, pretty-printed, one per record kind.
fn write_json_schemas(out_dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    for (name, schema) in sessionflow_codec::json_schema::shipped()? {
        let path = out_dir.join(name);
        std::fs::write(&path, sessionflow_codec::json_schema::to_text(&schema)).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
