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

use crate::common::{self, EventBuilder, Json, Object, stable_id};
use crate::{Adapter, AdapterOptions, AdapterState, InputFormat};
use sessionflow_core::{Event, InputError, Millis};
use snapshot::Snapshot;
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
        let mut candidates = transitions(&snapshot, &session_id);
        candidates.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        // Most of a snapshot's transitions are already told: only the new
        // ones are built (and checked), the first of any repeated id.
        let mut fresh: Vec<EventBuilder<'_>> = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            if !state.has_event(&session_id, candidate.event_id()) && !fresh.iter().any(|f| f.event_id() == candidate.event_id()) {
                fresh.push(candidate);
            }
        }
        let events = fresh.into_iter().map(|b| b.build(FORMAT)).collect::<Result<Vec<_>, _>>()?;
        for event in &events {
            state.remember(&session_id, &event.event_id);
        }
        Ok(events)
    }
}

/// Tie-break ranks: events of one session at the same millisecond sort by
/// event id, so each id starts with the rank of its step in the lifecycle.
mod rank {
    pub const STARTED: u8 = 10;
    pub const SCHEDULED: u8 = 12;
    pub const VA_STARTED: u8 = 20;
    pub const VA_ENDED: u8 = 24;
    pub const QUEUED: u8 = 30;
    pub const ASSIGNED: u8 = 40;
    pub const CONNECTED: u8 = 42;
    pub const TRANSFER_STARTED: u8 = 50;
    pub const TRANSFER_ENDED: u8 = 52;
    pub const LATER_ASSIGNED: u8 = 54;
    pub const LATER_CONNECTED: u8 = 56;
    pub const DEFLECTED: u8 = 70;
    pub const ENDED: u8 = 80;
    pub const DISPOSITION: u8 = 82;
    pub const WRAPUP: u8 = 84;
    pub const RATING: u8 = 86;
    pub const PASS_THROUGH: u8 = 90;
}

/// One transition's event: id from the session, the transition, its time
/// and what tells it apart from another of the same type (a participant, a
/// transfer), never from the snapshot that revealed it.
fn event<'a>(session_id: &'a str, rank: u8, event_type: &'a str, at: Millis, discriminator: &str) -> EventBuilder<'a> {
    let id = stable_id(&format!("ccaip-{rank:02}"), &[session_id, event_type, &at.0.to_string(), discriminator]);
    EventBuilder::new(FORMAT, id, session_id, event_type, at)
}

/// Every transition the snapshot proves.
fn transitions<'a>(s: &'a Snapshot<'a>, session_id: &'a str) -> Vec<EventBuilder<'a>> {
    let mut out: Vec<EventBuilder<'a>> = Vec::new();
    let channel = Some(s.channel());
    let direction = Some(s.direction());

    let mut creation = Object::new();
    creation.insert("session_type", Json::from(s.session_type.as_str()));
    creation.insert("id", Json::from(s.native_id.as_str()));
    out.push(
        event(session_id, rank::STARTED, "session.started", s.created_at, "")
            .channel(channel)
            .direction(direction)
            .attr("lang", s.lang.clone())
            .attr("support_number", s.support_number.clone())
            .vendor_fields("vendor", creation),
    );
    if let Some(scheduled_for) = s.scheduled_at {
        out.push(event(session_id, rank::SCHEDULED, "session.scheduled", s.created_at, "").attr("scheduled_for", Some(scheduled_for.to_rfc3339())));
    }

    let human_joined = s.agents().next().is_some() || s.connected_at.is_some() || s.assigned_at.is_some();
    for va in s.virtual_agents() {
        let key = va.id.clone().unwrap_or_default();
        let Some(started) = va.connected_at else { continue };
        out.push(event(session_id, rank::VA_STARTED, "virtual_agent.started", started, &key).attr("virtual_agent", va.label()));
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
            out.push(event(session_id, rank::VA_ENDED, "virtual_agent.ended", ended, &key).attr("virtual_agent", va.label()).attr("outcome", Some(outcome)));
        }
    }

    if let Some(queued) = s.queued_at {
        out.push(event(session_id, rank::QUEUED, "queue.entered", queued, "").attr("queue", s.queue.clone()).attr("queue_id", s.queue_id.clone()));
    }

    // The first agent: the session's own assigned/connected times. Later
    // agents (after a transfer) have only their participant's connect time.
    let mut agents = s.agents();
    let first = agents.next().or(if s.transfers.is_empty() { s.agent_info.as_ref() } else { None });
    let (first_name, first_id) = (first.and_then(snapshot::Participant::label), first.and_then(|a| a.id.clone()));
    if let Some(assigned) = s.assigned_at {
        out.push(event(session_id, rank::ASSIGNED, "agent.assigned", assigned, "").attr("agent", first_name.clone()).attr("agent_id", first_id.clone()));
    }
    if let Some(connected) = s.connected_at.or(first.and_then(|a| a.connected_at)) {
        out.push(event(session_id, rank::CONNECTED, "agent.connected", connected, "").attr("agent", first_name).attr("agent_id", first_id));
    }
    for agent in agents {
        let (Some(connected), Some(key)) = (agent.connected_at, agent.id.as_deref()) else { continue };
        // CCAIP gives no assignment time for an agent reached by transfer:
        // the assignment is placed at the connection.
        for (rank, event_type) in [(rank::LATER_ASSIGNED, "agent.assigned"), (rank::LATER_CONNECTED, "agent.connected")] {
            out.push(event(session_id, rank, event_type, connected, key).attr("agent", agent.label()).attr("agent_id", agent.id.clone()));
        }
    }

    for (index, transfer) in s.transfers.iter().enumerate() {
        let key = transfer.id.clone().unwrap_or_else(|| index.to_string());
        let kind = transfer.kind.as_deref().map(|k| match k {
            "warm" => "consult",
            "external" => "external_sip",
            other => other,
        });
        let with_ends = |b: EventBuilder<'a>| {
            b.attr("from_agent", transfer.from_agent.clone())
                .attr("to_queue", transfer.to_queue.clone())
                .attr("to_agent", transfer.to_agent.clone())
                .attr("kind", kind.map(str::to_owned))
        };
        if let Some(started) = transfer.started_at {
            out.push(with_ends(event(session_id, rank::TRANSFER_STARTED, "transfer.started", started, &key)));
        }
        let ended = match transfer.status.as_deref() {
            Some("completed") => Some("transfer.completed"),
            Some("failed") => Some("transfer.failed"),
            _ => None,
        };
        if let (Some(event_type), Some(at)) = (ended, transfer.ended_at) {
            out.push(with_ends(event(session_id, rank::TRANSFER_ENDED, event_type, at, &key)).attr("reason", transfer.fail_reason.clone()));
        }
    }

    if let Some(ends) = s.ends_at {
        if let Some(kind) = s.deflection.as_deref().filter(|_| !human_joined) {
            out.push(
                event(session_id, rank::DEFLECTED, "deflection.accepted", ends, "").attr("kind", Some(deflection_kind(kind))).attr("queue", s.queue.clone()),
            );
        }
        let end_fields: Object<'a> = END_FIELDS.iter().filter_map(|k| s.item.get(k).filter(|v| !v.is_null()).map(|v| (Cow::Borrowed(*k), v.clone()))).collect();
        out.push(
            event(session_id, rank::ENDED, "session.ended", ends, "")
                .attr("ended_by", ended_by(s))
                .attr("reason", s.fail_reason.clone())
                .vendor_fields("vendor", end_fields),
        );
        if let Some(d) = &s.disposition {
            let by = s.agents().find(|a| a.status.as_deref() == Some("dispositionSubmitted")).and_then(snapshot::Participant::label);
            out.push(
                event(session_id, rank::DISPOSITION, "disposition.set", ends, "")
                    .attr("code", d.code.clone())
                    .attr("custom_code_id", d.custom_code_id.clone())
                    .attr("notes", d.note.clone())
                    .attr("agent", by),
            );
        }
        // No snapshot times the end of wrap-up: it closes with the session.
        if human_joined {
            out.push(event(session_id, rank::WRAPUP, "wrapup.completed", ends, ""));
        }
        if let Some(rating) = s.rating {
            out.push(event(session_id, rank::RATING, "rating.received", ends, "").attr("rating", Some(rating)));
        }
    }

    if !KNOWN_STATUSES.contains(&s.status.as_str()) {
        // A status the mapping does not know: the snapshot itself is the
        // vendor event, identified by the vendor's own id.
        let id = stable_id(&format!("ccaip-{:02}", rank::PASS_THROUGH), &[session_id, &s.event_id]);
        out.push(EventBuilder::new(FORMAT, id, session_id, format!("vendor.{}", s.status), s.timestamp).vendor_fields("vendor", s.item.clone()));
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
