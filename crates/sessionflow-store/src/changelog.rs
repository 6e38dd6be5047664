//! The changelog's record format, and the rules that restore a store from
//! it exactly, whatever Kafka's compaction has removed.
//!
//! A batch's changelog records for one partition end with the partition's
//! progress record (its `meta` key). Every record carries three headers:
//!
//! - `sessionflow.format`: the format of the record ([`FORMAT`]);
//! - `sessionflow.batch`: the id of the batch (unique across restarts);
//! - `sessionflow.base`: the changelog position of the committed state the
//!   batch was computed from. A batch cut short and its retry share a base;
//!   two committed batches never do.
//!
//! At least once (no transactions), each record also carries
//! `sessionflow.prior`: the key's committed value before the batch, so a
//! batch cut short by a crash can be undone even after compaction removed
//! the value it overwrote. And a delete is not a Kafka tombstone within its
//! batch: compaction removes tombstones after `delete.retention.ms`, and a
//! cut-short tombstone removed with the value it superseded would leave
//! nothing to undo to. It is written as an empty value with the header
//! `sessionflow.deleted`, and the real tombstone follows the batch's
//! progress record, once the delete is committed (see [`at_least_once_records`]).
//!
//! Restore rules, per partition ([`PartitionRestore`]):
//!
//! 1. Every record up to the newest progress record is applied. Compaction
//!    keeps the newest record of every key, so the newest progress record is
//!    always there; older ones may be gone, and nothing depends on them.
//! 2. Records after it (the *tail*) belong to a batch cut short: they are
//!    not applied. Where they carry a prior, the key is set back to it (the
//!    committed value, which compaction may have removed from the log).
//! 3. Pending records of an earlier attempt at the same base are dropped
//!    when a retry starts (a broker that shows aborted transactions).
//!
//! A tail is repaired at the next batch of the partition: at least once,
//! the daemon writes each tail key's committed value again first, so the
//! tail is superseded in the log, for compaction and for every later
//! restore alike.

use crate::{RawRecord, RawRecordBuf, keys};
use std::collections::{BTreeMap, HashSet};

/// Header: the record's format.
pub const FORMAT_HEADER: &str = "sessionflow.format";
/// Header: the batch that wrote the record.
pub const BATCH_HEADER: &str = "sessionflow.batch";
/// Header: the changelog position of the state the batch was computed from.
pub const BASE_HEADER: &str = "sessionflow.base";
/// Header (at least once): the key's committed value before the batch.
pub const PRIOR_HEADER: &str = "sessionflow.prior";
/// Header (at least once): the record deletes its key (its value is empty).
pub const DELETED_HEADER: &str = "sessionflow.deleted";
/// The changelog format this version writes and reads. Format 1 (before
/// 0.2) had no format header and a different session entry.
pub const FORMAT: &str = "2";

/// A changelog that cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    /// A record of another format.
    #[error(
        "changelog record at offset {offset} has format {found}; this version reads format {FORMAT}. \
         Fix: reset the state (a new kafka.group_id, or delete the changelog topic, the group's offsets and the store directory) \
         so the input is processed again, or run the sessionflow version that wrote it"
    )]
    Format {
        /// Where.
        offset: i64,
        /// The format found (`1` for records without the header).
        found: String,
    },
    /// A header of this format is missing or unreadable.
    #[error("changelog record at offset {offset}: header {header} is missing or unreadable")]
    Header {
        /// Where.
        offset: i64,
        /// Which header.
        header: &'static str,
    },
}

/// The sessionflow headers of one changelog record.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordHeaders<'a> {
    /// `sessionflow.format`.
    pub format: Option<&'a [u8]>,
    /// `sessionflow.batch`.
    pub batch: Option<&'a [u8]>,
    /// `sessionflow.base`.
    pub base: Option<&'a [u8]>,
    /// `sessionflow.prior`, encoded ([`encode_prior`]).
    pub prior: Option<&'a [u8]>,
    /// `sessionflow.deleted` is present.
    pub deleted: bool,
}

impl<'a> RecordHeaders<'a> {
    /// Picks sessionflow's headers out of a record's headers.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (&'a str, Option<&'a [u8]>)>) -> Self {
        let mut headers = RecordHeaders::default();
        for (key, value) in pairs {
            match key {
                FORMAT_HEADER => headers.format = value,
                BATCH_HEADER => headers.batch = value,
                BASE_HEADER => headers.base = value,
                PRIOR_HEADER => headers.prior = value,
                DELETED_HEADER => headers.deleted = true,
                _ => {}
            }
        }
        headers
    }
}

/// The headers a batch puts on each of its changelog records (but the prior).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLabel {
    /// Unique across restarts.
    pub batch_id: String,
    /// The changelog position of the committed state the batch read.
    pub base: i64,
}

impl BatchLabel {
    /// `(name, value)` of the format, batch and base headers.
    pub fn headers(&self) -> [(&'static str, Vec<u8>); 3] {
        [(FORMAT_HEADER, FORMAT.as_bytes().to_vec()), (BATCH_HEADER, self.batch_id.as_bytes().to_vec()), (BASE_HEADER, self.base.to_string().into_bytes())]
    }
}

/// A prior value as its header carries it: `0` for an absent key, `1` and
/// the value otherwise (a header's null value does not survive every broker).
pub fn encode_prior(prior: Option<&[u8]>) -> Vec<u8> {
    match prior {
        None => vec![0],
        Some(value) => {
            let mut bytes = Vec::with_capacity(1 + value.len());
            bytes.push(1);
            bytes.extend_from_slice(value);
            bytes
        }
    }
}

fn decode_prior(bytes: &[u8]) -> Option<Option<&[u8]>> {
    match bytes.split_first() {
        Some((0, [])) => Some(None),
        Some((1, value)) => Some(Some(value)),
        _ => None,
    }
}

/// A changelog record as the daemon sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRecord {
    /// Store key.
    pub key: Vec<u8>,
    /// Store value; `None` is a Kafka tombstone.
    pub value: Option<Vec<u8>>,
    /// The `sessionflow.prior` header, encoded.
    pub prior: Option<Vec<u8>>,
    /// Carries the `sessionflow.deleted` header.
    pub deleted: bool,
}

/// A batch's changelog records for one partition at least once: each with
/// its prior value (`priors[i]` is the committed value of `raw[i]`'s key),
/// deletes as `sessionflow.deleted` records, and after the progress record
/// (the last of `raw`) the tombstones of the deleted keys.
pub fn at_least_once_records(raw: &[RawRecord], priors: &[Option<Vec<u8>>]) -> Vec<OutgoingRecord> {
    let mut out: Vec<OutgoingRecord> = Vec::with_capacity(raw.len() + 4);
    let mut tombstones = Vec::new();
    for ((key, value), prior) in raw.iter().zip(priors) {
        let prior = Some(encode_prior(prior.as_deref()));
        match value {
            Some(value) => out.push(OutgoingRecord { key: key.clone(), value: Some(value.clone()), prior, deleted: false }),
            None => {
                out.push(OutgoingRecord { key: key.clone(), value: Some(Vec::new()), prior, deleted: true });
                tombstones.push(key.clone());
            }
        }
    }
    // Committed once the progress record is written: absent is their
    // committed value. A key written again after its delete (a repair
    // ahead of the batch's own writes) is not deleted.
    let last_writes: std::collections::HashMap<&[u8], bool> = raw.iter().map(|(key, value)| (key.as_slice(), value.is_none())).collect();
    tombstones.retain(|key| last_writes.get(key.as_slice()) == Some(&true));
    tombstones.dedup();
    out.extend(tombstones.into_iter().map(|key| OutgoingRecord { key, value: None, prior: Some(encode_prior(None)), deleted: false }));
    out
}

/// One batch's records among the pending ones.
#[derive(Debug)]
struct Segment {
    batch: Vec<u8>,
    base: i64,
    /// Index of its first record in `pending`.
    start: usize,
}

/// What is left of a partition's restore once its changelog is read.
#[derive(Debug)]
pub struct RestoreEnd {
    /// Records to apply: committed ones, then the undo of the tail.
    pub records: RawRecordBuf,
    /// The changelog position the store is at once they are applied.
    pub position: i64,
    /// The tail's keys with their committed values, to write to the
    /// changelog again (at least once) before the partition's next batch.
    pub repair: Vec<RawRecord>,
    /// Records of the tail (a batch cut short), not applied.
    pub cut_short: u64,
    /// Records of earlier attempts at a batch, dropped.
    pub superseded: u64,
}

/// Restores one partition from its changelog records, read in offset order.
#[derive(Debug)]
pub struct PartitionRestore {
    /// Records whose batch is known to have committed, not yet taken.
    committed: RawRecordBuf,
    /// Records since the newest progress record.
    pending: RawRecordBuf,
    segments: Vec<Segment>,
    /// Priors of pending records, by index in `pending`.
    priors: BTreeMap<usize, Option<Vec<u8>>>,
    position: i64,
    superseded: u64,
}

impl PartitionRestore {
    /// Starts at `position`, the changelog offset the store reflects.
    pub fn new(position: i64) -> Self {
        PartitionRestore {
            committed: RawRecordBuf::default(),
            pending: RawRecordBuf::default(),
            segments: Vec::new(),
            priors: BTreeMap::new(),
            position,
            superseded: 0,
        }
    }

    /// Takes one record (its offset, key, value and headers).
    pub fn push(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>, headers: &RecordHeaders<'_>) -> Result<(), ChangelogError> {
        match headers.format {
            Some(format) if format == FORMAT.as_bytes() => {}
            Some(format) => return Err(ChangelogError::Format { offset, found: String::from_utf8_lossy(format).into_owned() }),
            None => return Err(ChangelogError::Format { offset, found: "1".into() }),
        }
        let batch = headers.batch.ok_or(ChangelogError::Header { offset, header: BATCH_HEADER })?;
        let base = headers
            .base
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|b| b.parse::<i64>().ok())
            .ok_or(ChangelogError::Header { offset, header: BASE_HEADER })?;
        let prior = match headers.prior {
            Some(bytes) => Some(decode_prior(bytes).ok_or(ChangelogError::Header { offset, header: PRIOR_HEADER })?),
            None => None,
        };
        if self.segments.last().is_none_or(|s| s.batch != batch) {
            self.drop_earlier_attempts(batch, base);
            self.segments.push(Segment { batch: batch.to_vec(), base, start: self.pending.len() });
        }
        if let Some(prior) = prior {
            self.priors.insert(self.pending.len(), prior.map(<[u8]>::to_vec));
        }
        self.pending.push(key, if headers.deleted { None } else { value });
        if is_progress(key) {
            // Everything before the newest progress record committed.
            self.committed.extend(&self.pending);
            self.pending.clear();
            self.segments.clear();
            self.priors.clear();
            self.position = offset + 1;
        }
        Ok(())
    }

    /// Drops pending batches at `base` other than `batch`: an attempt cut
    /// short, followed by its retry. At least once, a dropped record whose
    /// prior is known becomes its undo (its key set back to the prior) in
    /// its place: compaction may have removed both the value it superseded
    /// and the retry's repair of it.
    fn drop_earlier_attempts(&mut self, batch: &[u8], base: i64) {
        if !self.segments.iter().any(|s| s.base == base && s.batch != batch) {
            return;
        }
        let mut kept = RawRecordBuf::default();
        let mut kept_segments = Vec::new();
        let mut kept_priors = BTreeMap::new();
        let ends: Vec<usize> = self.segments.iter().skip(1).map(|s| s.start).chain([self.pending.len()]).collect();
        let records: Vec<(&[u8], Option<&[u8]>)> = self.pending.iter().collect();
        for (segment, end) in std::mem::take(&mut self.segments).into_iter().zip(ends) {
            let dropped = segment.base == base && segment.batch != batch;
            let start = kept.len();
            for (index, (key, value)) in records.iter().enumerate().take(end).skip(segment.start) {
                match (self.priors.remove(&index), dropped) {
                    (Some(prior), true) => {
                        kept.push(key, prior.as_deref());
                        kept_priors.insert(kept.len() - 1, prior);
                    }
                    (None, true) => self.superseded += 1,
                    (prior, false) => {
                        if let Some(prior) = prior {
                            kept_priors.insert(kept.len(), prior);
                        }
                        kept.push(key, *value);
                    }
                }
            }
            if kept.len() > start {
                let batch = if dropped { batch.to_vec() } else { segment.batch };
                kept_segments.push(Segment { batch, base: segment.base, start });
            }
        }
        self.pending = kept;
        self.segments = kept_segments;
        self.priors = kept_priors;
    }

    /// Committed records not yet taken.
    pub fn committed(&self) -> &RawRecordBuf {
        &self.committed
    }

    /// The changelog position the committed records bring the store to.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Records read and not yet committed (the batch being read).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Takes the committed records, leaving `empty` (a reused buffer) in their place.
    pub fn take_committed(&mut self, empty: RawRecordBuf) -> RawRecordBuf {
        std::mem::replace(&mut self.committed, empty)
    }

    /// Ends the restore: what is left to apply, and the tail's repair.
    pub fn finish(mut self) -> RestoreEnd {
        let cut_short = self.pending.len() as u64;
        // Each tail key back to its committed value; all of a key's priors
        // in a tail are that value (the tail's batches share one base).
        let mut repair: Vec<RawRecord> = Vec::new();
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let records: Vec<(&[u8], Option<&[u8]>)> = self.pending.iter().collect();
        for (index, prior) in &self.priors {
            let key = records[*index].0;
            if seen.insert(key) {
                repair.push((key.to_vec(), prior.clone()));
            }
        }
        for (key, value) in &repair {
            self.committed.push(key, value.as_deref());
        }
        RestoreEnd { records: self.committed, position: self.position, repair, cut_short, superseded: self.superseded }
    }
}

/// Whether a changelog key is a partition's progress record, the last
/// record of each batch.
pub fn is_progress(key: &[u8]) -> bool {
    keys::partition_of(key).is_some_and(|p| key == keys::meta(p).as_slice())
}
