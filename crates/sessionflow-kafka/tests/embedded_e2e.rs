//! End to end on the embedded broker: produced events in, read_committed
//! outputs out, equal to the engine run over each input partition's records
//! in offset order (what `replay` does with one partition).

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use sessionflow_codec::Codec;
use sessionflow_core::memstore::MemState;
use sessionflow_core::{Batch, EngineConfig, InputPosition, InputRecord, Millis, Output};
use sessionflow_kafka::embedded::{pipeline_topics, EmbeddedBroker};
use sessionflow_kafka::{DaemonConfig, Delivery, KafkaSection, Shared, TopicsSection};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use sessionflow_store::{Store, StoreConfig};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
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
    }
}

fn engine() -> EngineConfig {
    EngineConfig { finalize_after_ms: 60_000, session_timeout_ms: 3_600_000, retain_after_final_ms: 600_000, ..EngineConfig::default() }
}

/// Produces simulated traffic: keyed records, plus some without key (to be
/// re-keyed) and malformed ones.
fn produce(brokers: &str, records: usize, keyless_one_in: usize) -> usize {
    // The daemon re-keys with the Java client's partitioner; keyed producers must use the same.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    let codec = Codec::json();
    let mut sent = 0;
    let config = SimConfig { seed: 77, malformed_rate: 0.01, ..SimConfig::default() };
    for (i, record) in Simulator::new(config).take(records).enumerate() {
        let (key, value) = match &record {
            SimRecord::Event(e) => (Some(e.session_id.clone().into_bytes()), codec.encode_event(e).unwrap()),
            SimRecord::Malformed { key, value, .. } if value.len() < 100_000 => (key.clone(), value.clone()),
            SimRecord::Malformed { .. } => continue,
        };
        let keyed = keyless_one_in == 0 || i % keyless_one_in != 7;
        let mut r = BaseRecord::<[u8], [u8]>::to("cc.events.raw").payload(&value);
        if keyed {
            if let Some(k) = key.as_deref() {
                r = r.key(k);
            }
        }
        loop {
            match producer.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(20));
                    r = back;
                }
            }
        }
        sent += 1;
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    sent
}

fn read_all(brokers: &str, topic: &str) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    let mut eof = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while eof < PARTITIONS && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
            _ => {}
        }
    }
    out
}

/// The engine over each task's records in the order the daemon saw them:
/// input partition p, then its re-keyed records from repartition partition p.
fn expected(brokers: &str, engine: &EngineConfig) -> Vec<Output> {
    let codec = Codec::json();
    let mut outputs = Vec::new();
    let inputs = read_all(brokers, "cc.events.raw");
    let rekeyed = read_all(brokers, &TopicsSection::repartition("e2e"));
    for p in 0..PARTITIONS {
        let state = MemState::default();
        let mut batch = Batch::new(engine, &state, Millis(0)).unwrap();
        let mine = inputs.iter().filter(|m| m.partition() == p).chain(rekeyed.iter().filter(|m| m.partition() == p));
        for m in mine {
            let event = codec.decode_event(m.payload());
            if m.topic() == "cc.events.raw" && matches!(&event, Ok(e) if m.key() != Some(e.session_id.as_bytes())) {
                continue;
            }
            let position = InputPosition { topic: m.topic().into(), partition: p, offset: m.offset() };
            batch.record(InputRecord { key: m.key(), value: m.payload(), position, event }).unwrap();
        }
        outputs.extend(batch.finish().outputs);
    }
    outputs
}

/// Per session, its timeline and metadata JSON in order.
fn by_session(records: impl Iterator<Item = (String, Value)>) -> BTreeMap<String, Vec<Value>> {
    let mut map: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (id, v) in records {
        map.entry(id).or_default().push(v);
    }
    map
}

/// Runs the daemon until it consumed `sent` input records and everything it re-keyed.
fn run_daemon(config: &DaemonConfig, engine: &EngineConfig, sent: usize, expect_rekeyed: bool) -> Arc<Shared> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).unwrap());
    let shared = Arc::new(Shared::default());
    let daemon = {
        let (config, engine, store, shared) = (config.clone(), engine.clone(), store.clone(), shared.clone());
        std::thread::spawn(move || sessionflow_kafka::run(&config, &engine, &Codec::json(), store, shared))
    };
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
    let m = &shared.metrics;
    let consumed = m.value("sessionflow_records_in_total", &[]);
    let timeline = m.value("sessionflow_records_out_total", &[("topic", "cc.sessions.timeline")]);
    let dead = m.value("sessionflow_dead_letters_total", &[]);
    let dups = m.value("sessionflow_duplicates_dropped_total", &[]);
    let erased = m.value("sessionflow_erased_suppressed_total", &[]);
    let rekeyed = m.value("sessionflow_repartitioned_total", &[]);
    assert!(consumed > 0.0);
    assert_eq!(consumed, timeline + dead + dups + erased + rekeyed, "consumed = timeline + dead letters + duplicates + erased + repartitioned");
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
    let timeline: Vec<Value> = read_all(&brokers, "cc.sessions.timeline")
        .iter()
        .map(|m| codec.decode_record(sessionflow_codec::avro::RecordKind::Timeline, m.payload().unwrap()).unwrap())
        .collect();
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

    let expected = expected(&brokers, &engine);
    let codec = Codec::json();
    let to_json = |o: &Output| serde_json::to_value(match o {
        Output::Timeline(t) => serde_json::to_value(t).unwrap(),
        Output::Metadata(m) => serde_json::to_value(m).unwrap(),
        _ => Value::Null,
    }).unwrap();
    let exp_timeline = by_session(expected.iter().filter(|o| matches!(o, Output::Timeline(_))).map(|o| (String::from_utf8(o.key().unwrap().to_vec()).unwrap(), to_json(o))));
    let exp_metadata = by_session(expected.iter().filter(|o| matches!(o, Output::Metadata(_))).map(|o| (String::from_utf8(o.key().unwrap().to_vec()).unwrap(), to_json(o))));
    let got = |topic: &str| {
        by_session(read_all(&brokers, topic).into_iter().filter(|m| m.payload().is_some()).map(|m| {
            (String::from_utf8(m.key().unwrap().to_vec()).unwrap(), codec.decode_record(sessionflow_codec::avro::RecordKind::Timeline, m.payload().unwrap()).unwrap())
        }))
    };
    let got_timeline = got("cc.sessions.timeline");
    let got_metadata = got("cc.sessions.metadata");
    assert!(exp_timeline.len() > 50, "{} sessions", exp_timeline.len());
    assert_eq!(got_timeline.len(), exp_timeline.len(), "sessions on the timeline");
    if let Some((id, exp)) = exp_timeline.iter().find(|(id, v)| got_timeline.get(*id) != Some(v)) {
        let got = &got_timeline[id];
        let i = exp.iter().zip(got).position(|(a, b)| a != b).unwrap_or(exp.len().min(got.len()));
        panic!("timeline of {id} differs at record {i} (of {} expected, {} got):\nexpected {}\ngot      {}", exp.len(), got.len(), exp.get(i).map(Value::to_string).unwrap_or_default(), got.get(i).map(Value::to_string).unwrap_or_default());
    }
    assert!(got_metadata == exp_metadata, "metadata differs from the engine run");

    // Dead letters: every malformed record, with its reason header.
    let dlq = read_all(&brokers, "cc.events.dlq");
    let expected_dlq = expected.iter().filter(|o| matches!(o, Output::DeadLetter(_))).count();
    assert_eq!(dlq.len(), expected_dlq);
    assert!(dlq.iter().all(|m| m.headers().is_some_and(|h| h.iter().any(|h| h.key == "dlq.reason"))));

    let m = &shared.metrics;
    assert!(m.render().contains("sessionflow_sessions{state=\""));
}
