//! The batch processor: input records of one partition in, output records and
//! a write set out. Pure: state is read through [`StateRead`], and every
//! change is returned as [`Write`]s for the store to apply atomically with
//! the partition's offset and watermark.
//!
//! Timers fire between records, as soon as a record moves the watermark past
//! them, so outputs depend on the order of the input records only, not on
//! how they were cut into batches.

use crate::cache::{KnownEventIds, SessionCache};
use crate::deadletter::{DeadLetter, DeadLetterReason, InputError, InputPosition};
use crate::event::{Channel, Event, EventType};
use crate::fold::{Fold, FoldRules, LIST_NAMES, MERGED_NAMES};
use crate::lifecycle::{Anomaly, Outcome, RevisionReason, State};
use crate::privacy::{DeadLetterMode, PrivacyPolicy};
use crate::records::{MetadataRecord, RecordInfo, TimelineRecord};
use crate::state::{EventsKey, Marker, PartitionMeta, SessionEntry, StateRead, Timer, TimerKind, Write};
use crate::time::Millis;
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// Stored timers read per scan.
const TIMER_PAGE: usize = 64;

/// Engine settings (`lifecycle.md`, "Timers"; `outputs.md`, "Privacy").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Rules of the fold itself.
    pub rules: FoldRules,
    /// Personal-data policy.
    pub privacy: PrivacyPolicy,
    /// What dead letters carry of their record (`dead_letter.payload`):
    /// its value as it came (the default), redacted by `privacy`, or none.
    pub dead_letter_payload: DeadLetterMode,
    /// Watermark lag behind the largest event time. Default 0.
    pub allowed_lateness_ms: i64,
    /// Terminal time to final record. Default 15 min.
    pub finalize_after_ms: i64,
    /// Event-time silence after which a session expires. Default 24 h.
    pub session_timeout_ms: i64,
    /// Event-time silence after which an asynchronous engagement (channel
    /// `email` or `messaging`) expires: customers answer such sessions
    /// hours or days later. Default 7 days.
    pub async_session_timeout_ms: i64,
    /// How long a final session is kept for duplicates and revisions. Default 24 h.
    pub retain_after_final_ms: i64,
    /// How long a retired session is remembered (erased ones are kept for
    /// good). Default 7 days.
    pub marker_retention_ms: i64,
    /// An event more than this ahead of the batch's wall clock
    /// ([`Batch::set_wall_clock`]) is a `bad_timestamp` dead letter: one
    /// such event would otherwise move the watermark far ahead and finalize
    /// every open session. Default 1 h.
    pub max_future_skew_ms: i64,
    /// An event before this time (ms since the epoch) is a `bad_timestamp`
    /// dead letter: zero or near-zero times are unset clocks, not events.
    /// Default 86 400 000 (1970-01-02T00:00:00Z).
    pub min_event_time_ms: i64,
    /// Distinct events a session may hold; more are `oversize` dead
    /// letters. Default 10 000.
    pub max_events_per_session: u64,
    /// Sum of the input sizes of a session's events (record value lengths)
    /// it may hold; an event past it is an `oversize` dead letter. Bounds
    /// the session's stored entry and metadata record, which must stay
    /// under the broker's message limit. Default 512 KiB.
    pub max_session_bytes: u64,
    /// Entries each list of a session's metadata (queue visits,
    /// participants, transfers, attachments, payments, survey answers) may
    /// hold; an event that could add past it is an `oversize` dead letter.
    /// Default 1 000.
    pub max_list_entries: usize,
    /// Size of the JSON text each merged object of a session (`custom_data`,
    /// the virtual agent's `variables`) may reach; an event that would merge
    /// past it is an `oversize` dead letter. Default 64 KiB.
    pub max_custom_data_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rules: FoldRules::default(),
            privacy: PrivacyPolicy::default(),
            dead_letter_payload: DeadLetterMode::Keep,
            allowed_lateness_ms: 0,
            finalize_after_ms: 15 * MINUTE,
            session_timeout_ms: 24 * HOUR,
            async_session_timeout_ms: 7 * 24 * HOUR,
            retain_after_final_ms: 24 * HOUR,
            marker_retention_ms: 7 * 24 * HOUR,
            max_future_skew_ms: HOUR,
            min_event_time_ms: 24 * HOUR,
            max_events_per_session: 10_000,
            // The default `encoding.max_event_bytes`: a session holds at
            // least one event of any accepted size.
            max_session_bytes: 512 * 1024,
            max_list_entries: 1_000,
            max_custom_data_bytes: 64 * 1024,
        }
    }
}

impl EngineConfig {
    /// The session timeout of a session on `channel`: asynchronous
    /// engagements (email, messaging) have their own.
    pub fn session_timeout_for(&self, channel: Option<Channel>) -> i64 {
        match channel {
            Some(Channel::Email | Channel::Messaging) => self.async_session_timeout_ms,
            _ => self.session_timeout_ms,
        }
    }
}

/// A duration as configured: `90s`, `15m`, `1h`, `7d`, else `ms`.
fn duration_text(ms: i64) -> String {
    for (unit, scale) in [("d", 24 * HOUR), ("h", HOUR), ("m", MINUTE), ("s", 1_000)] {
        if ms != 0 && ms % scale == 0 {
            return format!("{}{unit}", ms / scale);
        }
    }
    format!("{ms}ms")
}

/// An event's own value, else its session's: the session's shared copy
/// when both are the same (the session's usually comes from this event or
/// one like it).
fn own_else_session(own: Option<&str>, session: &Option<Arc<str>>) -> Option<Arc<str>> {
    match own {
        Some(value) if session.as_deref() != Some(value) => Some(Arc::from(value)),
        _ => session.clone(),
    }
}

/// One input record with its decoding.
#[derive(Debug, Clone)]
pub struct InputRecord<'a> {
    /// Original key.
    pub key: Option<&'a [u8]>,
    /// Original value.
    pub value: Option<&'a [u8]>,
    /// Where it came from.
    pub position: InputPosition,
    /// The decoded event, or why it is unusable.
    pub event: Result<Event, InputError>,
}

/// An output of the engine, in emission order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// To the timeline topic.
    Timeline(Box<TimelineRecord>),
    /// To the metadata topic.
    Metadata(Box<MetadataRecord>),
    /// A null value for the session on the metadata topic (erasure).
    Tombstone(String),
    /// To the dead-letter topic.
    DeadLetter(Box<DeadLetter>),
}

impl Output {
    /// The output record's key.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Output::Timeline(r) => Some(r.session_id.as_bytes()),
            Output::Metadata(r) => Some(r.session_id.as_bytes()),
            Output::Tombstone(id) => Some(id.as_bytes()),
            Output::DeadLetter(d) => d.key.as_deref(),
        }
    }
}

/// A finalized session, for domain metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Finalized {
    /// Outcome.
    pub outcome: Outcome,
    /// Channel, when known.
    pub channel: Option<Channel>,
    /// Queue wait.
    pub queue_wait_ms: i64,
    /// Handle time, when an agent handled it.
    pub handle_ms: Option<i64>,
}

/// What happened in a batch, for metrics and the accounting invariant
/// `consumed = timeline + dead_lettered + duplicates + erased_suppressed`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchStats {
    pub consumed: u64,
    pub timeline: u64,
    pub metadata: u64,
    pub tombstones: u64,
    pub dead_lettered: BTreeMap<DeadLetterReason, u64>,
    pub duplicates: u64,
    /// Events of erased sessions (the `session.erased` events included),
    /// recorded nowhere by design.
    pub erased_suppressed: u64,
    pub anomalies: BTreeMap<Anomaly, u64>,
    pub unknown_types: u64,
    pub out_of_order: u64,
    pub revisions: u64,
    pub finalized: Vec<Finalized>,
    /// Net change of live sessions per public state.
    pub state_deltas: BTreeMap<State, i64>,
}

impl BatchStats {
    /// Total dead letters.
    pub fn dead_letter_total(&self) -> u64 {
        self.dead_lettered.values().sum()
    }

    /// Adds another batch's figures.
    pub fn merge(&mut self, other: &BatchStats) {
        self.consumed += other.consumed;
        self.timeline += other.timeline;
        self.metadata += other.metadata;
        self.tombstones += other.tombstones;
        for (k, v) in &other.dead_lettered {
            *self.dead_lettered.entry(*k).or_default() += v;
        }
        self.duplicates += other.duplicates;
        self.erased_suppressed += other.erased_suppressed;
        for (k, v) in &other.anomalies {
            *self.anomalies.entry(*k).or_default() += v;
        }
        self.unknown_types += other.unknown_types;
        self.out_of_order += other.out_of_order;
        self.revisions += other.revisions;
        self.finalized.extend(other.finalized.iter().cloned());
        for (k, v) in &other.state_deltas {
            *self.state_deltas.entry(*k).or_default() += v;
        }
    }
}

/// The result of a batch.
#[derive(Debug)]
pub struct BatchResult {
    /// Records to produce, in order.
    pub outputs: Vec<Output>,
    /// State changes to apply atomically (they include the new `PutMeta`).
    pub writes: Vec<Write>,
    /// The partition's progress after the batch.
    pub meta: PartitionMeta,
    /// Counters.
    pub stats: BatchStats,
}

/// A hash map's entries in key order.
fn sorted<K: Ord, V>(map: FxHashMap<K, V>) -> Vec<(K, V)> {
    let mut entries: Vec<(K, V)> = map.into_iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// One batch of one partition, over a committed state and an overlay of the
/// batch's own changes.
#[derive(Debug)]
pub struct Batch<'a, S: StateRead> {
    config: &'a EngineConfig,
    store: &'a S,
    meta: PartitionMeta,
    now: Millis,
    /// The reference of the future-skew check; `None`: no check.
    wall_clock: Option<Millis>,
    /// `None` means deleted in this batch. Hash maps: looked up per event,
    /// sorted once in `finish` so the writes come out in a stable order.
    sessions: FxHashMap<Arc<str>, Option<Box<SessionEntry>>>,
    new_events: FxHashMap<Arc<str>, Vec<Event>>,
    deleted_events: BTreeSet<String>,
    event_deletes: Vec<(String, EventsKey)>,
    markers: FxHashMap<String, Option<Marker>>,
    timers_added: BTreeSet<Timer>,
    timers_removed: BTreeSet<Timer>,
    /// Earliest timer that may be due: `None` until looked up (a fresh
    /// batch), `Some(None)` when there are no timers.
    next_due: Option<Option<Millis>>,
    /// Stored timers not yet fired or passed, in timer order, read a page at
    /// a time: the committed state does not change during a batch, so one
    /// scan serves many firings instead of a scan per firing.
    stored_timers: VecDeque<Timer>,
    /// The next page starts after this timer (at the floor when `None`).
    stored_timers_cursor: Option<Timer>,
    /// The last page was short: no stored timers left to read.
    stored_timers_read: bool,
    outputs: Vec<Output>,
    stats: BatchStats,
    /// Entries of earlier batches, asked before the store.
    cache: Option<&'a mut SessionCache>,
}

impl<'a, S: StateRead> Batch<'a, S> {
    /// Starts a batch. `now` is the processing time stamped on dead letters.
    pub fn new(config: &'a EngineConfig, store: &'a S, now: Millis) -> Result<Self, S::Error> {
        let meta = store.meta()?;
        Ok(Batch {
            config,
            store,
            meta,
            now,
            wall_clock: None,
            sessions: FxHashMap::default(),
            new_events: FxHashMap::default(),
            deleted_events: BTreeSet::new(),
            event_deletes: Vec::new(),
            markers: FxHashMap::default(),
            timers_added: BTreeSet::new(),
            timers_removed: BTreeSet::new(),
            next_due: None,
            stored_timers: VecDeque::new(),
            stored_timers_cursor: None,
            stored_timers_read: false,
            outputs: Vec::new(),
            stats: BatchStats::default(),
            cache: None,
        })
    }

    /// Starts a batch that takes session entries from `cache` before the
    /// store. Once the batch's writes are committed, hand them to
    /// [`SessionCache::committed`]; a cache that missed a batch empties
    /// itself here.
    pub fn with_cache(config: &'a EngineConfig, store: &'a S, now: Millis, cache: &'a mut SessionCache) -> Result<Self, S::Error> {
        let mut batch = Batch::new(config, store, now)?;
        cache.check(&batch.meta);
        batch.cache = Some(cache);
        Ok(batch)
    }

    /// The partition's progress so far.
    pub fn meta(&self) -> &PartitionMeta {
        &self.meta
    }

    /// The batch's counters so far.
    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    /// Sets the processing time stamped on dead letters from now on.
    pub fn set_now(&mut self, now: Millis) {
        self.now = now;
    }

    /// Sets the wall clock that event times are checked against from now
    /// on: an event more than `max_future_skew_ms` ahead of it is a
    /// `bad_timestamp` dead letter. A batch starts with none, and then checks
    /// only the floor (`min_event_time_ms`). The daemon passes its wall clock
    /// (usually the `now` it started the batch with); the offline replay
    /// passes none, so that its outputs do not depend on when it runs (its
    /// `now` is stream time, which a session's first event may well be
    /// ahead of).
    pub fn set_wall_clock(&mut self, wall_clock: Option<Millis>) {
        self.wall_clock = wall_clock;
    }

    /// Processes one input record. An event whose time is out of bounds
    /// (`min_event_time_ms`, and `max_future_skew_ms` ahead of the wall
    /// clock when one is set) is a `bad_timestamp` dead letter and moves
    /// neither the watermark nor its session.
    pub fn record(&mut self, record: InputRecord<'_>) -> Result<(), S::Error> {
        self.stats.consumed += 1;
        let next_offset = record.position.offset + 1;
        // Looked up before inserting: the topic is nearly always known, and
        // `entry` would want its name copied for every record.
        match self.meta.next_offsets.get_mut(&*record.position.topic) {
            Some(next) => *next = (*next).max(next_offset),
            None => {
                self.meta.next_offsets.insert(record.position.topic.to_string(), next_offset);
            }
        }
        let event = match record.event {
            Ok(event) => event,
            Err(error) => {
                self.dead_letter(record.key, record.value, record.position, error);
                return Ok(());
            }
        };
        let occurred_at = event.occurred_at;
        if let Some(detail) = self.untrusted_time(occurred_at) {
            return self.untrusted(event, record.key, record.value, record.position, detail);
        }
        self.accept(event, record.key, record.value, record.position)?;
        self.meta.max_event_time = Some(self.meta.max_event_time.map_or(occurred_at, |m| m.max(occurred_at)));
        let watermark = occurred_at.plus(-self.config.allowed_lateness_ms);
        self.advance_watermark(watermark)
    }

    /// Why an event time cannot be trusted, if it cannot.
    fn untrusted_time(&self, at: Millis) -> Option<String> {
        let cfg = self.config;
        if at.0 < cfg.min_event_time_ms {
            let floor = Millis(cfg.min_event_time_ms);
            return Some(format!("occurred_at {} is before {} (engine.min_event_time)", at.to_rfc3339(), floor.to_rfc3339()));
        }
        let wall = self.wall_clock?;
        (at > wall.plus(cfg.max_future_skew_ms)).then(|| {
            format!(
                "occurred_at {} is more than {} ahead of the wall clock {} (engine.max_future_skew)",
                at.to_rfc3339(),
                duration_text(cfg.max_future_skew_ms),
                wall.to_rfc3339()
            )
        })
    }

    /// An event with an untrusted time moves no clock and touches no
    /// session, with two exceptions that keep the erasure promise: an
    /// erasure is carried out all the same (it needs no event time: erased
    /// markers never expire), and an event of an erased session is
    /// suppressed as usual (a dead letter would keep its personal data).
    fn untrusted(&mut self, event: Event, key: Option<&[u8]>, value: Option<&[u8]>, position: InputPosition, detail: String) -> Result<(), S::Error> {
        if event.event_type == EventType::SessionErased {
            return self.accept(event, key, value, position);
        }
        if self.load_marker(&event.session_id)? == Some(Marker::Erased) {
            self.stats.erased_suppressed += 1;
            return Ok(());
        }
        self.dead_letter(key, value, position, InputError { reason: DeadLetterReason::BadTimestamp, detail });
        Ok(())
    }

    /// Moves the watermark forward (never back) and fires the timers it
    /// passes. The end of a replay calls this with `Millis(i64::MAX)`.
    pub fn advance_watermark(&mut self, to: Millis) -> Result<(), S::Error> {
        if to <= self.meta.watermark {
            return Ok(());
        }
        self.meta.watermark = to;
        let maybe_due = match self.next_due {
            None => true,
            Some(None) => false,
            Some(Some(due)) => due <= to,
        };
        if maybe_due {
            self.fire_due()?;
        }
        Ok(())
    }

    /// Ends the batch.
    pub fn finish(self) -> BatchResult {
        let mut writes = Vec::with_capacity(2 * self.sessions.len() + self.event_deletes.len() + 8);
        // Each session's new events are stored as one chunk, named by the
        // session's `seq` after them (its entry is in the overlay: `accept`
        // puts it there, and deleting a session drops its new events).
        let chunks: Vec<(Arc<str>, Vec<Event>, u64)> = sorted(self.new_events)
            .into_iter()
            .map(|(session_id, events)| {
                let seq = match self.sessions.get(&session_id) {
                    Some(Some(entry)) => entry.seq,
                    _ => unreachable!("session {session_id:?} has new events but no entry"),
                };
                (session_id, events, seq)
            })
            .collect();
        for (id, entry) in sorted(self.sessions) {
            match entry {
                Some(entry) => writes.push(Write::PutSession(id, entry)),
                None => writes.push(Write::DeleteSession(id)),
            }
        }
        for (session_id, key) in self.event_deletes {
            writes.push(Write::DeleteEvents { session_id, key });
        }
        for (session_id, events, chunk) in chunks {
            debug_assert!(events.iter().all(|e| e.session_id == session_id));
            writes.push(Write::PutEvents { session_id, chunk, events });
        }
        for (id, marker) in sorted(self.markers) {
            match marker {
                Some(marker) => writes.push(Write::PutMarker(id, marker)),
                None => writes.push(Write::DeleteMarker(id)),
            }
        }
        // A timer both added and removed in this batch was never stored.
        for timer in &self.timers_removed {
            if !self.timers_added.contains(timer) {
                writes.push(Write::DeleteTimer(timer.clone()));
            }
        }
        for timer in self.timers_added.difference(&self.timers_removed) {
            writes.push(Write::PutTimer(timer.clone()));
        }
        writes.push(Write::PutMeta(self.meta.clone()));
        BatchResult { outputs: self.outputs, writes, meta: self.meta, stats: self.stats }
    }

    /// Every dead letter is made here: its value and detail as
    /// `dead_letter_payload` wants them (kept, redacted, dropped).
    fn dead_letter(&mut self, key: Option<&[u8]>, value: Option<&[u8]>, position: InputPosition, error: InputError) {
        *self.stats.dead_lettered.entry(error.reason).or_default() += 1;
        let treated = self.config.privacy.treat_dead_letter(self.config.dead_letter_payload, value, error.detail);
        self.outputs.push(Output::DeadLetter(Box::new(DeadLetter {
            key: key.map(<[u8]>::to_vec),
            value: treated.value,
            reason: error.reason,
            detail: treated.detail,
            input: position,
            at: self.now,
            payload: treated.payload,
        })));
    }

    /// Moves a session's entry out of the overlay (or reads it from the
    /// store): the caller puts it back with `put_session` or deletes it.
    /// Boxed: an entry is large, and moves of it are per event.
    fn take_session(&mut self, id: &str) -> Result<Option<Box<SessionEntry>>, S::Error> {
        if let Some(slot) = self.sessions.get_mut(id) {
            return Ok(slot.take());
        }
        if let Some(entry) = self.cache.as_mut().and_then(|cache| cache.take(id)) {
            return Ok(Some(entry));
        }
        Ok(self.store.session(id)?.map(Box::new))
    }

    fn put_session(&mut self, id: Arc<str>, entry: Box<SessionEntry>) {
        self.sessions.insert(id, Some(entry));
    }

    fn load_marker(&mut self, id: &str) -> Result<Option<Marker>, S::Error> {
        match self.markers.get(id) {
            Some(marker) => Ok(*marker),
            None => self.store.marker(id),
        }
    }

    /// Whether the session has this event, in the store or earlier in the
    /// batch: the duplicate check, for adapters of snapshot formats. Most
    /// ids asked about are either told already or new: a new one is told
    /// apart by the session's entry at hand (this batch's or the cache's),
    /// whose event id hashes rule it out without reading the store.
    pub fn knows_event(&self, session_id: &str, event_id: &str) -> Result<bool, S::Error> {
        let entry = match self.sessions.get(session_id) {
            Some(entry) => entry.as_deref(),
            None => self.cache.as_deref().and_then(|cache| cache.peek(session_id)),
        };
        if entry.is_some_and(|entry| !entry.known_event_ids.may_contain(event_id)) {
            return Ok(false);
        }
        self.has_event(session_id, event_id)
    }

    fn has_event(&self, session_id: &str, event_id: &str) -> Result<bool, S::Error> {
        if self.new_events.get(session_id).is_some_and(|events| events.iter().any(|e| e.event_id == event_id)) {
            return Ok(true);
        }
        if self.deleted_events.contains(session_id) {
            return Ok(false);
        }
        self.store.has_event(session_id, event_id)
    }

    fn all_events(&self, session_id: &str) -> Result<Vec<Event>, S::Error> {
        let mut events = if self.deleted_events.contains(session_id) { Vec::new() } else { self.store.events(session_id)? };
        if let Some(new) = self.new_events.get(session_id) {
            events.extend(new.iter().cloned());
        }
        Ok(events)
    }

    fn accept(&mut self, mut event: Event, key: Option<&[u8]>, value: Option<&[u8]>, position: InputPosition) -> Result<(), S::Error> {
        let session_id = event.session_id.clone();
        let existing = self.take_session(&session_id)?;
        if existing.is_none() {
            match self.load_marker(&session_id)? {
                Some(Marker::Erased) => {
                    self.stats.erased_suppressed += 1;
                    if event.event_type == EventType::SessionErased {
                        // A repeated erasure request: confirm with another tombstone.
                        self.outputs.push(Output::Tombstone(session_id.to_string()));
                        self.stats.tombstones += 1;
                    }
                    return Ok(());
                }
                Some(Marker::Retired) if event.event_type != EventType::SessionErased => {
                    let detail = format!(
                        "session {session_id:?} was finalized and deleted after retain_after_final; event {:?} arrived too late to revise it",
                        event.event_id
                    );
                    self.dead_letter(key, value, position, InputError { reason: DeadLetterReason::LateAfterRetention, detail });
                    return Ok(());
                }
                _ => {}
            }
        }
        if event.event_type == EventType::SessionErased {
            return self.erase(&session_id, existing.as_deref());
        }
        // A session without an entry has no stored events either (they go
        // together): all of its event ids will be known.
        let mut entry = existing.unwrap_or_else(|| Box::new(SessionEntry { known_event_ids: KnownEventIds::complete_empty(), ..SessionEntry::default() }));
        if entry.known_event_ids.is_unread() {
            // Read from the store: its event ids are read once, here, so
            // that its later events look for duplicates in memory. (It has
            // no new events yet: the first one to arrive made it known.)
            let mut known = KnownEventIds::complete_empty();
            self.store.each_event_id(&session_id, &mut |id| known.insert(id))?;
            entry.known_event_ids = known;
        }
        if entry.known_event_ids.may_contain(&event.event_id) && self.has_event(&session_id, &event.event_id)? {
            entry.duplicate_count += 1;
            self.stats.duplicates += 1;
            self.put_session(session_id, entry);
            return Ok(());
        }
        // Session bounds are checked before the event changes anything, so
        // that nothing needs undoing when it is turned away. Its size is its
        // input's (a record without a value, in tests, counts 0 bytes).
        let size = value.map_or(0, <[u8]>::len) as u64;
        if let Some(detail) = self.size_bound(&session_id, &entry, &event, size) {
            self.turn_away(session_id, entry, key, value, position, detail);
            return Ok(());
        }
        self.config.privacy.apply(&mut event);

        let state_before = entry.public_state();
        let out_of_order = entry.fold.state.is_some() && event.occurred_at < entry.fold.last_event_at;
        let anomaly = if entry.fold.is_next_in_order(&event) {
            if let Some(detail) = self.growth_bound(&session_id, &entry.fold, &event) {
                self.turn_away(session_id, entry, key, value, position, detail);
                return Ok(());
            }
            entry.fold.apply(&event, &self.config.rules)
        } else {
            let mut events = self.all_events(&session_id)?;
            events.push(event.clone());
            let (fold, anomalies) = Fold::from_events(&events, &self.config.rules);
            // A refold may lengthen lists by more than the event itself
            // adds (it can change the states the later events meet): its
            // result is what is checked.
            if let Some(detail) = self.fold_bound(&session_id, &fold, &event) {
                self.turn_away(session_id, entry, key, value, position, detail);
                return Ok(());
            }
            let anomaly = anomalies.iter().find(|(id, _)| *id == event.event_id).and_then(|(_, a)| *a);
            entry.fold = fold;
            anomaly
        };
        entry.input_bytes += size;
        let state_after = entry.public_state().unwrap_or(State::Initiated);
        entry.seq += 1;
        if out_of_order || entry.finalized_at.is_some() {
            entry.late_event_count += 1;
        }
        if out_of_order {
            self.stats.out_of_order += 1;
        }
        if let Some(code) = anomaly {
            *self.stats.anomalies.entry(code).or_default() += 1;
        }
        if matches!(event.event_type, EventType::Other(_)) {
            self.stats.unknown_types += 1;
        }
        self.track_state(state_before, Some(state_after));

        let fold = &entry.fold;
        self.stats.timeline += 1;
        self.outputs.push(Output::Timeline(Box::new(TimelineRecord {
            session_id: session_id.clone(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            occurred_at: event.occurred_at,
            channel: event.channel.or(fold.channel),
            tenant: own_else_session(event.tenant.as_deref(), &fold.tenant),
            source: own_else_session(event.source.as_deref(), &fold.source),
            seq: entry.seq,
            state_before,
            state_after,
            transition: state_before != Some(state_after),
            anomaly,
            out_of_order,
            elapsed_ms: event.occurred_at.0 - fold.created_at.unwrap_or(event.occurred_at).0,
            queue: fold.queue.clone(),
            agent: fold.current_agent.clone(),
            attributes: event.attributes.clone(),
            input: position,
        })));

        if entry.finalized_at.is_some() {
            self.stats.revisions += 1;
            self.emit(&session_id, &mut entry, Some(RevisionReason::LateEvent));
        } else if entry.last_emitted != Some(state_after) {
            self.emit(&session_id, &mut entry, None);
        }
        entry.known_event_ids.insert(&event.event_id);
        match self.new_events.get_mut(&*session_id) {
            Some(events) => events.push(event),
            None => {
                self.new_events.insert(session_id.clone(), vec![event]);
            }
        }
        self.rearm(&session_id, &mut entry);
        self.put_session(session_id, entry);
        Ok(())
    }

    /// The count and byte bounds an event would take its session past.
    fn size_bound(&self, session_id: &str, entry: &SessionEntry, event: &Event, size: u64) -> Option<String> {
        let cfg = self.config;
        if entry.seq >= cfg.max_events_per_session {
            return Some(format!(
                "session {session_id:?} holds {} events, the bound of engine.max_events_per_session; event {:?} is not applied",
                entry.seq, event.event_id
            ));
        }
        if entry.input_bytes.saturating_add(size) > cfg.max_session_bytes {
            return Some(format!(
                "session {session_id:?} holds {} bytes of events; event {:?} ({size} bytes) would take it past {} bytes, the bound of engine.max_session_bytes",
                entry.input_bytes, event.event_id, cfg.max_session_bytes
            ));
        }
        None
    }

    /// The list and merged-object bounds an event applied in order to
    /// `fold` could take its session past. A list counts the most the event
    /// may add in any state (predicting what it adds in this one would
    /// repeat the fold), so near a full list an event that would add
    /// nothing here is turned away too.
    fn growth_bound(&self, session_id: &str, fold: &Fold, event: &Event) -> Option<String> {
        let cfg = self.config;
        let lengths = fold.list_lengths();
        for (i, growth) in Fold::list_growth(event).into_iter().enumerate() {
            if growth > 0 && lengths[i] + growth > cfg.max_list_entries {
                return Some(format!(
                    "session {session_id:?} has {} {}; event {:?} may add {growth}, past {}, the bound of engine.max_list_entries",
                    lengths[i], LIST_NAMES[i], event.event_id, cfg.max_list_entries
                ));
            }
        }
        match fold.merged_json_bytes_after(event) {
            Some((i, bytes)) if bytes > cfg.max_custom_data_bytes => Some(format!(
                "session {session_id:?}: event {:?} would grow its {} to {bytes} bytes, past {}, the bound of engine.max_custom_data_bytes",
                event.event_id, MERGED_NAMES[i], cfg.max_custom_data_bytes
            )),
            _ => None,
        }
    }

    /// The list and merged-object bounds a refolded session (with `event`)
    /// is past.
    fn fold_bound(&self, session_id: &str, fold: &Fold, event: &Event) -> Option<String> {
        let cfg = self.config;
        if let Some((i, n)) = fold.list_lengths().into_iter().enumerate().find(|(_, n)| *n > cfg.max_list_entries) {
            return Some(format!(
                "session {session_id:?} would have {n} {} with event {:?} (out of order), past {}, the bound of engine.max_list_entries",
                LIST_NAMES[i], event.event_id, cfg.max_list_entries
            ));
        }
        if let Some((i, bytes)) = fold.merged_json_bytes().into_iter().enumerate().find(|(_, n)| *n > cfg.max_custom_data_bytes) {
            return Some(format!(
                "session {session_id:?}: event {:?} (out of order) would grow its {} to {bytes} bytes, past {}, the bound of engine.max_custom_data_bytes",
                event.event_id, MERGED_NAMES[i], cfg.max_custom_data_bytes
            ));
        }
        None
    }

    /// Sends an event past a session bound to the dead-letter topic and
    /// counts it on the session, unchanged otherwise. A session this was to
    /// be the first event of is not stored: it would have no events, and no
    /// timer to ever retire it.
    fn turn_away(
        &mut self,
        session_id: Arc<str>,
        mut entry: Box<SessionEntry>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        position: InputPosition,
        detail: String,
    ) {
        self.dead_letter(key, value, position, InputError { reason: DeadLetterReason::Oversize, detail });
        *self.stats.anomalies.entry(Anomaly::SessionBoundExceeded).or_default() += 1;
        if entry.seq > 0 {
            entry.bound_exceeded = entry.bound_exceeded.saturating_add(1);
            self.put_session(session_id, entry);
        }
    }

    fn track_state(&mut self, from: Option<State>, to: Option<State>) {
        if from == to {
            return;
        }
        if let Some(s) = from {
            *self.stats.state_deltas.entry(s).or_default() -= 1;
        }
        if let Some(s) = to {
            *self.stats.state_deltas.entry(s).or_default() += 1;
        }
    }

    fn emit(&mut self, session_id: &Arc<str>, entry: &mut SessionEntry, revision_reason: Option<RevisionReason>) {
        entry.version += 1;
        let record = MetadataRecord::render(
            &entry.fold,
            &RecordInfo {
                session_id,
                version: entry.version,
                is_final: entry.finalized_at.is_some(),
                revision_reason,
                finalized_at: entry.finalized_at,
                expired: entry.shows_expired(),
                duplicate_count: entry.duplicate_count,
                late_event_count: entry.late_event_count,
                bound_exceeded: entry.bound_exceeded,
            },
        );
        entry.last_emitted = Some(record.state);
        self.stats.metadata += 1;
        self.outputs.push(Output::Metadata(Box::new(record)));
    }

    fn erase(&mut self, session_id: &str, existing: Option<&SessionEntry>) -> Result<(), S::Error> {
        self.stats.erased_suppressed += 1;
        if let Some(entry) = existing {
            self.track_state(entry.public_state(), None);
            if let Some(timer) = &entry.timer {
                self.remove_timer(timer.clone());
            }
        }
        self.delete_session(session_id)?;
        self.set_marker(session_id, Marker::Erased, self.meta.watermark)?;
        self.outputs.push(Output::Tombstone(session_id.to_owned()));
        self.stats.tombstones += 1;
        Ok(())
    }

    fn delete_session(&mut self, session_id: &str) -> Result<(), S::Error> {
        self.sessions.insert(session_id.into(), None);
        self.new_events.remove(session_id);
        if self.deleted_events.insert(session_id.to_owned()) {
            // Key-level deletes, so a changelog can carry them as tombstones.
            for key in self.store.event_keys(session_id)? {
                self.event_deletes.push((session_id.to_owned(), key));
            }
        }
        Ok(())
    }

    /// Leaves a marker; a retired one is forgotten `marker_retention` after
    /// `at`. An erased one is kept for good: once forgotten, a late event of
    /// the session would open it anew and record what was erased.
    fn set_marker(&mut self, session_id: &str, marker: Marker, at: Millis) -> Result<(), S::Error> {
        self.markers.insert(session_id.to_owned(), Some(marker));
        if marker == Marker::Retired {
            self.add_timer(Timer { due: at.plus(self.config.marker_retention_ms), session_id: session_id.into(), kind: TimerKind::ForgetMarker });
        }
        Ok(())
    }

    fn add_timer(&mut self, timer: Timer) {
        self.meta.timer_floor = self.meta.timer_floor.min(timer.due);
        // An unknown next-due stays unknown: stored timers may be earlier.
        if let Some(known) = &mut self.next_due {
            *known = Some(known.map_or(timer.due, |d| d.min(timer.due)));
        }
        self.timers_removed.remove(&timer);
        self.timers_added.insert(timer);
    }

    fn remove_timer(&mut self, timer: Timer) {
        self.timers_added.remove(&timer);
        self.timers_removed.insert(timer);
    }

    /// Arms the one timer the session needs now, replacing the old one.
    fn rearm(&mut self, session_id: &Arc<str>, entry: &mut SessionEntry) {
        let cfg = self.config;
        let fold = &entry.fold;
        let (kind, due) = if let Some(final_at) = entry.finalized_at {
            (TimerKind::Retire, final_at.plus(cfg.retain_after_final_ms))
        } else if entry.public_state().is_some_and(State::is_terminal) {
            (TimerKind::Finalize, fold.terminal_at.unwrap_or(fold.last_event_at).plus(cfg.finalize_after_ms))
        } else {
            (TimerKind::Expire, fold.last_event_at.plus(cfg.session_timeout_for(fold.channel)))
        };
        let timer = Timer { due, session_id: session_id.clone(), kind };
        if entry.timer.as_ref() == Some(&timer) {
            return;
        }
        // A timer moving later (every event pushes the expiry out) keeps the
        // earlier stored key: when that one fires, `fire` finds it stale and
        // stores the one wanted then. One timer write per firing instead of
        // a delete and a put per event.
        match entry.timer.take() {
            Some(old) if old.due <= timer.due => {}
            Some(old) => {
                self.remove_timer(old);
                self.add_timer(timer.clone());
            }
            None => self.add_timer(timer.clone()),
        }
        entry.timer = Some(timer);
    }

    /// The first stored timer that is still live and strictly after `after`
    /// (fired and removed ones are dropped from the page on the way).
    fn next_stored_timer(&mut self, after: Option<&Timer>) -> Result<Option<&Timer>, S::Error> {
        loop {
            while let Some(front) = self.stored_timers.front() {
                if self.timers_removed.contains(front) || after.is_some_and(|a| front <= a) {
                    self.stored_timers.pop_front();
                } else {
                    return Ok(self.stored_timers.front());
                }
            }
            if self.stored_timers_read {
                return Ok(None);
            }
            let page = self.store.timers_due(self.stored_timers_cursor.as_ref(), self.meta.timer_floor, Millis(i64::MAX), TIMER_PAGE)?;
            self.stored_timers_read = page.len() < TIMER_PAGE;
            if let Some(last) = page.last() {
                self.stored_timers_cursor = Some(last.clone());
            }
            self.stored_timers.extend(page);
        }
    }

    /// The earliest live timer strictly after `after` and due by the watermark.
    fn next_timer(&mut self, after: Option<&Timer>) -> Result<Option<Timer>, S::Error> {
        let upto = self.meta.watermark;
        let from_store = self.next_stored_timer(after)?.filter(|t| t.due <= upto).cloned();
        let from_overlay = self.timers_added.iter().find(|t| after.is_none_or(|a| *t > a)).filter(|t| t.due <= upto).cloned();
        Ok(match (from_store, from_overlay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    fn fire_due(&mut self) -> Result<(), S::Error> {
        let mut cursor: Option<Timer> = None;
        while let Some(timer) = self.next_timer(cursor.as_ref())? {
            cursor = Some(timer.clone());
            self.fire(&timer)?;
        }
        // Every timer due by the watermark has fired: later scans start after it.
        self.meta.timer_floor = self.meta.timer_floor.max(Millis(self.meta.watermark.0.saturating_add(1)));
        // Nothing is due now; find the next due time for a cheap check per record.
        self.next_due = Some(self.earliest_timer()?);
        Ok(())
    }

    fn earliest_timer(&mut self) -> Result<Option<Millis>, S::Error> {
        let from_store = self.next_stored_timer(None)?.map(|t| t.due);
        let from_overlay = self.timers_added.iter().next().map(|t| t.due);
        Ok(match (from_store, from_overlay) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    fn fire(&mut self, timer: &Timer) -> Result<(), S::Error> {
        self.remove_timer(timer.clone());
        let id = timer.session_id.clone();
        if timer.kind == TimerKind::ForgetMarker {
            // Only a retired marker is forgotten. An erased one may have a
            // forget timer from state written before erased markers were
            // kept for good, or from its retired marker before the erasure.
            if self.load_marker(&id)? == Some(Marker::Retired) {
                self.markers.insert(id.to_string(), None);
            }
            return Ok(());
        }
        let Some(mut entry) = self.take_session(&id)? else { return Ok(()) };
        if entry.timer.as_ref() != Some(timer) {
            // A stored key the session's timer moved on from (see `rearm`):
            // it stood in for the wanted one, which now takes its place.
            let wanted = entry.timer.clone();
            self.put_session(id, entry);
            match wanted {
                Some(wanted) if wanted.due <= timer.due => return self.fire(&wanted),
                Some(wanted) => self.add_timer(wanted),
                None => {}
            }
            return Ok(());
        }
        entry.timer = None;
        match timer.kind {
            TimerKind::Finalize | TimerKind::Expire => {
                let before = entry.public_state();
                if timer.kind == TimerKind::Expire {
                    entry.expired = true;
                }
                entry.finalized_at = Some(timer.due);
                self.track_state(before, entry.public_state());
                self.emit(&id, &mut entry, None);
                if let Some(record) = self.outputs.last()
                    && let Output::Metadata(record) = record
                    && let Some(outcome) = record.outcome
                {
                    self.stats.finalized.push(Finalized { outcome, channel: record.channel, queue_wait_ms: record.queue_wait_ms, handle_ms: record.handle_ms });
                }
                self.rearm(&id, &mut entry);
                self.put_session(id, entry);
            }
            TimerKind::Retire => {
                self.track_state(entry.public_state(), None);
                self.delete_session(&id)?;
                self.set_marker(&id, Marker::Retired, timer.due)?;
            }
            TimerKind::ForgetMarker => {}
        }
        Ok(())
    }
}
