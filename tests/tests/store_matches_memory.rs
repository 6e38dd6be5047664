//! The RocksDB store and the in-memory state give the processor the same
//! answers: same outputs, same state, batch after batch.

use sessionflow_core::SessionCache;
use sessionflow_core::memstore::MemState;
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
