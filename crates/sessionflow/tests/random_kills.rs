//! Twenty SIGKILLs in one run: two daemons in one group share three input
//! partitions while input keeps arriving; again and again one of them,
//! chosen at random, is killed at a random moment (in start-up, restore, a
//! rebalance or a batch) and restarted. Now and
//! then the victim stays down past the session timeout, so the survivor
//! takes its partitions over (restoring them from the changelog) and hands
//! them back when it returns. The outputs are then read by the independent
//! checker (`tests/python/check_outputs.py`) and compared with the engine's
//! run: nothing lost, nothing different, and a repeat only as an exact,
//! contiguous copy of a batch a kill aborted (the embedded broker shows
//! aborted transactions, docs/daemon.md "Failure modes").

mod common;

use common::{INPUT, Proc, committed_offsets, end_offsets, start_daemon, start_embedded_broker, wait_ready};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;
const KILLS: usize = 20;
/// Longer than the tests' `session.timeout.ms` (`common::FAST_REBALANCE`).
const PAST_SESSION_TIMEOUT: Duration = Duration::from_secs(7);

fn write_config(dir: &Path, instance: &str) -> PathBuf {
    let path = dir.join(format!("{instance}.toml"));
    let kafka = format!(
        r#"
group_id = "kills"
instance_id = "{instance}"
commit_interval_ms = 50
max_batch_records = 150
create_topics = false
"#
    );
    common::write_daemon_config(&path, &dir.join(format!("state-{instance}")), &kafka, common::FAST_REBALANCE);
    path
}

struct Instance {
    name: &'static str,
    config: PathBuf,
    metrics: String,
    process: Proc,
    started: Instant,
}

impl Instance {
    fn start(config: PathBuf, name: &'static str, brokers: &str) -> Instance {
        let metrics = format!("127.0.0.1:{}", common::free_port());
        let process = start_daemon(&config, name, brokers, &metrics);
        Instance { name, config, metrics, process, started: Instant::now() }
    }

    fn restart(&mut self, brokers: &str) {
        self.process = start_daemon(&self.config, self.name, brokers, &self.metrics);
        self.started = Instant::now();
    }
}

/// Per partition, the furthest input offset either instance committed.
fn committed(instances: &[Instance]) -> Vec<i64> {
    let per_instance: Vec<Vec<i64>> = instances.iter().map(|i| committed_offsets(&i.metrics, PARTITIONS)).collect();
    (0..PARTITIONS as usize).map(|p| per_instance.iter().map(|o| o[p]).max().unwrap_or(0)).collect()
}

#[test]
#[allow(clippy::print_stderr)] // the kill schedule and the checker's report, in the test log
fn twenty_random_kills_of_two_instances_lose_and_double_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (config_a, config_b) = (write_config(dir.path(), "a"), write_config(dir.path(), "b"));
    let (_broker, brokers) = start_embedded_broker(&config_a, PARTITIONS);
    let mut instances = [Instance::start(config_a, "a", &brokers), Instance::start(config_b, "b", &brokers)];
    for instance in &mut instances {
        wait_ready(&mut instance.process, &instance.metrics, Duration::from_secs(60));
    }

    // Input arrives through the kills (about 120 records a second).
    let producer = {
        let brokers = brokers.clone();
        std::thread::spawn(move || {
            let sim = SimConfig { seed: 2026, malformed_rate: 0.01, erasure_rate: 0.01, ..SimConfig::default() };
            testkit::produce_paced(&brokers, INPUT, sim, 13_000, 0, &[], Some((30, Duration::from_millis(250))))
        })
    };
    let mut rng = SmallRng::seed_from_u64(20);
    let (mut mid_stream, mut while_ready, mut long_outages) = (0, 0, 0);
    for kill in 1..=KILLS {
        // Every other kill is timed from the victim's readiness (it lands
        // in a batch or a rebalance), the others from its start (they can
        // also land in start-up or restore).
        let victim = &mut instances[rng.random_range(0..2)];
        let after = Duration::from_millis(rng.random_range(50..2_500));
        if kill % 2 == 0 {
            wait_ready(&mut victim.process, &victim.metrics, Duration::from_secs(90));
            std::thread::sleep(after);
        } else {
            std::thread::sleep(after.saturating_sub(victim.started.elapsed()));
        }
        assert!(!victim.process.exited(), "{} exited by itself\n{}", victim.name, victim.process.tail());
        let was_ready = common::ready(&victim.metrics);
        victim.process.kill(); // SIGKILL
        while_ready += usize::from(was_ready);
        mid_stream += usize::from(!producer.is_finished());
        let outage = if rng.random_bool(0.25) { PAST_SESSION_TIMEOUT } else { Duration::ZERO };
        long_outages += usize::from(!outage.is_zero());
        let from = if kill % 2 == 0 { "readiness" } else { "start" };
        eprintln!("kill {kill}: {} {after:?} after its {from} (ready: {was_ready}), down for {outage:?}", victim.name);
        std::thread::sleep(outage);
        victim.restart(&brokers);
    }

    let sent = producer.join().expect("producer thread");
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent);
    let end = end_offsets(&input, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(180);
    while committed(&instances) != end {
        for i in &mut instances {
            assert!(!i.process.exited(), "{} exited\n{}", i.name, i.process.tail());
        }
        assert!(Instant::now() < deadline, "the input was not finished: {:?} of {end:?}", committed(&instances));
        std::thread::sleep(Duration::from_millis(300));
    }
    for i in &mut instances {
        assert!(i.process.terminate().success(), "{}: graceful shutdown\n{}", i.name, i.process.tail());
    }
    assert!(mid_stream >= 15, "only {mid_stream} of {KILLS} kills landed while input was arriving");
    assert!(while_ready >= 8, "only {while_ready} of {KILLS} kills hit a daemon that was ready");
    assert!(long_outages >= 2, "only {long_outages} outages past the session timeout");

    let (timeline_repeats, _) = common::assert_outputs_match(&brokers, &input, PARTITIONS, 100);
    eprintln!("timeline records shown twice by the embedded broker (aborted, then retried): {timeline_repeats}");
    let replay = common::replay_metadata(&instances[0].config, &brokers, PARTITIONS);
    let (passed, report) = common::check_outputs(&brokers, &replay, true);
    assert!(passed, "the independent checker failed the run:\n{report}");
    eprintln!("checker: {report}");
}
