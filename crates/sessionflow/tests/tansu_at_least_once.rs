//! Across processes on a standalone Kafka-compatible broker (`tansu`, in
//! memory, started here on loopback), in at-least-once mode (it has no
//! transactions): the daemon creates its topics, is SIGKILLed mid-stream and
//! restarted, and in the end every expected output is there. A batch cut
//! short by the kill may appear twice, as exact copies and in order; nothing
//! is lost and nothing else differs.

mod common;

use common::{INPUT, committed_offsets, end_offsets, start_daemon, start_tansu, wait_ready};
use sessionflow_kafka::testkit;
use sessionflow_kafka::{DaemonConfig, Delivery, KafkaSection, TopicsSection};
use sessionflow_sim::SimConfig;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;

/// tansu 0.6 (memory engine) misreads record batches of more than one
/// record: the high watermark lags and a fetch from an offset inside a batch
/// starts at the next batch. Every producer here sends one record per batch.
const ONE_RECORD_PER_BATCH: (&str, &str) = ("batch.num.messages", "1");

/// A daemon config whose state lives in `<dir>/state-<name>`.
fn write_config(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let kafka = format!(
        r#"
group_id = "alo"
delivery = "at_least_once"
commit_interval_ms = 50
max_batch_records = 100
partitions = {PARTITIONS}
replication_factor = 1
# tansu 0.6 never assigns partitions to a restarted static member.
static_membership = false
"#
    );
    let sections = format!("{}\n[kafka.producer_properties]\n\"batch.num.messages\" = \"1\"\n", common::FAST_REBALANCE);
    common::write_daemon_config(&path, &dir.join(format!("state-{name}")), &kafka, &sections);
    path
}

#[test]
#[allow(clippy::print_stderr)] // reports how many repeats it saw, in the test log
fn at_least_once_across_processes_with_a_sigkill_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, brokers) = start_tansu(dir.path());

    // The broker creates no topics by itself: create them as the daemon does.
    let daemon_config = DaemonConfig {
        kafka: KafkaSection {
            brokers: brokers.clone(),
            group_id: "alo".into(),
            partitions: Some(PARTITIONS),
            replication_factor: 1,
            delivery: Delivery::AtLeastOnce,
            ..KafkaSection::default()
        },
        topics: TopicsSection::default(),
        idle_advance_after_ms: 0,
        session_cache_bytes: 64 << 20,
    };
    sessionflow_kafka::clients::create_topics(&daemon_config).expect("topics created on tansu");
    let sim = SimConfig { seed: 21, malformed_rate: 0.01, ..SimConfig::default() };
    let sent = testkit::produce_with(&brokers, INPUT, sim, 3_000, 0, &[ONE_RECORD_PER_BATCH]);

    let config = write_config(dir.path(), "first");
    // The restart gets a fresh disk: its state comes from the changelog alone.
    let config_fresh_disk = write_config(dir.path(), "second");
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent);
    let end = end_offsets(&input, PARTITIONS);

    // First run: killed once it committed part of the input.
    let mut daemon = start_daemon(&config, "daemon", &brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed_offsets(&metrics, PARTITIONS).iter().sum::<i64>() == 0 {
        assert!(Instant::now() < deadline && !daemon.exited(), "no progress\n{}\n{}", daemon.tail(), _broker.tail());
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.kill(); // SIGKILL

    // Second run, on a fresh disk: restores from the changelog, resumes and finishes.
    let mut daemon = start_daemon(&config_fresh_disk, "daemon", &brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    let resumed_at: i64 = committed_offsets(&metrics, PARTITIONS).iter().sum();
    assert!(common::metric(&metrics, "sessionflow_restore_records_total", "") > 0.0, "nothing restored\n{}", daemon.tail());
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_offsets(&metrics, PARTITIONS) != end {
        assert!(Instant::now() < deadline, "did not finish: {:?} of {end:?}\n{}", committed_offsets(&metrics, PARTITIONS), daemon.tail());
        assert!(!daemon.exited(), "daemon exited\n{}", daemon.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());
    assert!(resumed_at > 0 && resumed_at < sent as i64, "the kill landed mid-stream: resumed at {resumed_at} of {sent}");

    let (timeline_repeats, _) = common::assert_outputs_match(&brokers, &input, PARTITIONS, 50);
    eprintln!("repeated timeline records after the kill: {timeline_repeats}");
}
