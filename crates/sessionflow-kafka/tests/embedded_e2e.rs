//! End to end on the embedded broker: produced events in, read_committed
//! outputs out, equal to the engine run over each input partition's records
//! in offset order (what `replay` does with one partition).

use rdkafka::message::Message;
use serde_json::Value;
use sessionflow_codec::Codec;
use sessionflow_codec::avro::RecordKind;
use sessionflow_core::EngineConfig;
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_kafka::{DaemonConfig, Delivery, KafkaSection, Shared, TopicsSection};
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;

fn daemon_config(brokers: &str, delivery: Delivery) -> DaemonConfig {
    DaemonConfig {
        kafka: KafkaSection {
            brokers: brokers.to_owned(),
            group_id: "e2e".into(),
            instance_id: Some("e2e-1".into()),
            delivery,
            commit_interval_ms: 50,
            max_batch_records: 300,
            create_topics: false,
            ..KafkaSection::default()
        },
        topics: TopicsSection::default(),
        // Deterministic: no wall-clock watermark.
        idle_advance_after_ms: 0,
        session_cache_bytes: 64 << 20,
    }
}

fn engine() -> EngineConfig {
    testkit::test_engine()
}

fn produce(brokers: &str, records: usize, keyless_one_in: usize) -> usize {
    testkit::produce(brokers, "cc.events.raw", SimConfig { seed: 77, malformed_rate: 0.02, ..SimConfig::default() }, records, keyless_one_in)
}

fn read_all(brokers: &str, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    testkit::read_all(brokers, topic, PARTITIONS)
}

/// Runs the daemon until it consumed `sent` input records and everything it re-keyed.
fn run_daemon(config: &DaemonConfig, engine: &EngineConfig, sent: usize, expect_rekeyed: bool) -> Arc<Shared> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).unwrap());
    let (shared, daemon) = testkit::spawn_pipeline(config, engine, store);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = &shared.metrics;
        let consumed = m.value("sessionflow_records_in_total", &[("topic", "cc.events.raw")]);
        let rekeyed_in = m.value("sessionflow_records_in_total", &[("topic", "e2e-sessionflow-repartition")]);
        let rekeyed_out = m.value("sessionflow_repartitioned_total", &[]);
        if consumed as usize >= sent && rekeyed_in >= rekeyed_out && (rekeyed_out > 0.0) == expect_rekeyed {
            break;
        }
        assert!(Instant::now() < deadline, "daemon did not catch up: {consumed}/{sent} consumed, {rekeyed_in}/{rekeyed_out} re-keyed");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    shared.shutdown.store(true, Ordering::SeqCst);
    let totals = daemon.join().unwrap().unwrap();
    assert_eq!(totals.aborted, 0);
    assert!(shared.ready.load(Ordering::SeqCst));
    shared
}

fn assert_accounting(shared: &Shared) {
    assert!(testkit::assert_metrics_balance(shared, "cc.sessions.timeline") > 0.0);
}

#[test]
fn rekeyed_records_reach_their_session_exactly_once() {
    let config = daemon_config("", Delivery::ExactlyOnce);
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, PARTITIONS)).unwrap();
    let brokers = broker.bootstrap_servers().to_owned();
    let config = daemon_config(&brokers, Delivery::ExactlyOnce);
    let sent = produce(&brokers, 1_500, 10);
    let shared = run_daemon(&config, &engine(), sent, true);
    assert_accounting(&shared);
    let codec = Codec::json();
    let messages = read_all(&brokers, "cc.sessions.timeline");
    let timeline: Vec<Value> =
        messages.iter().map(|m| codec.decode_record(sessionflow_codec::avro::RecordKind::Timeline, m.payload().unwrap()).unwrap()).collect();
    // Each timeline record's Kafka timestamp is its event time.
    for (m, t) in messages.iter().zip(&timeline) {
        let occurred_at = sessionflow_core::Millis::parse_rfc3339(t["occurred_at"].as_str().unwrap()).unwrap();
        assert_eq!(m.timestamp().to_millis(), Some(occurred_at.0), "{t}");
    }
    let mut seen = std::collections::HashSet::new();
    let mut task_of: BTreeMap<String, i64> = BTreeMap::new();
    let mut via_repartition = 0;
    for t in &timeline {
        let id = t["session_id"].as_str().unwrap().to_owned();
        assert!(seen.insert((id.clone(), t["event_id"].as_str().unwrap().to_owned())), "{id}: an event twice on the timeline");
        let task = t["input"]["partition"].as_i64().unwrap();
        assert_eq!(*task_of.entry(id.clone()).or_insert(task), task, "{id} split across partitions");
        via_repartition += usize::from(t["input"]["topic"] == "e2e-sessionflow-repartition");
    }
    assert!(via_repartition > 50, "{via_repartition} re-keyed events on the timeline");
}

#[test]
fn exactly_once_outputs_equal_the_engine_run_per_partition() {
    let config = daemon_config("", Delivery::ExactlyOnce);
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, PARTITIONS)).unwrap();
    let brokers = broker.bootstrap_servers().to_owned();
    let config = daemon_config(&brokers, Delivery::ExactlyOnce);
    let sent = produce(&brokers, 2_500, 0);
    let engine = engine();
    let shared = run_daemon(&config, &engine, sent, false);
    assert_accounting(&shared);

    // Every record is keyed: each task's input is its input partition, in offset order.
    let expected = testkit::reference_run(&read_all(&brokers, "cc.events.raw"), PARTITIONS, &engine);
    let exp_timeline = testkit::outputs_by_session(&expected, true);
    let exp_metadata = testkit::outputs_by_session(&expected, false);
    let got_timeline = testkit::topic_by_session(&read_all(&brokers, "cc.sessions.timeline"), RecordKind::Timeline);
    let got_metadata = testkit::topic_by_session(&read_all(&brokers, "cc.sessions.metadata"), RecordKind::Metadata);
    assert!(exp_timeline.len() > 50, "{} sessions", exp_timeline.len());
    if let Some(diff) = testkit::first_difference(&exp_timeline, &got_timeline) {
        panic!("timeline: {diff}");
    }
    if let Some(diff) = testkit::first_difference(&exp_metadata, &got_metadata) {
        panic!("metadata: {diff}");
    }

    // Dead letters: every malformed record, with its reason, for each class
    // the simulator produces.
    let dlq = testkit::dead_letter_reasons(&read_all(&brokers, "cc.events.dlq"));
    let expected_dlq = testkit::expected_dead_letter_reasons(&expected);
    assert_eq!(dlq, expected_dlq);
    for class in ["decode_error", "missing_field", "bad_timestamp", "bad_field_type", "oversize"] {
        assert!(dlq.get(class).is_some_and(|n| *n > 0), "no {class} dead letter in {dlq:?}");
    }

    let m = &shared.metrics;
    assert!(m.render().contains("sessionflow_sessions{state=\""));
}

/// Two instances share the input while a third of its records are keyed by
/// something other than their session and come back through the
/// repartition topic. Each task (partition *p* of the input and of the
/// repartition topic) must be owned by one instance: split between two,
/// each would fold the session's events it sees into its own copy of the
/// state, and the timeline would hold two records with the same `seq`.
/// Before the fix, the cooperative-sticky assignor split tasks this way.
#[test]
fn two_instances_keep_each_task_whole() {
    // RUST_LOG=sessionflow_kafka=info shows the rebalances.
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    let config = |brokers: &str, instance: &str| {
        let mut config = daemon_config(brokers, Delivery::ExactlyOnce);
        config.kafka.instance_id = Some(instance.into());
        // This broker completes a rebalance within the session timeout.
        config.kafka.consumer_properties.insert("session.timeout.ms".into(), "6000".into());
        config.kafka.consumer_properties.insert("heartbeat.interval.ms".into(), "500".into());
        config
    };
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config("", "a"), PARTITIONS)).unwrap();
    let brokers = broker.bootstrap_servers().to_owned();
    let engine = engine();
    let mut sent = produce(&brokers, 1_000, 3);
    let start = |instance: &str| {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).unwrap());
        let (shared, thread) = testkit::spawn_pipeline(&config(&brokers, instance), &engine, store);
        (shared, thread, dir)
    };
    let a = start("a");
    testkit::wait_for("A to start", Duration::from_secs(60), || a.0.metrics.value("sessionflow_records_in_total", &[("topic", "cc.events.raw")]) >= 200.0);
    let b = start("b");
    testkit::wait_for("B to get a partition", Duration::from_secs(60), || b.0.ready.load(Ordering::SeqCst) && b.0.assigned.load(Ordering::Relaxed) > 0);
    sent += testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 78, ..SimConfig::default() }, 1_500, 3);

    let total = |name: &str, labels: &[(&str, &str)]| a.0.metrics.value(name, labels) + b.0.metrics.value(name, labels);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let consumed = total("sessionflow_records_in_total", &[("topic", "cc.events.raw")]);
        let rekeyed_in = total("sessionflow_records_in_total", &[("topic", "e2e-sessionflow-repartition")]);
        let rekeyed_out = total("sessionflow_repartitioned_total", &[]);
        if consumed as usize >= sent && rekeyed_in >= rekeyed_out && rekeyed_out > 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "the instances did not catch up: {consumed}/{sent} consumed, {rekeyed_in}/{rekeyed_out} re-keyed");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    for (shared, thread, _) in [a, b] {
        shared.shutdown.store(true, Ordering::SeqCst);
        thread.join().unwrap().unwrap();
        assert!(shared.metrics.value("sessionflow_records_in_total", &[("topic", "cc.events.raw")]) > 0.0, "an instance consumed nothing");
    }

    // Per session: one task, and seq 1, 2, 3, ... each for one event (an
    // exact repeat is an aborted transaction this broker shows, see
    // docs/daemon.md).
    let codec = Codec::json();
    let mut by_session: BTreeMap<String, BTreeMap<i64, Value>> = BTreeMap::new();
    let mut via_repartition = 0;
    for m in read_all(&brokers, "cc.sessions.timeline") {
        let t = codec.decode_record(RecordKind::Timeline, m.payload().unwrap()).unwrap();
        via_repartition += usize::from(t["input"]["topic"] == "e2e-sessionflow-repartition");
        let id = t["session_id"].as_str().unwrap().to_owned();
        let seq = t["seq"].as_i64().unwrap();
        let session = by_session.entry(id.clone()).or_default();
        if let Some(before) = session.get(&seq) {
            assert_eq!(before["event_id"], t["event_id"], "{id}: two events with seq {seq}: the session was folded by two owners");
            assert_eq!(before["input"]["partition"], t["input"]["partition"], "{id}: seq {seq} from two tasks");
        }
        session.insert(seq, t);
    }
    assert!(via_repartition > 50, "{via_repartition} re-keyed events on the timeline");
    for (id, records) in &by_session {
        let seqs: Vec<i64> = records.keys().copied().collect();
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "{id}: seq not 1..n");
        let tasks: std::collections::BTreeSet<i64> = records.values().map(|t| t["input"]["partition"].as_i64().unwrap()).collect();
        assert_eq!(tasks.len(), 1, "{id}: events in {tasks:?}");
    }
}
