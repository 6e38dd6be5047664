//! A deterministic contact-center traffic simulator.
//!
//! Sessions arrive at a steady event-time rate and follow realistic scripts:
//! voice with IVR and virtual agents, queues, offers and declines, holds,
//! transfers, wrap-up and post-session surveys; chats abandoned in queue;
//! emails released and reassigned; deflections to SMS or callback; contained
//! virtual-agent sessions; outbound and scheduled callbacks; co-browsing,
//! payments, media, sentiment, transcripts; erasure requests. Every event
//! type of the contract appears. On top, at configurable rates: late,
//! duplicate, out-of-order and malformed records.
//!
//! The same seed always yields the same records.
//!
//! [`privacy_corpus`] is a fixed set of records with seeded personal values
//! in every carrier, for the privacy leak tests.
//!
//! [`vendors`] writes vendors' native records instead (Amazon Connect,
//! Genesys Cloud, Twilio TaskRouter, Zoom Contact Center, CCAI Platform),
//! for the adapters of `sessionflow-adapters`: see
//! [`vendors::VendorSimulator`].

pub mod privacy_corpus;
mod scripts;
pub mod vendors;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sessionflow_core::{Event, Millis};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Simulator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// RNG seed.
    pub seed: u64,
    /// Event time of the first session start.
    pub start: Millis,
    /// New sessions per second of event time.
    pub sessions_per_second: f64,
    /// Extra timeline-only events (transcript segments, sentiment, API calls)
    /// per session, on top of the script: stretches sessions for benchmarks.
    pub extra_events_per_session: u32,
    /// Share of events re-sent later (duplicates).
    pub duplicate_rate: f64,
    /// Share of events delivered minutes late.
    pub late_rate: f64,
    /// Share of events swapped with their session's next event.
    pub out_of_order_rate: f64,
    /// Share of records that are malformed (each class of the dead-letter list).
    pub malformed_rate: f64,
    /// Share of sessions erased after they end.
    pub erasure_rate: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            start: Millis(1_720_000_000_000),
            sessions_per_second: 2.0,
            extra_events_per_session: 6,
            duplicate_rate: 0.01,
            late_rate: 0.005,
            out_of_order_rate: 0.01,
            malformed_rate: 0.002,
            erasure_rate: 0.002,
        }
    }
}

impl SimConfig {
    /// Clean traffic: no duplicates, late, out-of-order, malformed or erased.
    pub fn clean(seed: u64) -> Self {
        SimConfig { seed, duplicate_rate: 0.0, late_rate: 0.0, out_of_order_rate: 0.0, malformed_rate: 0.0, erasure_rate: 0.0, ..SimConfig::default() }
    }
}

/// What the simulator emits.
#[derive(Debug, Clone, PartialEq)]
pub enum SimRecord {
    /// A well-formed event (possibly a duplicate, late or out of order).
    Event(Event),
    /// A malformed record: key and raw value bytes, and the dead-letter
    /// reason the daemon should give it.
    Malformed {
        /// Record key.
        key: Option<Vec<u8>>,
        /// Raw value.
        value: Vec<u8>,
        /// Expected `dlq.reason`.
        reason: &'static str,
    },
}

impl SimRecord {
    /// The record key: the session id for events.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            SimRecord::Event(e) => Some(e.session_id.as_bytes()),
            SimRecord::Malformed { key, .. } => key.as_deref(),
        }
    }

    /// Event time, for pacing (malformed records have none).
    pub fn occurred_at(&self) -> Option<Millis> {
        match self {
            SimRecord::Event(e) => Some(e.occurred_at),
            SimRecord::Malformed { .. } => None,
        }
    }
}

/// An endless, deterministic stream of records; bound it with `take`.
#[derive(Debug)]
pub struct Simulator {
    config: SimConfig,
    rng: StdRng,
    /// (emit time, sequence): orders emissions deterministically.
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    pending: HashMap<u64, SimRecord>,
    next_session_at: i64,
    sessions_started: u64,
    sequence: u64,
}

impl Simulator {
    /// A simulator.
    pub fn new(config: SimConfig) -> Self {
        let rng = StdRng::seed_from_u64(config.seed);
        let next_session_at = config.start.0;
        Simulator { config, rng, heap: BinaryHeap::new(), pending: HashMap::new(), next_session_at, sessions_started: 0, sequence: 0 }
    }

    /// Sessions started so far.
    pub fn sessions_started(&self) -> u64 {
        self.sessions_started
    }

    fn push(&mut self, emit_at: i64, record: SimRecord) {
        self.sequence += 1;
        self.heap.push(Reverse((emit_at, self.sequence)));
        self.pending.insert(self.sequence, record);
    }

    fn start_session(&mut self) {
        let id = self.sessions_started;
        self.sessions_started += 1;
        let start = Millis(self.next_session_at);
        let mean_gap_ms = 1000.0 / self.config.sessions_per_second.max(0.001);
        let gap = -mean_gap_ms * (1.0 - self.rng.random::<f64>()).ln();
        self.next_session_at += gap.max(1.0) as i64;

        let mut events = scripts::session(&mut self.rng, id, start, self.config.extra_events_per_session);
        if self.rng.random_bool(self.config.erasure_rate.clamp(0.0, 1.0)) {
            let last = events.last().map_or(start, |e| e.occurred_at);
            events.push(scripts::erasure(&events[0].session_id, last.plus(60_000)));
        }
        let cfg = self.config.clone();
        let mut i = 0;
        while i < events.len() {
            let mut emit_at = events[i].occurred_at.0;
            if i + 1 < events.len() && self.rng.random_bool(cfg.out_of_order_rate.clamp(0.0, 1.0)) {
                // Deliver the next event first: this one arrives just after it.
                events.swap(i, i + 1);
                let (first, second) = (events[i].occurred_at.0, events[i + 1].occurred_at.0);
                self.push(first.max(second), SimRecord::Event(events[i + 1].clone()));
                self.push(first.max(second), SimRecord::Event(events[i].clone()));
                i += 2;
                continue;
            }
            if self.rng.random_bool(cfg.late_rate.clamp(0.0, 1.0)) {
                emit_at += self.rng.random_range(60_000..1_800_000);
            }
            self.push(emit_at, SimRecord::Event(events[i].clone()));
            if self.rng.random_bool(cfg.duplicate_rate.clamp(0.0, 1.0)) {
                let delay = self.rng.random_range(10..120_000);
                self.push(emit_at + delay, SimRecord::Event(events[i].clone()));
            }
            if self.rng.random_bool(cfg.malformed_rate.clamp(0.0, 1.0)) {
                let record = scripts::malformed(&mut self.rng, &events[i]);
                self.push(emit_at, record);
            }
            i += 1;
        }
    }
}

impl Iterator for Simulator {
    type Item = SimRecord;

    fn next(&mut self) -> Option<SimRecord> {
        while self.heap.peek().is_none_or(|Reverse((at, _))| *at >= self.next_session_at) {
            self.start_session();
        }
        let Reverse((_, sequence)) = self.heap.pop()?;
        self.pending.remove(&sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionflow_core::EventType;
    use std::collections::BTreeSet;

    #[test]
    fn same_seed_same_records() {
        let a: Vec<_> = Simulator::new(SimConfig::default()).take(2000).collect();
        let b: Vec<_> = Simulator::new(SimConfig::default()).take(2000).collect();
        assert_eq!(a, b);
        let c: Vec<_> = Simulator::new(SimConfig { seed: 7, ..SimConfig::default() }).take(2000).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn every_event_type_appears() {
        let seen: BTreeSet<String> = Simulator::new(SimConfig { erasure_rate: 0.05, ..SimConfig::default() })
            .take(60_000)
            .filter_map(|r| match r {
                SimRecord::Event(e) => Some(e.event_type.as_str().to_owned()),
                SimRecord::Malformed { .. } => None,
            })
            .collect();
        let missing: Vec<&str> = EventType::KNOWN.iter().map(EventType::as_str).filter(|t| !seen.contains(*t)).collect();
        assert!(missing.is_empty(), "never simulated: {missing:?}");
    }

    #[test]
    fn clean_traffic_events_are_valid_and_in_time_order() {
        let records: Vec<_> = Simulator::new(SimConfig::clean(3)).take(5000).collect();
        let mut last = Millis(i64::MIN);
        for r in &records {
            let SimRecord::Event(e) = r else { panic!("malformed record in clean traffic") };
            let json = serde_json::to_vec(e).unwrap();
            assert_eq!(&Event::from_json_slice(&json).unwrap(), e);
            assert!(e.occurred_at >= last);
            last = e.occurred_at;
        }
    }
}
