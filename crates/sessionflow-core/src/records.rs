//! The output records of `outputs.md`: timeline and metadata. Field order is
//! the contract's; absent values are `null`, never omitted.

use crate::attributes::Attributes;
use crate::deadletter::InputPosition;
use crate::event::{Channel, Direction, EventType};
use crate::fold::{
    Attachment, Cobrowse, CrmTicket, Csat, Deflection, Disposition, Flags, Fold, Participant, ParticipantFailure, Payment, PhoneNumbers, PostSession,
    QueueVisit, Recording, SmartActions, SurveyAnswer, Transfer, VirtualAgent,
};
use crate::json::{Json, Num};
use crate::lifecycle::{Anomaly, AnswerType, Outcome, RevisionReason, State};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One enriched record per accepted input event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRecord {
    pub session_id: Arc<str>,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub occurred_at: Millis,
    /// The event's channel, else the session's.
    pub channel: Option<Channel>,
    /// The event's tenant, else the session's.
    pub tenant: Option<Arc<str>>,
    /// The event's source, else the session's.
    pub source: Option<Arc<str>>,
    /// 1-based arrival sequence within the session.
    pub seq: u64,
    /// State before this event, as of its arrival; `null` for the first.
    pub state_before: Option<State>,
    /// State after this event, as of its arrival.
    pub state_after: State,
    /// `state_after` differs from `state_before`.
    pub transition: bool,
    pub anomaly: Option<Anomaly>,
    /// A later-`occurred_at` event of the session had already arrived.
    pub out_of_order: bool,
    /// `occurred_at` − session `created_at`, as of arrival.
    pub elapsed_ms: i64,
    /// Current queue after this event.
    pub queue: Option<Arc<str>>,
    /// Current agent after this event.
    pub agent: Option<Arc<str>>,
    /// Input attributes, after the privacy policy.
    pub attributes: Attributes,
    /// Provenance of the input record.
    pub input: InputPosition,
}

/// Genesys-style card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// `blue` active, `white` abandoned, `grey` otherwise.
    pub color: String,
    /// Channel icon.
    pub icon: Option<String>,
    /// The wrap-up (disposition) code when set, else the state.
    pub status_or_wrapup: String,
}

/// Sentiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// Last score.
    pub last: Option<Num>,
    /// Mean of all scores.
    pub mean: Option<Num>,
}

/// The versioned per-session metadata record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataRecord {
    // identity
    pub session_id: Arc<str>,
    pub tenant: Option<Arc<str>>,
    pub source: Option<Arc<str>>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub lang: Option<String>,
    /// `device` of `session.started`.
    pub device: Option<String>,
    // status
    pub state: State,
    pub outcome: Option<Outcome>,
    pub abandon_phase: Option<State>,
    pub short_abandon: bool,
    pub ended_by: Option<String>,
    pub answer_type: AnswerType,
    pub card: Card,
    // versioning
    pub version: u64,
    pub is_final: bool,
    pub revision_reason: Option<RevisionReason>,
    pub updated_at: Millis,
    // timestamps
    pub created_at: Millis,
    pub scheduled_for: Option<Millis>,
    pub queued_at: Option<Millis>,
    pub assigned_at: Option<Millis>,
    pub connected_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub wrapup_completed_at: Option<Millis>,
    pub finalized_at: Option<Millis>,
    // durations
    pub self_service_ms: i64,
    pub queue_wait_ms: i64,
    pub ring_ms: i64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub hold_count: u32,
    pub longest_hold_ms: i64,
    pub wrapup_ms: i64,
    pub handle_ms: Option<i64>,
    pub total_ms: Option<i64>,
    pub masked_ms: i64,
    pub open_intervals_closed: Vec<String>,
    // routing
    pub queue: Option<Arc<str>>,
    pub queues: Vec<QueueVisit>,
    pub menu_path: Option<String>,
    pub menu_path_id: Option<String>,
    pub support_number: Option<String>,
    pub outbound_number: Option<String>,
    // agents
    pub agent: Option<Arc<str>>,
    pub participants: Vec<Participant>,
    /// Failed attempts to add a participant.
    pub participant_failures: Vec<ParticipantFailure>,
    pub offers: u32,
    pub declines: u32,
    // transfers
    pub transfer_count: u32,
    pub transfers: Vec<Transfer>,
    // outcome details
    pub deflection: Option<Deflection>,
    pub disposition: Option<Disposition>,
    /// Every disposition set, in event order; `disposition` is the last.
    pub dispositions: Vec<Disposition>,
    pub csat: Option<Csat>,
    pub survey: Option<Vec<SurveyAnswer>>,
    pub sentiment: Option<Sentiment>,
    pub summary: Option<String>,
    // virtual agents
    pub virtual_agent: Option<VirtualAgent>,
    pub post_session: Option<PostSession>,
    // facts
    pub smart_actions: SmartActions,
    pub attachments: Vec<Attachment>,
    pub payments: Vec<Payment>,
    pub recording: Option<Recording>,
    pub crm_ticket: Option<CrmTicket>,
    pub custom_data: Option<Json>,
    pub phone_numbers: PhoneNumbers,
    pub email: Option<String>,
    pub cobrowse: Cobrowse,
    pub flags: Flags,
    pub notes_count: u32,
    // quality
    pub event_count: u32,
    pub duplicate_count: u32,
    pub anomaly_count: u32,
    pub anomalies: BTreeMap<Anomaly, u32>,
    pub late_event_count: u32,
    pub unknown_event_count: u32,
}

/// What the record needs beyond the fold: versioning and arrival quality.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordInfo<'a> {
    pub session_id: &'a Arc<str>,
    pub version: u64,
    pub is_final: bool,
    pub revision_reason: Option<RevisionReason>,
    pub finalized_at: Option<Millis>,
    pub expired: bool,
    pub duplicate_count: u32,
    pub late_event_count: u32,
    /// Events a session bound turned away: counted under
    /// `session_bound_exceeded` (they have no timeline record to carry it).
    pub bound_exceeded: u32,
}

/// The state shown for a session: the fold's, or `expired` when the expiry
/// timer fired and the events do not reach a terminal state.
pub fn public_state(fold: &Fold, expired: bool) -> Option<State> {
    let state = fold.state?;
    Some(if expired && !state.is_terminal() { State::Expired } else { state })
}

fn channel_icon(channel: Channel) -> &'static str {
    match channel {
        Channel::Voice => "phone",
        Channel::Chat => "chat",
        Channel::Messaging => "messaging",
        Channel::Email => "email",
        Channel::Video => "video",
        Channel::Sms => "sms",
    }
}

impl MetadataRecord {
    /// Renders the record of a session. A final record closes the intervals
    /// still open at the session's last event.
    pub fn render(fold: &Fold, info: &RecordInfo<'_>) -> MetadataRecord {
        let mut closed_fold;
        let (f, open_intervals_closed) = if info.is_final {
            closed_fold = fold.clone();
            let names = closed_fold.close_open_intervals(info.expired);
            (&closed_fold, names)
        } else {
            (fold, Vec::new())
        };
        let state = public_state(f, info.expired).unwrap_or(State::Initiated);
        let created_at = f.created_at.unwrap_or_default();
        let terminal_at = if state == State::Expired { Some(f.last_event_at) } else { f.terminal_at.filter(|_| state.is_terminal()) };
        let total_ms = f.ended_at.or(terminal_at).map(|end| end.0 - created_at.0);
        let card = Card {
            color: state.card_color().to_owned(),
            icon: f.channel.map(|c| channel_icon(c).to_owned()),
            status_or_wrapup: f.disposition.as_ref().and_then(|d| d.code.clone()).unwrap_or_else(|| state.as_str().to_owned()),
        };
        let mut anomalies = f.anomalies.clone();
        if info.bound_exceeded > 0 {
            anomalies.insert(Anomaly::SessionBoundExceeded, info.bound_exceeded);
        }
        let sentiment = (f.sentiment_count > 0).then(|| Sentiment { last: f.sentiment_last, mean: Some(Num(f.sentiment_sum / f64::from(f.sentiment_count))) });
        MetadataRecord {
            session_id: info.session_id.clone(),
            tenant: f.tenant.clone(),
            source: f.source.clone(),
            channel: f.channel,
            direction: f.direction,
            lang: f.lang.clone(),
            device: f.device.clone(),
            state,
            outcome: state.outcome(),
            abandon_phase: f.abandon_phase.filter(|_| state == State::Abandoned),
            short_abandon: f.short_abandon && state == State::Abandoned,
            ended_by: f.ended_by.clone(),
            answer_type: f.answer_type(),
            card,
            version: info.version,
            is_final: info.is_final,
            revision_reason: info.revision_reason,
            updated_at: f.last_event_at,
            created_at,
            scheduled_for: f.scheduled_for,
            queued_at: f.queued_at,
            assigned_at: f.assigned_at,
            connected_at: f.connected_at,
            ended_at: f.ended_at,
            wrapup_completed_at: f.wrapup_completed_at,
            finalized_at: info.finalized_at,
            self_service_ms: f.self_service_ms,
            queue_wait_ms: f.queue_wait_ms,
            ring_ms: f.ring_ms,
            talk_ms: f.talk_ms,
            hold_ms: f.hold_ms,
            hold_count: f.hold_count,
            longest_hold_ms: f.longest_hold_ms,
            wrapup_ms: f.wrapup_ms,
            handle_ms: f.handle_ms(),
            total_ms,
            masked_ms: f.masked_ms,
            open_intervals_closed,
            queue: f.queue.clone(),
            queues: f.queues.clone(),
            menu_path: f.menu_path.clone(),
            menu_path_id: f.menu_path_id.clone(),
            support_number: f.support_number.clone(),
            outbound_number: f.outbound_number.clone(),
            agent: f.connected_agent.clone(),
            participants: f.participants.clone(),
            participant_failures: f.participant_failures.clone(),
            offers: f.offers,
            declines: f.declines,
            transfer_count: f.transfer_count,
            transfers: f.transfers.clone(),
            deflection: f.deflection.clone(),
            disposition: f.disposition.clone(),
            dispositions: f.dispositions.clone(),
            csat: f.csat.clone(),
            survey: f.survey.clone(),
            sentiment,
            summary: f.summary.clone(),
            virtual_agent: f.virtual_agent.clone(),
            post_session: f.post_session.clone(),
            smart_actions: f.smart_actions.clone(),
            attachments: f.attachments.clone(),
            payments: f.payments.clone(),
            recording: f.recording.clone(),
            crm_ticket: f.crm_ticket.clone(),
            custom_data: f.custom_data.clone(),
            phone_numbers: f.phone_numbers.clone(),
            email: f.email.clone(),
            cobrowse: f.cobrowse.clone(),
            flags: f.flags.clone(),
            notes_count: f.notes_count,
            event_count: f.event_count,
            duplicate_count: info.duplicate_count,
            anomaly_count: f.anomaly_count + info.bound_exceeded,
            anomalies,
            late_event_count: info.late_event_count,
            unknown_event_count: f.unknown_event_count,
        }
    }
}
