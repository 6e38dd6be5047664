//! Failures that used to hang the daemon (with `/healthz` green) or be
//! retried forever, shown with the embedded broker's fault injection:
//!
//! - a transaction commit that keeps failing with a retriable error (the
//!   coordinator is loading) is retried as librdkafka documents, and the
//!   daemon goes on; before, the failed commit was followed by an abort
//!   that could not run while the commit was in progress, and every later
//!   batch failed;
//! - a batch that fails over and over turns `/healthz` unhealthy, and
//!   healthy again once the fault is gone;
//! - fatal producer errors stop the daemon with the cause, in both
//!   delivery modes, and so does a fatal consumer error (fenced by another
//!   member with the same `group.instance.id`);
//! - the broker down for a few seconds mid-run loses nothing.

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use sessionflow_codec::avro::RecordKind;
use sessionflow_core::EngineConfig;
use sessionflow_kafka::embedded::{EmbeddedBroker, Fault, pipeline_topics};
use sessionflow_kafka::{DaemonConfig, Delivery, RunTotals, Shared, testkit};
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

const PARTITIONS: i32 = 2;

fn config(brokers: &str, group: &str, delivery: Delivery) -> DaemonConfig {
    let mut config = testkit::test_config(brokers, group, 200);
    config.kafka.delivery = delivery;
    config.kafka.call_timeout_ms = 2_000;
    config.kafka.stall_timeout_ms = 1_500;
    config
}

fn engine() -> EngineConfig {
    testkit::test_engine()
}

struct Running {
    shared: Arc<Shared>,
    thread: JoinHandle<anyhow::Result<RunTotals>>,
    _dir: tempfile::TempDir,
}

fn start(config: &DaemonConfig) -> Running {
    // RUST_LOG=sessionflow_kafka=debug shows what the daemon did.
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    let (shared, thread) = testkit::spawn_pipeline(config, &engine(), store);
    Running { shared, thread, _dir: dir }
}

fn caught_up(shared: &Shared, ends: &BTreeMap<i32, i64>) -> bool {
    testkit::caught_up(shared, "cc.events.raw", ends)
}

/// A broker with the pipeline's topics for `group`, the daemon's settings
/// for it, and `records` simulated input records (seed `seed`) produced.
fn setup(group: &str, delivery: Delivery, seed: u64, records: usize) -> (EmbeddedBroker, String, DaemonConfig) {
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config("", group, delivery), PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    let config = config(&brokers, group, delivery);
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed, ..SimConfig::default() }, records, 0);
    (broker, brokers, config)
}

#[test]
fn a_commit_that_fails_with_a_retriable_error_is_retried_and_the_daemon_goes_on() {
    let (broker, brokers, config) = setup("commit-retry", Delivery::ExactlyOnce, 21, 1_000);
    let running = start(&config);
    testkit::wait_for("the first batches", Duration::from_secs(60), || running.shared.batches.load(Ordering::Relaxed) >= 3);

    // EndTxn answered "coordinator loading" for longer than a commit call
    // may wait (librdkafka backs off up to a second between its retries).
    broker.inject(Fault::RequestErrors(RDKafkaApiKey::EndTxn, vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS; 12])).expect("fault");
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 22, ..SimConfig::default() }, 1_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    testkit::wait_for("the daemon to catch up", Duration::from_secs(120), || caught_up(&running.shared, &ends) || running.thread.is_finished());
    running.shared.shutdown.store(true, Ordering::SeqCst);
    let totals = running.thread.join().expect("thread").expect("the daemon runs on");

    testkit::assert_metrics_balance(&running.shared, "cc.sessions.timeline");
    let retries = running.shared.metrics.value("sessionflow_transaction_commit_retries_total", &[]);
    assert!(retries > 0.0, "the fault did not make a commit call fail");
    assert_eq!(totals.aborted, 0, "a commit in progress was aborted");
    // Nothing was aborted, so even this broker shows every record once.
    let expected = testkit::reference_run(&testkit::read_all(&brokers, "cc.events.raw", PARTITIONS), PARTITIONS, &engine());
    let got = testkit::topic_by_session(&testkit::read_all(&brokers, "cc.sessions.timeline", PARTITIONS), RecordKind::Timeline);
    if let Some(diff) = testkit::first_difference(&testkit::outputs_by_session(&expected, true), &got) {
        panic!("timeline: {diff}");
    }
}

#[test]
fn batches_failing_over_and_over_turn_health_red_until_they_pass() {
    let (broker, brokers, config) = setup("stall", Delivery::ExactlyOnce, 23, 500);
    let running = start(&config);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    testkit::wait_for("the daemon to catch up", Duration::from_secs(60), || caught_up(&running.shared, &ends));
    // Idle and caught up is healthy, however long it lasts.
    std::thread::sleep(Duration::from_millis(2_000));
    assert_eq!(running.shared.stalled(), None);

    // Every partition the daemon adds to a transaction refused (only a
    // transactional producer asks): each batch is aborted and retried.
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 24, ..SimConfig::default() }, 300, 0);
    broker
        .inject(Fault::RequestErrors(RDKafkaApiKey::AddPartitionsToTxn, vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 5_000]))
        .expect("fault");
    testkit::wait_for("/healthz to turn unhealthy", Duration::from_secs(60), || running.shared.stalled().is_some());
    let why = running.shared.stalled().expect("stalled");
    assert!(why.contains("no batch committed"), "{why}");
    assert!(running.shared.metrics.value("sessionflow_transaction_aborts_total", &[]) > 0.0);

    broker.inject(Fault::ClearRequestErrors(RDKafkaApiKey::AddPartitionsToTxn)).expect("fault cleared");
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    testkit::wait_for("the daemon to recover", Duration::from_secs(60), || caught_up(&running.shared, &ends) && running.shared.stalled().is_none());
    running.shared.shutdown.store(true, Ordering::SeqCst);
    running.thread.join().expect("thread").expect("the daemon ran on");
    // Aborted batches were counted neither as consumed nor as produced.
    testkit::assert_metrics_balance(&running.shared, "cc.sessions.timeline");
}

/// Starts the daemon, shows it `fault` (`before_start`: before the daemon
/// exists, else once it caught up with a first input), and expects it to
/// stop with an error that says what happened (`says`: words it must hold).
fn a_fatal_error_stops_the_daemon(delivery: Delivery, fault: Fault, before_start: bool, says: &[&str]) {
    let group = format!("fatal-{delivery:?}").to_lowercase();
    let (broker, brokers, config) = setup(&group, delivery, 25, 300);
    if before_start {
        broker.inject(fault.clone()).expect("fault");
    }
    let running = start(&config);
    if !before_start {
        let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
        testkit::wait_for("the daemon to catch up", Duration::from_secs(60), || caught_up(&running.shared, &ends));
        testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 26, ..SimConfig::default() }, 300, 0);
        broker.inject(fault).expect("fault");
    }
    testkit::wait_for("the daemon to stop", Duration::from_secs(60), || running.thread.is_finished());
    let outcome = running.thread.join().expect("thread");
    let message = format!("{:#}", outcome.expect_err("a fatal error stops the daemon"));
    assert!(says.iter().all(|word| message.contains(word)), "{message}");
}

#[test]
fn a_fenced_transactional_producer_stops_the_daemon() {
    let fenced = Fault::RequestErrors(RDKafkaApiKey::AddPartitionsToTxn, vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED; 5]);
    a_fatal_error_stops_the_daemon(Delivery::ExactlyOnce, fenced, false, &["fenced", "kafka.instance_id"]);
}

/// At least once, before the fix a fatal error of the idempotent producer
/// failed every batch and the daemon retried them forever.
#[test]
fn a_fatal_idempotent_producer_stops_the_daemon_at_least_once() {
    // librdkafka makes this answer to the producer's id request fatal.
    let refused = Fault::RequestErrors(RDKafkaApiKey::InitProducerId, vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED; 5]);
    a_fatal_error_stops_the_daemon(Delivery::AtLeastOnce, refused, true, &["fatal"]);
}

/// A consumer fenced by another member with its `group.instance.id`
/// (static membership) gets a fatal error from librdkafka: the daemon
/// stops, naming the cause and the key to check, in both delivery modes.
/// The embedded broker's classic groups never fence a member by
/// themselves, so the group coordinator's heartbeat answer is injected.
fn a_fenced_consumer_stops_the_daemon(delivery: Delivery) {
    let fenced = Fault::RequestErrors(RDKafkaApiKey::Heartbeat, vec![RDKafkaRespErr::RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID; 5]);
    a_fatal_error_stops_the_daemon(delivery, fenced, false, &["consumer", "fenced", "kafka.instance_id"]);
}

#[test]
fn a_fenced_consumer_stops_the_daemon_exactly_once() {
    a_fenced_consumer_stops_the_daemon(Delivery::ExactlyOnce);
}

#[test]
fn a_fenced_consumer_stops_the_daemon_at_least_once() {
    a_fenced_consumer_stops_the_daemon(Delivery::AtLeastOnce);
}

/// The only broker down for a few seconds while the daemon works: batches
/// fail and are retried or the calls wait, the daemon neither exits nor
/// hangs, and once the broker is back it catches up. Every record the
/// engine's run has is on the broker; a record seen twice is an exact copy
/// (this broker shows the records of aborted transactions, see
/// docs/daemon.md), anything else fails the test.
#[test]
fn the_broker_down_and_back_loses_nothing() {
    let (broker, brokers, config) = setup("broker-down", Delivery::ExactlyOnce, 27, 1_000);
    let running = start(&config);
    testkit::wait_for("the first batches", Duration::from_secs(60), || running.shared.batches.load(Ordering::Relaxed) >= 2);
    broker.inject(Fault::BrokerDown(1)).expect("down");
    std::thread::sleep(Duration::from_secs(3));
    broker.inject(Fault::BrokerUp(1)).expect("up");
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 28, ..SimConfig::default() }, 1_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    testkit::wait_for("the daemon to catch up", Duration::from_secs(120), || caught_up(&running.shared, &ends) || running.thread.is_finished());
    running.shared.shutdown.store(true, Ordering::SeqCst);
    running.thread.join().expect("thread").expect("the daemon ran on");
    testkit::assert_metrics_balance(&running.shared, "cc.sessions.timeline");

    let expected = testkit::reference_run(&testkit::read_all(&brokers, "cc.events.raw", PARTITIONS), PARTITIONS, &engine());
    let got = testkit::topic_by_session(&testkit::read_all(&brokers, "cc.sessions.timeline", PARTITIONS), RecordKind::Timeline);
    let expected = testkit::outputs_by_session(&expected, true);
    assert!(expected.len() > 50);
    for (session, records) in &expected {
        let seen = got.get(session).cloned().unwrap_or_default();
        // Exact repeats (an aborted batch shown, then its retry) collapse.
        let mut unique: Vec<&serde_json::Value> = Vec::new();
        for r in &seen {
            if let Some(first) = unique.iter().find(|u| u["seq"] == r["seq"]) {
                assert_eq!(*first, r, "{session}: two different records with seq {}", r["seq"]);
            } else {
                unique.push(r);
            }
        }
        let unique: Vec<serde_json::Value> = unique.into_iter().cloned().collect();
        assert_eq!(&unique, records, "{session}: the timeline differs from the engine's run");
    }
}
