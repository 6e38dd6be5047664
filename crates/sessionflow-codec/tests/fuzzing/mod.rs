//! The input path as the daemon runs it, for `fuzz.rs` and
//! `hostile_inputs.rs`: a record's value through the codec (canonical
//! topics) or a vendor's adapter, then through the fold in batches over an
//! in-memory state, every input under `catch_unwind` and with its memory
//! counted.
//!
//! These tests live in `sessionflow-codec` because it is the one crate
//! without RocksDB that sees the codec, the core and (as dev-dependencies)
//! the simulator and the vendor adapters. The adapters crate could not host
//! them: the simulator depends on it, so a dev-dependency on the simulator
//! there would link a second copy of the adapters.
//!
//! Memory is counted by `allocation-counter`, a `#[global_allocator]` over
//! the system allocator with per-thread counters: the workspace forbids
//! `unsafe` code, so the tests cannot implement `GlobalAlloc` themselves,
//! and per-thread counters keep the figures of one input apart from those
//! of tests running at the same time on other threads.
#![allow(dead_code)]

use sessionflow_adapters::{Adapter, AdapterOptions, InputFormat, adapt_for_batch, adapter};
use sessionflow_codec::Codec;
use sessionflow_core::memstore::MemState;
use sessionflow_core::{Batch, BatchStats, DeadLetterReason, EngineConfig, InputError, InputPosition, InputRecord, Millis, Output};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Where an input value goes: a canonical topic (the codec: JSON or
/// framed Avro) or a vendor's topic (its adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Canonical,
    Vendor(InputFormat),
}

/// The most a single input may allocate while it is decoded (or adapted)
/// and folded: `MEMORY_PER_INPUT_BYTE` bytes per byte of the value, plus
/// `MEMORY_CONSTANT`, plus `MEMORY_PER_SESSION_BYTE` per byte of
/// `engine.max_session_bytes`, plus `MEMORY_PER_RECORD` per metadata
/// record the fold emits for it.
///
/// The per-byte factor covers JSON value trees: a serde_json value takes
/// 72 bytes, so `[0,0,…]` holds one per two input bytes, a vector that
/// doubles holds its old and its new buffer for a moment, and an adapter
/// may hold the record's tree and a copy of part of it (Twilio's comes
/// to 112 bytes per input byte, the most measured). The constant covers
/// what does not depend on the input: the batch's own structures, the
/// dead-letter record and its detail, an event and its timeline record.
/// An event out of order refolds its session from its stored events: in
/// proportion to the session's size, which `engine.max_session_bytes`
/// bounds (`hostile_inputs.rs` measures a session at that bound). A
/// metadata record is emitted for the event's session, and for every
/// session whose timer fires when the event moves the watermark: work the
/// input triggers, in proportion to the sessions that are due, not to
/// the input (each record is bounded by the session bounds). Inputs are
/// cut off at `encoding.max_event_bytes` before they are parsed, canonical
/// and vendor records alike (the daemon and the replay; this harness
/// measures past it).
pub const MEMORY_PER_INPUT_BYTE: u64 = 192;
/// See [`MEMORY_PER_INPUT_BYTE`].
pub const MEMORY_CONSTANT: u64 = 1 << 20;
/// See [`MEMORY_PER_INPUT_BYTE`].
pub const MEMORY_PER_SESSION_BYTE: u64 = 6;
/// See [`MEMORY_PER_INPUT_BYTE`].
pub const MEMORY_PER_RECORD: u64 = 32 << 10;

/// The memory bound of an input of `len` bytes for which the fold emitted
/// `records` metadata records, with the default session bounds.
pub fn memory_bound(len: usize, records: u64) -> u64 {
    let session_bytes = EngineConfig::default().max_session_bytes;
    MEMORY_PER_INPUT_BYTE * len as u64 + MEMORY_CONSTANT + MEMORY_PER_SESSION_BYTE * session_bytes + MEMORY_PER_RECORD * records
}

/// The value as hex, for a failure report.
pub fn hex(value: Option<&[u8]>) -> String {
    match value {
        None => "(null value)".into(),
        Some(bytes) => {
            let mut out = String::with_capacity(2 * bytes.len().min(4096) + 32);
            for b in bytes.iter().take(4096) {
                let _ = write!(out, "{b:02x}");
            }
            if bytes.len() > 4096 {
                let _ = write!(out, "… ({} bytes)", bytes.len());
            }
            out
        }
    }
}

/// What became of one input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputReport {
    /// Its offset in the harness's input topic.
    pub offset: i64,
    /// The decoder's or adapter's result: how many events, or its error.
    pub decoded: Result<usize, InputError>,
    /// Timeline records it gave.
    pub timeline: usize,
    /// Its dead letters: reason and detail.
    pub dead_letters: Vec<(DeadLetterReason, String)>,
    /// Peak bytes allocated while it was decoded, plus those while it was
    /// folded (at least the peak of the two together).
    pub peak_bytes: u64,
    /// Metadata records the fold emitted while it was folded (for its
    /// session and for sessions whose timers it fired).
    pub records: u64,
    /// Its size.
    pub len: usize,
}

impl InputReport {
    /// Whether it allocated within [`memory_bound`].
    pub fn within_memory_bound(&self) -> bool {
        self.peak_bytes <= memory_bound(self.len, self.records)
    }
}

impl InputReport {
    /// The one dead letter's reason, if it gave exactly one and nothing else.
    pub fn dead_letter_reason(&self) -> Option<DeadLetterReason> {
        match self.dead_letters.as_slice() {
            [(reason, _)] if self.timeline == 0 => Some(*reason),
            _ => None,
        }
    }
}

/// The decoders, the adapters and the fold over one in-memory partition.
#[derive(Debug)]
pub struct Harness {
    pub config: EngineConfig,
    pub codec: Codec,
    adapters: Vec<Box<dyn Adapter>>,
    pub state: MemState,
    /// The batches' wall clock (`engine.max_future_skew` is checked
    /// against it, as in the daemon).
    pub wall_clock: Millis,
    next_offset: i64,
    topic: Arc<str>,
    /// Totals of every batch.
    pub stats: BatchStats,
}

impl Harness {
    pub fn new(config: EngineConfig, wall_clock: Millis) -> Self {
        let adapters = InputFormat::ALL.iter().map(|f| adapter(*f, &AdapterOptions::default())).collect();
        Harness {
            config,
            codec: Codec::json(),
            adapters,
            state: MemState::default(),
            wall_clock,
            next_offset: 0,
            topic: "fuzz".into(),
            stats: BatchStats::default(),
        }
    }

    /// Runs `inputs` as one batch. `Err` describes the first failure: a
    /// panic (with the input in hex), an error that did not become the
    /// dead letter it said, or accounting that does not balance.
    pub fn run_batch(&mut self, inputs: &[(Target, Option<Vec<u8>>)]) -> Result<Vec<InputReport>, String> {
        let Harness { config, codec, adapters, state, wall_clock, next_offset, topic, stats } = self;
        let mut batch = Batch::new(config, &*state, *wall_clock).unwrap_or_else(|e: std::convert::Infallible| match e {});
        batch.set_wall_clock(Some(*wall_clock));
        let mut reports = Vec::with_capacity(inputs.len());
        let mut recorded = 0u64;
        for (target, value) in inputs {
            let offset = *next_offset;
            *next_offset += 1;
            let value = value.as_deref();
            let position = InputPosition { topic: topic.clone(), partition: 0, offset };
            let mut decoded = Ok(0);
            let mut calls = 0u64;
            let mut events = Ok(Vec::new());
            let mut outcome = Ok(());
            let decoding = allocation_counter::measure(|| {
                outcome = catch_unwind(AssertUnwindSafe(|| {
                    events = match target {
                        Target::Canonical => codec.decode_event(value).map(|e| vec![e]),
                        Target::Vendor(format) => {
                            let adapter = adapters.iter().find(|a| a.format() == *format).expect("an adapter per format");
                            adapt_for_batch(adapter.as_ref(), &batch, value)
                        }
                    };
                }));
            });
            let metadata_before = batch.stats().metadata;
            let folding = allocation_counter::measure(|| {
                if outcome.is_err() {
                    return;
                }
                outcome = catch_unwind(AssertUnwindSafe(|| {
                    decoded = events.as_ref().map(Vec::len).map_err(Clone::clone);
                    let key = events.as_ref().ok().and_then(|e| e.first()).map(|e| e.session_id.clone());
                    let key = key.as_deref().map(str::as_bytes);
                    match std::mem::replace(&mut events, Ok(Vec::new())) {
                        Ok(events) => {
                            for event in events {
                                calls += 1;
                                let Ok(()) = batch.record(InputRecord { key, value, position: position.clone(), event: Ok(event) });
                            }
                        }
                        Err(error) => {
                            calls += 1;
                            let Ok(()) = batch.record(InputRecord { key, value, position: position.clone(), event: Err(error) });
                        }
                    }
                }));
            });
            let records = batch.stats().metadata - metadata_before;
            if let Err(panic) = outcome {
                let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned())).unwrap_or_default();
                return Err(format!("input at offset {offset} ({target:?}) panicked: {message}\ninput (hex): {}", hex(value)));
            }
            recorded += calls;
            let len = value.map_or(0, <[u8]>::len);
            let peak_bytes = decoding.bytes_max + folding.bytes_max;
            reports.push(InputReport { offset, decoded, timeline: 0, dead_letters: Vec::new(), peak_bytes, records, len });
        }
        let result = catch_unwind(AssertUnwindSafe(|| batch.finish())).map_err(|_| "Batch::finish panicked".to_owned())?;
        let s = &result.stats;
        if s.consumed != recorded {
            return Err(format!("the batch consumed {} records, {recorded} were recorded", s.consumed));
        }
        if s.consumed != s.timeline + s.dead_letter_total() + s.duplicates + s.erased_suppressed {
            return Err(format!("accounting: consumed != timeline + dead letters + duplicates + erased_suppressed: {s:?}"));
        }
        let first = reports.first().map_or(0, |r| r.offset);
        let mut dead_by_reason: BTreeMap<DeadLetterReason, u64> = BTreeMap::new();
        for output in &result.outputs {
            match output {
                Output::Timeline(t) => reports[(t.input.offset - first) as usize].timeline += 1,
                Output::DeadLetter(d) => {
                    let i = (d.input.offset - first) as usize;
                    let (_, value) = &inputs[i];
                    if d.value != *value {
                        return Err(format!("the dead letter of the input at offset {} does not keep its value byte for byte", d.input.offset));
                    }
                    *dead_by_reason.entry(d.reason).or_default() += 1;
                    reports[i].dead_letters.push((d.reason, d.detail.clone()));
                }
                Output::Metadata(_) | Output::Tombstone(_) => {}
            }
        }
        if dead_by_reason != s.dead_lettered {
            return Err(format!("dead letters {dead_by_reason:?}, counted {:?}", s.dead_lettered));
        }
        for (report, (target, value)) in reports.iter().zip(inputs) {
            let context = || format!("input at offset {} ({target:?}): {report:?}\ninput (hex): {}", report.offset, hex(value.as_deref()));
            match &report.decoded {
                Err(error) => {
                    // A decoding error is the input's one output, with the reason and detail it said.
                    if report.timeline != 0 || report.dead_letters != [(error.reason, error.detail.clone())] {
                        return Err(format!("a decoding error that is not the input's one dead letter: {}", context()));
                    }
                }
                Ok(events) => {
                    // The fold turns events away for their time, a bound, or a retired session only.
                    let fold_reasons = [DeadLetterReason::BadTimestamp, DeadLetterReason::Oversize, DeadLetterReason::LateAfterRetention];
                    if report.dead_letters.iter().any(|(reason, _)| !fold_reasons.contains(reason)) || report.dead_letters.len() + report.timeline > *events {
                        return Err(format!("a decoded input with outputs its events cannot have: {}", context()));
                    }
                }
            }
        }
        stats.merge(s);
        state.apply(result.writes);
        Ok(reports)
    }

    /// One input alone in a batch.
    pub fn run_one(&mut self, target: Target, value: Option<Vec<u8>>) -> InputReport {
        match self.run_batch(&[(target, value)]) {
            Ok(mut reports) => reports.remove(0),
            Err(failure) => panic!("{failure}"),
        }
    }
}
