//! The RocksDB store and the in-memory state give the processor the same
//! answers: same outputs, same state, batch after batch.

use sessionflow_core::memstore::MemState;
use sessionflow_core::{SessionCache, StateRead};
use sessionflow_store::{Store, StoreConfig};

/// A store in a fresh directory (dropped with it).
fn fresh_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreConfig::default()).unwrap();
    (dir, store)
}

#[test]
fn rocksdb_and_memory_runs_agree() {
    let input = sessionflow_tests::sim_input(5, 20_000);
    let engine = sessionflow_tests::test_engine();
    let (_dir, store) = fresh_store();
    let mut memory = MemState::default();
    let mut outputs = 0;
    for (i, chunk) in input.chunks(400).enumerate() {
        let offset = (i * 400) as i64;
        let from_store = sessionflow_tests::process(&engine, &store.partition(3), chunk, offset).unwrap();
        let from_memory = sessionflow_tests::process(&engine, &memory, chunk, offset).unwrap();
        assert_eq!(from_store.outputs, from_memory.outputs, "batch {i}");
        assert_eq!(from_store.writes, from_memory.writes, "batch {i}");
        outputs += from_store.outputs.len();
        store.commit(3, &from_store.writes).unwrap();
        memory.apply(from_memory.writes);
    }
    assert!(outputs > 20_000);
    let dumped = store.partition(3).dump().unwrap();
    assert!(dumped == memory, "final state differs");
    assert!(!memory.timers.is_empty() && !memory.markers.is_empty(), "the run exercised timers and markers");
}

/// The session cache changes no output and no write, also when a batch is
/// processed and never committed (a failed transaction) and when the store
/// moves on without it (a restore, or a batch that failed after the store
/// was written).
#[test]
fn the_session_cache_changes_nothing_even_when_batches_fail_or_the_store_moves() {
    let input = sessionflow_tests::sim_input(11, 20_000);
    let engine = sessionflow_tests::test_engine();
    let (_dir, store) = fresh_store();
    // 1 MiB: about 500 sessions, so entries are evicted too.
    let mut cache = SessionCache::new(1 << 20);
    let mut memory = MemState::default();
    let (mut failed, mut moved) = (0, 0);
    for (i, chunk) in input.chunks(400).enumerate() {
        let offset = (i * 400) as i64;
        if i % 7 == 3 {
            // Processed, then the transaction fails: nothing is committed.
            sessionflow_tests::process_cached(&engine, &store.partition(3), &mut cache, chunk, offset).unwrap();
            failed += 1;
        }
        let reference = sessionflow_tests::process(&engine, &memory, chunk, offset).unwrap();
        if i % 11 == 5 {
            // The store moves on without the cache.
            let uncached = sessionflow_tests::process(&engine, &store.partition(3), chunk, offset).unwrap();
            store.commit(3, &uncached.writes).unwrap();
            memory.apply(reference.writes);
            moved += 1;
            continue;
        }
        let cached = sessionflow_tests::process_cached(&engine, &store.partition(3), &mut cache, chunk, offset).unwrap();
        assert_eq!(cached.outputs, reference.outputs, "batch {i}");
        assert_eq!(cached.writes, reference.writes, "batch {i}");
        store.commit(3, &cached.writes).unwrap();
        cache.committed(cached.writes);
        memory.apply(reference.writes);
    }
    let (hits, misses) = cache.hits_and_misses();
    assert!(hits > misses, "the cache served most sessions: {hits} hits, {misses} misses");
    assert!(failed > 0 && moved > 0);
    assert!(store.partition(3).dump().unwrap() == memory, "final state differs");
}

#[test]
fn partitions_are_isolated_and_dropped_whole() {
    let input = sessionflow_tests::sim_input(9, 3_000);
    let engine = sessionflow_tests::test_engine();
    let (_dir, store) = fresh_store();
    for partition in [0u32, 1, 7, u32::MAX] {
        let result = sessionflow_tests::process(&engine, &store.partition(partition), &input, 0).unwrap();
        store.commit(partition, &result.writes).unwrap();
    }
    assert_eq!(store.partitions().unwrap(), vec![0, 1, 7, u32::MAX]);
    let before = store.partition(1).dump().unwrap();
    store.drop_partition(7).unwrap();
    assert_eq!(store.partitions().unwrap(), vec![0, 1, u32::MAX]);
    assert_eq!(store.partition(7).dump().unwrap(), MemState::default());
    assert!(store.partition(1).dump().unwrap() == before, "dropping 7 left 1 untouched");
    assert!(store.partition(0).dump().unwrap() == before, "partitions with the same input hold the same state");
}

/// `settle` (for benchmarks) leaves the memtables flushed to files and the
/// state unchanged.
#[test]
fn settling_flushes_the_memtables_and_keeps_the_state() {
    let input = sessionflow_tests::sim_input(9, 5_000);
    let engine = sessionflow_tests::test_engine();
    let (_dir, store) = fresh_store();
    let result = sessionflow_tests::process(&engine, &store.partition(1), &input, 0).unwrap();
    store.commit(1, &result.writes).unwrap();
    let before = store.partition(1).dump().unwrap();
    assert_eq!(store.stats().estimated_live_bytes, 0, "nothing in files yet");
    store.settle(std::time::Duration::from_secs(60)).unwrap();
    assert!(store.stats().estimated_live_bytes > 0, "the memtable went to a file");
    assert!(store.partition(1).dump().unwrap() == before, "settling changed the state");
}

/// A JSON input record of session `s1`, `secs` after a fixed start.
fn s1_record(id: &str, kind: &str, secs: i64) -> sessionflow_tests::RawRecord {
    let at = sessionflow_core::Millis(1_720_000_000_000 + secs * 1000).to_rfc3339();
    let mut value = serde_json::json!({"event_id": id, "session_id": "s1", "type": kind, "occurred_at": at, "attributes": {}});
    if kind == "session.started" {
        value["channel"] = "chat".into();
        value["direction"] = "inbound".into();
    }
    sessionflow_tests::RawRecord { key: Some(b"s1".to_vec()), value: serde_json::to_vec(&value).unwrap() }
}

/// Stores written before events were stored in chunks hold one key per
/// event: `partition | 2 | id length | session id | event id` → postcard
/// `Event`. Such a store is still read (duplicates, the events of a
/// re-fold) and cleaned up by erasure; new events go to chunks.
#[test]
fn a_store_with_one_key_per_event_is_read_and_erased() {
    use sessionflow_core::{EventsKey, Output, Write};
    let engine = sessionflow_tests::test_engine();
    let (_dir, store) = fresh_store();
    let first = [s1_record("e1", "session.started", 10), s1_record("e2", "queue.entered", 20)];
    let result = sessionflow_tests::process(&engine, &store.partition(4), &first, 0).unwrap();
    // Everything as it is stored now, except the events: one key each.
    let mut raw = Vec::new();
    for write in &result.writes {
        match write {
            Write::PutEvents { session_id, events, .. } => {
                for event in events {
                    let mut key = 4u32.to_be_bytes().to_vec();
                    key.push(2);
                    key.extend_from_slice(&(session_id.len() as u16).to_be_bytes());
                    key.extend_from_slice(session_id.as_bytes());
                    key.extend_from_slice(event.event_id.as_bytes());
                    raw.push((key, Some(postcard::to_stdvec(event).unwrap())));
                }
            }
            other => raw.extend(Store::raw_writes(4, std::slice::from_ref(other))),
        }
    }
    store.commit_raw(4, &raw, None).unwrap();
    let state = store.partition(4);
    assert_eq!(state.event_keys("s1").unwrap(), vec![EventsKey::Single("e1".into()), EventsKey::Single("e2".into())]);
    assert!(state.has_event("s1", "e2").unwrap() && !state.has_event("s1", "e3").unwrap());

    // A duplicate of a stored event, a new one, and one earlier than both
    // (out of order: the fold is rebuilt from the stored events).
    let second = [s1_record("e2", "queue.entered", 20), s1_record("e4", "agent.assigned", 40), s1_record("e0", "note.received", 5)];
    let result = sessionflow_tests::process(&engine, &state, &second, 2).unwrap();
    assert_eq!(result.stats.duplicates, 1);
    assert_eq!(result.stats.timeline, 2);
    assert_eq!(result.stats.out_of_order, 1);
    let seq = result.outputs.iter().filter_map(|o| if let Output::Timeline(t) = o { Some(t.seq) } else { None }).max();
    assert_eq!(seq, Some(4), "seq counts on from the stored events");
    store.commit(4, &result.writes).unwrap();
    let mut ids = Vec::new();
    state.each_event_id("s1", &mut |id| ids.push(id.to_owned())).unwrap();
    ids.sort();
    assert_eq!(ids, ["e0", "e1", "e2", "e4"]);
    assert_eq!(state.events("s1").unwrap().len(), 4);
    assert_eq!(state.event_keys("s1").unwrap(), vec![EventsKey::Single("e1".into()), EventsKey::Single("e2".into()), EventsKey::Chunk(4)]);

    // Erasure deletes both kinds of key.
    let erase = [s1_record("x", "session.erased", 50)];
    let result = sessionflow_tests::process(&engine, &state, &erase, 5).unwrap();
    let deletes = result.writes.iter().filter(|w| matches!(w, Write::DeleteEvents { .. })).count();
    assert_eq!(deletes, 3);
    store.commit(4, &result.writes).unwrap();
    assert!(state.dump().unwrap().events.is_empty(), "every event key of s1 is gone");
}
