//! A restore that takes longer than `max.poll.interval.ms` and
//! `session.timeout.ms` keeps the instance in its group.
//!
//! librdkafka enforces `max.poll.interval.ms` once a member has had its
//! first assignment, so the restore that matters is a later one: two
//! instances share the input, one stops, and the other takes its
//! partitions over while a failpoint slows every changelog record down, so
//! that restore lasts several times the group's timeouts. The survivor must
//! keep every partition it was given (none revoked and assigned again), and
//! the outputs equal the engine's run. Without the restore's polls of the
//! group's consumer, librdkafka says "Application maximum poll interval
//! exceeded", leaves the group, and the partitions come back in a new
//! generation. One test per binary: failpoints are process-wide.

use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::{DaemonConfig, RunTotals, Shared, TopicsSection, failpoints, testkit};
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 2;
/// Both group timeouts; the restore is made to last several times this.
const GROUP_TIMEOUT_MS: u64 = 6_000;

fn config(brokers: &str, instance: &str) -> DaemonConfig {
    let mut config = testkit::test_config(brokers, "long-restore", 200);
    config.kafka.instance_id = Some(instance.into());
    for (key, value) in [
        ("session.timeout.ms", GROUP_TIMEOUT_MS.to_string()),
        ("max.poll.interval.ms", GROUP_TIMEOUT_MS.to_string()),
        ("heartbeat.interval.ms", "500".to_owned()),
    ] {
        config.kafka.consumer_properties.insert(key.into(), value);
    }
    config
}

struct Instance {
    shared: Arc<Shared>,
    thread: JoinHandle<anyhow::Result<RunTotals>>,
    _disk: tempfile::TempDir,
}

fn start(config: &DaemonConfig) -> Instance {
    let disk = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(disk.path(), &StoreConfig::default()).expect("store"));
    let (shared, thread) = testkit::spawn_pipeline(config, &testkit::test_engine(), store);
    Instance { shared, thread, _disk: disk }
}

impl Instance {
    fn assigned(&self) -> f64 {
        self.shared.metrics.value("sessionflow_rebalances_total", &[("kind", "assign")])
    }

    fn revoked(&self) -> f64 {
        self.shared.metrics.value("sessionflow_rebalances_total", &[("kind", "revoke")])
    }

    /// Partitions held now.
    fn held(&self) -> f64 {
        self.assigned() - self.revoked()
    }

    fn stop(self) -> (Arc<Shared>, RunTotals) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let totals = self.thread.join().expect("the pipeline thread panicked").expect("the pipeline ran to its end");
        (self.shared, totals)
    }
}

#[test]
fn a_restore_longer_than_the_poll_interval_keeps_the_partitions() {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config("", "a"), PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 41, ..SimConfig::default() }, 2_000, 0);

    // A processes everything; B joins and gets a share of the partitions.
    let a = start(&config(&brokers, "a"));
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    testkit::wait_for("A to catch up", Duration::from_secs(60), || testkit::caught_up(&a.shared, "cc.events.raw", &ends));
    let b = start(&config(&brokers, "b"));
    let partitions = f64::from(2 * PARTITIONS);
    // Settled: the split has held for two seconds (the rebalance may take
    // more than one round).
    let mut split_since: Option<Instant> = None;
    testkit::wait_for("the group to split the partitions", Duration::from_secs(60), || {
        let ready = a.shared.ready.load(Ordering::SeqCst) && b.shared.ready.load(Ordering::SeqCst);
        let split = ready && a.held() > 0.0 && b.held() > 0.0 && a.held() + b.held() == partitions;
        split_since = if split { split_since.or(Some(Instant::now())) } else { None };
        split_since.is_some_and(|t| t.elapsed() > Duration::from_secs(2))
    });
    let (b_assigned, b_revoked) = (b.assigned(), b.revoked());

    // Every changelog record of A's partitions now waits, so that B's
    // restore of them takes about four times the group's timeouts.
    let changelog = testkit::high_watermarks(&brokers, &TopicsSection::changelog("long-restore"), PARTITIONS);
    let records: i64 = changelog.values().sum();
    assert!(records > 500, "a changelog of {records} records is too short to slow down");
    let per_record_ms = (8 * GROUP_TIMEOUT_MS).div_ceil(records as u64);
    fail::cfg(failpoints::RESTORE_READ, &format!("sleep({per_record_ms})")).expect("failpoint");
    a.stop();

    // B takes A's partitions over (after A's session times out: a static
    // member does not leave on close) and catches up with more input.
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 42, ..SimConfig::default() }, 1_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    let took_over = Instant::now();
    testkit::wait_for("B to catch up", Duration::from_secs(180), || testkit::caught_up(&b.shared, "cc.events.raw", &ends) || b.thread.is_finished());
    fail::remove(failpoints::RESTORE_READ);
    let took = took_over.elapsed();
    let (assigned, revoked) = (b.assigned(), b.revoked());
    let (b_shared, _) = b.stop();

    assert!(took > Duration::from_millis(2 * GROUP_TIMEOUT_MS), "the restore was not slowed down ({took:?})");
    assert!(b_shared.metrics.value("sessionflow_restore_records_total", &[]) > 0.0, "B restored nothing");
    // The group's rebalance gave B every partition (input and repartition
    // topic) once, after it handed back its own (eager protocol), and
    // nothing more: an instance that leaves the group during the restore
    // has them all revoked and assigned again.
    let held = b_assigned - b_revoked;
    assert_eq!(
        (assigned - b_assigned, revoked - b_revoked),
        (partitions, held),
        "B's partitions assigned and revoked meanwhile: B lost them during the restore"
    );
    testkit::assert_outputs_equal_engine_run(&brokers, "cc.events.raw", PARTITIONS, &testkit::test_engine());
}
