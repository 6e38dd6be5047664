//! CCAI Platform external session events (`docs/adapters/ccai-platform.md`).
//!
//! Every record is a snapshot of the whole call or chat. Rather than diffing
//! consecutive snapshots (which makes the result depend on which snapshot
//! came first), each snapshot is read as the set of transitions it proves
//! happened, each timed by the snapshot's own timestamp for that transition
//! (`queued_at`, `connected_at`, a participant's `connected_at`, …). A
//! transition is emitted only once its content is settled (a virtual
//! agent's outcome once the session was queued or ended), and its event id
//! depends only on the transition and its time. Snapshots only grow, so any
//! arrival order yields the same set of events; the session's recorded
//! event ids ([`AdapterState`]) leave out what a repeated or late snapshot
//! already told.

mod snapshot;

use crate::common::{self, EventBuilder, Json, Object, stable_digest, write_stable_id};
use crate::{Adapter, AdapterOptions, AdapterState, InputFormat};
use sessionflow_core::{Event, InputError, Millis};
use snapshot::{Disposition, Participant, Snapshot, Transfer};
use std::borrow::Cow;

const FORMAT: InputFormat = InputFormat::CcaiPlatform;

/// Session statuses the mapping understands (call and chat statuses of the
/// session metadata file, plus the `connected`/`disconnected` states of the
/// external session events page). Any other status passes through as
/// `vendor.<status>`.
const KNOWN_STATUSES: &[&str] = &[
    "scheduled",
    "queued",
    "assigned",
    "connecting",
    "switching",
    "connected",
    "disconnected",
    "finished",
    "failed",
    "recovered",
    "va_assigned",
    "va_connected",
    "dismissed",
    "timeout",
];

/// Item fields kept on `session.ended` under `vendor`: the end-of-session
/// figures no canonical event carries.
const END_FIELDS: &[&str] = &[
    "disconnected_by",
    "finish_reason",
    "fail_details",
    "hold_duration",
    "call_duration",
    "queue_duration",
    "wait_duration",
    "deflection",
    "voicemail_reason",
];

/// Reads CCAI Platform external session events.
#[derive(Debug, Clone)]
pub struct CcaiPlatform;

impl CcaiPlatform {
    /// The adapter with its options. CCAIP keeps one session id across its
    /// own transfers (no legs), so the session identity option changes
    /// nothing: both give the call or chat id.
    pub fn new(_options: &AdapterOptions) -> Self {
        CcaiPlatform
    }
}

impl Adapter for CcaiPlatform {
    fn format(&self) -> InputFormat {
        FORMAT
    }

    fn adapt(&self, record: &[u8], state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError> {
        let root = common::parse_object(FORMAT, record)?;
        let snapshot = snapshot::read(&root)?;
        let session_id = snapshot.session_id();
        // Most of a snapshot's transitions are already told: their ids are
        // written into one buffer to be looked up, and only the new ones
        // (the first of any repeated id) keep theirs and have events built.
        let mut id = String::new();
        let mut fresh: Vec<(String, Transition<'_>)> = Vec::new();
        for transition in transitions(&snapshot, &session_id) {
            transition.write_id(&mut id);
            if !state.has_event(&session_id, &id) && !fresh.iter().any(|(told, _)| *told == id) {
                fresh.push((id.clone(), transition));
            }
        }
        // Stable: of one id, the first transition told stays first.
        fresh.sort_by(|(a_id, a), (b_id, b)| (a.at, a_id).cmp(&(b.at, b_id)));
        let events = fresh.into_iter().map(|(id, t)| t.event(id, &snapshot, &session_id).build(FORMAT)).collect::<Result<Vec<_>, _>>()?;
        for event in &events {
            state.remember(&session_id, &event.event_id);
        }
        Ok(events)
    }
}

/// Tie-break ranks: events of one session at the same millisecond sort by
/// event id, so each id starts with the rank of its step in the lifecycle
/// (these are the id prefixes).
mod rank {
    pub const STARTED: &str = "ccaip-10";
    pub const SCHEDULED: &str = "ccaip-12";
    pub const VA_STARTED: &str = "ccaip-20";
    pub const VA_ENDED: &str = "ccaip-24";
    pub const QUEUED: &str = "ccaip-30";
    pub const ASSIGNED: &str = "ccaip-40";
    pub const CONNECTED: &str = "ccaip-42";
    pub const TRANSFER_STARTED: &str = "ccaip-50";
    pub const TRANSFER_ENDED: &str = "ccaip-52";
    pub const LATER_ASSIGNED: &str = "ccaip-54";
    pub const LATER_CONNECTED: &str = "ccaip-56";
    pub const DEFLECTED: &str = "ccaip-70";
    pub const ENDED: &str = "ccaip-80";
    pub const DISPOSITION: &str = "ccaip-82";
    pub const WRAPUP: &str = "ccaip-84";
    pub const RATING: &str = "ccaip-86";
    pub const PASS_THROUGH: &str = "ccaip-90";
}

/// A transition the snapshot proves, named (its event id's rank and digest)
/// and timed; its event is built ([`Transition::event`]) only if the
/// session lacks it.
struct Transition<'a> {
    rank: &'static str,
    digest: [u8; 16],
    event_type: Cow<'a, str>,
    at: Millis,
    what: What<'a>,
}

/// What a transition's attributes come from.
enum What<'a> {
    Started,
    Scheduled(Millis),
    VirtualAgentStarted(&'a Participant<'a>),
    VirtualAgentEnded(&'a Participant<'a>, &'static str),
    Queued,
    /// The first agent's assignment or connection.
    FirstAgent(Option<&'a Participant<'a>>),
    /// A later agent's assignment or connection (after a transfer).
    LaterAgent(&'a Participant<'a>),
    TransferStarted(&'a Transfer<'a>),
    TransferEnded(&'a Transfer<'a>),
    Deflected(&'a str),
    Ended,
    Disposition(&'a Disposition<'a>),
    WrapupCompleted,
    Rating(f64),
    /// A status the mapping does not know: the snapshot itself.
    PassThrough,
}

impl<'a> Transition<'a> {
    /// A transition's id comes from the session, the transition, its time
    /// and what tells it apart from another of the same type (a
    /// participant, a transfer), never from the snapshot that revealed it.
    fn new(session_id: &str, rank: &'static str, event_type: &'static str, at: Millis, discriminator: &str, what: What<'a>) -> Self {
        let digest = stable_digest(&[session_id, event_type, itoa::Buffer::new().format(at.0), discriminator]);
        Transition { rank, digest, event_type: Cow::Borrowed(event_type), at, what }
    }

    /// Writes its event id into `out`.
    fn write_id(&self, out: &mut String) {
        write_stable_id(out, self.rank, &self.digest);
    }

    /// The transition's event, with its id.
    fn event(self, event_id: String, s: &'a Snapshot<'a>, session_id: &'a str) -> EventBuilder<'a> {
        let event = EventBuilder::new(FORMAT, event_id, session_id, self.event_type, self.at);
        match self.what {
            What::Started => {
                let mut creation = Object::new();
                creation.insert("session_type", Json::from(&s.session_type));
                creation.insert("id", Json::from(&s.native_id));
                event
                    .channel(Some(s.channel()))
                    .direction(Some(s.direction()))
                    .attr("lang", s.lang.as_deref())
                    .attr("support_number", s.support_number.as_deref())
                    .vendor_fields("vendor", creation)
            }
            What::Scheduled(scheduled_for) => event.attr("scheduled_for", Some(scheduled_for.to_rfc3339())),
            What::VirtualAgentStarted(va) => event.attr("virtual_agent", va.label()),
            What::VirtualAgentEnded(va, outcome) => event.attr("virtual_agent", va.label()).attr("outcome", Some(outcome)),
            What::Queued => event.attr("queue", s.queue.as_deref()).attr("queue_id", s.queue_id.as_deref()),
            What::FirstAgent(agent) => event.attr("agent", agent.and_then(Participant::label)).attr("agent_id", agent.and_then(|a| a.id.as_deref())),
            What::LaterAgent(agent) => event.attr("agent", agent.label()).attr("agent_id", agent.id.as_deref()),
            What::TransferStarted(transfer) => transfer_ends(event, transfer),
            What::TransferEnded(transfer) => transfer_ends(event, transfer).attr("reason", transfer.fail_reason.as_deref()),
            What::Deflected(kind) => event.attr("kind", Some(deflection_kind(kind))).attr("queue", s.queue.as_deref()),
            What::Ended => {
                let end_fields: Object<'a> =
                    END_FIELDS.iter().filter_map(|k| s.item.get(k).filter(|v| !v.is_null()).map(|v| (Cow::Borrowed(*k), v.clone()))).collect();
                event.attr("ended_by", ended_by(s)).attr("reason", s.fail_reason.as_deref()).vendor_fields("vendor", end_fields)
            }
            What::Disposition(d) => {
                let by = s.agents().find(|a| a.status.as_deref() == Some("dispositionSubmitted")).and_then(Participant::label);
                event.attr("code", d.code.as_deref()).attr("custom_code_id", d.custom_code_id.as_deref()).attr("notes", d.note.as_deref()).attr("agent", by)
            }
            What::WrapupCompleted => event,
            What::Rating(rating) => event.attr("rating", Some(rating)),
            What::PassThrough => event.vendor_fields("vendor", s.item.clone()),
        }
    }
}

/// A transfer's ends and kind, on both of its events.
fn transfer_ends<'a>(event: EventBuilder<'a>, transfer: &'a Transfer<'a>) -> EventBuilder<'a> {
    let kind = transfer.kind.as_deref().map(|k| match k {
        "warm" => "consult",
        "external" => "external_sip",
        other => other,
    });
    event
        .attr("from_agent", transfer.from_agent.as_deref())
        .attr("to_queue", transfer.to_queue.as_deref())
        .attr("to_agent", transfer.to_agent.as_deref())
        .attr("kind", kind)
}

/// Every transition the snapshot proves.
fn transitions<'a>(s: &'a Snapshot<'a>, session_id: &str) -> Vec<Transition<'a>> {
    let mut out: Vec<Transition<'a>> = Vec::with_capacity(16);
    let mut add = |rank, event_type, at, discriminator: &str, what| out.push(Transition::new(session_id, rank, event_type, at, discriminator, what));

    add(rank::STARTED, "session.started", s.created_at, "", What::Started);
    if let Some(scheduled_for) = s.scheduled_at {
        add(rank::SCHEDULED, "session.scheduled", s.created_at, "", What::Scheduled(scheduled_for));
    }

    let human_joined = s.agents().next().is_some() || s.connected_at.is_some() || s.assigned_at.is_some();
    for va in s.virtual_agents() {
        let key = va.id.as_deref().unwrap_or_default();
        let Some(started) = va.connected_at else { continue };
        add(rank::VA_STARTED, "virtual_agent.started", started, key, What::VirtualAgentStarted(va));
        // The outcome is settled only once the session went on to a queue
        // or ended: before that a snapshot cannot tell handoff from containment.
        let settled = if s.queued_at.is_some() || human_joined {
            Some(("handoff", va.ended_at.or(s.queued_at)))
        } else if s.ends_at.is_some() {
            Some((if ended_by(s) == Some("end_user") { "abandoned" } else { "completed" }, va.ended_at.or(s.ends_at)))
        } else {
            None
        };
        if let Some((outcome, Some(ended))) = settled {
            add(rank::VA_ENDED, "virtual_agent.ended", ended, key, What::VirtualAgentEnded(va, outcome));
        }
    }

    if let Some(queued) = s.queued_at {
        add(rank::QUEUED, "queue.entered", queued, "", What::Queued);
    }

    // The first agent: the session's own assigned/connected times. Later
    // agents (after a transfer) have only their participant's connect time.
    let mut agents = s.agents();
    let first = agents.next().or(if s.transfers.is_empty() { s.agent_info.as_ref() } else { None });
    if let Some(assigned) = s.assigned_at {
        add(rank::ASSIGNED, "agent.assigned", assigned, "", What::FirstAgent(first));
    }
    if let Some(connected) = s.connected_at.or(first.and_then(|a| a.connected_at)) {
        add(rank::CONNECTED, "agent.connected", connected, "", What::FirstAgent(first));
    }
    for agent in agents {
        let (Some(connected), Some(key)) = (agent.connected_at, agent.id.as_deref()) else { continue };
        // CCAIP gives no assignment time for an agent reached by transfer:
        // the assignment is placed at the connection.
        for (rank, event_type) in [(rank::LATER_ASSIGNED, "agent.assigned"), (rank::LATER_CONNECTED, "agent.connected")] {
            add(rank, event_type, connected, key, What::LaterAgent(agent));
        }
    }

    for (index, transfer) in s.transfers.iter().enumerate() {
        let key: Cow<'_, str> = transfer.id.as_deref().map_or_else(|| Cow::Owned(index.to_string()), Cow::Borrowed);
        if let Some(started) = transfer.started_at {
            add(rank::TRANSFER_STARTED, "transfer.started", started, &key, What::TransferStarted(transfer));
        }
        let ended = match transfer.status.as_deref() {
            Some("completed") => Some("transfer.completed"),
            Some("failed") => Some("transfer.failed"),
            _ => None,
        };
        if let (Some(event_type), Some(at)) = (ended, transfer.ended_at) {
            add(rank::TRANSFER_ENDED, event_type, at, &key, What::TransferEnded(transfer));
        }
    }

    if let Some(ends) = s.ends_at {
        if let Some(kind) = s.deflection.as_deref().filter(|_| !human_joined) {
            add(rank::DEFLECTED, "deflection.accepted", ends, "", What::Deflected(kind));
        }
        add(rank::ENDED, "session.ended", ends, "", What::Ended);
        if let Some(d) = &s.disposition {
            add(rank::DISPOSITION, "disposition.set", ends, "", What::Disposition(d));
        }
        // No snapshot times the end of wrap-up: it closes with the session.
        if human_joined {
            add(rank::WRAPUP, "wrapup.completed", ends, "", What::WrapupCompleted);
        }
        if let Some(rating) = s.rating {
            add(rank::RATING, "rating.received", ends, "", What::Rating(rating));
        }
    }

    if !KNOWN_STATUSES.contains(&&*s.status) {
        // The snapshot itself is the vendor event, identified by the
        // vendor's own id.
        let digest = stable_digest(&[session_id, &s.event_id]);
        let event_type = Cow::Owned(format!("vendor.{}", s.status));
        out.push(Transition { rank: rank::PASS_THROUGH, digest, event_type, at: s.timestamp, what: What::PassThrough });
    }

    out
}

/// `disconnected_by_end_user` → `end_user`, and so on; unknown → none.
fn ended_by(s: &Snapshot<'_>) -> Option<&'static str> {
    let by = s.disconnected_by.as_deref()?;
    // A virtual agent hanging up is the platform's doing, not a human agent's.
    if by.contains("end_user") {
        Some("end_user")
    } else if by.contains("system") || by.contains("timeout") || by.contains("virtual") {
        Some("system")
    } else if by.contains("agent") {
        Some("agent")
    } else {
        None
    }
}

fn deflection_kind(native: &str) -> &'static str {
    if native.contains("sms") {
        "sms"
    } else if native.contains("voicemail") {
        "voicemail"
    } else if native.contains("callback") {
        "callback"
    } else {
        "other"
    }
}
