//! A zombie: a second live daemon with the same `kafka.instance_id` (a
//! copied config, a stuck host coming back). The newer one's claim of the
//! id on the instances topic fences the older (on Kafka its transactional
//! producer and static group membership do too; the embedded broker
//! implements neither fence: its InitProducerId hands a second producer of
//! one transactional id a new producer id, and its classic groups ignore
//! `group.instance.id`); the older exits non-zero saying why, the newer
//! finishes the input, and the outputs equal the engine's run.

mod common;

use common::{INPUT, committed_offsets, end_offsets, start_daemon, start_embedded_broker, wait_ready};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 2;

fn write_config(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let kafka = r#"
group_id = "zombie"
instance_id = "same-host"
commit_interval_ms = 50
max_batch_records = 200
create_topics = false
"#;
    common::write_daemon_config(&path, &dir.join(format!("state-{name}")), kafka, common::FAST_REBALANCE);
    path
}

#[test]
fn the_older_of_two_daemons_with_one_instance_id_is_fenced_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let (config_old, config_new) = (write_config(dir.path(), "old"), write_config(dir.path(), "new"));
    let (_broker, brokers) = start_embedded_broker(&config_old, PARTITIONS);
    let producer = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let sim = SimConfig { seed: 21, malformed_rate: 0.01, ..SimConfig::default() };
            testkit::produce_paced(&brokers, INPUT, sim, 3_000, 0, &[], Some((50, Duration::from_millis(100))))
        })
    };

    let (metrics_old, metrics_new) = (format!("127.0.0.1:{}", common::free_port()), format!("127.0.0.1:{}", common::free_port()));
    let mut old = start_daemon(&config_old, "old", &brokers, &metrics_old);
    wait_ready(&mut old, &metrics_old, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed_offsets(&metrics_old, PARTITIONS).iter().sum::<i64>() == 0 {
        assert!(Instant::now() < deadline, "the first daemon committed nothing\n{}", old.tail());
        std::thread::sleep(Duration::from_millis(100));
    }

    // The zombie's twin starts while the first is mid-stream.
    let mut new = start_daemon(&config_new, "new", &brokers, &metrics_new);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = old.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the older daemon still runs beside its twin\n{}\n{}", old.tail(), new.tail());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "the fenced daemon must exit non-zero: {status:?}\n{}", old.tail());
    let log = std::fs::read_to_string(&old.log).unwrap();
    assert!(
        log.contains("fenced") && log.contains("kafka.instance_id"),
        "the fenced daemon's last words must say it was fenced and name kafka.instance_id\n{}",
        old.tail()
    );

    wait_ready(&mut new, &metrics_new, Duration::from_secs(60));
    let sent = producer.join().expect("producer thread");
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent);
    let end = end_offsets(&input, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_offsets(&metrics_new, PARTITIONS) != end {
        assert!(Instant::now() < deadline, "the newer daemon did not finish: {:?} of {end:?}\n{}", committed_offsets(&metrics_new, PARTITIONS), new.tail());
        assert!(!new.exited(), "the newer daemon exited\n{}", new.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(new.terminate().success(), "graceful shutdown\n{}", new.tail());
    // Exact repeats of the fenced daemon's aborted transaction can show on
    // the embedded broker (it does not hide aborted records); nothing may be
    // lost or differ.
    common::assert_outputs_match(&brokers, &input, PARTITIONS, 100);
}
