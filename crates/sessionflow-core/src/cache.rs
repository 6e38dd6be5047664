//! Session entries kept in memory between batches, in front of the store (as
//! Kafka Streams keeps a record cache in front of RocksDB).
//!
//! A batch takes a session's entry from here before it asks the store, which
//! saves the point read and the decoding of the entry. The cache is
//! write-through: every entry still goes to the store and the changelog; the
//! cache only receives the entries of a batch once its writes are committed.
//!
//! It keeps itself honest with the partition's progress: it remembers the
//! [`PartitionMeta`] of the last batch it received, and a batch that finds
//! the store at any other progress (a restore, a dropped partition, a batch
//! that failed after the store was written) empties it first.

use crate::state::{PartitionMeta, SessionEntry, Write};
use rustc_hash::{FxHashMap, FxHasher};
use std::hash::{Hash, Hasher};

/// Memory counted per cached entry besides its known event ids: the fold's
/// strings and lists of a typical session (its stored form is 0.3–1.5 KiB).
const ENTRY_BYTES: usize = 2 << 10;
/// Memory counted per known event id (a hash-set slot with its spare room).
const EVENT_ID_BYTES: usize = 16;
/// Past this many events a session stops tracking its event ids: duplicates
/// are then looked for in the store, one read of the session's event ids
/// per event (a session that long is rare; the cache counts the memory of
/// the ids it tracks, 16 bytes each).
pub const MAX_KNOWN_EVENT_IDS: usize = 1 << 16;

/// The ids of a session's stored events, as hashes. A new session knows all
/// of them from the start; a session read from the store has them read once
/// (`Unread` until then). Not part of the state (never stored, equal
/// whatever it holds): it lets a new event look for a duplicate in memory.
#[derive(Debug, Clone, Default)]
pub enum KnownEventIds {
    /// Not read from the store yet.
    #[default]
    Unread,
    /// Every stored event's id hash.
    Known(rustc_hash::FxHashSet<u64>),
    /// More than [`MAX_KNOWN_EVENT_IDS`]: not tracked.
    TooMany,
}

impl PartialEq for KnownEventIds {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

fn id_hash(event_id: &str) -> u64 {
    let mut h = FxHasher::default();
    event_id.hash(&mut h);
    h.finish()
}

impl KnownEventIds {
    /// A new session: no events yet, all of them known.
    pub fn complete_empty() -> Self {
        KnownEventIds::Known(Default::default())
    }

    /// Whether the ids are still to be read from the store.
    pub fn is_unread(&self) -> bool {
        matches!(self, KnownEventIds::Unread)
    }

    /// `false` only when the id is certainly not among the session's events;
    /// `true` when it may be (a hash match) or the ids are not known.
    pub fn may_contain(&self, event_id: &str) -> bool {
        match self {
            KnownEventIds::Known(ids) => ids.contains(&id_hash(event_id)),
            KnownEventIds::Unread | KnownEventIds::TooMany => true,
        }
    }

    /// Records an accepted event.
    pub fn insert(&mut self, event_id: &str) {
        if let KnownEventIds::Known(ids) = self {
            if ids.len() >= MAX_KNOWN_EVENT_IDS {
                *self = KnownEventIds::TooMany;
            } else {
                ids.insert(id_hash(event_id));
            }
        }
    }

    /// How many ids are tracked.
    pub fn len(&self) -> usize {
        match self {
            KnownEventIds::Known(ids) => ids.len(),
            KnownEventIds::Unread | KnownEventIds::TooMany => 0,
        }
    }

    /// Whether no ids are tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct Cached {
    entry: Box<SessionEntry>,
    /// The batch that last put it here: the least recent go first.
    stamp: u64,
}

fn cost(entry: &SessionEntry) -> usize {
    ENTRY_BYTES + entry.known_event_ids.len() * EVENT_ID_BYTES
}

/// Session entries of one partition, bounded by an estimate of their memory.
pub struct SessionCache {
    entries: FxHashMap<std::sync::Arc<str>, Cached>,
    /// The partition's progress the entries are valid at.
    valid_at: Option<PartitionMeta>,
    budget_bytes: usize,
    used_bytes: usize,
    stamp: u64,
    hits: u64,
    misses: u64,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("entries", &self.entries.len()).field("used_bytes", &self.used_bytes).finish_non_exhaustive()
    }
}

impl SessionCache {
    /// The budget when none is configured (`store.session_cache_mib`).
    pub const DEFAULT_BUDGET_BYTES: usize = 64 << 20;

    /// An empty cache that holds up to about `budget_bytes` of entries (0
    /// keeps nothing).
    pub fn new(budget_bytes: usize) -> Self {
        SessionCache { entries: FxHashMap::default(), valid_at: None, budget_bytes, used_bytes: 0, stamp: 0, hits: 0, misses: 0 }
    }

    /// Sessions held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated bytes held.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Sessions found here and sessions read from the store, since the start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// Changes the budget (the daemon splits one budget over its partitions);
    /// takes effect at the next committed batch.
    pub fn set_budget(&mut self, budget_bytes: usize) {
        self.budget_bytes = budget_bytes;
    }

    /// Empties the cache.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.used_bytes = 0;
        self.valid_at = None;
    }

    /// Called at the start of a batch with the store's progress: entries are
    /// only valid at the progress they were received at.
    pub(crate) fn check(&mut self, store_meta: &PartitionMeta) {
        if self.valid_at.as_ref() != Some(store_meta) {
            self.clear();
        }
    }

    /// Moves a session's entry out, if held.
    pub(crate) fn take(&mut self, session_id: &str) -> Option<Box<SessionEntry>> {
        match self.entries.remove(session_id) {
            Some(cached) => {
                self.hits += 1;
                self.used_bytes -= cost(&cached.entry);
                Some(cached.entry)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// A session's entry, if held, left in place (not counted as a hit).
    pub(crate) fn peek(&self, session_id: &str) -> Option<&SessionEntry> {
        self.entries.get(session_id).map(|cached| &*cached.entry)
    }

    /// Receives a batch's writes once the store holds them: its session
    /// entries move in, deleted sessions leave, and the partition's progress
    /// (the batch's last write) becomes the one the entries are valid at.
    pub fn committed(&mut self, writes: Vec<Write>) {
        if self.budget_bytes == 0 {
            // Turned off: nothing is kept, so there is nothing to keep valid.
            self.clear();
            return;
        }
        self.stamp += 1;
        for write in writes {
            match write {
                Write::PutSession(id, entry) => {
                    self.used_bytes += cost(&entry);
                    if let Some(old) = self.entries.insert(id, Cached { entry, stamp: self.stamp }) {
                        self.used_bytes -= cost(&old.entry);
                    }
                }
                Write::DeleteSession(id) => {
                    if let Some(old) = self.entries.remove(&*id) {
                        self.used_bytes -= cost(&old.entry);
                    }
                }
                Write::PutMeta(meta) => self.valid_at = Some(meta),
                _ => {}
            }
        }
        self.evict();
    }

    /// Over budget: drops the least recently received entries until a fifth
    /// of the budget is free again, so eviction runs now and then, not per batch.
    fn evict(&mut self) {
        if self.used_bytes <= self.budget_bytes {
            return;
        }
        let target = self.budget_bytes / 5 * 4;
        let mut stamps: Vec<(u64, usize)> = self.entries.values().map(|c| (c.stamp, cost(&c.entry))).collect();
        stamps.sort_unstable();
        let mut freed = 0;
        let mut cutoff = 0;
        for (stamp, bytes) in stamps {
            if self.used_bytes - freed <= target {
                break;
            }
            freed += bytes;
            cutoff = stamp;
        }
        // Whole batches go together: entries of one batch share a stamp.
        let mut used = 0;
        self.entries.retain(|_, c| {
            let keep = c.stamp > cutoff;
            if keep {
                used += cost(&c.entry);
            }
            keep
        });
        self.used_bytes = used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> Box<SessionEntry> {
        Box::new(SessionEntry { seq, ..SessionEntry::default() })
    }

    fn meta(offset: i64) -> PartitionMeta {
        let mut m = PartitionMeta::default();
        m.next_offsets.insert("in".into(), offset);
        m
    }

    #[test]
    fn entries_are_valid_only_at_the_progress_they_were_committed_at() {
        let mut cache = SessionCache::new(1 << 20);
        cache.committed(vec![Write::PutSession("a".into(), entry(1)), Write::PutSession("b".into(), entry(2)), Write::PutMeta(meta(10))]);
        cache.check(&meta(10));
        assert_eq!(cache.take("a").map(|e| e.seq), Some(1));
        assert!(cache.take("a").is_none(), "taken entries leave the cache");
        cache.check(&meta(11));
        assert!(cache.take("b").is_none(), "the store moved on without the cache: emptied");
        assert_eq!(cache.hits_and_misses(), (1, 2));
    }

    #[test]
    fn deleted_sessions_leave_and_the_budget_evicts_the_least_recent() {
        let mut cache = SessionCache::new(10 * ENTRY_BYTES);
        for batch in 0..4 {
            let mut writes: Vec<Write> = (0..4).map(|i| Write::PutSession(format!("s{batch}-{i}").into(), entry(1))).collect();
            writes.push(Write::PutMeta(meta(batch)));
            cache.committed(writes);
        }
        assert!(cache.used_bytes() <= 10 * ENTRY_BYTES, "{}", cache.used_bytes());
        assert!(cache.take("s3-0").is_some(), "the latest batch stays");
        assert!(cache.take("s0-0").is_none(), "the oldest batch went first");
        cache.committed(vec![Write::DeleteSession("s3-1".into()), Write::PutMeta(meta(9))]);
        assert!(cache.take("s3-1").is_none());
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let mut cache = SessionCache::new(0);
        cache.committed(vec![Write::PutSession("a".into(), entry(1)), Write::PutMeta(meta(1))]);
        cache.check(&meta(1));
        assert!(cache.take("a").is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn known_ids_answer_no_only_when_certain() {
        let mut ids = KnownEventIds::complete_empty();
        assert!(!ids.may_contain("e1"));
        ids.insert("e1");
        assert!(ids.may_contain("e1"));
        assert!(!ids.may_contain("e2"));
        assert!(KnownEventIds::default().may_contain("anything"), "unknown ids: ask the store");
        for i in 0..=MAX_KNOWN_EVENT_IDS {
            ids.insert(&format!("x{i}"));
        }
        assert!(ids.may_contain("never seen"), "too many to track: ask the store");
        assert!(!ids.is_unread(), "too many is not unread: the store is not read again");
        assert!(KnownEventIds::default().is_unread());
    }
}
