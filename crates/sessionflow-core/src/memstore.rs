//! An in-memory [`StateRead`] for tests, property tests and fuzzing of the
//! processor without RocksDB.

use crate::event::Event;
use crate::state::{EventsKey, Marker, PartitionMeta, SessionEntry, StateRead, Timer, Write};
use crate::time::Millis;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

/// One partition's state in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemState {
    pub sessions: BTreeMap<String, SessionEntry>,
    pub events: BTreeMap<(String, EventsKey), Vec<Event>>,
    pub markers: BTreeMap<String, Marker>,
    pub timers: BTreeSet<Timer>,
    pub meta: PartitionMeta,
}

impl MemState {
    /// Applies a batch's writes.
    pub fn apply(&mut self, writes: Vec<Write>) {
        for write in writes {
            match write {
                Write::PutSession(id, entry) => {
                    self.sessions.insert(id.to_string(), *entry);
                }
                Write::DeleteSession(id) => {
                    self.sessions.remove(&*id);
                }
                Write::PutEvents { session_id, chunk, events } => {
                    self.events.insert((session_id.to_string(), EventsKey::Chunk(chunk)), events);
                }
                Write::DeleteEvents { session_id, key } => {
                    self.events.remove(&(session_id, key));
                }
                Write::PutMarker(id, marker) => {
                    self.markers.insert(id, marker);
                }
                Write::DeleteMarker(id) => {
                    self.markers.remove(&id);
                }
                Write::PutTimer(timer) => {
                    self.timers.insert(timer);
                }
                Write::DeleteTimer(timer) => {
                    self.timers.remove(&timer);
                }
                Write::PutMeta(meta) => self.meta = meta,
            }
        }
    }

    fn session_chunks(&self, session_id: &str) -> impl Iterator<Item = (&EventsKey, &Vec<Event>)> {
        // The smallest key of the session.
        let from = (session_id.to_owned(), EventsKey::Single(String::new()));
        self.events.range(from..).take_while(move |((s, _), _)| s == session_id).map(|((_, key), events)| (key, events))
    }

    fn session_events(&self, session_id: &str) -> impl Iterator<Item = &Event> {
        self.session_chunks(session_id).flat_map(|(_, events)| events)
    }
}

impl StateRead for MemState {
    type Error = Infallible;

    fn session(&self, session_id: &str) -> Result<Option<SessionEntry>, Infallible> {
        Ok(self.sessions.get(session_id).cloned())
    }

    fn has_event(&self, session_id: &str, event_id: &str) -> Result<bool, Infallible> {
        Ok(self.session_events(session_id).any(|e| e.event_id == event_id))
    }

    fn events(&self, session_id: &str) -> Result<Vec<Event>, Infallible> {
        Ok(self.session_events(session_id).cloned().collect())
    }

    fn each_event_id(&self, session_id: &str, f: &mut dyn FnMut(&str)) -> Result<(), Infallible> {
        self.session_events(session_id).for_each(|e| f(&e.event_id));
        Ok(())
    }

    fn event_keys(&self, session_id: &str) -> Result<Vec<EventsKey>, Infallible> {
        Ok(self.session_chunks(session_id).map(|(key, _)| key.clone()).collect())
    }

    fn marker(&self, session_id: &str) -> Result<Option<Marker>, Infallible> {
        Ok(self.markers.get(session_id).copied())
    }

    fn timers_due(&self, after: Option<&Timer>, from: Millis, upto: Millis, limit: usize) -> Result<Vec<Timer>, Infallible> {
        let iter: Box<dyn Iterator<Item = &Timer>> = match after {
            Some(a) => Box::new(self.timers.range((std::ops::Bound::Excluded(a.clone()), std::ops::Bound::Unbounded))),
            None => Box::new(self.timers.iter()),
        };
        Ok(iter.filter(|t| t.due >= from).take_while(|t| t.due <= upto).take(limit).cloned().collect())
    }

    fn meta(&self) -> Result<PartitionMeta, Infallible> {
        Ok(self.meta.clone())
    }
}

/// Runs events through the processor over an in-memory state, one batch per
/// `batch_size` records, then advances the watermark past every timer, as an
/// offline replay does. Returns every output in order and the final state.
pub fn replay_in_memory(
    config: &crate::processor::EngineConfig,
    events: &[Result<Event, crate::deadletter::InputError>],
    batch_size: usize,
) -> (Vec<crate::processor::Output>, MemState) {
    use crate::processor::{Batch, InputRecord};
    let mut state = MemState::default();
    let mut outputs = Vec::new();
    let chunks: Vec<_> = events.chunks(batch_size.max(1)).collect();
    let mut offset = 0_i64;
    for (i, chunk) in chunks.iter().enumerate() {
        let Ok(mut batch) = Batch::new(config, &state, Millis(0));
        for event in chunk.iter() {
            let record = InputRecord {
                key: None,
                value: None,
                position: crate::deadletter::InputPosition { topic: "memory".into(), partition: 0, offset },
                event: event.clone(),
            };
            offset += 1;
            let Ok(()) = batch.record(record);
        }
        if i + 1 == chunks.len() {
            let Ok(()) = batch.advance_watermark(Millis(i64::MAX));
        }
        let result = batch.finish();
        outputs.extend(result.outputs);
        state.apply(result.writes);
    }
    if chunks.is_empty() {
        let Ok(mut batch) = Batch::new(config, &state, Millis(0));
        let Ok(()) = batch.advance_watermark(Millis(i64::MAX));
        let result = batch.finish();
        outputs.extend(result.outputs);
        state.apply(result.writes);
    }
    (outputs, state)
}
