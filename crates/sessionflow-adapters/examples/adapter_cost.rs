//! What each adapter costs per canonical event it makes, next to what
//! decoding the same events as canonical JSON costs (the baseline of the
//! bench's adapters phase), without the engine or RocksDB.
//!
//! ```sh
//! cargo run --release -p sessionflow-adapters --example adapter_cost -- [records] [--only <format>] [--dump <dir>]
//! ```
//!
//! Per vendor it takes `records` (default 50 000) clean simulator records
//! (`VendorSimulator::new(format, SimConfig::clean(7))`, the bench's
//! workload), and times, best of several rounds: (a) `Adapter::adapt` over
//! the native records with a fresh `MemoryState`, and (b)
//! `Codec::json().decode_event` over the canonical JSON of the events (a)
//! made. Both are printed in µs per canonical event, with their ratio.
//! `--dump <dir>` writes each vendor's events as canonical JSON lines
//! (`<dir>/<format>.jsonl`), to compare the output of two builds.

use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, adapter};
use sessionflow_codec::Codec;
use sessionflow_sim::SimConfig;
use sessionflow_sim::vendors::VendorSimulator;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

const ROUNDS: usize = 5;

struct Options {
    records: usize,
    only: Option<InputFormat>,
    dump: Option<PathBuf>,
}

fn options() -> Options {
    let mut options = Options { records: 50_000, only: None, dump: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => options.only = Some(args.next().expect("--only <format>").parse().expect("a format name")),
            "--dump" => options.dump = Some(args.next().expect("--dump <dir>").into()),
            n => options.records = n.parse().expect("a record count"),
        }
    }
    options
}

/// The best time of `ROUNDS` runs of `f`, in seconds.
fn best_of(mut f: impl FnMut()) -> f64 {
    (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let options = options();
    let codec = Codec::json();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<20} {:>8} {:>8} {:>12} {:>12} {:>7}", "format", "records", "events", "adapt µs/ev", "decode µs/ev", "ratio").unwrap();
    for format in InputFormat::ALL.into_iter().filter(|f| *f != InputFormat::Canonical && options.only.is_none_or(|o| o == *f)) {
        let simulator = VendorSimulator::new(format, SimConfig::clean(7)).expect("a vendor format");
        let records: Vec<String> = simulator.take(options.records).map(|r| r.value).collect();
        let adapter = adapter(format, &AdapterOptions::default());

        let mut events = Vec::new();
        let mut state = MemoryState::default();
        for record in &records {
            events.extend(adapter.adapt(record.as_bytes(), &mut state).unwrap_or_default());
        }
        let canonical: Vec<Vec<u8>> = events.iter().map(|e| codec.encode_event(e).expect("an encodable event")).collect();
        if let Some(dir) = &options.dump {
            std::fs::create_dir_all(dir).expect("the dump directory");
            let mut lines = Vec::new();
            for json in &canonical {
                lines.extend_from_slice(json);
                lines.push(b'\n');
            }
            std::fs::write(dir.join(format!("{format}.jsonl")), lines).expect("the dump file");
        }

        let adapt = best_of(|| {
            let mut state = MemoryState::default();
            for record in &records {
                black_box(adapter.adapt(black_box(record.as_bytes()), &mut state).ok());
            }
        });
        let decode = best_of(|| {
            for json in &canonical {
                black_box(codec.decode_event(Some(black_box(json))).ok());
            }
        });
        #[allow(clippy::cast_precision_loss)]
        let per_event = |seconds: f64| seconds * 1e6 / events.len().max(1) as f64;
        let (adapt, decode) = (per_event(adapt), per_event(decode));
        writeln!(out, "{:<20} {:>8} {:>8} {:>12.2} {:>12.2} {:>7.2}", format.as_str(), records.len(), events.len(), adapt, decode, adapt / decode).unwrap();
    }
}
