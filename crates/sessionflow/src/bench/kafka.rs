//! Broker phases: the passthrough ceiling, the pipeline on the same broker
//! and records, end-to-end latency, and restore from a changelog.

use super::engine::Raw;
use anyhow::{Context as _, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;
use sessionflow_codec::Codec;
use sessionflow_core::EngineConfig;
use sessionflow_kafka::embedded::pipeline_topics;
use sessionflow_kafka::{DaemonConfig, Delivery, KafkaSection, Shared, TopicsSection};
use sessionflow_store::{Store, StoreConfig};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A broker the phases run against.
#[derive(Debug, Clone)]
pub struct Target {
    /// Shown in the results: `embedded`, `tansu`, or `cluster`.
    pub name: &'static str,
    pub brokers: String,
    /// Whether the daemon creates topics (brokers other than the embedded one).
    pub create_topics: bool,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Producer properties every producer of the run uses (tansu needs one
    /// record per batch).
    pub producer_properties: Vec<(String, String)>,
    /// Consumer properties every consumer of the run uses.
    pub consumer_properties: Vec<(String, String)>,
}

/// The daemon settings of one run, on topics of its own.
pub fn run_config(target: &Target, run: &str, delivery: Delivery) -> DaemonConfig {
    DaemonConfig {
        kafka: KafkaSection {
            brokers: target.brokers.clone(),
            group_id: format!("bench-{run}"),
            instance_id: Some(format!("bench-{run}")),
            delivery,
            partitions: Some(target.partitions),
            replication_factor: target.replication_factor,
            create_topics: target.create_topics,
            producer_properties: target.producer_properties.iter().cloned().collect(),
            consumer_properties: target.consumer_properties.iter().cloned().collect(),
            ..KafkaSection::default()
        },
        topics: TopicsSection {
            input: vec![format!("bench.{run}.events")],
            inputs: Vec::new(),
            timeline: format!("bench.{run}.timeline"),
            metadata: format!("bench.{run}.metadata"),
            dead_letter: format!("bench.{run}.dlq"),
        },
        idle_advance_after_ms: 0,
        session_cache_bytes: sessionflow_core::SessionCache::DEFAULT_BUDGET_BYTES,
    }
}

/// Every topic of a run (for the embedded broker, which creates topics only
/// at start).
pub fn run_topics(config: &DaemonConfig, partitions: i32) -> Vec<(String, i32)> {
    pipeline_topics(config, partitions)
}

/// The passthrough copies into its run's timeline topic (created with the others).
fn passthrough_output(config: &DaemonConfig) -> String {
    config.topics.timeline.clone()
}

/// The producer feeding the input topic (a client of the daemon's users, not the daemon).
fn producer(target: &Target) -> anyhow::Result<BaseProducer> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &target.brokers).set("linger.ms", "5").set("partitioner", "murmur2_random");
    for (k, v) in &target.producer_properties {
        c.set(k, v);
    }
    Ok(c.create()?)
}

/// Produces the records to the run's input topic (before the clock starts).
pub fn load_input(target: &Target, config: &DaemonConfig, records: &[Raw]) -> anyhow::Result<()> {
    if config.kafka.create_topics {
        sessionflow_kafka::clients::create_topics(config).context("creating the bench topics")?;
    }
    let producer = producer(target)?;
    let topic = &config.topics.input[0];
    for r in records {
        sessionflow_kafka::clients::send(&producer, BaseRecord::to(topic).key(r.key.as_slice()).payload(r.value.as_slice()))?;
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(())
}

/// Records per second of the passthrough over `records` input records.
pub fn passthrough(config: &DaemonConfig, records: u64) -> anyhow::Result<f64> {
    let run = sessionflow_kafka::passthrough::run(config, &passthrough_output(config), records, Duration::from_secs(300))?;
    Ok(run.records as f64 / run.seconds.max(1e-9))
}

/// The daemon's pipeline on its own thread, over a fresh store.
struct Daemon {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<sessionflow_kafka::RunTotals>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(config: &DaemonConfig) -> anyhow::Result<Daemon> {
        let dir = tempfile::tempdir()?;
        let store = Arc::new(Store::open(dir.path(), &StoreConfig { write_ahead_log: false, ..StoreConfig::default() })?);
        let shared = Arc::new(Shared::default());
        let thread = {
            let (config, shared) = (config.clone(), shared.clone());
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || sessionflow_kafka::run(&config, &EngineConfig::default(), &Codec::json(), &store, &shared))?
        };
        Ok(Daemon { shared, thread: Some(thread), _dir: dir })
    }

    /// Input records committed so far (the sum of committed offsets; topics start at 0).
    fn committed(&self, config: &DaemonConfig) -> u64 {
        self.shared.metrics.value("sessionflow_input_committed_offset", &[("topic", &config.topics.input[0])]) as u64
    }

    fn consumed(&self) -> u64 {
        self.shared.metrics.value("sessionflow_records_in_total", &[]) as u64
    }

    fn stop(mut self) -> anyhow::Result<()> {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result.map(|_| ()),
            Some(Err(_)) => bail!("the pipeline thread panicked"),
            None => Ok(()),
        }
    }

    fn check_alive(&self) -> anyhow::Result<()> {
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            bail!("the pipeline stopped early");
        }
        Ok(())
    }
}

/// Events per second of the pipeline over `records` input records already
/// in the run's input topic: from the first record consumed to the last
/// committed.
pub fn pipeline(config: &DaemonConfig, records: u64) -> anyhow::Result<f64> {
    let daemon = Daemon::start(config)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first: Option<Instant> = None;
    // Reading a metric gathers the whole registry: once a batch is under
    // way, only after each commit, not every poll (that took ~4 % of the CPU).
    let mut batches_seen = 0;
    loop {
        daemon.check_alive()?;
        if first.is_none() && daemon.consumed() > 0 {
            first = Some(Instant::now());
        }
        let batches = daemon.shared.batches.load(Ordering::Relaxed);
        if batches != batches_seen {
            batches_seen = batches;
            if daemon.committed(config) >= records {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("the pipeline committed {} of {records} records in 300 s", daemon.committed(config));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    daemon.stop()?;
    Ok(records as f64 / seconds.max(1e-9))
}

/// Input record timestamps (ms) by (partition, offset).
type InputTimes = HashMap<(i32, i64), i64>;
/// A timeline record's input (partition, offset) and when it became visible (ms).
type Visible = (i32, i64, f64);

/// End-to-end latency figures, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub rate_per_second: u64,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The pipeline fed at `rate` records/s for `seconds`: the latency from each
/// input record's timestamp (set when produced) to its timeline record
/// being visible to a read_committed consumer.
pub fn latency(target: &Target, config: &DaemonConfig, records: &[Raw], rate: u64, seconds: f64) -> anyhow::Result<Latency> {
    if config.kafka.create_topics {
        sessionflow_kafka::clients::create_topics(config)?;
    }
    let daemon = Daemon::start(config)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !daemon.shared.ready.load(Ordering::SeqCst) {
        daemon.check_alive()?;
        if Instant::now() > deadline {
            bail!("the pipeline was not ready in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let count = ((rate as f64 * seconds) as usize).min(records.len());
    // The reader, on its own thread: input timestamps and when each
    // timeline record became visible.
    let reader = {
        let (brokers, group, input, timeline) =
            (target.brokers.clone(), format!("{}-latency", config.kafka.group_id), config.topics.input[0].clone(), config.topics.timeline.clone());
        let partitions = target.partitions;
        std::thread::spawn(move || -> anyhow::Result<(InputTimes, Vec<Visible>)> {
            let reader: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &brokers)
                .set("group.id", &group)
                .set("isolation.level", "read_committed")
                .set("auto.offset.reset", "earliest")
                .set("fetch.wait.max.ms", "5")
                .set("enable.auto.commit", "false")
                .create()?;
            // Assigned, not subscribed: reading starts at once, with no group join
            // to wait for (which would count as latency).
            let mut list = rdkafka::TopicPartitionList::new();
            for p in 0..partitions {
                list.add_partition_offset(&input, p, rdkafka::Offset::Beginning)?;
                list.add_partition_offset(&timeline, p, rdkafka::Offset::Beginning)?;
            }
            reader.assign(&list)?;
            let codec = Codec::json();
            let mut input_time = HashMap::new();
            let mut visible = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while (visible.len() < count || input_time.len() < count) && Instant::now() < deadline {
                if let Some(Ok(m)) = reader.poll(Duration::from_millis(20)) {
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                    if m.topic() == input {
                        if let Some(ts) = m.timestamp().to_millis() {
                            input_time.insert((m.partition(), m.offset()), ts);
                        }
                    } else if let Ok(record) = codec.decode_record(sessionflow_codec::avro::RecordKind::Timeline, m.payload().unwrap_or_default()) {
                        let at = &record["input"];
                        if let (Some(p), Some(o)) = (at["partition"].as_i64(), at["offset"].as_i64()) {
                            visible.push((p as i32, o, now));
                        }
                    }
                }
            }
            Ok((input_time, visible))
        })
    };
    std::thread::sleep(Duration::from_millis(500)); // the reader's first fetches
    let producer = producer(target)?;
    let started = Instant::now();
    let topic = config.topics.input[0].clone();
    let wall = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    for (i, r) in records.iter().take(count).enumerate() {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        producer.poll(Duration::ZERO);
        sessionflow_kafka::clients::send(&producer, BaseRecord::to(&topic).key(r.key.as_slice()).payload(r.value.as_slice()).timestamp(wall()))?;
    }
    producer.flush(Duration::from_secs(60))?;
    let (input_time, visible) = reader.join().map_err(|_| anyhow::anyhow!("latency reader panicked"))??;
    daemon.stop()?;
    let mut latencies: Vec<f64> = visible.iter().filter_map(|(p, o, at)| input_time.get(&(*p, *o)).map(|ts| at - *ts as f64)).collect();
    if latencies.len() < count * 9 / 10 {
        bail!("latency: {} of {count} records seen end to end", latencies.len());
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Latency {
        rate_per_second: rate,
        samples: latencies.len(),
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
    })
}

/// Restore figures.
#[derive(Debug, Clone, Serialize)]
pub struct Restore {
    pub records: u64,
    /// The median of [`RESTORE_RUNS`] restores (a restore of the bench's
    /// changelog takes about a tenth of a second: one run is at the mercy
    /// of the scheduler).
    pub seconds: f64,
    pub records_per_second: f64,
    /// Input events whose state the changelog holds (a changelog record
    /// carries one session's events of one batch, so records and events
    /// differ): how fast a restore gets back to where the run was.
    pub input_events: u64,
    pub input_events_per_second: f64,
    /// Records/s of each run, in the order they ran.
    pub runs_records_per_second: Vec<f64>,
}

/// Restores timed; the median is reported.
pub const RESTORE_RUNS: usize = 3;

/// Rebuilds every partition of a run's changelog, written while the run
/// processed `input_events`, into a fresh store, [`RESTORE_RUNS`] times.
pub fn restore(config: &DaemonConfig, partitions: i32, input_events: u64) -> anyhow::Result<Restore> {
    let mut runs = Vec::with_capacity(RESTORE_RUNS);
    for _ in 0..RESTORE_RUNS {
        runs.push(restore_once(config, partitions)?);
    }
    let records = runs[0].0;
    if let Some(&(other, _)) = runs.iter().find(|(n, _)| *n != records) {
        anyhow::bail!("two restores of the same changelog applied {records} and {other} records");
    }
    let runs_records_per_second = runs.iter().map(|&(n, seconds)| n as f64 / seconds).collect();
    let mut seconds: Vec<f64> = runs.iter().map(|&(_, seconds)| seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let seconds = seconds[seconds.len() / 2];
    Ok(Restore {
        records,
        seconds,
        records_per_second: records as f64 / seconds,
        input_events,
        input_events_per_second: input_events as f64 / seconds,
        runs_records_per_second,
    })
}

/// One restore into a fresh store with a new consumer: records and seconds.
fn restore_once(config: &DaemonConfig, partitions: i32) -> anyhow::Result<(u64, f64)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), &StoreConfig { write_ahead_log: false, ..StoreConfig::default() })?;
    let metrics = sessionflow_kafka::Metrics::new();
    let consumer: BaseConsumer = sessionflow_kafka::clients::restore_client_config(config).create()?;
    let changelog = TopicsSection::changelog(&config.kafka.group_id);
    let started = Instant::now();
    let tasks: Vec<i32> = (0..partitions).collect();
    let records = sessionflow_kafka::restore::restore_partitions(&consumer, &changelog, &store, &tasks, &metrics)?.records;
    Ok((records, started.elapsed().as_secs_f64().max(1e-9)))
}
