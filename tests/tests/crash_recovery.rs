//! A process killed with SIGKILL while writing batches leaves a store that
//! reopens at the last complete batch: offsets, state and timers agree with a
//! reference run over exactly the batches it reports as done.

use sessionflow_core::StateRead;
use sessionflow_core::memstore::MemState;
use sessionflow_store::{Store, StoreConfig};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BATCH: usize = 250;
const TOTAL: usize = 60_000;
const SEED: u64 = 11;

#[test]
fn sigkill_mid_batch_reopens_at_a_batch_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let input = sessionflow_tests::sim_input(SEED, TOTAL);
    let engine = sessionflow_tests::test_engine();

    // Reference: the in-memory state after each batch boundary.
    let mut reference = MemState::default();
    let mut reference_offset = 0usize;

    let mut last_offset = 0usize;
    let mut advanced = 0;
    // Each round kills some microseconds after the writer reports its n-th
    // commit of the round; both vary so the kill lands at different points
    // of a batch (mid-write, mid-commit, between batches).
    let kills: [(usize, u64); 10] = [(3, 150), (11, 420), (1, 90), (17, 610), (6, 2600), (9, 333), (2, 1505), (14, 0), (5, 720), (8, 275)];
    for (round, (commits, delay_us)) in kills.iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_writer"))
            .args([dir.path().to_str().unwrap(), &BATCH.to_string(), &TOTAL.to_string(), &SEED.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn writer");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().expect("writer output").unwrap();
        assert_eq!(ready.trim(), "ready", "round {round}: writer did not start");
        for seen in 0..*commits {
            let line = lines.next().unwrap_or_else(|| panic!("round {round}: writer ended after {seen} commits")).unwrap();
            assert!(line.starts_with("committed "), "round {round}: unexpected writer output {line:?}");
        }
        std::thread::sleep(Duration::from_micros(*delay_us));
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the writer must have been killed, not finished");

        let store = Store::open(dir.path(), &StoreConfig::default()).expect("the store reopens after SIGKILL");
        let state = store.partition(0);
        let offset = state.meta().unwrap().next_offset("test") as usize;
        assert_eq!(offset % BATCH, 0, "round {round}: store at offset {offset}, not a batch boundary");
        assert!(offset >= last_offset, "round {round}: progress went backwards");
        if offset > last_offset {
            advanced += 1;
        }
        last_offset = offset;

        while reference_offset < offset {
            let end = reference_offset + BATCH;
            let result = sessionflow_tests::process(&engine, &reference, &input[reference_offset..end], reference_offset as i64).unwrap();
            reference.apply(result.writes);
            reference_offset = end;
        }
        let stored = state.dump().unwrap();
        assert_eq!(stored.meta, reference.meta, "round {round}: offsets and watermark");
        assert_eq!(stored.timers, reference.timers, "round {round}: timers");
        assert_eq!(stored.markers, reference.markers, "round {round}: markers");
        assert_eq!(stored.sessions.len(), reference.sessions.len(), "round {round}: session count");
        assert!(stored.sessions == reference.sessions, "round {round}: session state");
        assert!(stored.events == reference.events, "round {round}: stored events");
    }
    assert!(advanced >= 8, "the writer made progress in only {advanced} of {} rounds", kills.len());
    assert!(last_offset > 0 && last_offset < TOTAL, "kills landed mid-stream (offset {last_offset})");
}
