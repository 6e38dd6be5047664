//! Each per-session bound on the embedded broker: with the bound lowered so
//! that simulated traffic crosses it, the sessions past it get `oversize`
//! dead letters naming the bound's key, and every output on the broker
//! equals the engine's run with the same bound: the bounded sessions as the
//! engine bounds them, all other sessions and partitions flowing unchanged.

use rdkafka::Message;
use rdkafka::message::Headers;
use sessionflow_core::{EngineConfig, Output};
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 3;

fn bounded_run(group: &str, engine: &EngineConfig, key: &str) {
    let mut config = testkit::test_config("", group, 200);
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    config.kafka.brokers = brokers.clone();
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 51, ..SimConfig::default() }, 2_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    let (_, run) = testkit::run_pipeline_until(&config, engine, store, &ends, Duration::from_secs(120));
    run.expect("the daemon runs on");

    let expected = testkit::reference_run(&testkit::read_all(&brokers, "cc.events.raw", PARTITIONS), PARTITIONS, engine);
    let bounded = expected.iter().filter(|o| matches!(o, Output::DeadLetter(d) if d.detail.contains(key))).count();
    assert!(bounded > 0, "the traffic crosses no {key}");
    let dead_letters = testkit::read_all(&brokers, "cc.events.dlq", PARTITIONS);
    let on_broker = dead_letters
        .iter()
        .filter(|m| m.headers().is_some_and(|h| h.iter().any(|h| h.key == "dlq.detail" && h.value.is_some_and(|v| String::from_utf8_lossy(v).contains(key)))))
        .count();
    assert_eq!(on_broker, bounded, "oversize dead letters naming {key}");
    testkit::assert_outputs_equal_engine_run(&brokers, "cc.events.raw", PARTITIONS, engine);
}

#[test]
fn events_per_session() {
    bounded_run("bound-events", &EngineConfig { max_events_per_session: 12, ..testkit::test_engine() }, "engine.max_events_per_session");
}

#[test]
fn bytes_per_session() {
    bounded_run("bound-bytes", &EngineConfig { max_session_bytes: 2_000, ..testkit::test_engine() }, "engine.max_session_bytes");
}

#[test]
fn entries_per_list() {
    bounded_run("bound-lists", &EngineConfig { max_list_entries: 1, ..testkit::test_engine() }, "engine.max_list_entries");
}

#[test]
fn custom_data_bytes() {
    bounded_run("bound-custom-data", &EngineConfig { max_custom_data_bytes: 40, ..testkit::test_engine() }, "engine.max_custom_data_bytes");
}
