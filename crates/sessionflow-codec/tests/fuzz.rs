//! Fuzzing the input path at volume (issue 23, "bad input at volume"):
//! generated values through the decoders (JSON and framed Avro) and the
//! vendor adapters, and through the fold in batches that mix them with
//! good events of many sessions, as a daemon's partition sees them.
//!
//! Inputs are drawn from proptest strategies by a seeded runner, so a run
//! is reproducible from its seed (`SESSIONFLOW_FUZZ_SEED`, default fixed)
//! and its count (`SESSIONFLOW_FUZZ_INPUTS`). They are: the simulators'
//! own records (canonical JSON and Avro, and each vendor's native records,
//! with their duplicates, late, out-of-order and malformed ones); byte
//! mutations of those (bit flips, overwrites, insertions, deletions,
//! repeats, splices of another record, truncations); structural mutations
//! of their JSON (a value of any type in any place, a repeated key, two
//! values swapped); Avro events with edge values in their fields; and
//! random bytes, bare or behind a Confluent header.
//!
//! Each input runs under `catch_unwind` (a panic fails the test with the
//! input in hex), and each batch is checked (`fuzzing::Harness`): a
//! decoding error is the input's one dead letter with the reason and
//! detail the decoder gave, the fold dead-letters decoded events only for
//! their time, a bound or a retired session, dead letters keep the value
//! byte for byte, and `consumed = timeline + dead letters + duplicates +
//! erased_suppressed`. Besides, per input: the simulators' good records
//! are accepted and their malformed ones get the reason the simulator
//! names; a canonical record cut short is a `decode_error`; the canonical
//! JSON decoder's fast paths read a value as `serde_json` and
//! `Event::from_json` do; and no input allocates more than
//! `fuzzing::memory_bound` of its size.
//!
//! `docs/testing.md` ("Fuzzing") says how to run it and what a long run
//! gave.

mod fuzzing;

use fuzzing::{Harness, Target, hex, memory_bound};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestRunner};
use serde_json::Value;
use sessionflow_adapters::InputFormat;
use sessionflow_codec::Codec;
use sessionflow_core::{DeadLetterReason, EngineConfig, Event, Millis};
use sessionflow_sim::vendors::VendorSimulator;
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use std::collections::VecDeque;
use std::time::Instant;

/// Inputs when `SESSIONFLOW_FUZZ_INPUTS` is not set: well within a minute
/// in `cargo test --release` on a 2-core VM, and in a debug build (where
/// arithmetic overflow panics) too.
const DEFAULT_INPUTS: u64 = if cfg!(debug_assertions) { 20_000 } else { 500_000 };
/// Inputs per batch.
const BATCH: usize = 200;
/// The state starts afresh after this many batches, so a long run's
/// memory stays flat (the retention settings below keep it small between).
const BATCHES_PER_EPOCH: u64 = 500;
/// Recent records of each kind that mutations start from.
const POOL: usize = 64;

const VENDORS: [InputFormat; 5] =
    [InputFormat::AmazonConnect, InputFormat::GenesysCloud, InputFormat::TwilioTaskrouter, InputFormat::ZoomContactCenter, InputFormat::CcaiPlatform];

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// Which records an input starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Avro,
    Vendor(usize),
}

impl Kind {
    fn target(self) -> Target {
        match self {
            Kind::Json | Kind::Avro => Target::Canonical,
            Kind::Vendor(i) => Target::Vendor(VENDORS[i]),
        }
    }
}

#[derive(Debug, Clone)]
enum ByteOp {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Repeat(Index, usize, usize),
    Splice { from: Index, at: Index, len: usize },
}

/// One generated input.
#[derive(Debug, Clone)]
enum Case {
    /// The next record of a simulator, as it is.
    Next(Kind),
    /// Bytes, bare or behind the Confluent header of the event schema.
    Random { target: Kind, framed: bool, bytes: Vec<u8> },
    /// A recent record with its bytes mutated.
    Bytes { kind: Kind, pick: Index, ops: Vec<ByteOp> },
    /// A recent record cut short.
    Truncate { kind: Kind, pick: Index, at: Index },
    /// A value put in any place of a recent record's JSON.
    Replace { kind: Kind, pick: Index, at: Index, value: Value },
    /// A key of a recent record's JSON repeated with another value, before
    /// or after it.
    Repeat { kind: Kind, pick: Index, at: Index, value: Value, after: bool },
    /// Two values of a recent record's JSON swapped.
    Swap { kind: Kind, pick: Index, a: Index, b: Index },
    /// A recent event in Avro with one field set to an edge value.
    AvroField { pick: Index, field: Index, text: String, time: i64 },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![3 => Just(Kind::Json), 2 => Just(Kind::Avro), 5 => (0..VENDORS.len()).prop_map(Kind::Vendor)]
}

fn json_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![1 => Just(Kind::Json), 2 => (0..VENDORS.len()).prop_map(Kind::Vendor)]
}

/// Bytes that matter to JSON, UTF-8 and Avro varints.
const SPECIAL_BYTES: &[u8] = b"\x00\x01\x02\x7f\x80\xbf\xc0\xc3\xe2\xef\xf0\xf4\xf5\xff\"\\/{}[]:,0123456789-+.eEtfnu \n";

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), prop::sample::select(SPECIAL_BYTES)]
}

/// Strings at the edges of what the fields take.
const EDGE_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
    "\u{d7ff}\u{e000}",
    "9999-12-31T23:59:59.999Z",
    "0000-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999Z",
    "+275760-09-13T00:00:00Z",
    "2024-07-03T09:46:40.000Z",
    "2024-07-03T09:46:40.123456789+14:00",
    "2024-07-03T09:46:40-00:00",
    "2024-02-30T00:00:00Z",
    "2024-07-03T09:46:60Z",
    "1720000000",
    "1720000000000",
    "99999999999999999999",
    "-9223372036854775808",
    "NaN",
    "Infinity",
    "-0",
    "1e400",
    "session.started",
    "session.ended",
    "session.erased",
    "queue.entered",
    "agent.connected",
    "voice",
    "chat",
    "inbound",
    "{}",
    "[]",
    "null",
];

/// Numbers at the edges.
const EDGE_NUMBERS: &[i64] = &[i64::MIN, i64::MIN + 1, -1, 0, 1, 8, 9, 86_399_999, 86_400_000, 1_720_000_000, 1_720_000_000_000, 253_402_300_799_999, i64::MAX];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(EDGE_NUMBERS).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z._-]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        prop::sample::select(EDGE_STRINGS).prop_map(|s| Value::String(s.to_owned())),
        (0usize..3000).prop_map(|n| Value::String("x".repeat(n))),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4).prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn byte_op() -> impl Strategy<Value = ByteOp> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| ByteOp::Flip(at, bit)),
        3 => (any::<Index>(), byte()).prop_map(|(at, b)| ByteOp::Set(at, b)),
        2 => (any::<Index>(), prop::collection::vec(byte(), 1..8)).prop_map(|(at, b)| ByteOp::Insert(at, b)),
        2 => (any::<Index>(), 1usize..32).prop_map(|(at, n)| ByteOp::Remove(at, n)),
        1 => (any::<Index>(), 1usize..16, 1usize..64).prop_map(|(at, n, times)| ByteOp::Repeat(at, n, times)),
        1 => (any::<Index>(), any::<Index>(), 1usize..64).prop_map(|(from, at, len)| ByteOp::Splice { from, at, len }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![
        30 => kind().prop_map(Case::Next),
        6 => (kind(), any::<bool>(), prop::collection::vec(byte(), 0..200)).prop_map(|(target, framed, bytes)| Case::Random { target, framed, bytes }),
        25 => (kind(), any::<Index>(), prop::collection::vec(byte_op(), 1..4)).prop_map(|(kind, pick, ops)| Case::Bytes { kind, pick, ops }),
        6 => (kind(), any::<Index>(), any::<Index>()).prop_map(|(kind, pick, at)| Case::Truncate { kind, pick, at }),
        15 => (json_kind(), any::<Index>(), any::<Index>(), json_value()).prop_map(|(kind, pick, at, value)| Case::Replace { kind, pick, at, value }),
        6 => (json_kind(), any::<Index>(), any::<Index>(), json_value(), any::<bool>())
            .prop_map(|(kind, pick, at, value, after)| Case::Repeat { kind, pick, at, value, after }),
        4 => (json_kind(), any::<Index>(), any::<Index>(), any::<Index>()).prop_map(|(kind, pick, a, b)| Case::Swap { kind, pick, a, b }),
        8 => (
            any::<Index>(),
            any::<Index>(),
            prop_oneof![prop::sample::select(EDGE_STRINGS).prop_map(str::to_owned), any::<String>(), (0usize..600).prop_map(|n| "é".repeat(n))],
            prop_oneof![prop::sample::select(EDGE_NUMBERS), any::<i64>()]
        )
            .prop_map(|(pick, field, text, time)| Case::AvroField { pick, field, text, time }),
    ]
}

/// What an input must become, besides what every input must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Anything,
    /// Decoded without error.
    Decoded,
    /// Not decoded, for this reason.
    Fails(DeadLetterReason),
}

/// A record of the simulators, in the forms an input starts from.
#[derive(Debug, Clone)]
struct Seed {
    bytes: Vec<u8>,
    /// The canonical event, for Avro edge values.
    event: Option<Event>,
    /// The reason a malformed record is given.
    malformed: Option<DeadLetterReason>,
}

/// The simulators, and their recent records.
struct Sources {
    json: Codec,
    avro: Codec,
    canonical: Simulator,
    vendors: Vec<VendorSimulator>,
    pools: Vec<VecDeque<Seed>>,
    /// The largest event time of the simulators' records so far.
    latest: i64,
}

fn pool_index(kind: Kind) -> usize {
    match kind {
        Kind::Json => 0,
        Kind::Avro => 1,
        Kind::Vendor(i) => 2 + i,
    }
}

impl Sources {
    fn new(seed: u64) -> Self {
        // Several sessions a second, so that many are open at once.
        let config = SimConfig { seed, sessions_per_second: 5.0, malformed_rate: 0.02, ..SimConfig::default() };
        let vendors = VENDORS
            .iter()
            .map(|f| VendorSimulator::new(*f, SimConfig { seed: seed ^ (*f as u64 + 1), ..config.clone() }).expect("a vendor simulator"))
            .collect();
        let mut sources = Sources {
            json: Codec::json(),
            avro: Codec::avro(),
            canonical: Simulator::new(config),
            vendors,
            pools: vec![VecDeque::new(); 2 + VENDORS.len()],
            latest: 0,
        };
        for _ in 0..POOL {
            for kind in [Kind::Json, Kind::Avro].into_iter().chain((0..VENDORS.len()).map(Kind::Vendor)) {
                sources.next(kind);
            }
        }
        sources
    }

    /// The next record of a kind, kept in its pool.
    fn next(&mut self, kind: Kind) -> Seed {
        let seed = match kind {
            Kind::Json | Kind::Avro => match self.canonical.next().expect("an endless simulator") {
                SimRecord::Event(event) => {
                    self.latest = self.latest.max(event.occurred_at.0);
                    let codec = if kind == Kind::Json { &self.json } else { &self.avro };
                    Seed { bytes: codec.encode_event(&event).expect("a simulated event encodes"), event: Some(event), malformed: None }
                }
                SimRecord::Malformed { value, reason, .. } => {
                    let reason = DeadLetterReason::parse(reason).expect("a dead-letter reason");
                    Seed { bytes: value, event: None, malformed: Some(reason) }
                }
            },
            Kind::Vendor(i) => {
                let record = self.vendors[i].next().expect("an endless simulator");
                self.latest = self.latest.max(record.occurred_at.0);
                Seed { bytes: record.value.into_bytes(), event: None, malformed: record.malformed }
            }
        };
        let pool = &mut self.pools[pool_index(kind)];
        if pool.len() == POOL {
            pool.pop_front();
        }
        pool.push_back(seed.clone());
        seed
    }

    fn pick(&self, kind: Kind, pick: &Index) -> &Seed {
        let pool = &self.pools[pool_index(kind)];
        &pool[pick.index(pool.len())]
    }

    /// A random recent record of any kind, for splices.
    fn any(&self, pick: &Index) -> &[u8] {
        let i = pick.index(self.pools.len() * POOL);
        let pool = &self.pools[i / POOL];
        &pool[(i % POOL) % pool.len()].bytes
    }

    /// The input of a case and what it must become.
    fn input(&mut self, case: &Case) -> (Target, Vec<u8>, Expect) {
        match case {
            Case::Next(kind) => {
                let seed = self.next(*kind);
                let expect = match seed.malformed {
                    Some(reason) => Expect::Fails(reason),
                    None => Expect::Decoded,
                };
                (kind.target(), seed.bytes, expect)
            }
            Case::Random { target, framed, bytes } => {
                let mut value = if *framed { vec![0, 0, 0, 0, 1] } else { Vec::new() };
                value.extend_from_slice(bytes);
                (target.target(), value, Expect::Anything)
            }
            Case::Bytes { kind, pick, ops } => {
                let mut bytes = self.pick(*kind, pick).bytes.clone();
                for op in ops {
                    self.apply(&mut bytes, op);
                }
                (kind.target(), bytes, Expect::Anything)
            }
            Case::Truncate { kind, pick, at } => {
                let seed = self.pick(*kind, pick);
                let bytes = seed.bytes[..at.index(seed.bytes.len().max(1))].to_vec();
                // A canonical record cut short is not a record. (A vendor's
                // may still be read, as its form is not one sessionflow defines.)
                let expect =
                    if matches!(kind, Kind::Vendor(_)) || seed.malformed.is_some() { Expect::Anything } else { Expect::Fails(DeadLetterReason::DecodeError) };
                (kind.target(), bytes, expect)
            }
            Case::Replace { kind, pick, at, value } => {
                let bytes = self.pick(*kind, pick).bytes.clone();
                (kind.target(), edit_json(&bytes, |json| replace(json, at, value.clone())), Expect::Anything)
            }
            Case::Repeat { kind, pick, at, value, after } => {
                let bytes = self.pick(*kind, pick).bytes.clone();
                (kind.target(), repeat_key(&bytes, at, value, *after), Expect::Anything)
            }
            Case::Swap { kind, pick, a, b } => {
                let bytes = self.pick(*kind, pick).bytes.clone();
                (kind.target(), edit_json(&bytes, |json| swap(json, a, b)), Expect::Anything)
            }
            Case::AvroField { pick, field, text, time } => {
                let seed = self.pick(Kind::Avro, pick);
                let Some(event) = &seed.event else { return (Target::Canonical, seed.bytes.clone(), Expect::Anything) };
                let mut json = event.to_json();
                const FIELDS: [&str; 9] = ["event_id", "session_id", "type", "occurred_at", "channel", "direction", "tenant", "source", "attributes"];
                match FIELDS[field.index(FIELDS.len())] {
                    "occurred_at" => json["occurred_at"] = Value::from(*time),
                    "attributes" => json["attributes"] = serde_json::json!({ "text": text, "priority": time }),
                    name => json[name] = Value::String(text.clone()),
                }
                match self.avro.schemas.encode(sessionflow_codec::avro::RecordKind::Event, &json) {
                    Ok(bytes) => (Target::Canonical, bytes, Expect::Anything),
                    Err(_) => (Target::Canonical, seed.bytes.clone(), Expect::Anything),
                }
            }
        }
    }

    fn apply(&self, bytes: &mut Vec<u8>, op: &ByteOp) {
        let at = |i: &Index, len: usize| i.index(len.max(1)).min(len);
        match op {
            ByteOp::Flip(i, bit) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
            ByteOp::Set(i, b) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
            ByteOp::Insert(i, b) => {
                let i = at(i, bytes.len());
                bytes.splice(i..i, b.iter().copied());
            }
            ByteOp::Remove(i, n) => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            ByteOp::Repeat(i, n, times) => {
                let i = at(i, bytes.len());
                let end = (i + n).min(bytes.len());
                let chunk = bytes[i..end].to_vec();
                for _ in 0..*times {
                    bytes.splice(end..end, chunk.iter().copied());
                }
            }
            ByteOp::Splice { from, at: to, len } => {
                let other = self.any(from);
                let start = at(from, other.len());
                let piece = other[start..(start + len).min(other.len())].to_vec();
                let i = at(to, bytes.len());
                bytes.splice(i..i, piece);
            }
            ByteOp::Flip(..) | ByteOp::Set(..) => {}
        }
    }
}

/// Applies `edit` to the JSON of `bytes` (unchanged when they are not JSON).
fn edit_json(bytes: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut json) => {
            edit(&mut json);
            serde_json::to_vec(&json).expect("JSON writes")
        }
        Err(_) => bytes.to_vec(),
    }
}

/// Every place of a JSON value, parents first.
fn places(json: &Value, out: &mut Vec<Vec<PathStep>>, path: &mut Vec<PathStep>) {
    out.push(path.clone());
    match json {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(PathStep::Key(k.clone()));
                places(v, out, path);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(PathStep::Item(i));
                places(v, out, path);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    Item(usize),
}

fn get_path<'a>(json: &'a Value, path: &[PathStep]) -> &'a Value {
    path.iter().fold(json, |v, step| match step {
        PathStep::Key(k) => &v[k.as_str()],
        PathStep::Item(i) => &v[*i],
    })
}

fn at_path<'a>(json: &'a mut Value, path: &[PathStep]) -> &'a mut Value {
    path.iter().fold(json, |v, step| match step {
        PathStep::Key(k) => &mut v[k.as_str()],
        PathStep::Item(i) => &mut v[*i],
    })
}

fn all_places(json: &Value) -> Vec<Vec<PathStep>> {
    let mut out = Vec::new();
    places(json, &mut out, &mut Vec::new());
    out
}

fn replace(json: &mut Value, at: &Index, value: Value) {
    let places = all_places(json);
    let path = &places[at.index(places.len())];
    *at_path(json, path) = value;
}

fn swap(json: &mut Value, a: &Index, b: &Index) {
    let places = all_places(json);
    let (a, b) = (&places[a.index(places.len())], &places[b.index(places.len())]);
    // Neither inside the other.
    if a.starts_with(b) || b.starts_with(a) {
        return;
    }
    let first = std::mem::take(at_path(json, a));
    let second = std::mem::replace(at_path(json, b), first);
    *at_path(json, a) = second;
}

/// The JSON text with a key of one of its objects repeated, with
/// another value, as the object's first entry (read first) or its last.
fn repeat_key(bytes: &[u8], at: &Index, value: &Value, after: bool) -> Vec<u8> {
    let Ok(mut json) = serde_json::from_slice::<Value>(bytes) else { return bytes.to_vec() };
    let objects: Vec<Vec<PathStep>> = all_places(&json).into_iter().filter(|p| get_path(&json, p).as_object().is_some_and(|o| !o.is_empty())).collect();
    let Some(path) = objects.get(at.index(objects.len().max(1))) else { return bytes.to_vec() };
    let Value::Object(object) = at_path(&mut json, path) else { return bytes.to_vec() };
    let key = object.keys().nth(at.index(object.len())).expect("a key").clone();
    // A marker entry where the repeated key goes, replaced in the text
    // (a map cannot hold a key twice).
    let mark = "\u{1}repeat\u{1}";
    let mut rebuilt = serde_json::Map::new();
    if !after {
        rebuilt.insert(mark.to_owned(), Value::Null);
    }
    rebuilt.extend(std::mem::take(object));
    if after {
        rebuilt.insert(mark.to_owned(), Value::Null);
    }
    *object = rebuilt;
    let text = serde_json::to_string(&json).expect("JSON writes");
    let mark_entry = format!("{}:null", serde_json::to_string(mark).expect("JSON writes"));
    let entry = format!("{}:{}", serde_json::to_string(&key).expect("JSON writes"), serde_json::to_string(value).expect("JSON writes"));
    text.replacen(&mark_entry, &entry, 1).into_bytes()
}

/// The canonical JSON decoder's fast paths against its general path:
/// `serde_json` reads the value and `Event::from_json` validates it.
fn check_fast_path(bytes: &[u8]) -> Result<(), String> {
    if bytes.first() == Some(&0) || bytes.len() > sessionflow_codec::DEFAULT_MAX_EVENT_BYTES {
        return Ok(());
    }
    let fast = Event::from_json_slice(bytes);
    let general = serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string());
    match (&fast, general) {
        (_, Err(e)) if e.contains("recursion limit") => Ok(()),
        (Err(f), Err(_)) if f.reason == DeadLetterReason::DecodeError => Ok(()),
        (fast, Ok(value)) => {
            let general = Event::from_json(value);
            match (fast, &general) {
                (Ok(a), Ok(b)) if a == b => Ok(()),
                (Err(a), Err(b)) if a.reason == b.reason => Ok(()),
                _ => Err(format!("the fast path reads {fast:?}, the general path {general:?}")),
            }
        }
        (fast, Err(e)) => Err(format!("the fast path reads {fast:?}, serde_json fails: {e}")),
    }
}

#[test]
fn generated_inputs_are_dead_letters_with_their_reasons_or_events() {
    let inputs = env_u64("SESSIONFLOW_FUZZ_INPUTS", DEFAULT_INPUTS);
    let seed = env_u64("SESSIONFLOW_FUZZ_SEED", 0x5e55_10f1);
    // Prints the first inputs, to see what is generated.
    let show = env_u64("SESSIONFLOW_FUZZ_SHOW", 0);
    let config = Config { rng_algorithm: RngAlgorithm::XorShift, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = case().boxed();
    let mut sources = Sources::new(seed);
    // Short timers and retention: sessions finalize, retire and are
    // forgotten within the run, and the state stays small.
    let engine = EngineConfig {
        finalize_after_ms: 60_000,
        retain_after_final_ms: 300_000,
        marker_retention_ms: 600_000,
        session_timeout_ms: 3_600_000,
        ..EngineConfig::default()
    };
    let mut harness = Harness::new(engine.clone(), Millis(0));
    let started = Instant::now();
    let (mut done, mut batches, mut bytes) = (0u64, 0u64, 0u64);
    let mut worst = (0.0f64, 0u64, 0usize, 0u64);
    let mut decoded = 0u64;
    while done < inputs {
        if batches.is_multiple_of(BATCHES_PER_EPOCH) {
            harness = Harness::new(engine.clone(), Millis(0));
        }
        let n = BATCH.min((inputs - done) as usize);
        let mut batch = Vec::with_capacity(n);
        let mut expectations = Vec::with_capacity(n);
        for _ in 0..n {
            let case = strategy.new_tree(&mut runner).expect("a case").current();
            let (target, value, expect) = sources.input(&case);
            if done + (batch.len() as u64) < show {
                println!("{case:?}\n  {target:?} {expect:?}: {}", String::from_utf8_lossy(&value[..value.len().min(600)]));
            }
            if target == Target::Canonical
                && let Err(e) = check_fast_path(&value)
            {
                panic!("seed {seed}: {case:?}: {e}\ninput (hex): {}", hex(Some(&value)));
            }
            bytes += value.len() as u64;
            batch.push((target, Some(value)));
            expectations.push((expect, case));
        }
        // The daemon's wall clock: a little after the newest record.
        harness.wall_clock = Millis(sources.latest + 60_000);
        let reports = harness.run_batch(&batch).unwrap_or_else(|failure| panic!("seed {seed}, batch {batches}: {failure}"));
        for ((report, (expect, case)), (_, value)) in reports.iter().zip(&expectations).zip(&batch) {
            let fail = |what: &str| panic!("seed {seed}, batch {batches}: {what}: {case:?}\n{report:?}\ninput (hex): {}", hex(value.as_deref()));
            match (expect, &report.decoded) {
                (Expect::Decoded, Err(_)) => fail("a simulated record is not decoded"),
                (Expect::Fails(reason), Ok(_)) => fail(&format!("an input that must be a {reason} dead letter is decoded")),
                (Expect::Fails(reason), Err(e)) if e.reason != *reason => fail(&format!("an input that must be a {reason} dead letter is one of {}", e.reason)),
                _ => {}
            }
            if !report.within_memory_bound() {
                fail(&format!("{} bytes allocated, more than the bound {}", report.peak_bytes, memory_bound(report.len, report.records)));
            }
            let ratio = report.peak_bytes as f64 / memory_bound(report.len, report.records) as f64;
            if ratio > worst.0 {
                worst = (ratio, report.peak_bytes, report.len, report.records);
            }
            decoded += u64::from(report.decoded.is_ok());
        }
        done += n as u64;
        batches += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = &harness.stats;
    println!(
        "fuzz: seed {seed}: {done} inputs ({bytes} bytes) in {batches} batches, {secs:.1} s, {:.0} inputs/s; {decoded} decoded; last epoch: {} timeline, {:?} dead letters, {} duplicates",
        done as f64 / secs,
        stats.timeline,
        stats.dead_lettered,
        stats.duplicates
    );
    println!(
        "fuzz: closest to the memory bound: {} bytes for an input of {} bytes with {} metadata records (bound {})",
        worst.1,
        worst.2,
        worst.3,
        memory_bound(worst.2, worst.3)
    );
    assert_eq!(done, inputs);
    // Sanity: the mix reaches both sides.
    assert!(decoded > done / 10 && decoded < done, "{decoded} of {done} inputs decoded");
}
