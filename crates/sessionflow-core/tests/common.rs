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

/// What a driven run gives: its outputs, counters and state.
#[derive(Debug)]
pub struct Driven {
    pub outputs: Vec<Output>,
    pub stats: sessionflow_core::BatchStats,
    pub state: sessionflow_core::memstore::MemState,
}

impl Driven {
    /// The dead letters, in order.
    pub fn dead_letters(&self) -> Vec<&sessionflow_core::DeadLetter> {
        self.outputs.iter().filter_map(|o| if let Output::DeadLetter(d) = o { Some(d.as_ref()) } else { None }).collect()
    }

    /// The outputs that are not dead letters.
    pub fn records(&self) -> Vec<&Output> {
        self.outputs.iter().filter(|o| !matches!(o, Output::DeadLetter(_))).collect()
    }

    /// `consumed = timeline + dead_lettered + duplicates + erased_suppressed`.
    pub fn assert_accounting(&self) {
        let s = &self.stats;
        assert_eq!(s.consumed, s.timeline + s.dead_letter_total() + s.duplicates + s.erased_suppressed, "accounting: {s:?}");
    }
}

/// Runs `(offset, event)` records through batches of `batch_size` over an
/// in-memory state, each with its JSON as the record value and the batch's
/// wall clock set to `wall_clock`, as the daemon does; `finish` then
/// advances the watermark past every timer, as the end of a replay does.
pub fn drive(config: &EngineConfig, input: &[(i64, Event)], batch_size: usize, wall_clock: Option<sessionflow_core::Millis>, finish: bool) -> Driven {
    drive_over(sessionflow_core::memstore::MemState::default(), config, input, batch_size, wall_clock, finish)
}

/// [`drive`] over a given starting state.
pub fn drive_over(
    mut state: sessionflow_core::memstore::MemState,
    config: &EngineConfig,
    input: &[(i64, Event)],
    batch_size: usize,
    wall_clock: Option<sessionflow_core::Millis>,
    finish: bool,
) -> Driven {
    use sessionflow_core::{Batch, BatchStats, InputPosition, InputRecord, Millis};
    let mut outputs = Vec::new();
    let mut stats = BatchStats::default();
    let chunks: Vec<&[(i64, Event)]> = if input.is_empty() { vec![&[]] } else { input.chunks(batch_size.max(1)).collect() };
    for (i, chunk) in chunks.iter().enumerate() {
        let Ok(mut batch) = Batch::new(config, &state, wall_clock.unwrap_or(Millis(0)));
        batch.set_wall_clock(wall_clock);
        for (offset, event) in chunk.iter() {
            let value = serde_json::to_vec(event).expect("event as JSON");
            let position = InputPosition { topic: "t".into(), partition: 0, offset: *offset };
            let Ok(()) = batch.record(InputRecord { key: Some(event.session_id.as_bytes()), value: Some(&value), position, event: Ok(event.clone()) });
        }
        if finish && i + 1 == chunks.len() {
            let Ok(()) = batch.advance_watermark(Millis(i64::MAX));
        }
        let result = batch.finish();
        outputs.extend(result.outputs);
        stats.merge(&result.stats);
        state.apply(result.writes);
    }
    Driven { outputs, stats, state }
}

/// Numbers events by their position, as offsets.
pub fn numbered(events: &[Event]) -> Vec<(i64, Event)> {
    events.iter().cloned().enumerate().map(|(i, e)| (i as i64, e)).collect()
}

/// An event of `session` at an exact time.
#[allow(clippy::needless_pass_by_value)] // callers build the value in place
pub fn ev_at(session: &str, id: &str, kind: &str, at: &str, attrs: Value) -> Event {
    let v = json!({"event_id": id, "session_id": session, "type": kind, "occurred_at": at, "attributes": attrs});
    Event::from_json(v).expect("valid test event")
}
