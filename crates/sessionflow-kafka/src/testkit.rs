//! Helpers for tests and benchmarks against a real broker: produce simulated
//! traffic, read a topic to its end, and the engine's reference run over
//! what the daemon consumed.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use sessionflow_codec::Codec;
use sessionflow_codec::avro::RecordKind;
use sessionflow_core::memstore::MemState;
use sessionflow_core::{Batch, EngineConfig, InputPosition, InputRecord, Millis, Output};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Produces `records` simulated records to `topic`, keyed by session with the
/// Java client's partitioner; one in `keyless_one_in` without key (0: none).
/// Returns how many were sent.
pub fn produce(brokers: &str, topic: &str, sim: SimConfig, records: usize, keyless_one_in: usize) -> usize {
    produce_with(brokers, topic, sim, records, keyless_one_in, &[])
}

/// `produce` with extra producer properties.
pub fn produce_with(brokers: &str, topic: &str, sim: SimConfig, records: usize, keyless_one_in: usize, properties: &[(&str, &str)]) -> usize {
    produce_paced(brokers, topic, sim, records, keyless_one_in, properties, None)
}

/// `produce_with`, delivering `per_step` records and then pausing `pause`
/// until all are sent: input that keeps arriving while a test acts.
pub fn produce_paced(
    brokers: &str,
    topic: &str,
    sim: SimConfig,
    records: usize,
    keyless_one_in: usize,
    properties: &[(&str, &str)],
    pace: Option<(usize, Duration)>,
) -> usize {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("linger.ms", "5").set("partitioner", "murmur2_random");
    for (k, v) in properties {
        config.set(*k, *v);
    }
    let producer: BaseProducer = config.create().expect("producer");
    let codec = Codec::json();
    let mut sent = 0;
    for (i, record) in Simulator::new(sim).take(records).enumerate() {
        let (key, value) = match &record {
            SimRecord::Event(e) => (Some(e.session_id.as_bytes().to_vec()), codec.encode_event(e).expect("encodes")),
            SimRecord::Malformed { key, value, .. } => (key.clone(), value.clone()),
        };
        let keyed = keyless_one_in == 0 || i % keyless_one_in != keyless_one_in / 2;
        let mut r = BaseRecord::<[u8], [u8]>::to(topic).payload(&value);
        if keyed && let Some(k) = key.as_deref() {
            r = r.key(k);
        }
        crate::clients::send(&producer, r).expect("send");
        sent += 1;
        if let Some((per_step, pause)) = pace
            && sent % per_step.max(1) == 0
        {
            producer.flush(Duration::from_secs(30)).expect("flush");
            std::thread::sleep(pause);
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    sent
}

/// Every committed record of `topic` (partitions 0..partitions), read with
/// `read_committed` up to the end of each partition.
pub fn read_all(brokers: &str, topic: &str, partitions: i32) -> Vec<OwnedMessage> {
    read_all_with(brokers, topic, partitions, &[])
}

/// `read_all` with extra client properties (TLS, SASL).
pub fn read_all_with(brokers: &str, topic: &str, partitions: i32, properties: &[(&str, &str)]) -> Vec<OwnedMessage> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false");
    for (k, v) in properties {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&list).expect("assign");
    let mut out = Vec::new();
    let mut eof = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while eof < partitions && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => eof += 1,
            _ => {}
        }
    }
    out
}

/// The engine over each partition's records in offset order: what the
/// daemon must have produced when every input record is keyed by session.
pub fn reference_run(input: &[OwnedMessage], partitions: i32, engine: &EngineConfig) -> Vec<Output> {
    let codec = Codec::json();
    let mut outputs = Vec::new();
    for p in 0..partitions {
        let state = MemState::default();
        let mut batch = Batch::new(engine, &state, Millis(0)).expect("batch");
        let mut mine: Vec<&OwnedMessage> = input.iter().filter(|m| m.partition() == p).collect();
        mine.sort_by_key(|m| m.offset());
        for m in mine {
            let event = codec.decode_event(m.payload());
            let position = InputPosition { topic: m.topic().into(), partition: p, offset: m.offset() };
            batch.record(InputRecord { key: m.key(), value: m.payload(), position, event }).expect("record");
        }
        outputs.extend(batch.finish().outputs);
    }
    outputs
}

/// Per session, the JSON of its records in order.
pub type BySession = BTreeMap<String, Vec<Value>>;

/// Groups output records by session.
pub fn outputs_by_session(outputs: &[Output], timeline: bool) -> BySession {
    let mut map = BySession::new();
    for o in outputs {
        let json = match o {
            Output::Timeline(t) if timeline => serde_json::to_value(t).expect("json"),
            Output::Metadata(m) if !timeline => serde_json::to_value(m).expect("json"),
            _ => continue,
        };
        let id = String::from_utf8_lossy(o.key().unwrap_or_default()).into_owned();
        map.entry(id).or_default().push(json);
    }
    map
}

/// Groups the records of an output topic by session (tombstones skipped).
pub fn topic_by_session(messages: &[OwnedMessage], kind: RecordKind) -> BySession {
    let codec = Codec::json();
    let mut map = BySession::new();
    for m in messages {
        let (Some(key), Some(value)) = (m.key(), m.payload()) else {
            continue;
        };
        let json = codec.decode_record(kind, value).expect("decodable output");
        map.entry(String::from_utf8_lossy(key).into_owned()).or_default().push(json);
    }
    map
}

/// The first session whose records differ, described.
pub fn first_difference(expected: &BySession, got: &BySession) -> Option<String> {
    for (id, exp) in expected {
        let Some(g) = got.get(id) else {
            return Some(format!("{id}: missing ({} records expected)", exp.len()));
        };
        if g != exp {
            let i = exp.iter().zip(g).position(|(a, b)| a != b).unwrap_or(exp.len().min(g.len()));
            return Some(format!(
                "{id}: differs at record {i} ({} expected, {} got)\nexpected {}\ngot      {}",
                exp.len(),
                g.len(),
                exp.get(i).map(Value::to_string).unwrap_or_default(),
                g.get(i).map(Value::to_string).unwrap_or_default()
            ));
        }
    }
    got.keys().find(|id| !expected.contains_key(*id)).map(|id| format!("{id}: unexpected session"))
}

/// Dead letters per `dlq.reason` header, from a dead-letter topic.
pub fn dead_letter_reasons(messages: &[OwnedMessage]) -> BTreeMap<String, usize> {
    use rdkafka::message::Headers;
    let mut reasons = BTreeMap::new();
    for m in messages {
        let reason = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "dlq.reason").and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned()))
            .unwrap_or_else(|| "(no dlq.reason header)".to_owned());
        *reasons.entry(reason).or_default() += 1;
    }
    reasons
}

/// Dead letters per reason, from the engine's outputs.
pub fn expected_dead_letter_reasons(outputs: &[Output]) -> BTreeMap<String, usize> {
    let mut reasons = BTreeMap::new();
    for o in outputs {
        if let Output::DeadLetter(d) = o {
            *reasons.entry(d.reason.as_str().to_owned()).or_default() += 1;
        }
    }
    reasons
}

/// The end offset of each partition of `topic`.
pub fn high_watermarks(brokers: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", brokers).create().expect("consumer");
    (0..partitions).map(|p| (p, consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1)).collect()
}

/// Whether the pipeline has committed every partition of `input` up to `ends`.
pub fn caught_up(shared: &crate::Shared, input: &str, ends: &BTreeMap<i32, i64>) -> bool {
    ends.iter().all(|(p, end)| shared.metrics.value("sessionflow_input_committed_offset", &[("topic", input), ("partition", &p.to_string())]) as i64 >= *end)
}

/// Polls `done` every 50 ms until it holds, failing the test with `what`
/// once `timeout` has passed.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pipeline of `config` over `store`, in-process on a thread of its
/// own (JSON outputs); it runs until its `shutdown` is set or it fails.
pub fn spawn_pipeline(
    config: &crate::DaemonConfig,
    engine: &EngineConfig,
    store: std::sync::Arc<sessionflow_store::Store>,
) -> (std::sync::Arc<crate::Shared>, std::thread::JoinHandle<anyhow::Result<crate::RunTotals>>) {
    let shared = std::sync::Arc::new(crate::Shared::default());
    let (config, engine, running) = (config.clone(), engine.clone(), shared.clone());
    let thread = std::thread::spawn(move || crate::run(&config, &engine, &Codec::json(), &store, &running));
    (shared, thread)
}

/// Runs the pipeline in-process until it has committed every input
/// partition up to `ends` (then shuts it down) or it stops by itself.
/// Returns its shared state and how it ended.
pub fn run_pipeline_until(
    config: &crate::DaemonConfig,
    engine: &EngineConfig,
    store: std::sync::Arc<sessionflow_store::Store>,
    ends: &BTreeMap<i32, i64>,
    timeout: Duration,
) -> (std::sync::Arc<crate::Shared>, anyhow::Result<crate::RunTotals>) {
    use std::sync::atomic::Ordering;
    let input = config.topics.input.first().expect("an input topic").clone();
    let (shared, daemon) = spawn_pipeline(config, engine, store);
    let deadline = Instant::now() + timeout;
    while !daemon.is_finished() {
        if caught_up(&shared, &input, ends) {
            shared.shutdown.store(true, Ordering::SeqCst);
            break;
        }
        assert!(Instant::now() < deadline, "the pipeline did not catch up with {ends:?} in {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let result = daemon.join().expect("the pipeline thread panicked");
    (shared, result)
}

/// The daemon settings of the broker tests: group `group` (its instance
/// `<group>-1`), 50 ms batches of at most `max_batch_records`, topics made
/// by the test, no wall-clock watermark (outputs then depend on the input
/// alone).
pub fn test_config(brokers: &str, group: &str, max_batch_records: usize) -> crate::DaemonConfig {
    crate::DaemonConfig {
        kafka: crate::KafkaSection {
            brokers: brokers.to_owned(),
            group_id: group.into(),
            instance_id: Some(format!("{group}-1")),
            commit_interval_ms: 50,
            max_batch_records,
            create_topics: false,
            ..crate::KafkaSection::default()
        },
        topics: crate::TopicsSection::default(),
        idle_advance_after_ms: 0,
        session_cache_bytes: 8 << 20,
    }
}

/// The engine settings of the broker tests: sessions finalize a minute of
/// event time after they end, so a short run sees finals and revisions.
pub fn test_engine() -> EngineConfig {
    EngineConfig {
        finalize_after_ms: 60_000,
        session_timeout_ms: 3_600_000,
        async_session_timeout_ms: 3_600_000,
        retain_after_final_ms: 600_000,
        ..EngineConfig::default()
    }
}

/// Panics unless the timeline and metadata topics hold, per session and in
/// order, what the engine's run of the input topic gives.
pub fn assert_outputs_equal_engine_run(brokers: &str, input: &str, partitions: i32, engine: &EngineConfig) {
    let expected = reference_run(&read_all(brokers, input, partitions), partitions, engine);
    for (topic, kind, timeline) in [("cc.sessions.timeline", RecordKind::Timeline, true), ("cc.sessions.metadata", RecordKind::Metadata, false)] {
        let got = topic_by_session(&read_all(brokers, topic, partitions), kind);
        let exp = outputs_by_session(&expected, timeline);
        assert!(exp.len() > 50, "{} sessions: too few to compare", exp.len());
        if let Some(diff) = first_difference(&exp, &got) {
            panic!("{topic}: {diff}");
        }
    }
}

/// The accounting identity on the daemon's own counters: consumed =
/// timeline + dead letters + duplicates + erased + re-keyed. Counted on
/// the same side of the commit, it holds after any number of aborted
/// batches. Returns the records consumed.
pub fn assert_metrics_balance(shared: &crate::Shared, timeline_topic: &str) -> f64 {
    let m = &shared.metrics;
    let consumed = m.value("sessionflow_records_in_total", &[]);
    let timeline = m.value("sessionflow_records_out_total", &[("topic", timeline_topic)]);
    let dead = m.value("sessionflow_dead_letters_total", &[]);
    let dups = m.value("sessionflow_duplicates_dropped_total", &[]);
    let erased = m.value("sessionflow_erased_suppressed_total", &[]);
    let rekeyed = m.value("sessionflow_repartitioned_total", &[]);
    assert_eq!(
        consumed,
        timeline + dead + dups + erased + rekeyed,
        "metrics: consumed {consumed} != timeline {timeline} + dead letters {dead} + duplicates {dups} + erased {erased} + re-keyed {rekeyed}"
    );
    consumed
}
