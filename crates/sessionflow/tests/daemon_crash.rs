//! The daemon killed with SIGKILL at random moments, at least ten times,
//! restarted each time (same state directory, same transactional id): the
//! final read_committed outputs equal the engine's run over the input, so
//! no timeline record is lost or doubled and metadata versions are gap-free.
//! The broker (the embedded one) runs in a process of its own and outlives
//! every daemon.

mod common;

use common::{INPUT, committed_offsets, end_offsets, start_daemon, start_embedded_broker, wait_ready};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::time::{Duration, Instant};

/// One partition: each transaction then writes to four partitions
/// (timeline, metadata, dead letters, changelog), one produce request each,
/// sent together (librdkafka keeps up to five in flight). The embedded
/// broker shows aborted records (docs/daemon.md#brokers), so a transaction
/// whose requests spread over two round trips would let a kill between them
/// show part of an aborted batch, which Kafka would hide.
const PARTITIONS: i32 = 1;

#[test]
#[allow(clippy::print_stderr)] // reports how many repeats it saw, in the test log
fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessionflow.toml");
    common::write_daemon_config(
        &config,
        &dir.path().join("state"),
        r#"
group_id = "crash"
instance_id = "crash-1"
commit_interval_ms = 50
max_batch_records = 100
create_topics = false
"#,
        common::FAST_REBALANCE,
    );
    let (_broker, brokers) = start_embedded_broker(&config, PARTITIONS);
    // The input keeps arriving through the kills (50 records a second), so
    // kills land mid-stream however fast the daemon is.
    let producer = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let sim = SimConfig { seed: 5, malformed_rate: 0.01, ..SimConfig::default() };
            testkit::produce_paced(&brokers, INPUT, sim, 4_500, 0, &[], Some((25, Duration::from_millis(500))))
        })
    };

    let metrics = format!("127.0.0.1:{}", common::free_port());
    // Kill delays after the daemon is ready, varied so kills land in and between transactions.
    let delays_ms = [40u64, 310, 95, 520, 180, 5, 640, 260, 130, 410, 75, 350];
    let mut kills = 0;
    let mut kills_mid_stream = 0;
    for delay in delays_ms {
        let mut daemon = start_daemon(&config, "daemon", &brokers, &metrics);
        wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(delay));
        daemon.kill(); // SIGKILL
        kills += 1;
        if !producer.is_finished() {
            kills_mid_stream += 1;
        }
    }

    // A last run to the end of the input, stopped with SIGTERM.
    let sent = producer.join().expect("producer thread");
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent);
    let end = end_offsets(&input, PARTITIONS);
    let mut daemon = start_daemon(&config, "daemon", &brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    // Where the restored state resumes: the progress the killed runs committed.
    let progress_after_kills: i64 = committed_offsets(&metrics, PARTITIONS).iter().sum();
    let deadline = Instant::now() + Duration::from_secs(180);
    while committed_offsets(&metrics, PARTITIONS) != end {
        assert!(
            Instant::now() < deadline,
            "the daemon did not finish the input: committed {:?} of {end:?}\n{}",
            committed_offsets(&metrics, PARTITIONS),
            daemon.tail()
        );
        assert!(!daemon.exited(), "daemon exited\n{}", daemon.tail());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(daemon.terminate().success(), "graceful shutdown on SIGTERM\n{}", daemon.tail());

    assert!(kills >= 10);
    assert!(kills_mid_stream >= 8, "only {kills_mid_stream} kills landed while input was still arriving");
    assert!(progress_after_kills > 0, "the killed runs committed nothing");

    // The embedded broker does not hide aborted transactions, so a batch a
    // kill interrupted can show there as well as its retry: exact copies,
    // which Kafka's read_committed would not show. Anything else (a lost
    // record, a record that differs, a gap in versions) fails.
    let (timeline_repeats, dead) = common::assert_outputs_match(&brokers, &input, PARTITIONS, 100);
    eprintln!("timeline records shown twice by the embedded broker (aborted, then retried): {timeline_repeats}");
    assert!(dead.len() >= 4, "dead-letter classes: {dead:?}");
}
