//! A changelog as Kafka's compaction leaves it restores exactly. A first
//! instance processes part of the input and stops; its changelog is
//! compacted the way the log cleaner does it (only the newest record of
//! each key kept, tombstones removed) into the changelog of a second
//! instance, which starts on an empty disk, restores from it, takes over
//! the input where the first stopped, and finishes. The union of both
//! instances' read_committed outputs equals the engine's run of the whole
//! input: no session, duplicate id, timer or metadata version lost.
//!
//! Before the fix the restore kept a batch's records only when its own
//! progress record followed them, which compaction removes for every
//! batch but the last: sessions came back missing.

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_kafka::{DaemonConfig, Delivery, TopicsSection};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use sessionflow_store::changelog::is_progress;
use sessionflow_store::{Store, StoreConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 2;
const INPUT: &str = "cc.events.raw";

fn config(brokers: &str, group: &str, delivery: Delivery) -> DaemonConfig {
    let mut config = testkit::test_config(brokers, group, 50);
    config.kafka.delivery = delivery;
    config
}

/// Sends simulated records `from..to` of one simulation, keyed by session.
fn produce_range(brokers: &str, from: usize, to: usize) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers).set("partitioner", "murmur2_random").create().expect("producer");
    let codec = sessionflow_codec::Codec::json();
    let sim = SimConfig { seed: 31, malformed_rate: 0.01, ..SimConfig::default() };
    for record in Simulator::new(sim).take(to).skip(from) {
        let (key, value) = match &record {
            SimRecord::Event(e) => (Some(e.session_id.as_bytes().to_vec()), codec.encode_event(e).expect("encodes")),
            SimRecord::Malformed { key, value, .. } => (key.clone(), value.clone()),
        };
        let mut r = BaseRecord::<[u8], [u8]>::to(INPUT).payload(&value);
        if let Some(k) = key.as_deref() {
            r = r.key(k);
        }
        sessionflow_kafka::clients::send(&producer, r).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// The log cleaner's result once it has cleaned everything and the
/// tombstones' retention passed: per partition, the newest record of each
/// key that is not a tombstone, in offset order.
fn compact(records: &[OwnedMessage]) -> Vec<&OwnedMessage> {
    let mut newest: BTreeMap<(i32, &[u8]), i64> = BTreeMap::new();
    for m in records {
        newest.insert((m.partition(), m.key().expect("keyed")), m.offset());
    }
    let mut kept: Vec<&OwnedMessage> =
        records.iter().filter(|m| newest[&(m.partition(), m.key().expect("keyed"))] == m.offset() && m.payload().is_some()).collect();
    kept.sort_by_key(|m| (m.partition(), m.offset()));
    kept
}

fn copy_to(brokers: &str, topic: &str, records: &[&OwnedMessage]) {
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().expect("producer");
    for m in records {
        let mut headers = OwnedHeaders::new();
        for h in m.headers().expect("labelled").iter() {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
        let mut r = BaseRecord::<[u8], [u8]>::to(topic).partition(m.partition()).key(m.key().expect("keyed")).headers(headers);
        if let Some(v) = m.payload() {
            r = r.payload(v);
        }
        sessionflow_kafka::clients::send(&producer, r).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn takes_over_from_a_compacted_changelog(delivery: Delivery) {
    let first = config("", "first", delivery);
    let second = config("", "second", delivery);
    let mut topics = pipeline_topics(&first, PARTITIONS);
    topics.extend(pipeline_topics(&second, PARTITIONS).into_iter().filter(|(name, _)| name.starts_with("second-")));
    let broker = EmbeddedBroker::start(1, &topics).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    let (first, second) = (config(&brokers, "first", delivery), config(&brokers, "second", delivery));
    // Long-lived sessions: most are still open when the first instance stops.
    let engine = testkit::test_engine();

    produce_range(&brokers, 0, 2_500);
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig { write_ahead_log: false, ..StoreConfig::default() }).expect("store"));
    let ends = testkit::high_watermarks(&brokers, INPUT, PARTITIONS);
    let (_, run) = testkit::run_pipeline_until(&first, &engine, store, &ends, Duration::from_secs(120));
    run.expect("the first instance stops cleanly");

    let changelog = testkit::read_all(&brokers, &TopicsSection::changelog("first"), PARTITIONS);
    let compacted = compact(&changelog);
    let progress_before = changelog.iter().filter(|m| is_progress(m.key().expect("keyed"))).count();
    let progress_after = compacted.iter().filter(|m| is_progress(m.key().expect("keyed"))).count();
    assert!(progress_before > 10 * PARTITIONS as usize, "{progress_before} batches: too few to compact");
    assert_eq!(progress_after, PARTITIONS as usize, "compaction keeps one progress record per partition");
    assert!(compacted.len() * 4 < changelog.len() * 3, "compaction removed {} of {} records", changelog.len() - compacted.len(), changelog.len());
    copy_to(&brokers, &TopicsSection::changelog("second"), &compacted);

    // The second instance: an empty disk, the compacted changelog, the rest of the input.
    produce_range(&brokers, 2_500, 4_000);
    let ends = testkit::high_watermarks(&brokers, INPUT, PARTITIONS);
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig { write_ahead_log: false, ..StoreConfig::default() }).expect("store"));
    let (_, run) = testkit::run_pipeline_until(&second, &engine, store, &ends, Duration::from_secs(120));
    run.expect("the second instance finishes");

    testkit::assert_outputs_equal_engine_run(&brokers, INPUT, PARTITIONS, &engine);
}

#[test]
fn exactly_once_takes_over_from_a_compacted_changelog() {
    takes_over_from_a_compacted_changelog(Delivery::ExactlyOnce);
}

#[test]
fn at_least_once_takes_over_from_a_compacted_changelog() {
    takes_over_from_a_compacted_changelog(Delivery::AtLeastOnce);
}
