//! Vendor-native traffic: each vendor's own records, as its bridge writes
//! them to Kafka, for the adapters of `sessionflow-adapters`.
//!
//! [`VendorSimulator`] plans sessions ([`SessionPlan`]: answered, abandoned
//! in queue, transferred, deflected to a callback, contained by a virtual
//! agent, async released back to the queue, as the vendor has them),
//! renders each plan into the vendor's native records following the shapes
//! the adapter reads (`docs/adapters/<format>.md` and the fixtures under
//! `examples/vendors/<format>/`), then delivers them with the vendor's
//! quirks: redeliveries, disorder, late records, re-sent snapshots (Amazon
//! Connect contact records, CCAI Platform session snapshots) and, on
//! request, malformed records.
//!
//! The plans depend on the seed only, never on the quirk rates: a clean
//! configuration ([`SimConfig::clean`]) with the same seed renders the same
//! sessions without quirks, which is what the tests compare against.
//!
//! ```
//! use sessionflow_adapters::InputFormat;
//! use sessionflow_sim::SimConfig;
//! use sessionflow_sim::vendors::VendorSimulator;
//!
//! let sim = VendorSimulator::new(InputFormat::ZoomContactCenter, SimConfig::default()).unwrap();
//! let mut sim = sim.with_session_limit(3);
//! let records: Vec<_> = sim.by_ref().collect();
//! assert!(records.iter().all(|r| r.key.is_some()));
//! assert_eq!(sim.plans().len(), 3);
//! ```
//!
//! # Wiring `sessionflow simulate --format NAME`
//!
//! Parse the name with `InputFormat::from_str`; `canonical` stays with
//! [`crate::Simulator`] ([`VendorSimulator::new`] refuses it with
//! [`UnsupportedFormat`]). Write `record.value` one per line (what
//! `sessionflow replay FILE --input-format NAME` reads), or produce it to
//! Kafka with `record.key`. Bound an endless stream with `take(n)`, or ask
//! for whole sessions with [`VendorSimulator::with_session_limit`].
//! [`VendorRecord::malformed`] marks the records injected on purpose.
//!
//! # What each vendor's generator writes
//!
//! Session ids and keys follow the adapter's default (journey) identity.
//!
//! | format | shape | sessions | vendor quirks on top of the common ones |
//! | --- | --- | --- | --- |
//! | `amazon-connect` | EventBridge contact events (`INITIATED`, `CONNECTED_TO_SYSTEM`, `QUEUED`, `CONNECTED_TO_AGENT`, `DISCONNECTED`, `COMPLETED`, `CONTACT_DATA_UPDATED`) and contact records, interleaved on one stream; key `initialContactId` else `contactId` | answered (voice or chat, holds on the record), abandoned in queue, transferred (a second `TRANSFER` contact), contained by the flow (chat) | contact records re-sent unchanged; some sessions get a second record version (later `LastUpdateTimestamp`, an attribute added) in every rendering |
//! | `genesys-cloud` | bare detail-event notifications (`customer.start/end`, `flow.start/end`, `attributes`, `acd.start/end`, `user.start/end`, `acw`); key `conversationId` | answered (voice after an IVR flow, or chat; alerts that time out or are rejected), abandoned in queue, transferred (the first agent's `acw` while the customer waits), contained by a bot flow | — |
//! | `twilio-taskrouter` | workspace callbacks as JSON objects of strings; key the first task's sid (Flex `conversations.conversation_id`) | answered (reservations rejected or timed out first), abandoned (`task.canceled` hangup), transferred (cold to a queue: a second task with the conversation id), deflected (`Callback requested by caller`) | — |
//! | `zoom-contact-center` | `contact_center.*` webhook bodies; key `engagement_id` | answered (ring timeouts/rejections, hold), abandoned in queue, transferred (`engagement_transfer_*`), deflected (`queue_scheduled_callback_created`), async messaging released back to the queue (`task_updated` pending) and taken by a second agent; one or several dispositions on `task_completed` | — |
//! | `ccai-platform` | external session events, each a snapshot of the whole call or chat; key `call-<id>` / `chat-<id>` | answered, abandoned in queue, transferred (`switching` then the transfer completed), contained by a virtual agent; some sessions get a last snapshot with the disposition and rating | snapshots re-sent as new events (new `event_id`, later `timestamp`), possibly after newer ones |
//!
//! Common quirks, at the [`SimConfig`] rates: redeliveries
//! (`duplicate_rate`, 10 ms to 2 min later), late records (`late_rate`, 1
//! to 30 min), a record overtaken by the session's next one
//! (`out_of_order_rate`), malformed records next to the real ones
//! (`malformed_rate`: cut short, `decode_error`; or without the session id
//! field, `missing_field`), and re-sent snapshots (ten times
//! `duplicate_rate`, at most one in two).

mod ccaip;
mod connect;
mod genesys;
mod twilio;
mod zoom;

use crate::SimConfig;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sessionflow_adapters::InputFormat;
use sessionflow_core::{Channel, DeadLetterReason, Millis};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

/// What a planned session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SessionKind {
    /// Queued, answered by an agent (maybe after declined offers), maybe a
    /// hold, ended, wrapped up.
    Answered,
    /// Queued (maybe offered and declined), the customer leaves.
    AbandonedInQueue,
    /// Answered, transferred to a second queue, answered there.
    Transferred,
    /// Queued, the customer asks for a callback instead.
    DeflectedCallback,
    /// A virtual agent or the contact flow handles it to the end.
    Contained,
    /// An async (messaging) engagement: answered, released back to the
    /// queue, answered by a second agent.
    AsyncReleased,
}

impl SessionKind {
    /// Every kind.
    pub const ALL: [SessionKind; 6] = [
        SessionKind::Answered,
        SessionKind::AbandonedInQueue,
        SessionKind::Transferred,
        SessionKind::DeflectedCallback,
        SessionKind::Contained,
        SessionKind::AsyncReleased,
    ];

    /// The final record's `outcome` the session must reach.
    pub fn expected_outcome(self) -> &'static str {
        match self {
            SessionKind::Answered | SessionKind::Transferred | SessionKind::Contained | SessionKind::AsyncReleased => "completed",
            SessionKind::AbandonedInQueue => "abandoned",
            SessionKind::DeflectedCallback => "deflected",
        }
    }

    /// The kinds a vendor's generator renders: what its native events can
    /// express and its adapter maps.
    pub fn for_format(format: InputFormat) -> &'static [SessionKind] {
        use SessionKind::*;
        match format {
            InputFormat::AmazonConnect => &[Answered, AbandonedInQueue, Transferred, Contained],
            InputFormat::GenesysCloud => &[Answered, AbandonedInQueue, Transferred, Contained],
            InputFormat::TwilioTaskrouter => &[Answered, AbandonedInQueue, Transferred, DeflectedCallback],
            InputFormat::ZoomContactCenter => &[Answered, AbandonedInQueue, Transferred, DeflectedCallback, AsyncReleased],
            InputFormat::CcaiPlatform => &[Answered, AbandonedInQueue, Transferred, Contained],
            InputFormat::Canonical => &[],
        }
    }
}

/// An agent of the simulated contact center.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    /// Vendor-neutral id (each vendor renders it in its own id style).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// A numeric id, for vendors that number agents.
    pub number: u32,
}

/// A queue of the simulated contact center.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// Vendor-neutral id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// A numeric id.
    pub number: u32,
}

const AGENTS: &[Agent] = &[
    Agent { id: "ann", name: "Ann Lee", number: 501 },
    Agent { id: "bo", name: "Bo Lind", number: 502 },
    Agent { id: "cara", name: "Cara Diaz", number: 503 },
    Agent { id: "dev", name: "Dev Patel", number: 504 },
    Agent { id: "eve", name: "Eve Moss", number: 505 },
    Agent { id: "fay", name: "Fay Wong", number: 506 },
];

const QUEUES: &[Queue] = &[
    Queue { id: "support", name: "Support", number: 7 },
    Queue { id: "billing", name: "Billing", number: 12 },
    Queue { id: "sales", name: "Sales", number: 3 },
    Queue { id: "retention", name: "Retention", number: 9 },
];

const DISPOSITIONS: &[&str] = &["resolved", "follow_up", "refund_issued", "billing_question"];

/// An offer an agent did not take.
#[derive(Debug, Clone, PartialEq)]
pub struct Decline {
    /// Who was offered.
    pub agent: Agent,
    /// When it started ringing.
    pub offered_at: Millis,
    /// When the offer ended.
    pub declined_at: Millis,
    /// `true`: the agent rejected it; `false`: it timed out.
    pub rejected: bool,
}

/// A second queue and agent: a transfer's target, or where an async
/// engagement went after its release.
#[derive(Debug, Clone, PartialEq)]
pub struct SecondLeg {
    /// When the first agent transferred (or released) the session.
    pub left_first_at: Millis,
    /// When the session entered the second queue.
    pub queued_at: Millis,
    /// The second queue (the first, for a release).
    pub queue: Queue,
    /// The second agent.
    pub agent: Agent,
    /// When the second agent accepted.
    pub assigned_at: Millis,
    /// When the second agent was connected.
    pub connected_at: Millis,
}

/// One session as the generator planned it: what happens and when. Times
/// are whole seconds (Connect's contact records carry whole seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPlan {
    /// Position in the traffic (0, 1, …).
    pub index: u64,
    /// The canonical session id the vendor's adapter derives (default
    /// journey identity).
    pub session_id: String,
    /// What happens.
    pub kind: SessionKind,
    /// The medium.
    pub channel: Channel,
    /// Customer's number (voice) or handle.
    pub ani: String,
    /// When the customer arrived.
    pub started_at: Millis,
    /// End of self-service (IVR or bot) before the queue, when there is one.
    pub self_service_until: Option<Millis>,
    /// First queue.
    pub queue: Queue,
    /// When the session entered it (none for contained sessions).
    pub queued_at: Option<Millis>,
    /// Offers not taken before the answer (or the abandon).
    pub declines: Vec<Decline>,
    /// The agent who answered.
    pub agent: Option<Agent>,
    /// When the agent accepted.
    pub assigned_at: Option<Millis>,
    /// When the agent was connected.
    pub connected_at: Option<Millis>,
    /// One hold, start and end.
    pub hold: Option<(Millis, Millis)>,
    /// The transfer's or release's second leg.
    pub second: Option<SecondLeg>,
    /// When the customer asked for a callback.
    pub deflected_at: Option<Millis>,
    /// When the session ended.
    pub ended_at: Millis,
    /// Whether the customer (else the agent or the system) ended it.
    pub ended_by_customer: bool,
    /// End of the wrap-up, when an agent handled the session.
    pub wrapup_until: Option<Millis>,
    /// The wrap-up's disposition code.
    pub disposition: &'static str,
    /// Whether the vendor sends an updated version of its final snapshot
    /// (Connect: a second contact record with changed attributes; CCAI
    /// Platform: the final snapshot with the disposition). Part of the plan:
    /// a clean rendering has it too.
    pub updated_snapshot: bool,
    /// The seed, for the ids the renderers derive.
    seed: u64,
}

impl SessionPlan {
    /// The agent who ended the session (the second leg's, when there is one).
    pub fn last_agent(&self) -> Option<Agent> {
        self.second.as_ref().map(|s| s.agent).or(self.agent)
    }

    /// The planned transfers (1 for [`SessionKind::Transferred`]).
    pub fn expected_transfer_count(&self) -> u32 {
        u32::from(self.kind == SessionKind::Transferred)
    }
}

/// One native record as the bridge writes it to Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorRecord {
    /// The Kafka key: the session id the adapter derives, or `None` for a
    /// keyless bridge ([`VendorSimulator::keyless`]).
    pub key: Option<String>,
    /// The record value: one native JSON record.
    pub value: String,
    /// The canonical session the record belongs to (what the key would be).
    pub session_id: String,
    /// The vendor's time of the moment, for pacing.
    pub occurred_at: Millis,
    /// For a malformed record injected on purpose: the dead-letter reason
    /// the adapter gives it.
    pub malformed: Option<DeadLetterReason>,
}

/// The format has no vendor-native generator (canonical traffic comes from
/// [`crate::Simulator`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedFormat(pub InputFormat);

impl fmt::Display for UnsupportedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no vendor-native simulator for {}: use sessionflow_sim::Simulator for canonical traffic", self.0)
    }
}

impl std::error::Error for UnsupportedFormat {}

/// One rendered native record before delivery.
#[derive(Debug, Clone)]
pub(crate) struct Native {
    /// The vendor's time for it (also its natural emission time).
    pub at: i64,
    pub value: Value,
    /// A snapshot the vendor may send again (Connect contact records, CCAI
    /// Platform snapshots).
    pub snapshot: bool,
}

/// An endless (or, with [`VendorSimulator::with_session_limit`], bounded)
/// deterministic stream of one vendor's native records.
#[derive(Debug)]
pub struct VendorSimulator {
    format: InputFormat,
    config: SimConfig,
    keyed: bool,
    plan_rng: StdRng,
    quirk_rng: StdRng,
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    pending: HashMap<u64, VendorRecord>,
    next_session_at: i64,
    sessions_started: u64,
    limit: Option<u64>,
    plans: Vec<SessionPlan>,
    sequence: u64,
}

impl VendorSimulator {
    /// A simulator of `format`'s native records. `config` gives the seed,
    /// the start and rate of sessions, and the quirk rates: duplicates
    /// (redeliveries, 10 ms to 2 min later), late records (1 to 30 min),
    /// out of order (swapped with the session's next record), malformed
    /// records (injected next to real ones, never instead of them), and
    /// re-sent snapshots (ten times the duplicate rate, at most one in two).
    /// `extra_events_per_session` and `erasure_rate` do not apply.
    pub fn new(format: InputFormat, config: SimConfig) -> Result<Self, UnsupportedFormat> {
        if SessionKind::for_format(format).is_empty() {
            return Err(UnsupportedFormat(format));
        }
        let plan_rng = StdRng::seed_from_u64(config.seed);
        let quirk_rng = StdRng::seed_from_u64(config.seed ^ 0x9e37_79b9_7f4a_7c15);
        let next_session_at = config.start.0 - config.start.0.rem_euclid(1000);
        Ok(VendorSimulator {
            format,
            config,
            keyed: true,
            plan_rng,
            quirk_rng,
            heap: BinaryHeap::new(),
            pending: HashMap::new(),
            next_session_at,
            sessions_started: 0,
            limit: None,
            plans: Vec::new(),
            sequence: 0,
        })
    }

    /// Records without keys, as a bridge that cannot compute the session id
    /// writes them (the daemon re-keys).
    pub fn keyless(mut self) -> Self {
        self.keyed = false;
        self
    }

    /// Stops after `sessions` sessions: the iterator ends once their records
    /// (and quirks) are delivered, and [`Self::plans`] lists them.
    pub fn with_session_limit(mut self, sessions: u64) -> Self {
        self.limit = Some(sessions);
        self
    }

    /// The format it writes.
    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// Sessions started so far.
    pub fn sessions_started(&self) -> u64 {
        self.sessions_started
    }

    /// The plans of the sessions started so far (kept only with a session
    /// limit, so an endless stream does not grow).
    pub fn plans(&self) -> &[SessionPlan] {
        &self.plans
    }

    /// Plans and renders `sessions` sessions without quirks, in each
    /// session's own order (the vendor's times); no delivery interleaving.
    pub fn render_clean(format: InputFormat, seed: u64, sessions: u64) -> Result<Vec<(SessionPlan, Vec<VendorRecord>)>, UnsupportedFormat> {
        let mut sim = VendorSimulator::new(format, SimConfig::clean(seed))?;
        let mut out = Vec::new();
        for _ in 0..sessions {
            let plan = sim.plan_next();
            let records = render(format, &plan).into_iter().map(|n| sim.record(&plan, n.at, n.value.to_string(), None)).collect();
            out.push((plan, records));
        }
        Ok(out)
    }

    fn record(&self, plan: &SessionPlan, at: i64, value: String, malformed: Option<DeadLetterReason>) -> VendorRecord {
        VendorRecord { key: self.keyed.then(|| plan.session_id.clone()), value, session_id: plan.session_id.clone(), occurred_at: Millis(at), malformed }
    }

    fn push(&mut self, emit_at: i64, record: VendorRecord) {
        self.sequence += 1;
        self.heap.push(Reverse((emit_at, self.sequence)));
        self.pending.insert(self.sequence, record);
    }

    fn plan_next(&mut self) -> SessionPlan {
        let index = self.sessions_started;
        self.sessions_started += 1;
        let start = self.next_session_at;
        let mean_gap_ms = 1000.0 / self.config.sessions_per_second.max(0.001);
        let gap = -mean_gap_ms * (1.0 - self.plan_rng.random::<f64>()).ln();
        #[allow(clippy::cast_possible_truncation)]
        let gap = (gap.max(1000.0) as i64 / 1000) * 1000;
        self.next_session_at += gap;
        plan(&mut self.plan_rng, self.format, self.config.seed, index, Millis(start))
    }

    fn start_session(&mut self) {
        let plan = self.plan_next();
        let natives = render(self.format, &plan);
        let rate = |r: f64| r.clamp(0.0, 1.0);
        let (dup, late, swap, bad) =
            (rate(self.config.duplicate_rate), rate(self.config.late_rate), rate(self.config.out_of_order_rate), rate(self.config.malformed_rate));
        let resend = (dup * 10.0).min(0.5);
        let mut i = 0;
        while i < natives.len() {
            let n = &natives[i];
            if i + 1 < natives.len() && self.quirk_rng.random_bool(swap) {
                // The next record overtakes this one.
                let next = &natives[i + 1];
                let at = n.at.max(next.at) + self.quirk_rng.random_range(0..2_000);
                let (a, b) = (self.record(&plan, next.at, next.value.to_string(), None), self.record(&plan, n.at, n.value.to_string(), None));
                self.push(at, a);
                self.push(at, b);
                i += 2;
                continue;
            }
            let mut emit_at = n.at;
            if self.quirk_rng.random_bool(late) {
                emit_at += self.quirk_rng.random_range(60_000..1_800_000);
            }
            let record = self.record(&plan, n.at, n.value.to_string(), None);
            self.push(emit_at, record);
            if self.quirk_rng.random_bool(dup) {
                let delay = self.quirk_rng.random_range(10..120_000);
                let again = self.record(&plan, n.at, n.value.to_string(), None);
                self.push(emit_at + delay, again);
            }
            if n.snapshot && self.quirk_rng.random_bool(resend) {
                let delay = self.quirk_rng.random_range(1_000..600_000);
                let value = resent_snapshot(self.format, &n.value, delay);
                let again = self.record(&plan, n.at, value.to_string(), None);
                self.push(emit_at + delay, again);
            }
            if self.quirk_rng.random_bool(bad) {
                let (value, reason) = malformed(&mut self.quirk_rng, self.format, &n.value);
                let record = self.record(&plan, n.at, value, Some(reason));
                self.push(emit_at, record);
            }
            i += 1;
        }
        if self.limit.is_some() {
            self.plans.push(plan);
        }
    }
}

impl Iterator for VendorSimulator {
    type Item = VendorRecord;

    fn next(&mut self) -> Option<VendorRecord> {
        // Start sessions until the earliest pending record is due before the
        // next arrival, or the limit. Bounded: once a record is pending, its
        // time stays put while each start moves the next arrival on by at
        // least a second.
        while self.limit.is_none_or(|n| self.sessions_started < n) && self.heap.peek().is_none_or(|Reverse((at, _))| *at >= self.next_session_at) {
            self.start_session();
        }
        let Reverse((_, sequence)) = self.heap.pop()?;
        self.pending.remove(&sequence)
    }
}

/// The vendor's records of one plan, in the vendor's time order.
fn render(format: InputFormat, plan: &SessionPlan) -> Vec<Native> {
    let mut natives = match format {
        InputFormat::AmazonConnect => connect::render(plan),
        InputFormat::GenesysCloud => genesys::render(plan),
        InputFormat::TwilioTaskrouter => twilio::render(plan),
        InputFormat::ZoomContactCenter => zoom::render(plan),
        InputFormat::CcaiPlatform => ccaip::render(plan),
        InputFormat::Canonical => Vec::new(),
    };
    natives.sort_by_key(|n| n.at);
    natives
}

/// A snapshot sent again: Connect re-sends the same contact record; CCAI
/// Platform sends the same session state as a new event (new `event_id`,
/// later `timestamp`).
fn resent_snapshot(format: InputFormat, value: &Value, delay: i64) -> Value {
    let mut value = value.clone();
    if format == InputFormat::CcaiPlatform {
        let id = value["event_id"].as_str().unwrap_or_default().to_owned();
        value["event_id"] = Value::String(format!("{id}-resent-{delay}"));
        if let Some(ts) = value["timestamp"].as_i64() {
            value["timestamp"] = Value::from(ts + delay);
        }
    }
    value
}

/// A malformed variant of a real record, and the reason the adapter
/// dead-letters it: cut short (`decode_error`), or without the field the
/// session id comes from (`missing_field`).
fn malformed(rng: &mut StdRng, format: InputFormat, value: &Value) -> (String, DeadLetterReason) {
    let text = value.to_string();
    if rng.random_bool(0.5) {
        let cut = text.len() / 2;
        return (text[..cut].to_owned(), DeadLetterReason::DecodeError);
    }
    let mut value = value.clone();
    let removed = match format {
        InputFormat::AmazonConnect => match value.get_mut("detail").and_then(Value::as_object_mut) {
            Some(detail) => detail.remove("contactId"),
            None => value.as_object_mut().and_then(|o| o.remove("ContactId")),
        },
        InputFormat::GenesysCloud => value["eventBody"].as_object_mut().and_then(|o| o.remove("conversationId")),
        InputFormat::TwilioTaskrouter => value.as_object_mut().and_then(|o| o.remove("TaskSid")),
        InputFormat::ZoomContactCenter => value["payload"]["object"].as_object_mut().and_then(|o| o.remove("engagement_id")),
        InputFormat::CcaiPlatform => value["item"].as_object_mut().and_then(|o| o.remove("id")),
        InputFormat::Canonical => None,
    };
    match removed {
        Some(_) => (value.to_string(), DeadLetterReason::MissingField),
        None => (text[..text.len() / 2].to_owned(), DeadLetterReason::DecodeError),
    }
}

/// A random whole number of seconds in `lo_s..=hi_s`, in ms.
fn secs(rng: &mut StdRng, lo_s: i64, hi_s: i64) -> i64 {
    rng.random_range(lo_s..=hi_s) * 1000
}

/// Plans one session of a kind the vendor has.
fn plan(rng: &mut StdRng, format: InputFormat, seed: u64, index: u64, start: Millis) -> SessionPlan {
    let kinds = SessionKind::for_format(format);
    let kind = kinds[rng.random_range(0..kinds.len())];
    let channel = match kind {
        SessionKind::Transferred | SessionKind::DeflectedCallback => Channel::Voice,
        SessionKind::Contained => Channel::Chat,
        SessionKind::AsyncReleased => Channel::Messaging,
        SessionKind::Answered | SessionKind::AbandonedInQueue => {
            if rng.random_bool(0.6) {
                Channel::Voice
            } else {
                Channel::Chat
            }
        }
    };
    let t0 = start.0;
    let queue = QUEUES[rng.random_range(0..QUEUES.len())];
    // A random agent not in `not` (at most two are excluded: bounded).
    let pick_agent = |rng: &mut StdRng, not: &[Agent]| {
        let from = rng.random_range(0..AGENTS.len());
        (0..AGENTS.len()).map(|i| AGENTS[(from + i) % AGENTS.len()]).find(|a| !not.contains(a)).unwrap_or(AGENTS[from])
    };
    let mut p = SessionPlan {
        index,
        session_id: String::new(),
        kind,
        channel,
        ani: format!("+1555{:07}", rng.random_range(0..10_000_000)),
        started_at: start,
        self_service_until: None,
        queue,
        queued_at: None,
        declines: Vec::new(),
        agent: None,
        assigned_at: None,
        connected_at: None,
        hold: None,
        second: None,
        deflected_at: None,
        ended_at: start,
        ended_by_customer: rng.random_bool(0.6),
        wrapup_until: None,
        disposition: DISPOSITIONS[rng.random_range(0..DISPOSITIONS.len())],
        updated_snapshot: rng.random_bool(0.3),
        seed,
    };
    if kind == SessionKind::Contained {
        p.self_service_until = None;
        p.ended_at = Millis(t0 + secs(rng, 60, 240));
        p.ended_by_customer = false;
        p.session_id = session_id(format, seed, &p);
        return p;
    }
    // Voice goes through the IVR first; chats and messages queue at once.
    let queued = if channel == Channel::Voice {
        let ivr_end = t0 + secs(rng, 10, 40);
        p.self_service_until = Some(Millis(ivr_end));
        ivr_end
    } else {
        t0 + secs(rng, 2, 5)
    };
    p.queued_at = Some(Millis(queued));
    let mut t = queued;
    if matches!(kind, SessionKind::Answered | SessionKind::AbandonedInQueue) && rng.random_bool(0.35) {
        let agent = pick_agent(rng, &[]);
        let offered = t + secs(rng, 5, 30);
        let declined = offered + secs(rng, 5, 15);
        p.declines.push(Decline { agent, offered_at: Millis(offered), declined_at: Millis(declined), rejected: rng.random_bool(0.5) });
        t = declined;
    }
    match kind {
        SessionKind::AbandonedInQueue => {
            p.ended_at = Millis(t + secs(rng, 20, 300));
            p.ended_by_customer = true;
        }
        SessionKind::DeflectedCallback => {
            let at = t + secs(rng, 30, 120);
            p.deflected_at = Some(Millis(at));
            p.ended_at = Millis(at + secs(rng, 2, 5));
            p.ended_by_customer = false;
        }
        _ => {
            let not: Vec<Agent> = p.declines.iter().map(|d| d.agent).collect();
            let agent = pick_agent(rng, &not);
            let assigned = t + secs(rng, 10, 120);
            let connected = assigned + secs(rng, 2, 8);
            p.agent = Some(agent);
            p.assigned_at = Some(Millis(assigned));
            p.connected_at = Some(Millis(connected));
            let mut t = connected;
            if channel == Channel::Voice && kind == SessionKind::Answered && rng.random_bool(0.4) {
                let hold_start = t + secs(rng, 20, 60);
                let hold_end = hold_start + secs(rng, 10, 60);
                p.hold = Some((Millis(hold_start), Millis(hold_end)));
                t = hold_end;
            }
            match kind {
                SessionKind::Transferred | SessionKind::AsyncReleased => {
                    let left = t + secs(rng, 30, 200);
                    let queued2 = left + secs(rng, 2, 4);
                    let (queue2, agent2) = if kind == SessionKind::Transferred {
                        let q = QUEUES[(QUEUES.iter().position(|q| *q == queue).unwrap_or(0) + rng.random_range(1..QUEUES.len())) % QUEUES.len()];
                        (q, pick_agent(rng, &[agent]))
                    } else {
                        (queue, pick_agent(rng, &[agent]))
                    };
                    let assigned2 = queued2 + secs(rng, 30, 300);
                    let connected2 = assigned2 + secs(rng, 2, 5);
                    p.second = Some(SecondLeg {
                        left_first_at: Millis(left),
                        queued_at: Millis(queued2),
                        queue: queue2,
                        agent: agent2,
                        assigned_at: Millis(assigned2),
                        connected_at: Millis(connected2),
                    });
                    p.ended_at = Millis(connected2 + secs(rng, 60, 300));
                }
                _ => p.ended_at = Millis(t + secs(rng, 60, 400)),
            }
            p.wrapup_until = Some(Millis(p.ended_at.0 + secs(rng, 10, 60)));
        }
    }
    p.session_id = session_id(format, seed, &p);
    p
}

/// A vendor-style id, unique per seed and session: `xxxxxxxx-…` digits.
pub(crate) fn uuid(seed: u64, index: u64, part: u64) -> String {
    let hi = (seed as u32) ^ 0x5f3c_2a11;
    format!("{hi:08x}-{:04x}-4{:03x}-8{:03x}-{index:012x}", (part >> 24) & 0xffff, (part >> 12) & 0xfff, part & 0xfff)
}

/// A Twilio-style sid: two letters and 32 hex digits.
pub(crate) fn sid(prefix: &str, seed: u64, index: u64, part: u64) -> String {
    format!("{prefix}{:016x}{:08x}{:08x}", seed, index as u32, part as u32)
}

/// The canonical session id the vendor's adapter derives for the plan.
fn session_id(format: InputFormat, seed: u64, p: &SessionPlan) -> String {
    match format {
        InputFormat::AmazonConnect => connect::contact_id(seed, p.index, 1),
        InputFormat::GenesysCloud => uuid(seed, p.index, 0xc0),
        InputFormat::TwilioTaskrouter => twilio::task_sid(seed, p.index, 1),
        InputFormat::ZoomContactCenter => format!("eng-{seed:x}-{}", p.index),
        InputFormat::CcaiPlatform => ccaip::session_id(seed, p),
        InputFormat::Canonical => String::new(),
    }
}

/// RFC 3339 with milliseconds.
pub(crate) fn rfc(at: Millis) -> String {
    at.to_rfc3339()
}
