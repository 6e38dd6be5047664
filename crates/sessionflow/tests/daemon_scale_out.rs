//! Scale-out: two daemon processes in one consumer group, each with its own
//! state directory. One is SIGKILLed while traffic flows; the other takes
//! over its partitions, restoring their state from the changelog (its own
//! disk never held it), and the final outputs equal the engine's run over
//! the input.

mod common;

use common::{INPUT, committed_offsets, end_offsets, metric, start_daemon, start_embedded_broker, wait_ready};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One partition per daemon: each transaction writes to four partitions,
/// sent in one burst (see `daemon_crash.rs` for why that matters on the
/// embedded broker).
const PARTITIONS: i32 = 2;

fn write_config(dir: &Path, instance: &str) -> PathBuf {
    let path = dir.join(format!("{instance}.toml"));
    let kafka = format!(
        r#"
group_id = "scale"
instance_id = "{instance}"
commit_interval_ms = 50
max_batch_records = 200
create_topics = false
"#
    );
    common::write_daemon_config(&path, &dir.join(format!("state-{instance}")), &kafka, common::FAST_REBALANCE);
    path
}

fn owned(offsets: &[i64]) -> usize {
    offsets.iter().filter(|o| **o > 0).count()
}

/// Partitions (input and repartition) a daemon holds: assigned minus revoked.
fn owns(metrics: &str) -> i64 {
    (metric(metrics, "sessionflow_rebalances_total", "kind=\"assign\"") - metric(metrics, "sessionflow_rebalances_total", "kind=\"revoke\"")) as i64
}

#[test]
fn survivor_takes_over_a_killed_instance_partitions_from_the_changelog() {
    let dir = tempfile::tempdir().unwrap();
    let config_a = write_config(dir.path(), "a");
    let config_b = write_config(dir.path(), "b");
    let (_broker, brokers) = start_embedded_broker(&config_a, PARTITIONS);
    let sim = |seed| SimConfig { seed, malformed_rate: 0.01, ..SimConfig::default() };

    // Both join before any traffic, so neither disk ever holds the other's partitions.
    let (metrics_a, metrics_b) = (format!("127.0.0.1:{}", common::free_port()), format!("127.0.0.1:{}", common::free_port()));
    let mut a = start_daemon(&config_a, "a", &brokers, &metrics_a);
    wait_ready(&mut a, &metrics_a, Duration::from_secs(60));
    let mut b = start_daemon(&config_b, "b", &brokers, &metrics_b);
    wait_ready(&mut b, &metrics_b, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    while owns(&metrics_a) == 0 || owns(&metrics_b) == 0 || owns(&metrics_a) + owns(&metrics_b) != 2 * i64::from(PARTITIONS) {
        assert!(Instant::now() < deadline, "partitions not shared: a {}, b {}\n{}\n{}", owns(&metrics_a), owns(&metrics_b), a.tail(), b.tail());
        std::thread::sleep(Duration::from_millis(200));
    }

    let mut sent = testkit::produce(&brokers, INPUT, sim(11), 3_000, 0);
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    let end = end_offsets(&input, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ca, cb) = (committed_offsets(&metrics_a, PARTITIONS), committed_offsets(&metrics_b, PARTITIONS));
        if (0..PARTITIONS as usize).all(|p| ca[p].max(cb[p]) == end[p]) {
            break;
        }
        assert!(Instant::now() < deadline, "first half not processed: a {ca:?}, b {cb:?} of {end:?}\n{}\n{}", a.tail(), b.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    let b_partitions = owned(&committed_offsets(&metrics_b, PARTITIONS));
    assert!(b_partitions > 0);

    // More traffic (other sessions), and b dies while it flows.
    let second = {
        let brokers = brokers.clone();
        std::thread::spawn(move || testkit::produce(&brokers, INPUT, sim(12), 3_000, 0))
    };
    std::thread::sleep(Duration::from_millis(300));
    b.kill(); // SIGKILL
    sent += second.join().unwrap();

    // a owns everything and reaches the end of the input.
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent);
    let end = end_offsets(&input, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_offsets(&metrics_a, PARTITIONS) != end {
        assert!(Instant::now() < deadline, "a did not finish the input: {:?} of {end:?}\n{}", committed_offsets(&metrics_a, PARTITIONS), a.tail());
        assert!(!a.exited(), "a exited\n{}", a.tail());
        std::thread::sleep(Duration::from_millis(300));
    }
    let restored = metric(&metrics_a, "sessionflow_restore_records_total", "");
    assert!(restored > 0.0, "a restored nothing from the changelog\n{}", a.tail());
    assert_eq!(owns(&metrics_a), 2 * i64::from(PARTITIONS), "a owns every input and repartition partition");
    assert!(a.terminate().success(), "graceful shutdown\n{}", a.tail());

    // Exact repeats of a batch the kill interrupted can show on the embedded
    // broker (it does not hide aborted transactions); nothing may be lost or differ.
    common::assert_outputs_match(&brokers, &input, PARTITIONS, 100);
}
