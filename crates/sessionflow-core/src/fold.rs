//! The per-session fold: a session's distinct events, applied in
//! (`occurred_at`, `event_id`) order, give its state, durations and facts.
//!
//! The fold is a pure accumulator. Applied to the sorted events it yields the
//! same result however the events arrived; the processor applies in-order
//! arrivals incrementally and refolds from the stored events otherwise.

use crate::attributes::Attributes;
use crate::event::{Channel, Direction, Event, EventType};
use crate::json::{Json, Num};
use crate::lifecycle::{Anomaly, AnswerType, State};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

mod bounds;
mod parts;

pub use bounds::{LIST_COUNT, LIST_NAMES, MERGED_NAMES};
pub use parts::*;

/// Settings the fold itself depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldRules {
    /// An end-user hang-up in self-service shorter than this (from
    /// `created_at`) is a short abandon. Default 5 s.
    pub short_abandon_threshold_ms: i64,
}

impl Default for FoldRules {
    fn default() -> Self {
        FoldRules { short_abandon_threshold_ms: 5_000 }
    }
}

/// The fold accumulator of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Fold {
    /// Last applied `(occurred_at, event_id)`: an arrival ordering after it
    /// can be applied incrementally.
    pub last_key: Option<(Millis, String)>,
    /// Current state; `None` before the first event.
    pub state: Option<State>,
    /// When the current state was entered (or last accrued).
    pub state_since: Millis,
    /// When the fold last entered a terminal state.
    pub terminal_at: Option<Millis>,
    /// Earliest event time.
    pub created_at: Option<Millis>,
    /// Largest event time applied.
    pub last_event_at: Millis,

    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub tenant: Option<Arc<str>>,
    pub source: Option<Arc<str>>,
    pub lang: Option<String>,

    pub abandon_phase: Option<State>,
    pub short_abandon: bool,
    pub ended_by: Option<String>,
    pub contained_by_virtual_agent: bool,

    pub scheduled_for: Option<Millis>,
    pub queued_at: Option<Millis>,
    pub assigned_at: Option<Millis>,
    pub connected_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub wrapup_completed_at: Option<Millis>,

    pub self_service_ms: i64,
    pub queue_wait_ms: i64,
    pub ring_ms: i64,
    pub talk_ms: i64,
    pub hold_ms: i64,
    pub hold_count: u32,
    pub longest_hold_ms: i64,
    pub wrapup_ms: i64,
    pub masked_ms: i64,
    pub handle_started_at: Option<Millis>,
    pub hold_since: Option<Millis>,
    pub wrapup_since: Option<Millis>,
    pub masking_since: Option<Millis>,
    pub cobrowse_since: Option<Millis>,

    pub queue: Option<Arc<str>>,
    pub queues: Vec<QueueVisit>,
    pub visit_open: bool,
    pub menu_path: Option<String>,
    pub menu_path_id: Option<String>,
    pub support_number: Option<String>,
    pub outbound_number: Option<String>,

    pub current_agent: Option<Arc<str>>,
    pub connected_agent: Option<Arc<str>>,
    pub participants: Vec<Participant>,
    pub offers: u32,
    pub declines: u32,

    pub pending_transfer: Option<u32>,
    pub transfers: Vec<Transfer>,
    pub transfer_count: u32,

    pub deflection: Option<Deflection>,
    pub disposition: Option<Disposition>,
    pub csat: Option<Csat>,
    pub survey: Option<Vec<SurveyAnswer>>,
    pub sentiment_last: Option<Num>,
    pub sentiment_sum: f64,
    pub sentiment_count: u32,
    pub summary: Option<String>,
    pub virtual_agent: Option<VirtualAgent>,
    pub virtual_agent_open: bool,
    pub post_session: Option<PostSession>,

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

    pub event_count: u32,
    pub anomaly_count: u32,
    pub anomalies: BTreeMap<Anomaly, u32>,
    pub unknown_event_count: u32,

    /// `device` of `session.started`.
    pub device: Option<String>,
    /// Every disposition set, in event order (`disposition` is the last).
    pub dispositions: Vec<Disposition>,
    /// Failed attempts to add a participant.
    pub participant_failures: Vec<ParticipantFailure>,
}

fn s(attrs: &Attributes, key: &str) -> Option<String> {
    attrs.str(key).map(str::to_owned)
}

/// `fill` for the strings a fold shares with its output records.
fn fill_shared(slot: &mut Option<Arc<str>>, value: Option<&str>) {
    if slot.is_none() {
        *slot = value.map(Arc::from);
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, value: Option<&T>) {
    if slot.is_none()
        && let Some(v) = value
    {
        *slot = Some(v.clone());
    }
}

impl Fold {
    /// A fresh accumulator.
    pub fn new() -> Self {
        Fold::default()
    }

    /// Folds events in the canonical order: sorts them by (`occurred_at`,
    /// `event_id`) and applies each; returns the anomaly of each event, in
    /// sorted order, with its event id.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a Event>, rules: &FoldRules) -> (Fold, Vec<(&'a str, Option<Anomaly>)>) {
        let mut sorted: Vec<&Event> = events.into_iter().collect();
        sorted.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let mut fold = Fold::new();
        let anomalies = sorted.iter().map(|e| (e.event_id.as_str(), fold.apply(e, rules))).collect();
        (fold, anomalies)
    }

    /// Whether an event can be applied incrementally: it sorts after every
    /// event applied so far.
    pub fn is_next_in_order(&self, event: &Event) -> bool {
        match &self.last_key {
            None => true,
            Some((t, id)) => (event.occurred_at, event.event_id.as_str()) > (*t, id.as_str()),
        }
    }

    /// The state, `initiated` before any event.
    pub fn current_state(&self) -> Option<State> {
        self.state
    }

    /// Answer type: human when an agent connected, virtual when a virtual
    /// agent contained the session, none otherwise.
    pub fn answer_type(&self) -> AnswerType {
        if self.connected_at.is_some() {
            AnswerType::Human
        } else if self.contained_by_virtual_agent {
            AnswerType::Virtual
        } else {
            AnswerType::None
        }
    }

    /// Handle time: first assignment (or connection) to the end of wrap-up,
    /// else to `session.ended`; `None` until both ends are known.
    pub fn handle_ms(&self) -> Option<i64> {
        let start = self.handle_started_at?;
        let end = self.wrapup_completed_at.or(self.ended_at)?;
        Some(end.0 - start.0)
    }

    /// Adds the time since `state_since` to the buckets of the current state.
    fn accrue(&mut self, t: Millis) {
        let span = (t.0 - self.state_since.0).max(0);
        match self.state {
            Some(State::SelfService) => self.self_service_ms += span,
            Some(State::Queued) => self.queue_wait_ms += span,
            Some(State::Offered) => {
                self.queue_wait_ms += span;
                self.ring_ms += span;
            }
            Some(State::Connected) => self.talk_ms += span,
            Some(State::OnHold) => self.hold_ms += span,
            _ => {}
        }
        self.state_since = t;
    }

    fn set_state(&mut self, to: State, t: Millis) {
        let Some(from) = self.state else {
            self.state = Some(to);
            return;
        };
        if from == to {
            return;
        }
        if from == State::OnHold
            && let Some(since) = self.hold_since.take()
        {
            self.longest_hold_ms = self.longest_hold_ms.max(t.0 - since.0);
        }
        if to == State::OnHold {
            self.hold_since = Some(t);
            self.hold_count += 1;
        }
        if from.is_waiting() && !to.is_waiting() {
            let outcome = match to {
                State::Assigned | State::Connected => "answered",
                State::Abandoned => "abandoned",
                State::Deflected => "deflected",
                _ => "left",
            };
            self.close_visit(t, outcome);
        }
        if to.is_terminal() {
            self.terminal_at = Some(t);
        }
        self.state = Some(to);
    }

    /// An agent step before any queue: normal for an outbound session (the
    /// agent dials), an anomaly otherwise.
    fn unqueued(&self, anomaly: Anomaly) -> Option<Anomaly> {
        if self.direction == Some(Direction::Outbound) { None } else { Some(anomaly) }
    }

    fn close_visit(&mut self, t: Millis, outcome: &str) {
        if self.visit_open
            && let Some(v) = self.queues.last_mut()
        {
            v.left_at = Some(t);
            v.outcome = Some(Arc::from(outcome));
        }
        self.visit_open = false;
    }

    fn open_visit(&mut self, t: Millis, queue: Option<&str>, queue_id: Option<String>, priority: Option<i64>) {
        self.close_visit(t, "requeued");
        if let Some(name) = queue {
            self.queue = Some(Arc::from(name));
        }
        let queue = self.queue.clone();
        self.queues.push(QueueVisit { queue, queue_id: queue_id.map(Arc::from), priority, entered_at: t, left_at: None, outcome: None });
        self.visit_open = true;
        fill(&mut self.queued_at, Some(&t));
        self.agent_leaves(t);
    }

    /// Whether a `wrapup.completed` names an agent other than the one who
    /// holds (or last held) the session: an earlier agent's after-contact
    /// work, which ends nothing.
    fn wrapup_of_another_agent(&self, a: &Attributes) -> bool {
        let Some(agent) = a.str("agent") else { return false };
        let current = self.current_agent.as_deref().or(self.connected_agent.as_deref());
        if current == Some(agent) {
            return false;
        }
        let mut agents = self.participants.iter().filter(|p| p.role.as_deref() == Some("agent"));
        // The last agent who connected is the current one unless a transfer
        // to another agent followed.
        let last_is_current = self.current_agent.is_none() || self.current_agent == self.connected_agent;
        if last_is_current && agents.clone().next_back().is_some_and(|p| *p.id == *agent) {
            return false;
        }
        // Only an agent known to have held the session is another: a name
        // the session never saw is read as the current agent's.
        agents.any(|p| *p.id == *agent) || self.transfers.iter().any(|t| t.from.agent.as_deref() == Some(agent))
    }

    fn agent_joins(&mut self, id: String, t: Millis) {
        let present = self.participants.iter().any(|p| p.left_at.is_none() && p.role.as_deref() == Some("agent") && *p.id == *id);
        if !present {
            self.agent_leaves(t);
            self.participants.push(Participant { id: Arc::from(id), role: Some(Arc::from("agent")), joined_at: t, left_at: None, by: None });
        }
    }

    fn agent_leaves(&mut self, t: Millis) {
        for p in self.participants.iter_mut().filter(|p| p.left_at.is_none() && p.role.as_deref() == Some("agent")) {
            p.left_at = Some(t);
        }
        self.current_agent = None;
    }

    fn everyone_leaves(&mut self, t: Millis) {
        for p in self.participants.iter_mut().filter(|p| p.left_at.is_none()) {
            p.left_at = Some(t);
        }
    }

    /// Applies one event (the next in canonical order) and returns its
    /// anomaly, if it did not fit the current state.
    pub fn apply(&mut self, e: &Event, rules: &FoldRules) -> Option<Anomaly> {
        let t = e.occurred_at;
        let first = self.state.is_none();
        if first {
            self.created_at = Some(t);
            self.state = Some(State::Initiated);
            self.state_since = t;
        }
        self.accrue(t);
        self.last_event_at = self.last_event_at.max(t);
        if first {
            self.last_event_at = t;
        }
        // Reuses the last id's allocation: this runs for every event.
        match &mut self.last_key {
            Some((at, id)) => {
                *at = t;
                id.clone_from(&e.event_id);
            }
            None => self.last_key = Some((t, e.event_id.clone())),
        }
        self.event_count += 1;
        fill(&mut self.channel, e.channel.as_ref());
        fill(&mut self.direction, e.direction.as_ref());
        fill_shared(&mut self.tenant, e.tenant.as_deref());
        fill_shared(&mut self.source, e.source.as_deref());

        let state = self.state.unwrap_or(State::Initiated);
        let (target, mut anomaly) = self.step(e, state, t, rules);
        if let Some(to) = target
            && to != state
        {
            if state.is_terminal() && !(state == State::Ended && to == State::PostSession) {
                anomaly = anomaly.or(Some(Anomaly::AfterTerminal));
            } else {
                self.set_state(to, t);
            }
        }
        if first && e.event_type != EventType::SessionStarted {
            anomaly = Some(Anomaly::MissingStart);
        }
        if let Some(code) = anomaly {
            self.anomaly_count += 1;
            *self.anomalies.entry(code).or_default() += 1;
        }
        anomaly
    }

    /// The transition and facts of one event: returns the target state (if
    /// the event moves the lifecycle) and the anomaly it carries.
    fn step(&mut self, e: &Event, state: State, t: Millis, rules: &FoldRules) -> (Option<State>, Option<Anomaly>) {
        use EventType as T;
        use State as S;
        let a = &e.attributes;
        let invalid = |state: State| if state.is_terminal() { Anomaly::AfterTerminal } else { Anomaly::InvalidTransition };
        match &e.event_type {
            T::SessionStarted => {
                fill(&mut self.lang, s(a, "lang").as_ref());
                fill(&mut self.menu_path, s(a, "menu_path").as_ref());
                fill(&mut self.menu_path_id, a.id("menu_path_id").as_ref());
                fill(&mut self.support_number, s(a, "support_number").as_ref());
                fill(&mut self.outbound_number, s(a, "outbound_number").as_ref());
                fill(&mut self.device, s(a, "device").as_ref());
                if self.event_count > 1 { (None, Some(Anomaly::DuplicateStart)) } else { (None, None) }
            }
            T::SessionScheduled => {
                if let Some(at) = a.str("scheduled_for").and_then(|x| Millis::parse_rfc3339(x).ok()) {
                    self.scheduled_for = Some(at);
                }
                match state {
                    S::Initiated => (Some(S::Scheduled), None),
                    S::Scheduled => (None, None),
                    other => (None, Some(invalid(other))),
                }
            }
            T::VirtualAgentStarted => {
                self.virtual_agent = Some(VirtualAgent { params: params_of(a), ..VirtualAgent::new(s(a, "virtual_agent"), t) });
                self.virtual_agent_open = true;
                match state {
                    S::Initiated | S::Scheduled => (Some(S::SelfService), None),
                    S::SelfService => (None, None),
                    other => (None, Some(invalid(other))),
                }
            }
            T::VirtualAgentConnected => {
                // Its assignment (`virtual_agent.started`) opened the record;
                // a connection without one opens it here.
                let va = match &mut self.virtual_agent {
                    Some(va) if self.virtual_agent_open => va,
                    _ => {
                        self.virtual_agent_open = true;
                        self.virtual_agent.insert(VirtualAgent::new(s(a, "virtual_agent"), t))
                    }
                };
                fill(&mut va.connected_at, Some(&t));
                if va.name.is_none() {
                    va.name = s(a, "virtual_agent");
                }
                if let Some(params) = params_of(a) {
                    va.params = Some(params);
                }
                match state {
                    S::Initiated | S::Scheduled => (Some(S::SelfService), None),
                    S::SelfService => (None, None),
                    other => (None, Some(invalid(other))),
                }
            }
            T::VirtualAgentEnded => {
                let was_open = std::mem::replace(&mut self.virtual_agent_open, false);
                let outcome = s(a, "outcome");
                let completed = outcome.as_deref() == Some("completed");
                match &mut self.virtual_agent {
                    Some(va) => {
                        va.ended_at = Some(t);
                        va.outcome = outcome;
                        if va.name.is_none() {
                            va.name = s(a, "virtual_agent");
                        }
                    }
                    None => {
                        self.virtual_agent = Some(VirtualAgent { ended_at: Some(t), outcome, ..VirtualAgent::new(s(a, "virtual_agent"), t) });
                    }
                }
                match state {
                    S::SelfService if completed => {
                        self.contained_by_virtual_agent = true;
                        (Some(S::Ended), None)
                    }
                    S::SelfService => (None, None),
                    _ if was_open => (None, None),
                    other => (None, Some(invalid(other))),
                }
            }
            T::QueueEntered => {
                if state.is_terminal() {
                    return (Some(S::Queued), None);
                }
                match state {
                    S::WrapUp | S::PostSession => (None, Some(Anomaly::InvalidTransition)),
                    _ => {
                        let priority = a.i64("priority");
                        self.open_visit(t, a.str("queue"), a.id("queue_id"), priority);
                        self.virtual_agent_open = false;
                        // queued -> queued is a re-queue: set_state is a no-op then.
                        (Some(S::Queued), None)
                    }
                }
            }
            T::AgentOffered => {
                self.offers += 1;
                match state {
                    S::Queued | S::Offered => (Some(S::Offered), None),
                    S::Initiated | S::Scheduled | S::SelfService => (Some(S::Offered), self.unqueued(Anomaly::MissingQueue)),
                    other => (None, Some(invalid(other))),
                }
            }
            T::AgentDeclined => {
                self.declines += 1;
                match state {
                    S::Offered => (Some(S::Queued), None),
                    _ => (None, Some(Anomaly::MissingOffer)),
                }
            }
            T::AgentAssigned => {
                let (target, anomaly) = match state {
                    S::Queued | S::Offered | S::Assigned => (Some(S::Assigned), None),
                    S::Initiated | S::Scheduled | S::SelfService => (Some(S::Assigned), self.unqueued(Anomaly::MissingQueue)),
                    S::Connected | S::OnHold | S::WrapUp | S::PostSession => (None, Some(Anomaly::InvalidTransition)),
                    other => (Some(S::Assigned), Some(invalid(other))),
                };
                if target.is_some() && !state.is_terminal() {
                    fill(&mut self.assigned_at, Some(&t));
                    fill(&mut self.handle_started_at, Some(&t));
                    self.current_agent = s(a, "agent").or_else(|| a.id("agent_id")).map(Arc::from);
                }
                (target, anomaly)
            }
            T::AgentConnected => {
                let consult = self.pending_transfer.is_some();
                let (target, anomaly) = match state {
                    S::Assigned | S::Offered => (Some(S::Connected), None),
                    S::Queued => (Some(S::Connected), Some(Anomaly::MissingAssignment)),
                    S::Initiated | S::Scheduled | S::SelfService => (Some(S::Connected), self.unqueued(Anomaly::MissingAssignment)),
                    S::Connected | S::OnHold if consult => (None, None),
                    S::Connected | S::OnHold | S::WrapUp | S::PostSession => (None, Some(Anomaly::InvalidTransition)),
                    other => (Some(S::Connected), Some(invalid(other))),
                };
                if !state.is_terminal() && (target.is_some() || consult) {
                    fill(&mut self.connected_at, Some(&t));
                    fill(&mut self.handle_started_at, Some(&t));
                    let name = s(a, "agent").or_else(|| a.id("agent_id"));
                    let id = a.id("agent_id").or_else(|| name.clone()).unwrap_or_else(|| "agent".to_owned());
                    self.agent_joins(id, t);
                    let name = name.map(Arc::<str>::from);
                    self.current_agent.clone_from(&name);
                    self.connected_agent = name;
                }
                (target, anomaly)
            }
            T::HoldStarted => match state {
                S::Connected => (Some(S::OnHold), None),
                S::Assigned => (Some(S::OnHold), Some(Anomaly::MissingConnect)),
                other => (None, Some(invalid(other))),
            },
            T::HoldEnded => match state {
                S::OnHold => (Some(S::Connected), None),
                _ => (None, Some(Anomaly::MissingHold)),
            },
            T::TransferStarted => {
                let index = self.transfers.len() as u32;
                self.transfers.push(transfer_of(a, t, "pending"));
                self.pending_transfer = Some(index);
                match state {
                    S::Connected | S::OnHold => (None, None),
                    S::Assigned => (None, Some(Anomaly::MissingConnect)),
                    other => (None, Some(invalid(other))),
                }
            }
            T::TransferCompleted | T::TransferFailed => {
                let completed = e.event_type == T::TransferCompleted;
                let outcome = if completed { "completed" } else { "failed" };
                let mut anomaly = None;
                let record = match self.pending_transfer.take() {
                    Some(i) => &mut self.transfers[i as usize],
                    None => {
                        anomaly = Some(Anomaly::MissingTransfer);
                        self.transfers.push(transfer_of(a, t, outcome));
                        self.transfers.last_mut().expect("just pushed")
                    }
                };
                record.outcome = outcome.to_owned();
                let update = transfer_of(a, t, outcome);
                merge_end(&mut record.from, update.from);
                merge_end(&mut record.to, update.to);
                fill(&mut record.kind, update.kind.as_ref());
                if !completed {
                    record.reason = update.reason;
                    return (None, anomaly);
                }
                self.transfer_count += 1;
                let (to_queue, to_agent) = (s(a, "to_queue"), s(a, "to_agent"));
                if state.is_terminal() {
                    return (None, anomaly.or(Some(Anomaly::AfterTerminal)));
                }
                if !state.is_with_agent() {
                    return (None, anomaly.or(Some(Anomaly::InvalidTransition)));
                }
                if to_queue.is_some() {
                    self.open_visit(t, to_queue.as_deref(), None, None);
                    (Some(S::Queued), anomaly)
                } else if let Some(agent) = to_agent {
                    self.agent_leaves(t);
                    self.current_agent = Some(Arc::from(agent));
                    (Some(S::Assigned), anomaly)
                } else {
                    (None, anomaly)
                }
            }
            T::EngagementReleased => match state {
                S::Assigned | S::Connected => {
                    self.open_visit(t, a.str("queue"), None, None);
                    (Some(S::Queued), None)
                }
                other => (None, Some(invalid(other))),
            },
            T::SessionEnded => {
                if self.ended_at.is_some() {
                    return (None, Some(Anomaly::DuplicateEnd));
                }
                self.ended_at = Some(t);
                self.ended_by = s(a, "ended_by");
                self.everyone_leaves(t);
                if state.is_with_agent() {
                    self.wrapup_since = Some(t);
                    (Some(S::WrapUp), None)
                } else if state.is_pre_agent() {
                    self.abandon_phase = Some(state);
                    let short = self.created_at.is_some_and(|c| t.0 - c.0 < rules.short_abandon_threshold_ms);
                    self.short_abandon = state == S::SelfService && self.ended_by.as_deref() == Some("end_user") && short;
                    (Some(S::Abandoned), None)
                } else {
                    (None, None)
                }
            }
            T::WrapupCompleted => {
                if self.wrapup_of_another_agent(a) {
                    // Per-agent after-contact work (Genesys, Connect): an
                    // earlier agent's wrap-up does not end the session.
                    return (None, None);
                }
                let closing = self.wrapup_since.take();
                if let Some(since) = closing {
                    self.wrapup_ms += t.0 - since.0;
                }
                match state {
                    S::WrapUp => {
                        self.wrapup_completed_at = Some(t);
                        (Some(S::Ended), None)
                    }
                    S::PostSession if closing.is_some() => {
                        self.wrapup_completed_at = Some(t);
                        (None, None)
                    }
                    S::Assigned | S::Connected | S::OnHold => {
                        self.wrapup_completed_at = Some(t);
                        self.everyone_leaves(t);
                        (Some(S::Ended), Some(Anomaly::MissingEnd))
                    }
                    other => (None, Some(invalid(other))),
                }
            }
            T::DispositionSet => {
                let disposition = Disposition {
                    code: a.id("code"),
                    notes: s(a, "notes"),
                    list: s(a, "list"),
                    custom_code_id: a.id("custom_code_id"),
                    agent: s(a, "agent"),
                    list_id: a.id("list_id"),
                    code_id: a.id("code_id"),
                };
                self.dispositions.push(disposition.clone());
                self.disposition = Some(disposition);
                (None, None)
            }
            T::DeflectionOffered => {
                self.deflection = Some(Deflection { kind: s(a, "kind"), offered_at: Some(t), accepted: None, queue: s(a, "queue") });
                (None, None)
            }
            T::DeflectionAccepted | T::DeflectionDeclined => {
                let accepted = e.event_type == T::DeflectionAccepted;
                let d = self.deflection.get_or_insert(Deflection { kind: None, offered_at: None, accepted: None, queue: None });
                d.accepted = Some(accepted);
                if let Some(kind) = s(a, "kind") {
                    d.kind = Some(kind);
                }
                if let Some(queue) = s(a, "queue") {
                    d.queue = Some(queue);
                }
                if !accepted {
                    return (None, None);
                }
                match state {
                    S::Queued | S::SelfService | S::Initiated => (Some(S::Deflected), None),
                    S::Scheduled | S::Offered => (Some(S::Deflected), Some(Anomaly::InvalidTransition)),
                    other => (None, Some(invalid(other))),
                }
            }
            T::PostSessionStarted => {
                let opted_in = a.get("opted_in").and_then(Value::as_bool);
                let post_session =
                    PostSession { virtual_agent: s(a, "virtual_agent"), opted_in, started_at: t, ended_at: None, outcome: None, params: params_of(a) };
                if opted_in == Some(false) {
                    // The end user declined: the offer is recorded, no
                    // post-session runs (nor replaces one that runs).
                    if state != S::PostSession {
                        self.post_session = Some(post_session);
                    }
                    return (None, None);
                }
                self.post_session = Some(post_session);
                match state {
                    S::WrapUp | S::Ended => (Some(S::PostSession), None),
                    S::Assigned | S::Connected | S::OnHold => {
                        self.everyone_leaves(t);
                        (Some(S::PostSession), Some(Anomaly::MissingEnd))
                    }
                    S::PostSession => (None, None),
                    other => (None, Some(invalid(other))),
                }
            }
            T::PostSessionEnded => {
                if let Some(ps) = &mut self.post_session {
                    ps.ended_at = Some(t);
                    ps.outcome = s(a, "outcome");
                }
                match state {
                    S::PostSession if self.wrapup_since.is_some() => (Some(S::WrapUp), None),
                    S::PostSession => (Some(S::Ended), None),
                    _ => (None, Some(Anomaly::MissingPostSession)),
                }
            }
            T::ParticipantAdded => {
                if let Some(id) = a.id("participant") {
                    self.participants.push(Participant { id: Arc::from(id), role: a.str("role").map(Arc::from), joined_at: t, left_at: None, by: s(a, "by") });
                }
                (None, None)
            }
            T::ParticipantAddFailed => {
                self.participant_failures.push(ParticipantFailure {
                    id: a.id("participant"),
                    role: s(a, "role"),
                    by: s(a, "by"),
                    reason: s(a, "reason"),
                    failed_at: t,
                });
                (None, None)
            }
            T::ParticipantLeft => {
                if let Some(id) = a.id("participant")
                    && let Some(p) = self.participants.iter_mut().rev().find(|p| *p.id == *id && p.left_at.is_none())
                {
                    p.left_at = Some(t);
                }
                (None, None)
            }
            T::ParticipantAddStarted | T::SessionErased => (None, None),
            T::CustomDataReceived => {
                let data = self.custom_data.get_or_insert_with(Json::empty_object);
                if let (Some(into), Some(from)) = (data.0.as_object_mut(), a.as_object()) {
                    for (k, v) in from {
                        into.insert(k.clone(), v.clone());
                    }
                }
                (None, None)
            }
            T::PhoneNumberCollected => {
                if let Some(n) = s(a, "inbound") {
                    self.phone_numbers.inbound = Some(n);
                }
                if let Some(n) = s(a, "callback") {
                    self.phone_numbers.callback = Some(n);
                }
                (None, None)
            }
            T::EmailCollected => {
                if let Some(v) = s(a, "email") {
                    self.email = Some(v);
                }
                (None, None)
            }
            T::VerificationCompleted => {
                self.smart_actions.verified = true;
                (None, None)
            }
            T::MediaUploaded => {
                let kind = s(a, "kind");
                match kind.as_deref() {
                    Some("photo") => self.smart_actions.photos += 1,
                    Some("screenshot") => self.smart_actions.screenshots += 1,
                    Some("video") => self.smart_actions.videos += 1,
                    Some("text") => self.smart_actions.text_inputs += 1,
                    _ => {}
                }
                self.attachments.push(Attachment { kind, url: s(a, "url"), uploaded_at: t });
                (None, None)
            }
            T::PaymentProcessed => {
                self.payments.push(Payment {
                    product: s(a, "product"),
                    amount: a.id("amount").or_else(|| a.get("amount").map(Value::to_string)),
                    currency: s(a, "currency"),
                    status: s(a, "status"),
                    transaction_id: a.id("transaction_id"),
                    agent: s(a, "agent"),
                    processed_at: t,
                });
                (None, None)
            }
            T::RatingReceived => {
                let csat = self.csat.get_or_insert_with(Csat::default);
                if let Some(r) = a.get("rating").and_then(Value::as_f64) {
                    csat.rating = Some(Num(r));
                }
                if let Some(c) = s(a, "comment") {
                    csat.comment = Some(c);
                }
                (None, None)
            }
            T::SurveyResponse => {
                let answers: Vec<SurveyAnswer> = a
                    .get("answers")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(Value::as_object)
                            .map(|o| SurveyAnswer {
                                question: o.get("question").and_then(Value::as_str).map(str::to_owned),
                                kind: o.get("kind").and_then(Value::as_str).map(str::to_owned),
                                value: Json(o.get("value").cloned().unwrap_or(Value::Null)),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                for answer in &answers {
                    if is_csat_question(answer)
                        && let Some(r) = answer.value.0.as_f64()
                    {
                        self.csat.get_or_insert_with(Csat::default).rating = Some(Num(r));
                    }
                }
                self.survey.get_or_insert_with(Vec::new).extend(answers);
                (None, None)
            }
            T::NoteReceived => {
                self.notes_count += 1;
                (None, None)
            }
            T::SentimentScored => {
                if let Some(score) = a.get("score").and_then(Value::as_f64) {
                    self.sentiment_last = Some(Num(score));
                    self.sentiment_sum += score;
                    self.sentiment_count += 1;
                }
                (None, None)
            }
            T::AgentAssistSummary => {
                if let Some(v) = s(a, "summary") {
                    self.summary = Some(v);
                }
                (None, None)
            }
            T::RecordingAvailable => {
                let urls = self.recording.take().map(|r| r.urls).unwrap_or_default();
                let mut recording = Recording { url: s(a, "url"), permission: s(a, "permission"), urls };
                for url in recording_urls(a) {
                    if !recording.urls.iter().any(|u| u == url) {
                        recording.urls.push(url.to_owned());
                    }
                }
                self.recording = Some(recording);
                (None, None)
            }
            T::MaskingStarted => {
                fill(&mut self.masking_since, Some(&t));
                (None, None)
            }
            T::MaskingEnded => {
                if let Some(since) = self.masking_since.take() {
                    self.masked_ms += t.0 - since.0;
                }
                (None, None)
            }
            T::CrmTicketLinked => {
                self.crm_ticket = Some(CrmTicket { ticket_id: a.id("ticket_id"), url: s(a, "url") });
                (None, None)
            }
            T::VirtualAgentVariablesCaptured => {
                let va = self.virtual_agent.get_or_insert(VirtualAgent::new(None, t));
                if let Some(intent) = s(a, "intent") {
                    va.intent = Some(intent);
                }
                if let Some(Value::Object(vars)) = a.get("variables") {
                    let into = va.variables.get_or_insert_with(Json::empty_object);
                    if let Some(map) = into.0.as_object_mut() {
                        for (k, v) in vars {
                            map.insert(k.clone(), v.clone());
                        }
                    }
                }
                (None, None)
            }
            T::CobrowseStarted => {
                self.cobrowse.sessions += 1;
                fill(&mut self.cobrowse_since, Some(&t));
                if let Some(level) = s(a, "level") {
                    self.cobrowse.level = Some(level);
                }
                (None, None)
            }
            T::CobrowseEnded => {
                if let Some(since) = self.cobrowse_since.take() {
                    self.cobrowse.active_ms += t.0 - since.0;
                }
                (None, None)
            }
            T::CobrowseControlRequested | T::CobrowseControlAccepted | T::CobrowseControlDeclined => {
                let counter = match &e.event_type {
                    T::CobrowseControlRequested => &mut self.cobrowse.control_requested,
                    T::CobrowseControlAccepted => &mut self.cobrowse.control_accepted,
                    _ => &mut self.cobrowse.control_declined,
                };
                *counter += 1;
                if let Some(level) = s(a, "level") {
                    self.cobrowse.control_level = Some(level);
                }
                (None, None)
            }
            T::EmergencyRequested => {
                self.flags.emergency = true;
                (None, None)
            }
            T::ApiRequest | T::ApiResponse | T::TranscriptSegment | T::TranslationUsed | T::SipRedirected | T::SipHeaders | T::ContentCardSelected => {
                (None, None)
            }
            T::Other(_) => {
                self.unknown_event_count += 1;
                (None, None)
            }
        }
    }

    /// Closes every interval still open at the session's last event, as
    /// finalization does, and returns the names of those intervals.
    pub fn close_open_intervals(&mut self, expired: bool) -> Vec<String> {
        let at = self.last_event_at;
        let mut closed = Vec::new();
        if let Some(state) = self.state {
            let names: &[&str] = match state {
                State::SelfService => &["self_service"],
                State::Queued => &["queue"],
                State::Offered => &["queue", "ring"],
                State::Connected => &["talk"],
                State::OnHold => &["hold"],
                State::PostSession => &["post_session"],
                _ => &[],
            };
            closed.extend(names.iter().map(|n| (*n).to_owned()));
            self.accrue(at);
            if state == State::OnHold
                && let Some(since) = self.hold_since.take()
            {
                self.longest_hold_ms = self.longest_hold_ms.max(at.0 - since.0);
            }
        }
        if self.visit_open {
            self.close_visit(at, if expired { "expired" } else { "left" });
        }
        if let Some(since) = self.wrapup_since.take() {
            self.wrapup_ms += at.0 - since.0;
            closed.push("wrap_up".into());
        }
        if let Some(since) = self.masking_since.take() {
            self.masked_ms += at.0 - since.0;
            closed.push("masking".into());
        }
        if let Some(since) = self.cobrowse_since.take() {
            self.cobrowse.active_ms += at.0 - since.0;
            closed.push("cobrowse".into());
        }
        if expired {
            self.everyone_leaves(at);
        }
        closed
    }
}

/// The recording links of a `recording.available`: `url`, then `urls`
/// (one string or a list of strings).
fn recording_urls(a: &Attributes) -> impl Iterator<Item = &str> {
    let list = match a.get("urls") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(one @ Value::String(_)) => std::slice::from_ref(one),
        _ => &[],
    };
    a.str("url").into_iter().chain(list.iter().filter_map(Value::as_str))
}

/// The `params` object of a virtual agent or post-session event.
fn params_of(a: &Attributes) -> Option<Json> {
    a.get("params").filter(|p| !p.is_null()).cloned().map(Json)
}

fn is_csat_question(answer: &SurveyAnswer) -> bool {
    answer.kind.as_deref().is_some_and(|k| k.eq_ignore_ascii_case("csat"))
        || answer.question.as_deref().is_some_and(|q| q.to_ascii_lowercase().contains("csat"))
}

fn transfer_of(a: &Attributes, t: Millis, outcome: &str) -> Transfer {
    Transfer {
        from: TransferEnd { queue: s(a, "from_queue"), agent: s(a, "from_agent") },
        to: TransferEnd { queue: s(a, "to_queue"), agent: s(a, "to_agent") },
        kind: s(a, "kind"),
        started_at: t,
        outcome: outcome.to_owned(),
        reason: s(a, "reason"),
    }
}

fn merge_end(into: &mut TransferEnd, from: TransferEnd) {
    if from.queue.is_some() {
        into.queue = from.queue;
    }
    if from.agent.is_some() {
        into.agent = from.agent;
    }
}
