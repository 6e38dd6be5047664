//! Inputs shared by the benchmarks: realistic simulator traffic.

use sessionflow_codec::Codec;
use sessionflow_core::Event;
use sessionflow_sim::{SimConfig, SimRecord, Simulator};

/// `n` clean simulated events (no malformed records).
pub fn events(n: usize, extra_events_per_session: u32) -> Vec<Event> {
    let config = SimConfig { extra_events_per_session, ..SimConfig::clean(1) };
    Simulator::new(config)
        .filter_map(|r| match r {
            SimRecord::Event(e) => Some(e),
            SimRecord::Malformed { .. } => None,
        })
        .take(n)
        .collect()
}

/// The same events encoded with `codec`.
pub fn encoded(events: &[Event], codec: &Codec) -> Vec<Vec<u8>> {
    events.iter().map(|e| codec.encode_event(e).expect("encodes")).collect()
}
