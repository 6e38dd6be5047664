//! `sessionflow replay`: the engine over a file, with a RocksDB store.
//!
//! The file is one partition; its watermark follows the events as they are
//! read, and the end of the input advances it past every timer, so every
//! session ends the replay finalized. Same input, same bytes out.

use crate::config::Config;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sessionflow_adapters::{AdapterOptions, InputFormat, SessionIdentity};
use sessionflow_codec::avro::avro_to_json;
use sessionflow_codec::files::OutputFiles;
use sessionflow_codec::{Codec, Encoding};
use sessionflow_core::{Batch, BatchStats, Event, InputError, InputPosition, InputRecord, Millis, SessionCache, StateRead};
use sessionflow_store::Store;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Replay options.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Input file, or `-` for stdin.
    pub input: PathBuf,
    /// Output directory (created if missing).
    pub out_dir: PathBuf,
    /// Output file format.
    pub format: Encoding,
    /// Records per committed batch.
    pub batch_size: usize,
    /// Keep the RocksDB state here instead of a temporary directory.
    pub state_dir: Option<PathBuf>,
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
    /// What each input line is: a canonical event, or a vendor's native
    /// record read by its adapter.
    pub input_format: InputFormat,
    /// Journey or leg, for vendors that split a contact into legs.
    pub session_identity: SessionIdentity,
}

/// What a replay did.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub stats: BatchStats,
    pub elapsed_secs: f64,
}

/// One input record: raw bytes, or an event decoded from an Avro container.
enum Raw {
    Bytes(Vec<u8>),
    Decoded(Box<Result<Event, InputError>>),
}

/// Records with their line or block number, as a replay reads them.
type Records = Box<dyn Iterator<Item = anyhow::Result<(Raw, u64)>>>;

/// Reads records from JSONL or from an Avro object container file.
fn records(reader: Box<dyn BufRead>) -> anyhow::Result<Records> {
    let mut reader = reader;
    let head = reader.fill_buf()?.get(..4).map(<[u8]>::to_vec).unwrap_or_default();
    if head == b"Obj\x01" {
        let avro = apache_avro::Reader::new(reader).context("reading the Avro container header")?;
        let schema = avro.writer_schema().clone();
        return Ok(Box::new(avro.map(move |value| {
            let decoded = value
                .map_err(|e| InputError { reason: sessionflow_core::DeadLetterReason::DecodeError, detail: e.to_string() })
                .and_then(|v| {
                    avro_to_json(v, &schema, false).map_err(|e| InputError { reason: sessionflow_core::DeadLetterReason::DecodeError, detail: e.to_string() })
                })
                .and_then(Event::from_json);
            Ok((Raw::Decoded(Box::new(decoded)), 0))
        })));
    }
    Ok(Box::new(reader.split(b'\n').filter_map(|line| match line {
        Ok(mut line) => {
            let consumed = line.len() as u64 + 1;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) { None } else { Some(Ok((Raw::Bytes(line), consumed))) }
        }
        Err(e) => Some(Err(e.into())),
    })))
}

/// Runs a replay.
pub fn replay(config: &Config, options: &ReplayOptions) -> anyhow::Result<ReplaySummary> {
    let started = Instant::now();
    let engine = config.engine_config();
    let codec = Codec::new(options.format, config.encoding.schema_ids, config.encoding.max_event_bytes)?;
    std::fs::create_dir_all(&options.out_dir).with_context(|| format!("creating {}", options.out_dir.display()))?;

    let (topic, input, size): (std::sync::Arc<str>, Box<dyn Read>, Option<u64>) = if options.input == Path::new("-") {
        ("stdin".into(), Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(&options.input).with_context(|| format!("opening {}", options.input.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        let name = options.input.file_name().map_or_else(|| options.input.display().to_string(), |n| n.to_string_lossy().into_owned());
        (name.into(), Box::new(file), size)
    };
    let progress = progress_bar(options.progress, size);

    let temp;
    let state_path = match &options.state_dir {
        Some(dir) => {
            if dir.exists() {
                std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
            }
            dir.clone()
        }
        None => {
            temp = tempfile::Builder::new().prefix(".sessionflow-replay-").tempdir_in(&options.out_dir)?;
            temp.path().to_owned()
        }
    };
    let store = Store::open(&state_path, &config.store_config())?;
    let state = store.partition(0);
    let mut files = OutputFiles::create(&options.out_dir, options.format, &codec.schemas)?;
    let mut totals = BatchStats::default();

    let adapter = (options.input_format != InputFormat::Canonical)
        .then(|| sessionflow_adapters::adapter(options.input_format, &AdapterOptions { session_identity: options.session_identity }));
    let mut iter = records(Box::new(BufReader::with_capacity(1 << 20, input)))?.peekable();
    let mut offset: i64 = 0;
    let mut cache = SessionCache::new(config.session_cache_bytes());
    loop {
        let meta = state.meta()?;
        let mut batch = Batch::with_cache(&engine, &state, meta.max_event_time.unwrap_or(Millis(0)), &mut cache)?;
        let mut taken = 0;
        while taken < options.batch_size.max(1) {
            let Some(item) = iter.next() else { break };
            let (raw, consumed) = item?;
            let position = InputPosition { topic: topic.clone(), partition: 0, offset };
            offset += 1;
            taken += 1;
            progress.inc(consumed);
            match raw {
                Raw::Bytes(bytes) if let Some(adapter) = &adapter => {
                    match codec.check_size(Some(&bytes)).and_then(|()| sessionflow_adapters::adapt_for_batch(adapter.as_ref(), &batch, Some(&bytes))) {
                        Ok(events) => {
                            for event in events {
                                batch.record(InputRecord { key: None, value: Some(&bytes), position: position.clone(), event: Ok(event) })?;
                            }
                        }
                        Err(error) => batch.record(InputRecord { key: None, value: Some(&bytes), position, event: Err(error) })?,
                    }
                }
                Raw::Decoded(_) if adapter.is_some() => {
                    anyhow::bail!("--input-format {}: vendor records are read one JSON object per line, not from an Avro container", options.input_format)
                }
                Raw::Bytes(bytes) => {
                    let event = codec.decode_event(Some(&bytes));
                    batch.record(InputRecord { key: None, value: Some(&bytes), position, event })?;
                }
                Raw::Decoded(event) => {
                    let event = *event;
                    let bytes = event.as_ref().ok().and_then(|e| serde_json::to_vec(e).ok());
                    batch.record(InputRecord { key: None, value: bytes.as_deref(), position, event })?;
                }
            }
            batch.set_now(batch.meta().max_event_time.unwrap_or(Millis(0)));
        }
        let at_end = iter.peek().is_none();
        if at_end {
            batch.advance_watermark(Millis(i64::MAX))?;
        }
        let result = batch.finish();
        store.commit(0, &result.writes)?;
        for output in &result.outputs {
            files.write(output)?;
        }
        totals.merge(&result.stats);
        cache.committed(result.writes);
        if at_end {
            break;
        }
    }
    files.finish()?;
    progress.finish_and_clear();
    Ok(ReplaySummary { stats: totals, elapsed_secs: started.elapsed().as_secs_f64() })
}

fn progress_bar(enabled: bool, size: Option<u64>) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match size {
        Some(bytes) => {
            let bar = ProgressBar::new(bytes);
            bar.set_style(
                ProgressStyle::with_template("{spinner} replay [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(ProgressStyle::with_template("{spinner} replay {bytes} read ({bytes_per_sec})").unwrap_or_else(|_| ProgressStyle::default_spinner()));
            bar
        }
    }
}

/// The summary printed after a replay.
pub fn render_summary(summary: &ReplaySummary, out_dir: &Path, format: Encoding) -> String {
    use std::fmt::Write;
    let s = &summary.stats;
    let mut out = String::new();
    let rate = s.consumed as f64 / summary.elapsed_secs.max(1e-9);
    let _ = writeln!(out, "sessionflow replay: {} records in {:.2} s ({:.0} records/s)", s.consumed, summary.elapsed_secs, rate);
    let _ = writeln!(out, "  timeline records     {:>10}", s.timeline);
    let _ = writeln!(out, "  metadata records     {:>10}  ({} revisions)", s.metadata, s.revisions);
    let _ = writeln!(out, "  tombstones           {:>10}", s.tombstones);
    let _ = writeln!(out, "  dead letters         {:>10}", s.dead_letter_total());
    for (reason, n) in &s.dead_lettered {
        let _ = writeln!(out, "    {:<20} {:>8}", reason.as_str(), n);
    }
    let _ = writeln!(out, "  duplicates dropped   {:>10}", s.duplicates);
    let _ = writeln!(out, "  erased (suppressed)  {:>10}", s.erased_suppressed);
    let _ = writeln!(out, "  out of order         {:>10}", s.out_of_order);
    let _ = writeln!(out, "  unknown event types  {:>10}", s.unknown_types);
    let mut outcomes: std::collections::BTreeMap<&str, u64> = Default::default();
    for f in &s.finalized {
        *outcomes.entry(f.outcome.as_str()).or_default() += 1;
    }
    let by_outcome: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "  sessions finalized   {:>10}  ({})", s.finalized.len(), by_outcome.join(", "));
    let anomalies: u64 = s.anomalies.values().sum();
    let _ = writeln!(out, "  anomalies            {:>10}", anomalies);
    for (code, n) in &s.anomalies {
        let _ = writeln!(out, "    {:<20} {:>8}", code.as_str(), n);
    }
    let balanced = s.consumed == s.timeline + s.dead_letter_total() + s.duplicates + s.erased_suppressed;
    let _ = writeln!(
        out,
        "  accounting: consumed {} = timeline {} + dead letters {} + duplicates {} + erased {} ({})",
        s.consumed,
        s.timeline,
        s.dead_letter_total(),
        s.duplicates,
        s.erased_suppressed,
        if balanced { "balanced" } else { "UNBALANCED" }
    );
    let files = match format {
        Encoding::Json => "timeline.jsonl, metadata.jsonl, dead_letter.jsonl",
        Encoding::Avro => "timeline.avro, metadata.avro, tombstones.jsonl, dead_letter.jsonl",
    };
    let _ = writeln!(out, "  output: {} ({files})", out_dir.display());
    out
}
