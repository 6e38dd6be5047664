//! The parts of a session's fold that are records of their own: queue
//! visits, participants, transfers, dispositions, surveys and the rest.

use crate::json::{Json, Num};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One visit to a queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueVisit {
    /// Queue name.
    pub queue: Option<Arc<str>>,
    /// Queue identifier.
    pub queue_id: Option<Arc<str>>,
    /// Routing priority 1–8.
    pub priority: Option<i64>,
    /// When the visit began.
    pub entered_at: Millis,
    /// When it ended; `null` while waiting.
    pub left_at: Option<Millis>,
    /// `answered`, `requeued`, `abandoned`, `deflected`, `expired`, `left`; `null` while waiting.
    pub outcome: Option<Arc<str>>,
}

/// A participant of the session; rejoining opens a new entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    /// Participant (or agent) identifier.
    pub id: Arc<str>,
    /// `agent`, `end_user`, `third_party`, `virtual_agent`.
    pub role: Option<Arc<str>>,
    /// When they joined.
    pub joined_at: Millis,
    /// When they left; `null` while present.
    pub left_at: Option<Millis>,
    /// Who added them (`by` of `participant.added`); `null` for agents
    /// joining by connecting.
    pub by: Option<String>,
}

/// An attempt to add a participant that failed (`participant.add_failed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantFailure {
    /// Participant identifier.
    pub id: Option<String>,
    /// `agent`, `end_user`, `third_party`, `virtual_agent`.
    pub role: Option<String>,
    /// Who tried to add them.
    pub by: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// When it failed.
    pub failed_at: Millis,
}

/// One side of a transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TransferEnd {
    /// Queue.
    pub queue: Option<String>,
    /// Agent.
    pub agent: Option<String>,
}

/// A transfer attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Where from.
    pub from: TransferEnd,
    /// Where to.
    pub to: TransferEnd,
    /// `blind`, `consult`, `external_sip`.
    pub kind: Option<String>,
    /// When it started (the completion or failure time when no start was seen).
    pub started_at: Millis,
    /// `pending`, `completed`, `failed`.
    pub outcome: String,
    /// Failure reason.
    pub reason: Option<String>,
}

/// A deflection offer and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deflection {
    /// `sms`, `voicemail`, `callback`, `other`.
    pub kind: Option<String>,
    /// When it was offered; `null` when only the answer was seen.
    pub offered_at: Option<Millis>,
    /// `true` accepted, `false` declined, `null` unanswered.
    pub accepted: Option<bool>,
    /// The queue the deflection was offered from (the last one given).
    pub queue: Option<String>,
}

/// The wrap-up disposition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disposition {
    /// Disposition code.
    pub code: Option<String>,
    /// Agent notes (`pii.text`).
    pub notes: Option<String>,
    /// Disposition list.
    pub list: Option<String>,
    /// Custom code identifier.
    pub custom_code_id: Option<String>,
    /// Agent who set it.
    pub agent: Option<String>,
    /// Disposition list identifier.
    pub list_id: Option<String>,
    /// Disposition code identifier.
    pub code_id: Option<String>,
}

/// Customer satisfaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Csat {
    /// The rating.
    pub rating: Option<Num>,
    /// Free-text comment (`pii.text`).
    pub comment: Option<String>,
}

/// One survey answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyAnswer {
    /// The question.
    pub question: Option<String>,
    /// Question kind (`stars`, `csat`, `text`, …).
    pub kind: Option<String>,
    /// The answer, any JSON value.
    pub value: Json,
}

/// The virtual agent of the session (the last one started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualAgent {
    /// Virtual agent name.
    pub name: Option<String>,
    /// When it started.
    pub started_at: Millis,
    /// When it ended.
    pub ended_at: Option<Millis>,
    /// `handoff`, `completed`, `abandoned`.
    pub outcome: Option<String>,
    /// Intent captured.
    pub intent: Option<String>,
    /// Variables captured (merged, later wins).
    pub variables: Option<Json>,
    /// When it connected (`virtual_agent.connected`), apart from its
    /// assignment (`started_at`).
    pub connected_at: Option<Millis>,
    /// Data parameters passed to it during the session (the last event
    /// that carried `params`).
    pub params: Option<Json>,
}

/// The post-session virtual agent (survey, order status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostSession {
    /// Virtual agent name.
    pub virtual_agent: Option<String>,
    /// Whether the end user opted in.
    pub opted_in: Option<bool>,
    /// When it started.
    pub started_at: Millis,
    /// When it ended.
    pub ended_at: Option<Millis>,
    /// Outcome reported at its end.
    pub outcome: Option<String>,
    /// Parameters passed to it.
    pub params: Option<Json>,
}

/// CCAIP smart actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SmartActions {
    /// Identity verified.
    pub verified: bool,
    /// Photos uploaded.
    pub photos: u32,
    /// Screenshots uploaded.
    pub screenshots: u32,
    /// Videos uploaded.
    pub videos: u32,
    /// Text inputs uploaded.
    pub text_inputs: u32,
}

/// An uploaded medium.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Media kind.
    pub kind: Option<String>,
    /// Where it is.
    pub url: Option<String>,
    /// When it was uploaded.
    pub uploaded_at: Millis,
}

/// A payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// Product.
    pub product: Option<String>,
    /// Amount, as sent.
    pub amount: Option<String>,
    /// Currency.
    pub currency: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Payment processor transaction.
    pub transaction_id: Option<String>,
    /// Agent.
    pub agent: Option<String>,
    /// When it was processed.
    pub processed_at: Millis,
}

/// The recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Where it is.
    pub url: Option<String>,
    /// Permission.
    pub permission: Option<String>,
    /// Every distinct recording link (`url` and `urls` of every
    /// `recording.available`), in event order: a second link is kept.
    pub urls: Vec<String>,
}

/// The linked CRM ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrmTicket {
    /// Ticket id.
    pub ticket_id: Option<String>,
    /// Ticket URL.
    pub url: Option<String>,
}

/// Phone numbers collected (`pii.contact`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PhoneNumbers {
    /// The number the end user called from.
    pub inbound: Option<String>,
    /// The number to call back.
    pub callback: Option<String>,
}

/// Co-browsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Cobrowse {
    /// Co-browse sessions started.
    pub sessions: u32,
    /// Total co-browse time.
    pub active_ms: i64,
    /// Last level (`remote`, `full_device`).
    pub level: Option<String>,
    /// Control requests.
    pub control_requested: u32,
    /// Control requests accepted.
    pub control_accepted: u32,
    /// Control requests declined.
    pub control_declined: u32,
    /// Level of the last control request or answer that gave one.
    pub control_level: Option<String>,
}

/// Flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Flags {
    /// An emergency was requested.
    pub emergency: bool,
}

impl VirtualAgent {
    /// A virtual agent assigned at `t`, nothing else known yet.
    pub(super) fn new(name: Option<String>, t: Millis) -> VirtualAgent {
        VirtualAgent { name, started_at: t, ended_at: None, outcome: None, intent: None, variables: None, connected_at: None, params: None }
    }
}
