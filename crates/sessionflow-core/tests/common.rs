//! Builders shared by the lifecycle tests.
#![allow(dead_code)]

use serde_json::{Value, json};
use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{EngineConfig, Event, InputError, MetadataRecord, Output, TimelineRecord};

pub const T0: i64 = 1_720_000_000_000;

/// An event of session `s1` at `T0 + secs`.
pub fn ev(id: &str, kind: &str, secs: f64, attrs: Value) -> Event {
    ev_in("s1", id, kind, secs, attrs)
}

#[allow(clippy::needless_pass_by_value)] // callers build the value in place
pub fn ev_in(session: &str, id: &str, kind: &str, secs: f64, attrs: Value) -> Event {
    let at = sessionflow_core::Millis(T0 + (secs * 1000.0) as i64).to_rfc3339();
    let mut v = json!({"event_id": id, "session_id": session, "type": kind, "occurred_at": at, "attributes": attrs});
    if kind == "session.started" {
        v["channel"] = json!("voice");
        v["direction"] = json!("inbound");
    }
    Event::from_json(v).expect("valid test event")
}

pub fn run(events: &[Event]) -> Vec<Output> {
    run_with(&EngineConfig::default(), events)
}

pub fn run_with(config: &EngineConfig, events: &[Event]) -> Vec<Output> {
    let input: Vec<Result<Event, InputError>> = events.iter().cloned().map(Ok).collect();
    replay_in_memory(config, &input, 1).0
}

pub fn timeline(outputs: &[Output]) -> Vec<&TimelineRecord> {
    outputs.iter().filter_map(|o| if let Output::Timeline(t) = o { Some(t.as_ref()) } else { None }).collect()
}

pub fn metadata(outputs: &[Output]) -> Vec<&MetadataRecord> {
    outputs.iter().filter_map(|o| if let Output::Metadata(m) = o { Some(m.as_ref()) } else { None }).collect()
}

/// The last metadata record, as JSON.
pub fn last(outputs: &[Output]) -> Value {
    serde_json::to_value(*metadata(outputs).last().expect("a metadata record")).unwrap()
}

/// A started, queued, connected voice session, in order.
pub fn connected() -> Vec<Event> {
    vec![
        ev("a", "session.started", 0.0, json!({})),
        ev("b", "queue.entered", 1.0, json!({"queue": "Q"})),
        ev("c", "agent.assigned", 5.0, json!({"agent": "Ann", "agent_id": "a-1"})),
        ev("d", "agent.connected", 6.0, json!({"agent": "Ann", "agent_id": "a-1"})),
    ]
}
