//! The engine without Kafka: decode → fold → RocksDB → encode, on one core,
//! over the simulator's traffic and over synthetic sessions of chosen length
//! and count.

use anyhow::Context as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sessionflow_codec::Codec;
use sessionflow_core::Attributes;
use sessionflow_core::{Batch, Channel, Direction, EngineConfig, Event, EventType, InputPosition, InputRecord, Millis, SessionCache};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use sessionflow_store::{Store, StoreConfig};
use std::collections::HashSet;
use std::hint::black_box;
use std::time::Instant;

/// Records per batch: the daemon's default `kafka.max_batch_records`, the
/// size of its batches while it reads a backlog.
fn batch_records() -> usize {
    sessionflow_kafka::KafkaSection::default().max_batch_records
}

/// One encoded input record.
pub struct Raw {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Encoded records and how many sessions they touch.
pub struct Workload {
    pub records: Vec<Raw>,
    pub sessions: usize,
}

impl Workload {
    pub fn events_per_session(&self) -> f64 {
        self.records.len() as f64 / self.sessions.max(1) as f64
    }

    pub fn bytes(&self) -> usize {
        self.records.iter().map(|r| r.key.len() + r.value.len()).sum()
    }
}

/// The simulator's clean traffic stretched to ~20–60 events per session
/// (its scripts plus timeline-only events), encoded with `codec`.
pub fn realistic(events: usize, codec: &Codec) -> anyhow::Result<Workload> {
    let sim = SimConfig { extra_events_per_session: 24, ..SimConfig::clean(7) };
    let mut sessions = HashSet::new();
    let mut records = Vec::with_capacity(events);
    for record in Simulator::new(sim).take(events) {
        if let SimRecord::Event(e) = record {
            sessions.insert(e.session_id.clone());
            records.push(Raw { key: e.session_id.as_bytes().to_vec(), value: codec.encode_event(&e)? });
        }
    }
    Ok(Workload { records, sessions: sessions.len() })
}

fn event(session: &str, n: usize, at: i64, event_type: EventType, attributes: serde_json::Value) -> Event {
    let starts = event_type == EventType::SessionStarted;
    Event {
        event_id: format!("{session}-{n}"),
        session_id: session.into(),
        event_type,
        occurred_at: Millis(at),
        channel: starts.then_some(Channel::Chat),
        direction: starts.then_some(Direction::Inbound),
        tenant: Some("acme".into()),
        source: Some("bench".into()),
        attributes: Attributes::from(attributes),
    }
}

fn segment(session: &str, n: usize, at: i64) -> Event {
    let speaker = if n.is_multiple_of(2) { "agent" } else { "customer" };
    event(
        session,
        n,
        at,
        EventType::TranscriptSegment,
        json!({"speaker": speaker, "text": "I can see the order from last Tuesday; the refund was issued to the original card."}),
    )
}

/// Sessions of exactly `length` events (start, a queue, an agent, transcript
/// segments, end), `live` of them interleaved at a time, `total` events.
pub fn by_length(length: usize, live: usize, total: usize, codec: &Codec) -> anyhow::Result<Workload> {
    assert!(length >= 6);
    let mut records = Vec::with_capacity(total);
    let mut sessions = 0;
    let start = 1_720_000_000_000i64;
    let mut wave = 0;
    while records.len() < total {
        let ids: Vec<String> = (0..live).map(|i| format!("len{length}-w{wave}-{i}")).collect();
        sessions += ids.len();
        for n in 0..length {
            for (i, id) in ids.iter().enumerate() {
                // One second of event time per step; waves follow each other.
                let at = start + (wave * length + n) as i64 * 1_000 + i as i64;
                let e = match n {
                    0 => event(id, n, at, EventType::SessionStarted, json!({"lang": "en"})),
                    1 => event(id, n, at, EventType::QueueEntered, json!({"queue": "SUPPORT", "queue_id": "q-1", "priority": 3})),
                    2 => event(id, n, at, EventType::AgentAssigned, json!({"agent": "Sam K", "agent_id": "a-9"})),
                    3 => event(id, n, at, EventType::AgentConnected, json!({"agent": "Sam K", "agent_id": "a-9"})),
                    n if n == length - 1 => event(id, n, at, EventType::SessionEnded, json!({"ended_by": "customer", "reason": "resolved"})),
                    n => segment(id, n, at),
                };
                records.push(Raw { key: e.session_id.as_bytes().to_vec(), value: codec.encode_event(&e)? });
            }
        }
        wave += 1;
    }
    records.truncate(total);
    Ok(Workload { records, sessions })
}

/// `count` session starts: sessions that stay live.
pub fn session_starts(count: usize, first: usize, codec: &Codec) -> impl Iterator<Item = anyhow::Result<Raw>> + '_ {
    (first..first + count).map(move |i| {
        let id = format!("live-{i}");
        let e = event(&id, 0, 1_720_000_000_000 + i as i64, EventType::SessionStarted, json!({"lang": "en", "device": "web"}));
        Ok(Raw { key: id.into_bytes(), value: codec.encode_event(&e)? })
    })
}

/// `total` transcript segments spread at random over `live` sessions.
pub fn segments_over(live: usize, total: usize, codec: &Codec) -> anyhow::Result<Workload> {
    let mut rng = StdRng::seed_from_u64(live as u64);
    let mut records = Vec::with_capacity(total);
    for n in 0..total {
        let id = format!("live-{}", rng.random_range(0..live));
        let e = segment(&id, 1_000_000 + n, 1_720_000_000_000 + live as i64 + n as i64);
        records.push(Raw { key: id.into_bytes(), value: codec.encode_event(&e)? });
    }
    Ok(Workload { records, sessions: live })
}

/// A state store and the engine over it, as the daemon runs one partition.
pub struct Engine {
    pub store: Store,
    pub engine: EngineConfig,
    pub output: Codec,
    /// As the daemon keeps one per partition.
    pub cache: SessionCache,
    /// Reads the records as a vendor's native records (none: canonical).
    pub adapter: Option<Box<dyn sessionflow_adapters::Adapter>>,
    next_offset: i64,
    _dir: tempfile::TempDir,
}

impl Engine {
    /// An engine with `engine`'s settings (the configuration's: its privacy
    /// policy, bounds and timers) over a fresh store.
    pub fn new(output: Codec, memory_budget_bytes: Option<usize>, engine: &EngineConfig) -> anyhow::Result<Engine> {
        let dir = tempfile::tempdir()?;
        // As the daemon runs its store: the changelog, not a WAL, keeps it.
        let mut config = StoreConfig { write_ahead_log: false, ..StoreConfig::default() };
        if let Some(budget) = memory_budget_bytes {
            config.memory_budget_bytes = budget;
        }
        let store = Store::open(dir.path(), &config).context("opening the bench store")?;
        let cache = SessionCache::new(SessionCache::DEFAULT_BUDGET_BYTES);
        Ok(Engine { store, engine: engine.clone(), output, cache, adapter: None, next_offset: 0, _dir: dir })
    }

    /// Processes records in batches of `batch_records()`: decode, fold, write the
    /// batch's state changes (as the changelog records and one RocksDB
    /// write batch), encode every output. Returns the seconds it took.
    pub fn process<R: std::borrow::Borrow<Raw>>(&mut self, records: impl IntoIterator<Item = R>) -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut records = records.into_iter().peekable();
        let topic: std::sync::Arc<str> = "cc.events.raw".into();
        let codec = Codec::json();
        let batch_records = batch_records();
        while records.peek().is_some() {
            let state = self.store.partition(0);
            let mut batch = Batch::with_cache(&self.engine, &state, Millis(0), &mut self.cache)?;
            for record in records.by_ref().take(batch_records) {
                let record = record.borrow();
                let position = InputPosition { topic: topic.clone(), partition: 0, offset: self.next_offset };
                self.next_offset += 1;
                let (key, value) = (Some(record.key.as_slice()), Some(record.value.as_slice()));
                match &self.adapter {
                    None => batch.record(InputRecord { key, value, position, event: codec.decode_event(value) })?,
                    Some(adapter) => match sessionflow_adapters::adapt_for_batch(adapter.as_ref(), &batch, value) {
                        Ok(events) => {
                            for event in events {
                                batch.record(InputRecord { key, value, position: position.clone(), event: Ok(event) })?;
                            }
                        }
                        Err(error) => batch.record(InputRecord { key, value, position, event: Err(error) })?,
                    },
                }
            }
            let result = batch.finish();
            for output in &result.outputs {
                black_box(self.output.encode_output(output)?);
            }
            let raw = Store::raw_writes(0, &result.writes);
            black_box(raw.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>());
            self.store.commit_raw(0, &raw, None)?;
            self.cache.committed(result.writes);
        }
        Ok(started.elapsed().as_secs_f64())
    }
}

/// Events per second of `workload` through a fresh engine.
pub fn throughput(workload: &Workload, output: Codec, engine: &EngineConfig) -> anyhow::Result<f64> {
    let mut engine = Engine::new(output, None, engine)?;
    let seconds = engine.process(&workload.records)?;
    Ok(workload.records.len() as f64 / seconds)
}

/// This process's resident set: (current, peak) in bytes.
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()).unwrap_or(0) * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One vendor's native records and the same canonical events as JSON.
pub struct VendorWorkload {
    pub native: Vec<Raw>,
    pub canonical: Vec<Raw>,
}

/// `records` clean native records of a vendor's simulated sessions, and the
/// canonical events its adapter makes of them, encoded as canonical JSON.
pub fn vendor(format: sessionflow_adapters::InputFormat, records: usize) -> anyhow::Result<VendorWorkload> {
    use sessionflow_adapters::{AdapterOptions, MemoryState};
    let generator = sessionflow_sim::vendors::VendorSimulator::new(format, SimConfig::clean(7)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let adapter = sessionflow_adapters::adapter(format, &AdapterOptions::default());
    let mut state = MemoryState::default();
    let codec = Codec::json();
    let (mut native, mut canonical) = (Vec::with_capacity(records), Vec::new());
    for record in generator.take(records) {
        for event in adapter.adapt(record.value.as_bytes(), &mut state).unwrap_or_default() {
            canonical.push(Raw { key: event.session_id.as_bytes().to_vec(), value: codec.encode_event(&event)? });
        }
        native.push(Raw { key: record.session_id.into_bytes(), value: record.value.into_bytes() });
    }
    Ok(VendorWorkload { native, canonical })
}
