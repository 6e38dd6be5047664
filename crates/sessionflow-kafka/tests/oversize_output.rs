//! An input record over the broker's message size: its dead letter would be
//! as large, and librdkafka refuses it (`message.max.bytes`, 1,000,000 by
//! default). Before the fix the batch failed on it, was aborted and retried
//! forever, and every partition of the instance stopped. Now the dead
//! letter goes out without its value, saying so, and everything else flows.

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::message::Headers;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 2;

#[test]
fn an_input_over_the_message_size_is_dead_lettered_without_its_value_and_nothing_stalls() {
    let mut config = testkit::test_config("", "oversize", 200);
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    config.kafka.brokers = brokers.clone();
    let engine = testkit::test_engine();

    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 41, ..SimConfig::default() }, 500, 0);
    // 1.2 MB of JSON, sent by a producer whose limit allows it.
    let big = format!("{{\"event_id\":\"e-big\",\"session_id\":\"s-big\",\"padding\":\"{}\"}}", "x".repeat(1_200_000));
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", &brokers).set("message.max.bytes", "2000000").create().expect("producer");
    producer
        .send(BaseRecord::<[u8], [u8]>::to("cc.events.raw").partition(0).key(b"s-big".as_slice()).payload(big.as_bytes()))
        .map_err(|(e, _)| e)
        .expect("sent");
    producer.flush(Duration::from_secs(30)).expect("flushed");
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 42, ..SimConfig::default() }, 500, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);

    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    let (shared, run) = testkit::run_pipeline_until(&config, &engine, store, &ends, Duration::from_secs(60));
    let totals = run.expect("the daemon ran on");
    assert_eq!(totals.aborted, 0, "a batch failed on the large record");
    assert_eq!(shared.metrics.value("sessionflow_oversize_outputs_total", &[("topic", "cc.events.dlq")]), 1.0);

    let dead_letters = testkit::read_all(&brokers, "cc.events.dlq", PARTITIONS);
    let big_one: Vec<_> = dead_letters.iter().filter(|m| m.key() == Some(b"s-big".as_slice())).collect();
    assert_eq!(big_one.len(), 1);
    let header =
        |name: &str| big_one[0].headers().and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned()));
    assert_eq!(header("dlq.reason").as_deref(), Some("oversize"));
    assert!(header("dlq.payload_omitted").is_some_and(|d| d.contains("message.max.bytes")), "{:?}", header("dlq.payload_omitted"));
    assert!(big_one[0].payload().is_none());
    // Everything else is as the engine has it (the big record is a dead
    // letter there too, with its value).
    testkit::assert_outputs_equal_engine_run(&brokers, "cc.events.raw", PARTITIONS, &engine);
}
