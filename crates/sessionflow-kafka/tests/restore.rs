//! Restoring a store from a changelog written by hand on the embedded
//! broker: whole batches are applied, batches cut short are not (a retry
//! at the same base supersedes them), the store records the changelog
//! position of the last whole batch, and a changelog of another format is
//! refused with the fix.

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, consumer::BaseConsumer};
use sessionflow_core::{Marker, PartitionMeta, Write};
use sessionflow_kafka::clients::restore_client_config;
use sessionflow_kafka::embedded::EmbeddedBroker;
use sessionflow_kafka::restore::restore_partitions;
use sessionflow_kafka::{DaemonConfig, KafkaSection, Metrics, TopicsSection};
use sessionflow_store::changelog::{BATCH_HEADER, BatchLabel};
use sessionflow_store::{Store, StoreConfig};
use std::time::Duration;

const CHANGELOG: &str = "restore-test.changelog";

/// A batch as the pipeline writes it: its records, then (when whole) the
/// partition's progress record, all with the batch's id in a header.
fn batch(partition: u32, markers: &[String], whole: bool, input_offset: i64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut writes: Vec<Write> = markers.iter().map(|id| Write::PutMarker(id.clone(), Marker::Retired)).collect();
    if whole {
        let mut meta = PartitionMeta::default();
        meta.next_offsets.insert("cc.events.raw".into(), input_offset);
        writes.push(Write::PutMeta(meta));
    }
    Store::raw_writes(partition, &writes)
}

/// Sends a batch's records labelled as the pipeline labels them: the
/// batch id, and the changelog position of the state it was computed from.
fn produce(brokers: &str, partition: i32, batch_id: &str, base: i64, records: &[(Vec<u8>, Option<Vec<u8>>)]) {
    let label = BatchLabel { batch_id: batch_id.to_owned(), base };
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers).create().expect("producer");
    for (key, value) in records {
        let mut headers = OwnedHeaders::new();
        for (name, bytes) in &label.headers() {
            headers = headers.insert(Header { key: name, value: Some(bytes.as_slice()) });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(CHANGELOG).partition(partition).key(key.as_slice()).headers(headers);
        if let Some(value) = value {
            record = record.payload(value.as_slice());
        }
        producer.send(record).map_err(|(e, _)| e).expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
}

fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

fn restore(brokers: &str, store: &Store) -> u64 {
    try_restore(brokers, store).expect("restored")
}

fn try_restore(brokers: &str, store: &Store) -> anyhow::Result<u64> {
    let config = DaemonConfig {
        kafka: KafkaSection { brokers: brokers.to_owned(), group_id: "restore-test".into(), ..KafkaSection::default() },
        topics: TopicsSection::default(),
        idle_advance_after_ms: 0,
        session_cache_bytes: 0,
    };
    let consumer: BaseConsumer = restore_client_config(&config).create().expect("consumer");
    Ok(restore_partitions(&consumer, CHANGELOG, store, &[0, 1], &Metrics::new())?.records)
}

fn markers(store: &Store, partition: u32) -> Vec<String> {
    store.partition(partition).dump().expect("dump").markers.into_keys().collect()
}

#[test]
fn whole_batches_are_restored_and_batches_cut_short_are_not() {
    let broker = EmbeddedBroker::start(1, &[(CHANGELOG.into(), 2)]).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    // Partition 0: a whole batch larger than one store write, one cut short
    // by a crash, a whole one, and one cut short at the changelog's end.
    // A batch cut short and its retry read the same state: they share a base.
    produce(&brokers, 0, "i/r/1", 0, &batch(0, &ids("kept-", 0..1_200), true, 10));
    produce(&brokers, 0, "i/r/2", 1_201, &batch(0, &ids("cut-", 0..3), false, 0));
    produce(&brokers, 0, "i/r/3", 1_201, &batch(0, &ids("kept-", 1_200..1_201), true, 20));
    produce(&brokers, 0, "i/r/4", 1_206, &batch(0, &ids("tail-", 0..2), false, 0));
    // Partition 1: one whole batch.
    produce(&brokers, 1, "i/r/1", 0, &batch(1, &ids("p1-", 0..5), true, 5));

    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path(), &StoreConfig::default()).expect("store");
    let applied = restore(&brokers, &store);

    // 1,200 + 1 markers and two progress records; 5 and one.
    assert_eq!(applied, 1_201 + 2 + 6);
    let mut expected = ids("kept-", 0..1_201);
    expected.sort();
    assert_eq!(markers(&store, 0), expected);
    assert_eq!(markers(&store, 1), ids("p1-", 0..5));
    // The position is just past the last whole batch's progress record.
    assert_eq!(store.changelog_position(0).expect("position"), 1_201 + 3 + 2);
    assert_eq!(store.changelog_position(1).expect("position"), 6);
    assert_eq!(store.partition(0).dump().expect("dump").meta.next_offsets.get("cc.events.raw"), Some(&20));

    // A restore of a store that is up to date reads from its position: the
    // batch cut short at the end is all there is, and it is skipped again.
    assert_eq!(restore(&brokers, &store), 0);

    // The batch cut short at the end is followed by a whole one: only that is applied.
    produce(&brokers, 0, "i/r/5", 1_206, &batch(0, &ids("late-", 0..4), true, 30));
    assert_eq!(restore(&brokers, &store), 5);
    let restored = markers(&store, 0);
    assert_eq!(restored.len(), 1_205);
    assert!(restored.iter().all(|m| !m.starts_with("cut-") && !m.starts_with("tail-")), "a batch cut short was applied");
    assert_eq!(store.changelog_position(0).expect("position"), 1_206 + 2 + 5);
}

/// A changelog written before formats were recorded (format 1: a batch
/// header, no format header) is refused with an error that names the fix,
/// not applied and not retried.
#[test]
fn a_changelog_of_another_format_is_refused_with_the_fix() {
    let broker = EmbeddedBroker::start(1, &[(CHANGELOG.into(), 2)]).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &brokers).create().expect("producer");
    for (key, value) in batch(1, &ids("old-", 0..2), true, 3) {
        let headers = OwnedHeaders::new().insert(Header { key: BATCH_HEADER, value: Some(b"i/r/1".as_slice()) });
        let mut record = BaseRecord::<[u8], [u8]>::to(CHANGELOG).partition(1).key(key.as_slice()).headers(headers);
        if let Some(value) = value.as_deref() {
            record = record.payload(value);
        }
        producer.send(record).map_err(|(e, _)| e).expect("queued");
    }
    producer.flush(Duration::from_secs(10)).expect("flushed");
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path(), &StoreConfig::default()).expect("store");
    let error = format!("{:#}", try_restore(&brokers, &store).expect_err("refused"));
    assert!(error.contains("format 1") && error.contains("Fix:"), "{error}");
    assert!(markers(&store, 1).is_empty(), "records of another format were applied");
}
