//! The changelog's record format, and the rules that restore a store from
//! it exactly, whatever Kafka's compaction has removed.
//!
//! A batch's changelog records for one partition end with the partition's
//! progress record (its `meta` key). Every record carries the header
//! `sessionflow.batch`: `<format> <base> <batch id>`, the format of the
//! record ([`FORMAT`]), the changelog position of the committed state the
//! batch was computed from (a batch cut short and its retry share a base;
//! two committed batches never do), and the batch's id (unique across
//! restarts). One header, not three: a restore reads millions of them.
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

/// Header: the record's format, its batch's base and its batch's id.
pub const BATCH_HEADER: &str = "sessionflow.batch";
/// Header (at least once): the key's committed value before the batch.
pub const PRIOR_HEADER: &str = "sessionflow.prior";
/// Header (at least once): the record deletes its key (its value is empty).
pub const DELETED_HEADER: &str = "sessionflow.deleted";
/// The changelog format this version writes and reads. Format 1 (before
/// 0.2) had no format header and a different session entry; format 2 a
/// session entry without the fields format 3 added to the fold.
pub const FORMAT: &str = "3";

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
    /// `sessionflow.batch`.
    pub batch: Option<&'a [u8]>,
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
                BATCH_HEADER => headers.batch = value,
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
    /// `(name, value)` of the batch header.
    pub fn headers(&self) -> [(&'static str, Vec<u8>); 1] {
        [(BATCH_HEADER, format!("{FORMAT} {} {}", self.base, self.batch_id).into_bytes())]
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
    /// Records whose batch is known to have committed (before
    /// `pending_start`), then the records since the newest progress record.
    /// One buffer: a progress record commits what precedes it without a copy.
    records: RawRecordBuf,
    pending_start: usize,
    segments: Vec<Segment>,
    /// Priors of pending records, by index in `records`.
    priors: BTreeMap<usize, Option<Vec<u8>>>,
    position: i64,
    superseded: u64,
}

impl PartitionRestore {
    /// Starts at `position`, the changelog offset the store reflects.
    pub fn new(position: i64) -> Self {
        PartitionRestore { records: RawRecordBuf::default(), pending_start: 0, segments: Vec::new(), priors: BTreeMap::new(), position, superseded: 0 }
    }

    /// Takes one record (its offset, key, value and headers).
    pub fn push(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>, headers: &RecordHeaders<'_>) -> Result<(), ChangelogError> {
        let label = headers.batch.ok_or(ChangelogError::Header { offset, header: BATCH_HEADER })?;
        let mut fields = label.splitn(3, |b| *b == b' ');
        let format = fields.next().unwrap_or_default();
        if format != FORMAT.as_bytes() {
            // Format 1 wrote the batch id alone, with no format ahead of it.
            let found = if !format.is_empty() && format.iter().all(u8::is_ascii_digit) { String::from_utf8_lossy(format).into_owned() } else { "1".into() };
            return Err(ChangelogError::Format { offset, found });
        }
        let base = fields
            .next()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|b| b.parse::<i64>().ok())
            .ok_or(ChangelogError::Header { offset, header: BATCH_HEADER })?;
        let batch = fields.next().ok_or(ChangelogError::Header { offset, header: BATCH_HEADER })?;
        let prior = match headers.prior {
            Some(bytes) => Some(decode_prior(bytes).ok_or(ChangelogError::Header { offset, header: PRIOR_HEADER })?),
            None => None,
        };
        if self.segments.last().is_none_or(|s| s.batch != batch) {
            self.drop_earlier_attempts(batch, base);
            self.segments.push(Segment { batch: batch.to_vec(), base, start: self.records.len() });
        }
        if let Some(prior) = prior {
            self.priors.insert(self.records.len(), prior.map(<[u8]>::to_vec));
        }
        self.records.push(key, if headers.deleted { None } else { value });
        if is_progress(key) {
            // Everything before the newest progress record committed.
            self.pending_start = self.records.len();
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
        let pending: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            self.records.iter().skip(self.pending_start).map(|(key, value)| (key.to_vec(), value.map(<[u8]>::to_vec))).collect();
        self.records.truncate(self.pending_start);
        let mut priors = std::mem::take(&mut self.priors);
        let ends: Vec<usize> = self.segments.iter().skip(1).map(|s| s.start).chain([self.pending_start + pending.len()]).collect();
        for (segment, end) in std::mem::take(&mut self.segments).into_iter().zip(ends) {
            let dropped = segment.base == base && segment.batch != batch;
            let start = self.records.len();
            for index in segment.start..end {
                let (key, value) = &pending[index - self.pending_start];
                match (priors.remove(&index), dropped) {
                    (Some(prior), true) => {
                        self.priors.insert(self.records.len(), prior.clone());
                        self.records.push(key, prior.as_deref());
                    }
                    (None, true) => self.superseded += 1,
                    (prior, false) => {
                        if let Some(prior) = prior {
                            self.priors.insert(self.records.len(), prior);
                        }
                        self.records.push(key, value.as_deref());
                    }
                }
            }
            if self.records.len() > start {
                let batch = if dropped { batch.to_vec() } else { segment.batch };
                self.segments.push(Segment { batch, base: segment.base, start });
            }
        }
    }

    /// Committed records not yet taken.
    pub fn committed_len(&self) -> usize {
        self.pending_start
    }

    /// The changelog position the committed records bring the store to.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Records read and not yet committed (the batch being read).
    pub fn pending_len(&self) -> usize {
        self.records.len() - self.pending_start
    }

    /// Takes the committed records, leaving `empty` (a reused buffer) in
    /// their place. Cheapest right after a progress record, when no record
    /// is pending.
    pub fn take_committed(&mut self, mut empty: RawRecordBuf) -> RawRecordBuf {
        empty.clear();
        if self.pending_len() > 0 {
            // Records and priors of the pending batch move to the new buffer.
            for (key, value) in self.records.iter().skip(self.pending_start) {
                empty.push(key, value);
            }
            let shift = self.pending_start;
            self.priors = std::mem::take(&mut self.priors).into_iter().map(|(i, prior)| (i - shift, prior)).collect();
            for segment in &mut self.segments {
                segment.start -= shift;
            }
        }
        let mut taken = std::mem::replace(&mut self.records, empty);
        taken.truncate(self.pending_start);
        self.pending_start = 0;
        taken
    }

    /// Ends the restore: what is left to apply, and the tail's repair.
    pub fn finish(mut self) -> RestoreEnd {
        let cut_short = self.pending_len() as u64;
        // Each tail key back to its committed value; all of a key's priors
        // in a tail are that value (the tail's batches share one base).
        let mut repair: Vec<RawRecord> = Vec::new();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let pending_keys: Vec<Vec<u8>> = self.records.iter().skip(self.pending_start).map(|(key, _)| key.to_vec()).collect();
        for (index, prior) in &self.priors {
            let key = &pending_keys[*index - self.pending_start];
            if seen.insert(key.clone()) {
                repair.push((key.clone(), prior.clone()));
            }
        }
        self.records.truncate(self.pending_start);
        for (key, value) in &repair {
            self.records.push(key, value.as_deref());
        }
        RestoreEnd { records: self.records, position: self.position, repair, cut_short, superseded: self.superseded }
    }
}

/// Whether a changelog key is a partition's progress record, the last
/// record of each batch.
pub fn is_progress(key: &[u8]) -> bool {
    keys::partition_of(key).is_some_and(|p| key == keys::meta(p).as_slice())
}
