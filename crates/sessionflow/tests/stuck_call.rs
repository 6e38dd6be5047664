//! A call that never returns does not hang the daemon. librdkafka's
//! `send_offsets_to_transaction` can wait forever, past its timeout, for a
//! group coordinator that went away (librdkafka issues #5456 and #5511,
//! open for the version we build). The soak found it: the group
//! coordinator's broker down for 1.5 s, and the daemon stopped for good
//! with a transaction open and `/healthz` green. Now the loop notes what
//! it does; stuck in one call past `kafka.stall_timeout_ms`, `/healthz`
//! turns 503 and `sessionflow run` exits with status 3 naming the call, so
//! that a supervisor's restart recovers (the restart aborts the open
//! transaction; the state is the last committed one).
//!
//! The test takes the group coordinator's broker down, again and again
//! while input flows, restarts the daemon whenever it exits as stuck, and
//! requires that the input is finished within a bound and the outputs
//! equal the engine's run.

mod common;

use common::{INPUT, committed_offsets, end_offsets, start_daemon, wait_ready};
use sessionflow_kafka::embedded::{EmbeddedBroker, Fault, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 2;
const GROUP: &str = "stuck";
/// The daemon's `kafka.stall_timeout_ms` here.
const STALL_TIMEOUT: Duration = Duration::from_secs(6);
const OUTAGES: usize = 6;

#[test]
#[allow(clippy::print_stderr)] // how often the daemon got stuck, in the test log
fn a_call_that_never_returns_ends_in_an_exit_and_a_restart_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stuck.toml");
    let kafka = format!(
        "group_id = \"{GROUP}\"\ninstance_id = \"{GROUP}-1\"\ncommit_interval_ms = 50\nmax_batch_records = 100\ncreate_topics = false\nstall_timeout_ms = {}\n",
        STALL_TIMEOUT.as_millis()
    );
    common::write_daemon_config(&config, &dir.path().join("state"), &kafka, common::FAST_REBALANCE);
    let broker = EmbeddedBroker::start(3, &pipeline_topics(&testkit::test_config("", GROUP, 100), PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    // The group coordinator on broker 2, which goes down; the transaction
    // coordinator on broker 1, which stays.
    broker.inject(Fault::GroupCoordinator(GROUP.into(), 2)).expect("group coordinator");
    broker.inject(Fault::TransactionCoordinator(format!("{GROUP}-{GROUP}-1"), 1)).expect("transaction coordinator");
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut daemon = start_daemon(&config, "daemon", &brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));

    let producer = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let sim = SimConfig { seed: 31, ..SimConfig::default() };
            testkit::produce_paced(&brokers, INPUT, sim, 4_000, 0, &[], Some((20, Duration::from_millis(100))))
        })
    };
    let mut stuck_exits = 0;
    let mut restart_if_stuck = |daemon: &mut common::Proc| {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            let log = std::fs::read_to_string(&daemon.log).unwrap_or_default();
            // The daemon's own lines, without librdkafka's connection errors.
            let own: Vec<&str> = log.lines().filter(|l| !l.contains("librdkafka") && !l.contains("consumer error")).collect();
            assert_eq!(status.code(), Some(3), "the daemon exited, not as stuck\n{}", own[own.len().saturating_sub(15)..].join("\n"));
            assert!(log.contains("stuck: exiting") && log.contains("without the call returning"), "{}", daemon.tail());
            stuck_exits += 1;
            std::fs::remove_file(&daemon.log).unwrap();
            *daemon = start_daemon(&config, "daemon", &brokers, &metrics);
        }
    };
    for _ in 0..OUTAGES {
        std::thread::sleep(Duration::from_millis(1_500));
        broker.inject(Fault::BrokerDown(2)).expect("down");
        std::thread::sleep(Duration::from_millis(1_500));
        broker.inject(Fault::BrokerUp(2)).expect("up");
        restart_if_stuck(&mut daemon);
    }
    let sent = producer.join().expect("producer");
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent);
    let end = end_offsets(&input, PARTITIONS);
    // Time enough for one more stall, its exit and a restart, and the rest.
    let deadline = Instant::now() + STALL_TIMEOUT * 3 + Duration::from_secs(60);
    while committed_offsets(&metrics, PARTITIONS) != end {
        restart_if_stuck(&mut daemon);
        assert!(Instant::now() < deadline, "the input was not finished: {:?} of {end:?}\n{}", committed_offsets(&metrics, PARTITIONS), daemon.tail());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());
    eprintln!("{OUTAGES} outages of the group coordinator: the daemon exited stuck {stuck_exits} times");
    common::assert_outputs_match(&brokers, &input, PARTITIONS, 50);
}
