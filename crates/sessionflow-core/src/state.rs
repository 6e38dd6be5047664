//! What the processor keeps per session and per partition, and the key-level
//! writes it hands to a store at the end of a batch.

use crate::cache::KnownEventIds;
use crate::event::Event;
use crate::fold::Fold;
use crate::lifecycle::State;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Everything kept for a live session besides its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SessionEntry {
    /// The fold of its distinct events.
    pub fold: Fold,
    /// Accepted (non-duplicate) arrivals: the timeline `seq` of the last one.
    pub seq: u64,
    /// Duplicates dropped.
    pub duplicate_count: u32,
    /// Arrivals that were out of order or came after finalization.
    pub late_event_count: u32,
    /// Version of the last metadata record emitted.
    pub version: u64,
    /// State of the last metadata record emitted.
    pub last_emitted: Option<State>,
    /// When the finalization (or expiry) timer was due; `None` until final.
    pub finalized_at: Option<Millis>,
    /// Whether the expiry timer fired.
    pub expired: bool,
    /// The one timer armed for this session.
    pub timer: Option<Timer>,
    /// Sum of the input sizes (record value lengths) of its accepted events,
    /// held under `max_session_bytes`. Serialized after every older field
    /// (the stored form of entries written before it lacks it).
    #[serde(default)]
    pub input_bytes: u64,
    /// Events a session bound turned away (dead-lettered as `oversize`),
    /// shown as the anomaly `session_bound_exceeded`.
    #[serde(default)]
    pub bound_exceeded: u32,
    /// In memory only: the ids of its stored events when all are known.
    #[serde(skip)]
    pub known_event_ids: KnownEventIds,
}

impl SessionEntry {
    /// Whether a non-terminal fold shows as `expired`: after the expiry timer,
    /// and after finalization (late events can reopen the fold; a final
    /// record always shows a terminal state, the same one a replay of the
    /// same events gives).
    pub fn shows_expired(&self) -> bool {
        self.expired || self.finalized_at.is_some()
    }

    /// The state shown on records.
    pub fn public_state(&self) -> Option<State> {
        crate::records::public_state(&self.fold, self.shows_expired())
    }
}

/// What is remembered of a session whose state is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Marker {
    /// Deleted after `retain_after_final`: later events are dead letters.
    Retired,
    /// Erased: later events are suppressed and recorded nowhere. Never
    /// forgotten (`lifecycle.md`, "Erasure").
    Erased,
}

/// Why a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimerKind {
    /// Terminal time + `finalize_after`: emit the final record.
    Finalize = 0,
    /// Last event + `session_timeout`: finalize as `expired`.
    Expire = 1,
    /// Finalization + `retain_after_final`: delete the state.
    Retire = 2,
    /// Marker time + `marker_retention`: forget a retired marker (erased
    /// markers are kept for good; a timer stored for one by an older
    /// version fires without effect).
    ForgetMarker = 3,
}

impl TimerKind {
    /// From its stored byte.
    pub fn from_u8(b: u8) -> Option<TimerKind> {
        match b {
            0 => Some(TimerKind::Finalize),
            1 => Some(TimerKind::Expire),
            2 => Some(TimerKind::Retire),
            3 => Some(TimerKind::ForgetMarker),
            _ => None,
        }
    }
}

/// An event-time timer, ordered by (due, session, kind).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timer {
    /// When it is due (event time).
    pub due: Millis,
    /// The session.
    pub session_id: Arc<str>,
    /// What it does.
    pub kind: TimerKind,
}

/// Per-partition progress, written in the same batch as the state it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// Per source topic, the next input offset to process (last processed + 1).
    pub next_offsets: std::collections::BTreeMap<String, i64>,
    /// Largest `occurred_at` seen.
    pub max_event_time: Option<Millis>,
    /// The partition's watermark.
    pub watermark: Millis,
    /// No stored timer is due before this: timer scans start here, past the
    /// deleted keys of fired timers (which RocksDB would otherwise step over
    /// on every scan until they are compacted away).
    pub timer_floor: Millis,
}

impl Default for PartitionMeta {
    fn default() -> Self {
        PartitionMeta { next_offsets: Default::default(), max_event_time: None, watermark: Millis(i64::MIN), timer_floor: Millis(i64::MIN) }
    }
}

impl PartitionMeta {
    /// The next offset to process from `topic` (0 when nothing was).
    pub fn next_offset(&self, topic: &str) -> i64 {
        self.next_offsets.get(topic).copied().unwrap_or(0)
    }
}

/// Where some of a session's stored events live. A batch stores the events
/// it accepted for a session under one key (`Chunk`, named by the session's
/// `seq` after the last of them, unique because `seq` only grows): one
/// record per session and batch on the changelog instead of one per event.
/// Stores written before chunks hold one key per event (`Single`, named by
/// its event id); both are read, only chunks are written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventsKey {
    /// One event, by id. (Declared first: the store's keys sort these
    /// before chunks, and so does this type.)
    Single(String),
    /// Events one batch accepted, ending at this `seq`.
    Chunk(u64),
}

/// One key-level change to a partition's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    PutSession(Arc<str>, Box<SessionEntry>),
    DeleteSession(Arc<str>),
    /// The events a batch accepted for a session, in arrival order.
    PutEvents {
        session_id: Arc<str>,
        chunk: u64,
        events: Vec<Event>,
    },
    DeleteEvents {
        session_id: String,
        key: EventsKey,
    },
    PutMarker(String, Marker),
    DeleteMarker(String),
    PutTimer(Timer),
    DeleteTimer(Timer),
    PutMeta(PartitionMeta),
}

/// Read access to one partition's committed state.
pub trait StateRead {
    /// The store's error.
    type Error: std::error::Error + Send + Sync + 'static;
    /// A session's entry.
    fn session(&self, session_id: &str) -> Result<Option<SessionEntry>, Self::Error>;
    /// Whether an event of the session is stored.
    fn has_event(&self, session_id: &str, event_id: &str) -> Result<bool, Self::Error>;
    /// All stored events of a session, in any order.
    fn events(&self, session_id: &str) -> Result<Vec<Event>, Self::Error>;
    /// Calls `f` with the id of each stored event of a session.
    fn each_event_id(&self, session_id: &str, f: &mut dyn FnMut(&str)) -> Result<(), Self::Error>;
    /// The keys the stored events of a session are under.
    fn event_keys(&self, session_id: &str) -> Result<Vec<EventsKey>, Self::Error>;
    /// A session's marker.
    fn marker(&self, session_id: &str) -> Result<Option<Marker>, Self::Error>;
    /// Up to `limit` timers due at or before `upto`, strictly after `after`,
    /// in timer order.
    fn timers_due(&self, after: Option<&Timer>, from: Millis, upto: Millis, limit: usize) -> Result<Vec<Timer>, Self::Error>;
    /// The partition's progress.
    fn meta(&self) -> Result<PartitionMeta, Self::Error>;
}
