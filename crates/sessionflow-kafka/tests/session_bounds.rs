//! Each per-session bound on the embedded broker: with the bound lowered so
//! that simulated traffic crosses it, the sessions past it get `oversize`
//! dead letters naming the bound's key, and every output on the broker
//! equals the engine's run with the same bound: the bounded sessions as the
//! engine bounds them, all other sessions and partitions flowing unchanged.

use rdkafka::Message;
use rdkafka::message::Headers;
use sessionflow_codec::avro::RecordKind;
use sessionflow_core::{EngineConfig, Output};
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::{DaemonConfig, KafkaSection, TopicsSection, testkit};
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 3;

fn bounded_run(group: &str, engine: EngineConfig, key: &str) {
    let config = DaemonConfig {
        kafka: KafkaSection {
            brokers: String::new(),
            group_id: group.into(),
            instance_id: Some(format!("{group}-1")),
            commit_interval_ms: 50,
            max_batch_records: 200,
            create_topics: false,
            ..KafkaSection::default()
        },
        topics: TopicsSection::default(),
        idle_advance_after_ms: 0,
        session_cache_bytes: 8 << 20,
    };
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    let config = DaemonConfig { kafka: KafkaSection { brokers: brokers.clone(), ..config.kafka }, ..config };
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 51, ..SimConfig::default() }, 2_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    let (_, run) = testkit::run_pipeline_until(&config, &engine, store, &ends, Duration::from_secs(120));
    run.expect("the daemon runs on");

    let expected = testkit::reference_run(&testkit::read_all(&brokers, "cc.events.raw", PARTITIONS), PARTITIONS, &engine);
    let bounded = expected.iter().filter(|o| matches!(o, Output::DeadLetter(d) if d.detail.contains(key))).count();
    assert!(bounded > 0, "the traffic crosses no {key}");
    let dead_letters = testkit::read_all(&brokers, "cc.events.dlq", PARTITIONS);
    let on_broker = dead_letters
        .iter()
        .filter(|m| m.headers().is_some_and(|h| h.iter().any(|h| h.key == "dlq.detail" && h.value.is_some_and(|v| String::from_utf8_lossy(v).contains(key)))))
        .count();
    assert_eq!(on_broker, bounded, "oversize dead letters naming {key}");
    for (topic, kind, timeline) in [("cc.sessions.timeline", RecordKind::Timeline, true), ("cc.sessions.metadata", RecordKind::Metadata, false)] {
        let got = testkit::topic_by_session(&testkit::read_all(&brokers, topic, PARTITIONS), kind);
        let exp = testkit::outputs_by_session(&expected, timeline);
        assert!(exp.len() > 50);
        if let Some(diff) = testkit::first_difference(&exp, &got) {
            panic!("{key}, {topic}: {diff}");
        }
    }
}

fn engine() -> EngineConfig {
    EngineConfig { finalize_after_ms: 60_000, session_timeout_ms: 3_600_000, retain_after_final_ms: 600_000, ..EngineConfig::default() }
}

#[test]
fn events_per_session() {
    bounded_run("bound-events", EngineConfig { max_events_per_session: 12, ..engine() }, "engine.max_events_per_session");
}

#[test]
fn bytes_per_session() {
    bounded_run("bound-bytes", EngineConfig { max_session_bytes: 2_000, ..engine() }, "engine.max_session_bytes");
}

#[test]
fn entries_per_list() {
    bounded_run("bound-lists", EngineConfig { max_list_entries: 1, ..engine() }, "engine.max_list_entries");
}

#[test]
fn custom_data_bytes() {
    bounded_run("bound-custom-data", EngineConfig { max_custom_data_bytes: 40, ..engine() }, "engine.max_custom_data_bytes");
}
