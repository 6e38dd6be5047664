//! Kills that land where it hurts, each placed with a failpoint (the
//! process logs that it reached the point and stops there; the test then
//! SIGKILLs it and checks it died by that signal), not after a guessed
//! sleep: before the transaction commit, between the Kafka commit and the
//! store write, in the middle of a changelog restore, and in the rebalance
//! callback as partitions are handed over. After each, a daemon without
//! failpoints finishes the input and the outputs equal the engine's run.

mod common;

use common::{INPUT, Proc, committed_offsets, end_offsets, metric, start_daemon, start_daemon_with_env, start_embedded_broker, wait_for_log, wait_ready};
use sessionflow_kafka::failpoints;
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 2;

struct Scenario {
    dir: tempfile::TempDir,
    _broker: Proc,
    brokers: String,
    producer: Option<std::thread::JoinHandle<usize>>,
}

impl Scenario {
    /// A broker, and input arriving for a few seconds (paced, so kills land
    /// mid-stream).
    fn start(group: &str, seed: u64) -> Scenario {
        let dir = tempfile::tempdir().unwrap();
        let first = config(dir.path(), group, "a");
        let (broker, brokers) = start_embedded_broker(&first, PARTITIONS);
        let producer = {
            let brokers = brokers.clone();
            std::thread::spawn(move || {
                let sim = SimConfig { seed, malformed_rate: 0.01, ..SimConfig::default() };
                testkit::produce_paced(&brokers, INPUT, sim, 2_500, 0, &[], Some((50, Duration::from_millis(100))))
            })
        };
        Scenario { dir, _broker: broker, brokers, producer: Some(producer) }
    }

    fn config(&self, group: &str, name: &str) -> PathBuf {
        config(self.dir.path(), group, name)
    }

    fn metrics() -> String {
        format!("127.0.0.1:{}", common::free_port())
    }

    /// Waits for `process` to park at `point`, SIGKILLs it, and checks it
    /// died by that signal there.
    fn kill_at(process: &mut Proc, point: &str) {
        wait_for_log(process, &failpoints::parked_message(point), Duration::from_secs(90));
        process.child.kill().unwrap();
        let status = process.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL at {point}: {status:?}");
    }

    /// Runs a daemon without failpoints to the end of the input and checks
    /// the outputs. Returns its restore count.
    fn finish(mut self, config: &Path) -> f64 {
        let sent = self.producer.take().unwrap().join().expect("producer thread");
        let input = testkit::read_all(&self.brokers, INPUT, PARTITIONS);
        assert_eq!(input.len(), sent);
        let end = end_offsets(&input, PARTITIONS);
        let metrics = Scenario::metrics();
        let mut daemon = start_daemon(config, "finish", &self.brokers, &metrics);
        wait_ready(&mut daemon, &metrics, Duration::from_secs(90));
        let deadline = Instant::now() + Duration::from_secs(120);
        while committed_offsets(&metrics, PARTITIONS) != end {
            assert!(Instant::now() < deadline, "not finished: {:?} of {end:?}\n{}", committed_offsets(&metrics, PARTITIONS), daemon.tail());
            assert!(!daemon.exited(), "exited\n{}", daemon.tail());
            std::thread::sleep(Duration::from_millis(200));
        }
        let restored = metric(&metrics, "sessionflow_restore_records_total", "");
        assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());
        // The embedded broker shows aborted transactions: exact repeats of a
        // killed batch are tolerated, nothing else.
        common::assert_outputs_match(&self.brokers, &input, PARTITIONS, 100);
        restored
    }
}

fn config(dir: &Path, group: &str, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let kafka = format!(
        r#"
group_id = "{group}"
instance_id = "{group}-{name}"
commit_interval_ms = 50
max_batch_records = 200
create_topics = false
"#
    );
    common::write_daemon_config(&path, &dir.join(format!("state-{name}")), &kafka, common::FAST_REBALANCE);
    path
}

/// One daemon parked at `point` on its `hits`-th pass, killed, and one
/// restarted on the same disk to finish.
fn kill_one_daemon_at(group: &str, point: &str, hits: u32) -> f64 {
    let scenario = Scenario::start(group, 31);
    let config = scenario.config(group, "a");
    let spec = format!("{point}={hits}*off->return");
    let mut daemon = start_daemon_with_env(&config, "a", &scenario.brokers, &Scenario::metrics(), &[("FAILPOINTS", &spec)]);
    Scenario::kill_at(&mut daemon, point);
    scenario.finish(&config)
}

#[test]
fn killed_before_the_transaction_commit() {
    kill_one_daemon_at("kill-commit", failpoints::COMMIT, 5);
}

/// The batch is committed in Kafka and not in the store: the restart reads
/// it back from the changelog instead of producing it again.
#[test]
fn killed_between_the_kafka_commit_and_the_store_write() {
    let restored = kill_one_daemon_at("kill-store", failpoints::STORE_WRITE, 5);
    assert!(restored > 0.0, "the restart must catch its store up from the changelog");
}

/// A new disk restores from the changelog and is killed half way; the next
/// start resumes the restore from what reached the disk.
#[test]
fn killed_in_the_middle_of_a_restore() {
    let group = "kill-restore";
    let scenario = Scenario::start(group, 32);
    let first = scenario.config(group, "a");
    let metrics = Scenario::metrics();
    let mut daemon = start_daemon(&first, "a", &scenario.brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(90));
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&metrics, "sessionflow_batch_duration_seconds_count", "") < 10.0 {
        assert!(Instant::now() < deadline, "no batches\n{}", daemon.tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());

    // Another host (empty disk, same instance id: a replacement).
    let second = scenario.dir.path().join("b.toml");
    std::fs::write(&second, std::fs::read_to_string(&first).unwrap().replace("state-a", "state-b")).unwrap();
    let spec = format!("{}=200*off->return", failpoints::RESTORE_READ);
    let mut restoring = start_daemon_with_env(&second, "b", &scenario.brokers, &Scenario::metrics(), &[("FAILPOINTS", &spec)]);
    Scenario::kill_at(&mut restoring, failpoints::RESTORE_READ);
    let restored = scenario.finish(&second);
    assert!(restored > 0.0, "the restart must resume the restore");
}

/// Two daemons; the first is killed inside the rebalance callback that
/// hands partitions to the second, which then owns everything.
#[test]
fn killed_while_handing_partitions_over() {
    let group = "kill-revoke";
    let scenario = Scenario::start(group, 33);
    let (config_a, config_b) = (scenario.config(group, "a"), scenario.config(group, "b"));
    let metrics_a = Scenario::metrics();
    let spec = format!("{}=return", failpoints::REVOKE);
    let mut a = start_daemon_with_env(&config_a, "a", &scenario.brokers, &metrics_a, &[("FAILPOINTS", &spec)]);
    wait_ready(&mut a, &metrics_a, Duration::from_secs(90));
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&metrics_a, "sessionflow_batch_duration_seconds_count", "") < 10.0 {
        assert!(Instant::now() < deadline, "no batches\n{}", a.tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    let _b_joins = start_daemon(&config_b, "b-joins", &scenario.brokers, &Scenario::metrics());
    Scenario::kill_at(&mut a, failpoints::REVOKE);
    drop(_b_joins);
    scenario.finish(&config_b);
}
