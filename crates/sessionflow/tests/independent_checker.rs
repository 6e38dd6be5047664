//! The outputs checked by a checker that does not trust the daemon
//! (`tests/python/check_outputs.py`: Python `confluent-kafka`, read_committed,
//! its own accounting from the broker's records, metadata compared with the
//! offline replay of the same input, version by version). Three runs on the
//! embedded broker:
//!
//! - a daemon runs to the end of the input: the strict checker (no repeat
//!   at all) passes;
//! - the same check after one more input record the daemon never saw: the
//!   checker fails, naming it (the checker can fail);
//! - a daemon killed before its transaction commits, three times (failpoint),
//!   then run to the end: the checker passes only with exact repeats allowed
//!   (the embedded broker shows aborted transactions), and every repeat is a
//!   contiguous copy of one batch.

mod common;

use common::{INPUT, start_daemon_with_env, start_embedded_broker, wait_for_log};
use sessionflow_kafka::failpoints;
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PARTITIONS: i32 = 1;

fn config(dir: &Path, group: &str) -> PathBuf {
    let path = dir.join("sessionflow.toml");
    let kafka = format!(
        r#"
group_id = "{group}"
instance_id = "{group}-1"
commit_interval_ms = 50
max_batch_records = 100
create_topics = false
"#
    );
    common::write_daemon_config(&path, &dir.join("state"), &kafka, common::FAST_REBALANCE);
    path
}

fn sim(seed: u64) -> SimConfig {
    SimConfig { seed, malformed_rate: 0.01, erasure_rate: 0.02, ..SimConfig::default() }
}

#[test]
fn a_clean_run_passes_the_strict_checker_and_a_lost_record_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "checked");
    let (_broker, brokers) = start_embedded_broker(&config, PARTITIONS);
    testkit::produce(&brokers, INPUT, sim(71), 3_000, 0);
    common::run_to_the_end(&config, &brokers, PARTITIONS);
    let replay = common::replay_metadata(&config, &brokers, PARTITIONS);
    let (passed, report) = common::check_outputs(&brokers, &replay, false);
    assert!(passed, "the strict checker failed a clean run:\n{report}");
    assert!(report.contains("\"repeats_collapsed\": {}"), "a clean run shows no repeat:\n{report}");

    // One input record the daemon never processed (a session of its own):
    // the checker must see it.
    let producer: rdkafka::producer::BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let lost = r#"{"event_id":"lost-1","session_id":"never-processed","type":"session.started","occurred_at":"2024-07-04T10:00:00Z","channel":"chat"}"#;
    producer.send(rdkafka::producer::BaseRecord::to(INPUT).key("never-processed").payload(lost).partition(0)).map_err(|(e, _)| e).unwrap();
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(10)).unwrap();
    let replay = common::replay_metadata(&config, &brokers, PARTITIONS);
    let (passed, report) = common::check_outputs(&brokers, &replay, false);
    assert!(!passed, "the checker missed an unprocessed input record:\n{report}");
    assert!(report.contains("is nowhere") && report.contains("never-processed"), "{report}");
}

#[test]
#[allow(clippy::print_stderr)] // the checker's report, in the test log
fn kills_before_the_commit_leave_only_contiguous_exact_copies() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "checked-kills");
    let (_broker, brokers) = start_embedded_broker(&config, PARTITIONS);
    testkit::produce(&brokers, INPUT, sim(73), 3_000, 0);
    for hits in [3, 7, 5] {
        let spec = format!("{}={hits}*off->return", failpoints::COMMIT);
        let metrics = format!("127.0.0.1:{}", common::free_port());
        let mut daemon = start_daemon_with_env(&config, "killed", &brokers, &metrics, &[("FAILPOINTS", &spec)]);
        wait_for_log(&mut daemon, &failpoints::parked_message(failpoints::COMMIT), Duration::from_secs(90));
        daemon.kill();
        // The next run's log must hold its own parking line, not this one's.
        std::fs::remove_file(&daemon.log).unwrap();
    }
    common::run_to_the_end(&config, &brokers, PARTITIONS);
    let replay = common::replay_metadata(&config, &brokers, PARTITIONS);
    let (passed, report) = common::check_outputs(&brokers, &replay, true);
    assert!(passed, "the checker failed the run with kills:\n{report}");
    eprintln!("checker report after three kills: {report}");
}
