//! A restore longer than `max.poll.interval.ms` keeps the instance in its
//! consumer group. rdkafka runs the rebalance callback, where partitions
//! are restored, after librdkafka's poll returned, so the restore's time
//! counts against the poll interval; before the fix a long restore made
//! librdkafka leave the group (a revocation, and a rebalance more). The
//! restore is slowed with a fault in the store's write path (`fail`): each
//! of its first store writes sleeps.

use sessionflow_codec::Codec;
use sessionflow_codec::avro::RecordKind;
use sessionflow_core::EngineConfig;
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::{DaemonConfig, KafkaSection, Shared, TopicsSection, testkit};
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 2;

#[test]
fn a_restore_longer_than_the_poll_interval_keeps_the_group() {
    let poll_interval = BTreeMap::from([("max.poll.interval.ms".to_owned(), "3000".to_owned()), ("session.timeout.ms".to_owned(), "3000".to_owned())]);
    let config = DaemonConfig {
        kafka: KafkaSection {
            brokers: String::new(),
            group_id: "long-restore".into(),
            instance_id: Some("long-restore-1".into()),
            commit_interval_ms: 50,
            max_batch_records: 100,
            create_topics: false,
            consumer_properties: poll_interval,
            ..KafkaSection::default()
        },
        topics: TopicsSection::default(),
        idle_advance_after_ms: 0,
        session_cache_bytes: 8 << 20,
    };
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    let config = DaemonConfig { kafka: KafkaSection { brokers: brokers.clone(), ..config.kafka }, ..config };
    let engine = EngineConfig { finalize_after_ms: 60_000, session_timeout_ms: 3_600_000, retain_after_final_ms: 600_000, ..EngineConfig::default() };

    // A first run fills the changelog.
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 12, ..SimConfig::default() }, 4_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    testkit::run_pipeline_until(&config, &engine, store, &ends, Duration::from_secs(120)).1.expect("first run");

    // A second instance on an empty disk restores it, slowly: 12 writes of
    // 500 ms, twice the poll interval.
    fail::cfg("store.write", "12*sleep(500)->off").expect("failpoint");
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let daemon = {
        let (config, engine, shared, store) = (config.clone(), engine.clone(), shared.clone(), store.clone());
        std::thread::spawn(move || sessionflow_kafka::run(&config, &engine, &Codec::json(), &store, &shared))
    };
    while !shared.ready.load(Ordering::SeqCst) {
        assert!(started.elapsed() < Duration::from_secs(120) && !daemon.is_finished(), "never ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let restore_took = started.elapsed();
    // Then a while of normal processing, in which a member that left the
    // group would see its partitions revoked.
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 13, ..SimConfig::default() }, 500, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    let ready_at = Instant::now();
    loop {
        let caught_up = ends.iter().all(|(p, end)| {
            shared.metrics.value("sessionflow_input_committed_offset", &[("topic", "cc.events.raw"), ("partition", &p.to_string())]) as i64 >= *end
        });
        if caught_up && ready_at.elapsed() > Duration::from_secs(6) {
            break;
        }
        assert!(ready_at.elapsed() < Duration::from_secs(120) && !daemon.is_finished(), "the second run did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
    shared.shutdown.store(true, Ordering::SeqCst);
    daemon.join().expect("thread").expect("second run");
    fail::remove("store.write");

    assert!(restore_took > Duration::from_secs(4), "the restore took {restore_took:?}: not longer than the poll interval");
    assert!(shared.metrics.value("sessionflow_restore_records_total", &[]) > 1_000.0);
    let revoked = shared.metrics.value("sessionflow_rebalances_total", &[("kind", "revoke")]);
    assert_eq!(revoked, 0.0, "partitions were revoked: the instance left the group during its restore");

    let expected = testkit::reference_run(&testkit::read_all(&brokers, "cc.events.raw", PARTITIONS), PARTITIONS, &engine);
    let got = testkit::topic_by_session(&testkit::read_all(&brokers, "cc.sessions.timeline", PARTITIONS), RecordKind::Timeline);
    if let Some(diff) = testkit::first_difference(&testkit::outputs_by_session(&expected, true), &got) {
        panic!("timeline: {diff}");
    }
}
