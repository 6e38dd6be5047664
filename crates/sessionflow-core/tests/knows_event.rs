//! `Batch::knows_event`, the duplicate check adapters of snapshot formats
//! ask per transition: exact answers from the store and the batch, and a
//! new id told apart from the session's entry without reading the store.

mod common;

use common::ev_in;
use serde_json::json;
use sessionflow_core::memstore::MemState;
use sessionflow_core::{
    Batch, EngineConfig, Event, EventsKey, InputPosition, InputRecord, Marker, Millis, PartitionMeta, SessionCache, SessionEntry, StateRead, Timer,
};
use std::cell::Cell;
use std::convert::Infallible;

/// A state that counts the event look-ups it answers.
#[derive(Default)]
struct Counted {
    state: MemState,
    event_reads: Cell<usize>,
}

impl StateRead for Counted {
    type Error = Infallible;

    fn session(&self, session_id: &str) -> Result<Option<SessionEntry>, Infallible> {
        self.state.session(session_id)
    }

    fn has_event(&self, session_id: &str, event_id: &str) -> Result<bool, Infallible> {
        self.event_reads.set(self.event_reads.get() + 1);
        self.state.has_event(session_id, event_id)
    }

    fn events(&self, session_id: &str) -> Result<Vec<Event>, Infallible> {
        self.state.events(session_id)
    }

    fn each_event_id(&self, session_id: &str, f: &mut dyn FnMut(&str)) -> Result<(), Infallible> {
        self.state.each_event_id(session_id, f)
    }

    fn event_keys(&self, session_id: &str) -> Result<Vec<EventsKey>, Infallible> {
        self.state.event_keys(session_id)
    }

    fn marker(&self, session_id: &str) -> Result<Option<Marker>, Infallible> {
        self.state.marker(session_id)
    }

    fn timers_due(&self, after: Option<&Timer>, from: Millis, upto: Millis, limit: usize) -> Result<Vec<Timer>, Infallible> {
        self.state.timers_due(after, from, upto, limit)
    }

    fn meta(&self) -> Result<PartitionMeta, Infallible> {
        self.state.meta()
    }
}

fn record(batch: &mut Batch<'_, Counted>, offset: i64, event: Event) {
    let position = InputPosition { topic: "in".into(), partition: 0, offset };
    let Ok(()) = batch.record(InputRecord { key: None, value: None, position, event: Ok(event) });
}

/// Asks `knows_event`, and how many store look-ups that took.
fn ask(batch: &Batch<'_, Counted>, store: &Counted, session_id: &str, event_id: &str) -> (bool, usize) {
    let before = store.event_reads.get();
    let Ok(known) = batch.knows_event(session_id, event_id);
    (known, store.event_reads.get() - before)
}

#[test]
fn new_ids_are_ruled_out_by_the_session_entry_and_told_ids_are_found() {
    let config = EngineConfig::default();
    let mut store = Counted::default();
    let mut cache = SessionCache::new(SessionCache::DEFAULT_BUDGET_BYTES);

    let writes = {
        let mut batch = Batch::with_cache(&config, &store, Millis(0), &mut cache).unwrap();
        record(&mut batch, 0, ev_in("s1", "a", "session.started", 0.0, json!({})));
        record(&mut batch, 1, ev_in("s1", "b", "queue.entered", 1.0, json!({"queue": "Q"})));
        assert_eq!(ask(&batch, &store, "s1", "b"), (true, 0), "told in this batch");
        assert_eq!(ask(&batch, &store, "s1", "z"), (false, 0), "the batch's entry rules it out");
        assert!(!ask(&batch, &store, "s2", "a").0, "no entry: the store answers");
        batch.finish().writes
    };
    store.state.apply(writes.clone());
    cache.committed(writes);

    // The next batch has the session's entry in the cache, its events in the store.
    let batch = Batch::with_cache(&config, &store, Millis(0), &mut cache).unwrap();
    assert_eq!(ask(&batch, &store, "s1", "a"), (true, 1), "told in an earlier batch: found in the store");
    assert_eq!(ask(&batch, &store, "s1", "z"), (false, 0), "the cached entry rules it out");
    drop(batch);

    // Without a cache the entry is not at hand: the store answers.
    let batch = Batch::new(&config, &store, Millis(0)).unwrap();
    assert_eq!(ask(&batch, &store, "s1", "a"), (true, 1));
    assert_eq!(ask(&batch, &store, "s1", "z"), (false, 1));
}
