//! Records per second of output encoding on one core: JSON, Avro through
//! apache-avro's `to_avro_datum` (the path before the direct encoder), Avro
//! as `Codec` encodes it now, and the two halves of the latter.
//!
//! `cargo run --release -p sessionflow-codec --example avro_encode_timing`;
//! `BUDGET_MS` sets the time per measurement (default 2000).

use serde::Serialize;
use serde_json::Value;
use sessionflow_codec::avro::{AvroSchemas, MAGIC, RecordKind, json_to_avro};
use sessionflow_codec::{Codec, CodecError};
use sessionflow_core::Output;
use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{EngineConfig, Event};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn example_outputs() -> Vec<Output> {
    // The example sessions: `examples/*.jsonl` in name order.
    let dir = format!("{}/../../examples", std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the examples folder")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("an example file");
        events.extend(text.lines().filter(|l| !l.trim().is_empty()).map(|l| Event::from_json_slice(l.as_bytes())));
    }
    replay_in_memory(&EngineConfig::default(), &events, 7).0
}

/// Runs `f` over `items` for about `budget`; records per second.
fn rate<T, R>(items: &[T], budget: Duration, mut f: impl FnMut(&T) -> R) -> f64 {
    let start = Instant::now();
    let mut done = 0_u64;
    while start.elapsed() < budget {
        for item in items {
            black_box(f(item));
        }
        done += items.len() as u64;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// The encoding before the direct encoder: JSON form, apache-avro value,
/// `to_avro_datum`, Confluent header.
fn encode_via_apache_avro(schemas: &AvroSchemas, kind: RecordKind, record: &impl Serialize) -> Result<Vec<u8>, CodecError> {
    let json = serde_json::to_value(record).map_err(|e| CodecError::Encode(e.to_string()))?;
    let schema = schemas.schema(kind);
    let body = apache_avro::to_avro_datum(schema, json_to_avro(&json, schema, false, "")?).map_err(|e| CodecError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(MAGIC);
    out.extend_from_slice(&schemas.id(kind).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn json_form(output: &Output) -> Value {
    match output {
        Output::Timeline(r) => serde_json::to_value(r),
        Output::Metadata(r) => serde_json::to_value(r),
        _ => unreachable!("only timeline and metadata records are timed"),
    }
    .expect("records serialise")
}

fn main() {
    let budget = Duration::from_millis(std::env::var("BUDGET_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000));
    let outputs = example_outputs();
    let (json, avro) = (Codec::json(), Codec::avro());
    for (name, kind) in [("timeline", RecordKind::Timeline), ("metadata", RecordKind::Metadata)] {
        let records: Vec<Output> = outputs
            .iter()
            .filter(|o| match kind {
                RecordKind::Timeline => matches!(o, Output::Timeline(_)),
                _ => matches!(o, Output::Metadata(_)),
            })
            .cloned()
            .collect();
        let values: Vec<Value> = records.iter().map(json_form).collect();
        let old = rate(&records, budget, |o| match o {
            Output::Timeline(r) => encode_via_apache_avro(&avro.schemas, kind, r),
            Output::Metadata(r) => encode_via_apache_avro(&avro.schemas, kind, r),
            _ => unreachable!(),
        });
        let new = rate(&records, budget, |o| avro.encode_output(o).expect("encodes"));
        let json_rate = rate(&records, budget, |o| json.encode_output(o).expect("encodes"));
        let to_value = rate(&records, budget, json_form);
        let from_value = rate(&values, budget, |v| avro.schemas.encode(kind, v).expect("encodes"));
        println!(
            "{name} ({} records): json {json_rate:.0}/s | avro before {old:.0}/s, now {new:.0}/s ({:.1}x) | now = to_value {to_value:.0}/s + encode from value {from_value:.0}/s",
            records.len(),
            new / old,
        );
    }
}
