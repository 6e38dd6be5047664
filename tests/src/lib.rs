//! Shared helpers of the end-to-end tests: deterministic input from the
//! simulator and one function that processes a batch of it, used both by
//! the process under test and by the reference run.

use sessionflow_codec::Codec;
use sessionflow_core::{Batch, BatchResult, EngineConfig, InputPosition, InputRecord, Millis, SessionCache, StateRead};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};

/// One raw input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// The first `n` records of the simulator with `seed`, encoded as JSON.
pub fn sim_input(seed: u64, n: usize) -> Vec<RawRecord> {
    let codec = Codec::json();
    Simulator::new(SimConfig { seed, ..SimConfig::default() })
        .take(n)
        .map(|record| match record {
            SimRecord::Event(event) => RawRecord { key: Some(event.session_id.as_bytes().to_vec()), value: codec.encode_event(&event).expect("encodes") },
            SimRecord::Malformed { key, value, .. } => RawRecord { key, value },
        })
        .collect()
}

/// Engine settings for tests: short timers so sessions finalize, retire and
/// are forgotten within a few thousand records.
pub fn test_engine() -> EngineConfig {
    EngineConfig {
        finalize_after_ms: 60_000,
        session_timeout_ms: 3_600_000,
        async_session_timeout_ms: 3_600_000,
        retain_after_final_ms: 600_000,
        marker_retention_ms: 1_200_000,
        ..EngineConfig::default()
    }
}

/// Processes `records` (starting at input offset `first_offset`) as one batch.
pub fn process<S: StateRead>(engine: &EngineConfig, state: &S, records: &[RawRecord], first_offset: i64) -> Result<BatchResult, S::Error> {
    fill(Batch::new(engine, state, Millis(0))?, records, first_offset)
}

/// As [`process`], taking session entries from `cache` first.
pub fn process_cached<S: StateRead>(
    engine: &EngineConfig,
    state: &S,
    cache: &mut SessionCache,
    records: &[RawRecord],
    first_offset: i64,
) -> Result<BatchResult, S::Error> {
    fill(Batch::with_cache(engine, state, Millis(0), cache)?, records, first_offset)
}

fn fill<S: StateRead>(mut batch: Batch<'_, S>, records: &[RawRecord], first_offset: i64) -> Result<BatchResult, S::Error> {
    let codec = Codec::json();
    for (i, record) in records.iter().enumerate() {
        let event = codec.decode_event(Some(&record.value));
        batch.record(InputRecord {
            key: record.key.as_deref(),
            value: Some(&record.value),
            position: InputPosition { topic: "test".into(), partition: 0, offset: first_offset + i as i64 },
            event,
        })?;
    }
    Ok(batch.finish())
}
