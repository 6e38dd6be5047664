//! Shared by the adapter tests: native records through an adapter and the
//! engine (in memory), to the final metadata record of each session.
#![allow(dead_code)]

use serde_json::Value;
use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, adapter};
use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{DeadLetter, EngineConfig, Event, InputError, Output};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A fixture file under the repository's `examples/vendors/`.
pub fn fixture(format: InputFormat, name: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()))
        .join("../../examples/vendors")
        .join(format.as_str())
        .join(name)
}

/// The non-blank lines of a fixture: one native record each.
pub fn fixture_lines(format: InputFormat, name: &str) -> Vec<String> {
    let path = fixture(format, name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

/// Every canonical event (or error) of the records, in order.
pub fn adapt_all(format: InputFormat, options: &AdapterOptions, records: &[String]) -> Vec<Result<Event, InputError>> {
    let adapter = adapter(format, options);
    let mut state = MemoryState::default();
    let mut out = Vec::new();
    for record in records {
        match adapter.adapt(record.as_bytes(), &mut state) {
            Ok(events) => out.extend(events.into_iter().map(Ok)),
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

/// What the engine made of the records.
#[derive(Debug)]
pub struct Run {
    pub outputs: Vec<Output>,
}

impl Run {
    /// The last metadata record of each session, as JSON.
    pub fn final_metadata(&self) -> BTreeMap<String, Value> {
        let mut last = BTreeMap::new();
        for output in &self.outputs {
            if let Output::Metadata(m) = output {
                last.insert(m.session_id.to_string(), serde_json::to_value(m.as_ref()).unwrap());
            }
        }
        last
    }

    /// The dead letters, in order.
    pub fn dead_letters(&self) -> Vec<&DeadLetter> {
        self.outputs.iter().filter_map(|o| if let Output::DeadLetter(d) = o { Some(d.as_ref()) } else { None }).collect()
    }

    /// The timeline's event types of one session, in order.
    pub fn timeline_types(&self, session: &str) -> Vec<String> {
        self.outputs
            .iter()
            .filter_map(|o| if let Output::Timeline(t) = o { Some(t) } else { None })
            .filter(|t| &*t.session_id == session)
            .map(|t| serde_json::to_value(t.as_ref()).unwrap()["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// The records through the adapter and the engine (default config, one
/// batch per 7 records so batch edges fall inside sessions).
pub fn run(format: InputFormat, options: &AdapterOptions, records: &[String]) -> Run {
    let events = adapt_all(format, options, records);
    Run { outputs: replay_in_memory(&EngineConfig::default(), &events, 7).0 }
}

/// Fields of the metadata record that `docs/lifecycle.md` lets depend on
/// arrival order and duplication.
pub const ORDER_DEPENDENT: [&str; 6] = ["version", "revision_reason", "finalized_at", "late_event_count", "duplicate_count", "is_final"];

/// A final record without the [`ORDER_DEPENDENT`] fields.
pub fn order_independent(mut record: Value) -> Value {
    if let Some(fields) = record.as_object_mut() {
        for field in ORDER_DEPENDENT {
            fields.shift_remove(field);
        }
    }
    record
}

/// Every session's final record without the [`ORDER_DEPENDENT`] fields.
pub fn order_independent_finals(finals: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    finals.into_iter().map(|(id, record)| (id, order_independent(record))).collect()
}

/// Asserts each `(field, expected value)` of a metadata record.
pub fn assert_fields(record: &Value, expected: &[(&str, Value)]) {
    for (field, value) in expected {
        assert_eq!(&record[*field], value, "field {field} of {}", record["session_id"]);
    }
}

/// The records with some repeated and all shuffled, reproducibly from `seed`
/// (a small LCG: the tests need no randomness crate).
pub fn duplicated_and_shuffled(records: &[String], seed: u64) -> Vec<String> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = move || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let mut out: Vec<String> = records.to_vec();
    for r in records {
        if next() % 3 == 0 {
            out.push(r.clone());
        }
    }
    for i in (1..out.len()).rev() {
        let j = next() % (i + 1);
        out.swap(i, j);
    }
    out
}
