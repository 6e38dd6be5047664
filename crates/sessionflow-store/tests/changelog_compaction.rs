//! Property: whatever Kafka's compaction leaves of a changelog a run wrote
//! (any superseded records removed, the newest record of every key kept,
//! tombstones kept or removed once nothing older of their key is left), a
//! restore from it gives a store that is key for key the run's committed
//! state, in both delivery modes, with batches cut short by crashes (at
//! least once) and their repairs.

use proptest::prelude::*;
use sessionflow_core::{Marker, PartitionMeta, Write};
use sessionflow_store::changelog::{
    BatchLabel, DELETED_HEADER, OutgoingRecord, PRIOR_HEADER, PartitionRestore, RecordHeaders, at_least_once_records, is_progress,
};
use sessionflow_store::{RawRecord, Store, StoreConfig};
use std::collections::BTreeMap;

const PARTITION: u32 = 3;

/// One changelog record as a broker keeps it.
#[derive(Debug, Clone)]
struct LogRecord {
    offset: i64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    headers: Vec<(&'static str, Vec<u8>)>,
}

/// What a run does per batch: the writes (marker id, put or delete, which
/// marker), and where a crash cuts it (records sent before the crash).
#[derive(Debug, Clone)]
struct Step {
    writes: Vec<(u8, bool, bool)>,
    cut: Option<usize>,
}

fn step() -> impl Strategy<Value = Step> {
    (proptest::collection::vec((0u8..12, any::<bool>(), any::<bool>()), 0..6), proptest::option::weighted(0.3, 0usize..8))
        .prop_map(|(writes, cut)| Step { writes, cut })
}

fn raw(writes: &[(u8, bool, bool)], input_offset: i64) -> Vec<RawRecord> {
    let mut w: Vec<Write> = writes
        .iter()
        .map(|&(id, put, erased)| {
            let id = format!("s{id}");
            if put { Write::PutMarker(id, if erased { Marker::Erased } else { Marker::Retired }) } else { Write::DeleteMarker(id) }
        })
        .collect();
    // A batch's writes touch each key once.
    let mut seen = std::collections::BTreeSet::new();
    w.retain(|write| match write {
        Write::PutMarker(id, _) | Write::DeleteMarker(id) => seen.insert(id.clone()),
        _ => true,
    });
    let mut meta = PartitionMeta::default();
    meta.next_offsets.insert("in".into(), input_offset);
    w.push(Write::PutMeta(meta));
    Store::raw_writes(PARTITION, &w)
}

/// Restores the records into `store` as the daemon does, from `from` on.
fn restore(store: &Store, log: &[LogRecord], from: i64) -> Vec<RawRecord> {
    let mut restore = PartitionRestore::new(from);
    for r in log.iter().filter(|r| r.offset >= from) {
        let headers = RecordHeaders::from_pairs(r.headers.iter().map(|(k, v)| (*k, Some(v.as_slice()))));
        restore.push(r.offset, &r.key, r.value.as_deref(), &headers).expect("readable");
        // Written in small chunks as they commit; the daemon takes them
        // between batches only, this also takes them in the middle of one.
        if restore.committed_len() >= 3 {
            let chunk = restore.take_committed(Default::default());
            let position = restore.position().max(store.changelog_position(PARTITION).expect("position"));
            store.commit_raw_buf(PARTITION, &chunk, Some(position)).expect("written");
        }
    }
    let end = restore.finish();
    let position = end.position.max(store.changelog_position(PARTITION).expect("position"));
    store.commit_raw_buf(PARTITION, &end.records, Some(position)).expect("written");
    end.repair
}

/// Runs the steps, writing the changelog as the pipeline does. Returns the
/// log and the committed state, key for key.
fn run(steps: &[Step], at_least_once: bool) -> (Vec<LogRecord>, BTreeMap<Vec<u8>, Vec<u8>>) {
    let mut log: Vec<LogRecord> = Vec::new();
    let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut position = 0i64;
    let mut repair: Vec<RawRecord> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let label = BatchLabel { batch_id: format!("run/{n}"), base: position };
        let mut records = std::mem::take(&mut repair);
        records.extend(raw(&step.writes, n as i64));
        let outgoing: Vec<OutgoingRecord> = if at_least_once {
            let priors: Vec<Option<Vec<u8>>> = records.iter().map(|(key, _)| committed.get(key).cloned()).collect();
            at_least_once_records(&records, &priors)
        } else {
            records.iter().map(|(key, value)| OutgoingRecord { key: key.clone(), value: value.clone(), prior: None, deleted: false }).collect()
        };
        // Exactly once, a batch cut short is aborted: a real broker never
        // shows it, so only at least once leaves one in the log.
        let sent = match step.cut {
            Some(cut) if at_least_once => cut.min(outgoing.len()),
            _ => outgoing.len(),
        };
        let progress_at = outgoing.iter().position(|r| is_progress(&r.key)).expect("a progress record");
        for record in &outgoing[..sent] {
            let mut headers = label.headers().to_vec();
            if let Some(prior) = &record.prior {
                headers.push((PRIOR_HEADER, prior.clone()));
            }
            if record.deleted {
                headers.push((DELETED_HEADER, Vec::new()));
            }
            log.push(LogRecord { offset: log.len() as i64, key: record.key.clone(), value: record.value.clone(), headers });
        }
        if sent > progress_at {
            for (key, value) in records {
                match value {
                    Some(v) => committed.insert(key, v),
                    None => committed.remove(&key),
                };
            }
            position = log.len() as i64;
        }
        if sent < outgoing.len() {
            // The crash, then the restart's restore on a fresh disk.
            let dir = tempfile::tempdir().expect("dir");
            let store = Store::open(dir.path(), &StoreConfig::default()).expect("store");
            repair = restore(&store, &log, 0);
            // The restore leaves the store at the last progress record.
            position = store.changelog_position(PARTITION).expect("position");
        }
    }
    (log, committed)
}

/// One way compaction may leave the log: each superseded record removed
/// or not (by `mask`), tombstones removed once nothing older of their key
/// remains.
fn compact(log: &[LogRecord], mask: &[bool]) -> Vec<LogRecord> {
    let mut newest: BTreeMap<&[u8], i64> = BTreeMap::new();
    for r in log {
        newest.insert(&r.key, r.offset);
    }
    let flag = |i: usize| mask.get(i % mask.len().max(1)).copied().unwrap_or(false);
    let mut kept: Vec<LogRecord> = log.iter().enumerate().filter(|(i, r)| newest[r.key.as_slice()] == r.offset || !flag(*i)).map(|(_, r)| r.clone()).collect();
    let snapshot = kept.clone();
    kept.retain(|r| {
        let is_last_tombstone = r.value.is_none() && newest[r.key.as_slice()] == r.offset;
        let alone = !snapshot.iter().any(|o| o.key == r.key && o.offset < r.offset);
        !(is_last_tombstone && alone && flag(r.offset as usize + 7))
    });
    kept
}

fn check(steps: &[Step], mask: &[bool], at_least_once: bool) -> Result<(), TestCaseError> {
    let (log, committed) = run(steps, at_least_once);
    let expected: Vec<(Vec<u8>, Vec<u8>)> = committed.into_iter().collect();
    // From the whole log, and from the compacted one, on a fresh disk.
    for log in [log.clone(), compact(&log, mask)] {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path(), &StoreConfig::default()).expect("store");
        restore(&store, &log, 0);
        prop_assert_eq!(&store.raw_entries(PARTITION).expect("entries"), &expected);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn exactly_once_changelogs_restore_exactly_after_any_compaction(
        steps in proptest::collection::vec(step(), 1..12),
        mask in proptest::collection::vec(any::<bool>(), 1..16),
    ) {
        check(&steps, &mask, false)?;
    }

    #[test]
    fn at_least_once_changelogs_restore_exactly_after_any_compaction(
        steps in proptest::collection::vec(step(), 1..12),
        mask in proptest::collection::vec(any::<bool>(), 1..16),
    ) {
        check(&steps, &mask, true)?;
    }
}

/// The rule today's code broke: a progress record superseded by a newer
/// one, removed by compaction, must not make its batch look cut short.
#[test]
fn a_compacted_away_progress_record_keeps_its_batch() {
    let steps = vec![Step { writes: vec![(1, true, false)], cut: None }, Step { writes: vec![(2, true, true)], cut: None }];
    let (log, committed) = run(&steps, false);
    // Compaction removes the first batch's progress record: the second's supersedes it.
    let compacted: Vec<LogRecord> = log.iter().filter(|r| r.offset != 1).cloned().collect();
    assert_eq!(compacted.len(), 3);
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path(), &StoreConfig::default()).expect("store");
    restore(&store, &compacted, 0);
    assert_eq!(store.raw_entries(PARTITION).expect("entries"), committed.into_iter().collect::<Vec<_>>());
}

/// A store of another format is refused with an error that names the fix.
#[test]
fn a_store_of_another_format_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("dir");
    {
        // A store as format 1 wrote it: data, no recorded format.
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let db = rocksdb::DB::open(&options, dir.path()).expect("db");
        db.put([0, 0, 0, 1, 5], b"old meta").expect("put");
    }
    let error = Store::open(dir.path(), &StoreConfig::default()).expect_err("refused").to_string();
    assert!(error.contains("format 1") && error.contains("delete that directory"), "{error}");
    // A new store records its format and opens again.
    let fresh = tempfile::tempdir().expect("dir");
    drop(Store::open(fresh.path(), &StoreConfig::default()).expect("new store"));
    Store::open(fresh.path(), &StoreConfig::default()).expect("reopened");
}
