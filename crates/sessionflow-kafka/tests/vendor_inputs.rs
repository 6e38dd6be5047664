//! One input topic per vendor format (`[[topics.inputs]]`) into one
//! pipeline on the embedded broker: the example sessions of
//! `examples/vendors/`, keyed by session as a bridge writes them (Zoom's
//! without a key, so they take the repartition topic, whose records name
//! their input topic for the adapter on the way back). The read_committed
//! outputs equal the engine's run of the same native records through the
//! same adapters.
//!
//! The vendors' example sessions lie months apart in event time and share
//! the partition's watermark, so the engine allows that much lateness here:
//! no timer fires, and each session's outputs depend on its own records
//! alone, whatever order the topics are read in.

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::Value;
use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, adapt_for_batch, adapter};
use sessionflow_codec::avro::RecordKind;
use sessionflow_core::memstore::MemState;
use sessionflow_core::{Batch, EngineConfig, InputPosition, InputRecord, Millis};
use sessionflow_kafka::config::InputTopic;
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_store::{Store, StoreConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const VENDORS: [InputFormat; 5] =
    [InputFormat::AmazonConnect, InputFormat::GenesysCloud, InputFormat::TwilioTaskrouter, InputFormat::ZoomContactCenter, InputFormat::CcaiPlatform];

fn topic(format: InputFormat) -> String {
    format!("vendor.{format}")
}

/// Every example record of a vendor, in file-name then line order.
fn examples(format: InputFormat) -> Vec<String> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()))
        .join("../../examples/vendors")
        .join(format.as_str());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).expect("examples").map(|e| e.expect("entry").path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    files
        .iter()
        .flat_map(|p| std::fs::read_to_string(p).expect("read").lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// The session a bridge keys a record by: its first canonical event's.
fn session_key(format: InputFormat, record: &str) -> Option<String> {
    let events = adapter(format, &AdapterOptions::default()).adapt(record.as_bytes(), &mut MemoryState::default()).ok()?;
    events.first().map(|e| e.session_id.to_string())
}

fn engine() -> EngineConfig {
    EngineConfig { allowed_lateness_ms: 10 * 365 * 86_400_000, ..testkit::test_engine() }
}

/// Timeline records of re-keyed input name the repartition topic as their
/// input; the comparison leaves provenance out for those.
fn without_provenance(by_session: &mut testkit::BySession, sessions: &[String]) {
    for id in sessions {
        for record in by_session.get_mut(id).into_iter().flatten() {
            if let Value::Object(map) = record {
                map.remove("input");
            }
        }
    }
}

#[test]
fn one_topic_per_vendor_equals_the_engine_run_of_the_same_records() {
    let mut config = testkit::test_config("", "vendors", 50);
    config.topics.input.clear();
    config.topics.inputs = VENDORS.iter().map(|&format| InputTopic { name: topic(format), format, session_identity: Default::default() }).collect();
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, 1)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    config.kafka.brokers = brokers.clone();

    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).set("enable.idempotence", "true").create().expect("producer");
    let mut keyless_sessions = Vec::new();
    for format in VENDORS {
        for record in examples(format) {
            let key = session_key(format, &record);
            let keyed = format != InputFormat::ZoomContactCenter;
            if !keyed && let Some(key) = &key {
                keyless_sessions.push(key.clone());
            }
            let name = topic(format);
            let mut out = BaseRecord::<str, str>::to(&name).payload(&record).partition(0);
            if keyed && let Some(key) = &key {
                out = out.key(key);
            }
            producer.send(out).map_err(|(e, _)| e).expect("send");
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    let (shared, daemon) = testkit::spawn_pipeline(&config, &engine(), store);
    let ends: Vec<(String, std::collections::BTreeMap<i32, i64>)> =
        VENDORS.iter().map(|&f| (topic(f), testkit::high_watermarks(&brokers, &topic(f), 1))).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ends.iter().all(|(t, e)| testkit::caught_up(&shared, t, e)) {
        assert!(!daemon.is_finished(), "the pipeline stopped");
        assert!(Instant::now() < deadline, "the pipeline did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The re-keyed records come back through the repartition topic.
    let repartition = sessionflow_kafka::TopicsSection::repartition("vendors");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !testkit::caught_up(&shared, &repartition, &testkit::high_watermarks(&brokers, &repartition, 1)) {
        assert!(Instant::now() < deadline, "the repartition topic was not caught up");
        std::thread::sleep(Duration::from_millis(100));
    }
    shared.shutdown.store(true, Ordering::SeqCst);
    daemon.join().expect("thread").expect("the pipeline ran");
    assert!(!keyless_sessions.is_empty());
    assert!(shared.metrics.value("sessionflow_repartitioned_total", &[]) > 0.0, "the keyless records were re-keyed");

    // The engine over the same native records, each vendor's in order.
    let state = MemState::default();
    let engine = engine();
    let mut batch = Batch::new(&engine, &state, Millis(0)).expect("batch");
    for format in VENDORS {
        let adapter = adapter(format, &AdapterOptions::default());
        let name: Arc<str> = topic(format).into();
        for (offset, record) in examples(format).iter().enumerate() {
            let position = InputPosition { topic: name.clone(), partition: 0, offset: offset as i64 };
            let key = session_key(format, record);
            let key = key.as_deref().map(str::as_bytes);
            match adapt_for_batch(adapter.as_ref(), &batch, Some(record.as_bytes())) {
                Ok(events) => {
                    for event in events {
                        batch.record(InputRecord { key, value: Some(record.as_bytes()), position: position.clone(), event: Ok(event) }).expect("record");
                    }
                }
                Err(error) => batch.record(InputRecord { key, value: Some(record.as_bytes()), position, event: Err(error) }).expect("record"),
            }
        }
    }
    let expected = batch.finish().outputs;
    let mut sources = std::collections::BTreeSet::new();
    for (topic_name, kind, timeline) in [("cc.sessions.timeline", RecordKind::Timeline, true), ("cc.sessions.metadata", RecordKind::Metadata, false)] {
        let mut got = testkit::topic_by_session(&testkit::read_all(&brokers, topic_name, 1), kind);
        let mut exp = testkit::outputs_by_session(&expected, timeline);
        if timeline {
            without_provenance(&mut got, &keyless_sessions);
            without_provenance(&mut exp, &keyless_sessions);
            sources.extend(exp.values().flatten().filter_map(|r| r["source"].as_str().map(str::to_owned)));
        }
        assert!(exp.len() >= 20, "{} sessions: the examples hold four or more per vendor", exp.len());
        if let Some(diff) = testkit::first_difference(&exp, &got) {
            panic!("{topic_name}: {diff}");
        }
    }
    assert_eq!(sources.len(), 5, "every vendor's sessions on the timeline: {sources:?}");
    let dead = testkit::dead_letter_reasons(&testkit::read_all(&brokers, "cc.events.dlq", 1));
    assert_eq!(dead, testkit::expected_dead_letter_reasons(&expected));
}
