//! Genesys Cloud analytics conversation detail events
//! (`v2.detail.events.conversation.{id}.<suffix>`), delivered through Amazon
//! EventBridge (`detail` = `{topicName, version, eventBody, metadata}`) or as
//! a bare notification (`{topicName, eventBody, ...}`). One detail event is
//! one participant's moment (customer, flow, ACD, user); the mapping is in
//! `docs/adapters/genesys-cloud.md`.
//!
//! Delta events: every record is read on its own, so the adapter keeps no
//! state and the canonical events depend only on the record. Genesys gives
//! no event id; ids are derived from the fields that identify the moment.

use crate::common::{self, EventBuilder, Json, Object};
use crate::{Adapter, AdapterOptions, AdapterState, InputFormat, SessionIdentity};
use sessionflow_core::{DeadLetterReason, Event, InputError, Millis};
use std::borrow::Cow;

const FORMAT: InputFormat = InputFormat::GenesysCloud;
const TOPIC_PREFIX: &str = "v2.detail.events.conversation.";

/// Body fields every mapping reads (the rest of the body is kept under the
/// `vendor` attribute unless the suffix's mapping reads it too).
const ALWAYS_USED: &[&str] = &["conversationId", "eventTime", "mediaType", "direction"];

/// Reads Genesys Cloud conversation detail events.
#[derive(Debug, Clone)]
pub struct GenesysCloud {
    identity: SessionIdentity,
}

impl GenesysCloud {
    /// The adapter with its options.
    pub fn new(options: &AdapterOptions) -> Self {
        GenesysCloud { identity: options.session_identity }
    }
}

impl Adapter for GenesysCloud {
    fn format(&self) -> InputFormat {
        FORMAT
    }

    fn adapt(&self, record: &[u8], _state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError> {
        let root = common::parse_object(FORMAT, record)?;
        let detail = DetailEvent::read(&root)?;
        // Genesys keeps one conversation id across transfers: it has no legs
        // with ids of their own, so both identities name the conversation.
        let session_id = match self.identity {
            SessionIdentity::Journey | SessionIdentity::Leg => detail.conversation_id.clone(),
        };
        detail.events(&session_id)
    }
}

/// One detail event, read and checked.
struct DetailEvent<'a> {
    suffix: String,
    conversation_id: Cow<'a, str>,
    body: &'a Object<'a>,
    body_path: String,
    occurred_at: Millis,
}

impl<'a> DetailEvent<'a> {
    fn read(root: &'a Object<'a>) -> Result<Self, InputError> {
        // EventBridge wraps the notification in `detail`; its `time` (whole
        // seconds) stands in when the body's own time is missing.
        let (notification, path, envelope_time) = match common::optional_object(FORMAT, root, "", "detail")? {
            Some(detail) => (detail, "detail", common::optional_time(FORMAT, root, "", "time")?),
            None => (root, "", None),
        };
        let topic = common::required_str(FORMAT, notification, path, "topicName")?;
        let topic_path = join(path, "topicName");
        let (topic_conversation, suffix) = split_topic(&topic).ok_or_else(|| {
            common::error(FORMAT, DeadLetterReason::BadFieldType, &topic_path, &format!("v2.detail.events.conversation.{{id}}.<suffix>, found {topic:?}"))
        })?;
        let body_path = join(path, "eventBody");
        let body = match common::field(notification, "eventBody") {
            None => return Err(common::error(FORMAT, DeadLetterReason::MissingField, &body_path, "an object, found nothing")),
            Some(Json::Object(body)) => body,
            Some(other) => {
                return Err(common::error(FORMAT, DeadLetterReason::BadFieldType, &body_path, &format!("an object, found {}", other.type_name())));
            }
        };
        let conversation_id = common::required_str(FORMAT, body, &body_path, "conversationId")?;
        if conversation_id != topic_conversation {
            return Err(common::error(
                FORMAT,
                DeadLetterReason::BadFieldType,
                &join(&body_path, "conversationId"),
                &format!("the conversation id of topicName ({topic_conversation:?}), found {conversation_id:?}"),
            ));
        }
        let occurred_at = common::optional_time(FORMAT, body, &body_path, "eventTime")?.or(envelope_time).ok_or_else(|| {
            common::error(FORMAT, DeadLetterReason::MissingField, &join(&body_path, "eventTime"), "epoch milliseconds, found nothing or a placeholder")
        })?;
        Ok(DetailEvent { suffix: suffix.to_owned(), conversation_id, body, body_path, occurred_at })
    }

    fn str(&self, name: &str) -> Result<Option<String>, InputError> {
        Ok(common::optional_str(FORMAT, self.body, &self.body_path, name)?.map(Cow::into_owned))
    }

    /// An upper-case vendor enum, lower-cased for canonical attributes.
    fn lower(&self, name: &str) -> Result<Option<String>, InputError> {
        Ok(self.str(name)?.map(|s| s.to_ascii_lowercase()))
    }

    fn millis(&self, name: &str) -> Result<Option<i64>, InputError> {
        match common::field(self.body, name) {
            None => Ok(None),
            Some(value) => value.as_i64().map(Some).ok_or_else(|| {
                common::error(FORMAT, DeadLetterReason::BadFieldType, &join(&self.body_path, name), &format!("an integer, found {}", value.type_name()))
            }),
        }
    }

    fn channel(&self) -> Result<Option<&'static str>, InputError> {
        let message_type = self.str("messageType")?;
        Ok(match self.str("mediaType")?.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("VOICE" | "CALLBACK") => Some("voice"),
            Some("CHAT") => Some("chat"),
            Some("EMAIL") => Some("email"),
            Some("VIDEO") => Some("video"),
            Some("MESSAGE") if message_type.is_some_and(|t| t.eq_ignore_ascii_case("SMS")) => Some("sms"),
            Some("MESSAGE") => Some("messaging"),
            _ => None,
        })
    }

    fn direction(&self) -> Result<Option<&'static str>, InputError> {
        Ok(match self.str("direction")?.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("INBOUND") => Some("inbound"),
            Some("OUTBOUND") => Some("outbound"),
            _ => None,
        })
    }

    /// The canonical events of this detail event, in the order they happened.
    fn events(&self, session_id: &'a str) -> Result<Vec<Event>, InputError> {
        let mut plan = Plan::default();
        match self.suffix.as_str() {
            "customer.start" => self.customer_start(&mut plan)?,
            "customer.end" => self.customer_end(&mut plan)?,
            "flow.start" | "flow.end" if self.is_in_queue_flow()? => plan.passthrough(&self.suffix),
            "flow.start" => self.flow_start(&mut plan)?,
            "flow.end" => self.flow_end(&mut plan)?,
            "acd.start" => self.acd_start(&mut plan)?,
            "acd.end" => self.acd_end(&mut plan)?,
            "user.start" => self.user_start(&mut plan)?,
            "user.end" => self.user_end(&mut plan)?,
            "acw" => self.after_call_work(&mut plan)?,
            "attributes" => self.attributes(&mut plan)?,
            other => plan.passthrough(other),
        }
        self.build(session_id, plan)
    }

    fn customer_start(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let channel = self.channel()?;
        if channel.is_none() {
            let found = self.str("mediaType")?.map_or_else(|| "nothing".to_owned(), |m| format!("{m:?}"));
            return Err(common::error(
                FORMAT,
                DeadLetterReason::MissingField,
                &join(&self.body_path, "mediaType"),
                &format!("VOICE, CALLBACK, CHAT, EMAIL, VIDEO or MESSAGE on customer.start, found {found}"),
            ));
        }
        let outbound = self.direction()? == Some("outbound");
        let mut started = Object::new();
        // Inbound: the caller and the number they dialled; outbound: the
        // number the contact center called from.
        if outbound {
            put(&mut started, "outbound_number", self.str("ani")?);
        } else {
            put(&mut started, "ani", self.str("ani")?);
            put(&mut started, "support_number", self.str("dnis")?);
        }
        plan.push("session.started", started, &["ani", "dnis"]);
        // A callback's scheduled time: 0 (or absent) is "call back now".
        let scheduled = match common::field(self.body, "callbackScheduledTime") {
            Some(value) => common::time_value(FORMAT, value, &join(&self.body_path, "callbackScheduledTime"))?,
            None => None,
        };
        if let Some(at) = scheduled {
            plan.push("session.scheduled", attrs([("scheduled_for", Some(at.to_rfc3339()))]), &["callbackScheduledTime"]);
        }
        if let Some(number) = self.callback_number()? {
            plan.push("phone_number.collected", attrs([("callback", Some(number))]), &["callbackNumbers"]);
        }
        Ok(())
    }

    fn callback_number(&self) -> Result<Option<String>, InputError> {
        match common::field(self.body, "callbackNumbers") {
            None => Ok(None),
            Some(Json::Array(numbers)) => Ok(numbers.iter().find_map(Json::as_str).filter(|n| !n.is_empty()).map(str::to_owned)),
            Some(other) => Err(common::error(
                FORMAT,
                DeadLetterReason::BadFieldType,
                &join(&self.body_path, "callbackNumbers"),
                &format!("an array of strings, found {}", other.type_name()),
            )),
        }
    }

    fn customer_end(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let disconnect = self.str("disconnectType")?;
        let ended_by = disconnect.as_deref().map(ended_by);
        plan.push(
            "session.ended",
            attrs([("ended_by", ended_by.map(str::to_owned)), ("reason", disconnect.map(|d| d.to_ascii_lowercase()))]),
            &["disconnectType"],
        );
        Ok(())
    }

    /// In-queue flows (hold music, in-queue menus) run while the customer
    /// waits in a queue: they are not self-service.
    fn is_in_queue_flow(&self) -> Result<bool, InputError> {
        Ok(self.str("flowType")?.is_some_and(|t| t.to_ascii_uppercase().starts_with("INQUEUE")))
    }

    fn flow_start(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let name = self.str("flowName")?.or(self.str("flowId")?);
        plan.push("virtual_agent.started", attrs([("virtual_agent", name), ("platform", self.lower("flowType")?)]), &["flowName", "flowId", "flowType"]);
        Ok(())
    }

    fn flow_end(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let name = self.str("flowName")?.or(self.str("flowId")?);
        let outcome = self.str("exitReason")?.map(|reason| flow_outcome(&reason));
        plan.push("virtual_agent.ended", attrs([("virtual_agent", name), ("outcome", outcome)]), &["flowName", "flowId", "flowType", "exitReason"]);
        Ok(())
    }

    fn acd_start(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let queue_id = self.str("queueId")?;
        let mut entered = attrs([("queue", queue_id.clone()), ("queue_id", queue_id)]);
        let mut used = vec!["queueId"];
        // Genesys priorities are not the canonical 1–8: others stay vendor fields.
        if let Some(priority) = self.millis("routingPriority")?.filter(|p| (1..=8).contains(p)) {
            entered.insert("priority", Json::from(priority));
            used.push("routingPriority");
        }
        plan.push("queue.entered", entered, &used);
        Ok(())
    }

    fn acd_end(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let outcome = self.str("acdOutcome")?;
        if outcome.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("ANSWERED")) {
            // The ACD segment ends when the agent answers: that is the connect.
            let agent = self.str("answeredUserId")?;
            plan.push("agent.connected", attrs([("agent", agent.clone()), ("agent_id", agent)]), &["acdOutcome", "answeredUserId"]);
        } else {
            // An abandon is told by customer.end; a flow-out by the next
            // segment. The record still reaches the timeline.
            plan.passthrough(&self.suffix);
        }
        Ok(())
    }

    fn user_start(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        // The user's session starts when it alerts: an offer.
        let agent = self.str("userId")?;
        plan.push("agent.offered", attrs([("agent", agent.clone()), ("agent_id", agent)]), &["userId"]);
        Ok(())
    }

    fn user_end(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let agent = self.str("userId")?;
        let disconnect = self.str("disconnectType")?;
        if let Some(kind) = disconnect.as_deref().and_then(transfer_kind) {
            // The user.end record does not name the destination: the next
            // acd.start (or user.start) tells where the customer went.
            let transfer = attrs([("from_agent", agent), ("from_queue", self.str("queueId")?), ("kind", Some(kind.to_owned()))]);
            plan.push("transfer.started", transfer.clone(), &["userId", "queueId", "disconnectType"]);
            plan.push("transfer.completed", transfer, &["userId", "queueId", "disconnectType"]);
            return Ok(());
        }
        let interacted = self.millis("interactingDurationMs")?.is_some_and(|ms| ms > 0);
        if !interacted && self.millis("alertingDurationMs")?.is_some_and(|ms| ms > 0) {
            // Alerted, never answered: the customer stays in the queue.
            let reason = match disconnect.as_deref().map(str::to_ascii_uppercase).as_deref() {
                Some("TIMEOUT") => "timeout",
                Some("CLIENT") => "rejected",
                _ => "missed",
            };
            plan.push(
                "agent.declined",
                attrs([("agent", agent.clone()), ("agent_id", agent), ("reason", Some(reason.to_owned()))]),
                &["userId", "disconnectType"],
            );
            return Ok(());
        }
        plan.push(
            "participant.left",
            attrs([("participant", agent), ("role", Some("agent".to_owned())), ("reason", disconnect.map(|d| d.to_ascii_lowercase()))]),
            &["userId", "disconnectType"],
        );
        Ok(())
    }

    fn after_call_work(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        let agent = self.str("userId")?;
        let code = self.str("wrapupCode")?;
        if code.is_some() {
            plan.push(
                "disposition.set",
                attrs([("code", code), ("notes", self.str("wrapupNotes")?), ("agent", agent.clone())]),
                &["wrapupCode", "wrapupNotes", "userId"],
            );
        }
        plan.push("wrapup.completed", attrs([("agent", agent)]), &["userId"]);
        Ok(())
    }

    fn attributes(&self, plan: &mut Plan<'a>) -> Result<(), InputError> {
        match common::optional_object(FORMAT, self.body, &self.body_path, "attributes")? {
            // Its attributes are the custom data itself: vendor fields would
            // be merged into it, so they are left out.
            Some(data) if !data.is_empty() => {
                plan.push("custom_data.received", data.clone(), &["attributes"]);
                plan.steps.last_mut().expect("just pushed").keep_vendor_fields = false;
            }
            _ => plan.passthrough(&self.suffix),
        }
        Ok(())
    }

    fn build(&self, session_id: &'a str, plan: Plan<'a>) -> Result<Vec<Event>, InputError> {
        let channel = self.channel()?;
        let direction = self.direction()?;
        let participant = self.str("participantId")?.unwrap_or_default();
        let session = self.str("sessionId")?.unwrap_or_default();
        let time = self.occurred_at.0.to_string();
        // The rank leads the id so that a conversation's events at the same
        // millisecond fold in the order Genesys' segments follow each other
        // (the engine breaks time ties by event id).
        let prefix = format!("genesys-{:02}", suffix_rank(&self.suffix));
        let base = common::stable_id(&prefix, &[&self.conversation_id, &self.suffix, &participant, &session, &time]);
        let several = plan.steps.len() > 1;
        plan.steps
            .into_iter()
            .enumerate()
            .map(|(index, step)| {
                let event_id = if several { format!("{base}.{index}") } else { base.clone() };
                let vendor = if step.keep_vendor_fields {
                    self.body.filtered(|k, v| !v.is_null() && !ALWAYS_USED.contains(&k) && !step.used.iter().any(|u| u.eq_ignore_ascii_case(k)))
                } else {
                    Object::new()
                };
                let mut builder = EventBuilder::new(FORMAT, event_id, session_id, step.event_type, self.occurred_at).channel(channel).direction(direction);
                for (name, value) in step.attributes {
                    builder = builder.attr(name, Some(value));
                }
                builder.vendor_fields("vendor", vendor).build(FORMAT)
            })
            .collect()
    }
}

/// The canonical events one record yields, before they are built.
#[derive(Default)]
struct Plan<'a> {
    steps: Vec<Step<'a>>,
}

struct Step<'a> {
    event_type: String,
    attributes: Object<'a>,
    /// Body fields this event carries as canonical attributes.
    used: Vec<&'static str>,
    /// Whether the unused body fields go under the `vendor` attribute.
    keep_vendor_fields: bool,
}

impl<'a> Plan<'a> {
    fn push(&mut self, event_type: &str, attributes: Object<'a>, used: &[&'static str]) {
        self.steps.push(Step { event_type: event_type.to_owned(), attributes, used: used.to_vec(), keep_vendor_fields: true });
    }

    /// A detail event the mapping does not know: to the timeline as
    /// `vendor.<suffix>`, every body field kept.
    fn passthrough(&mut self, suffix: &str) {
        self.push(&format!("vendor.{suffix}"), Object::new(), &[]);
    }
}

fn put(map: &mut Object<'_>, name: &'static str, value: Option<String>) {
    if let Some(value) = value {
        map.insert(name, Json::from(value));
    }
}

fn attrs<'a, const N: usize>(pairs: [(&'static str, Option<String>); N]) -> Object<'a> {
    let mut map = Object::new();
    for (name, value) in pairs {
        put(&mut map, name, value);
    }
    map
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

/// `v2.detail.events.conversation.{id}.<suffix>` → (id, suffix).
fn split_topic(topic: &str) -> Option<(&str, &str)> {
    let rest = topic.strip_prefix(TOPIC_PREFIX)?;
    let (id, suffix) = rest.split_once('.')?;
    (!id.is_empty() && !suffix.is_empty()).then_some((id, suffix))
}

/// Who ended the conversation, from the customer's own disconnect type:
/// ENDPOINT/CLIENT is the customer's side, PEER the other party (read as the
/// agent: one record cannot tell an agent from a flow), anything else the
/// platform.
fn ended_by(disconnect: &str) -> &'static str {
    match disconnect.to_ascii_uppercase().as_str() {
        "ENDPOINT" | "CLIENT" => "end_user",
        "PEER" => "agent",
        _ => "system",
    }
}

/// The canonical transfer kind of a user's transfer disconnect, if it is one.
fn transfer_kind(disconnect: &str) -> Option<&'static str> {
    Some(match disconnect.to_ascii_uppercase().as_str() {
        "TRANSFER" => "blind",
        "CONSULT_TRANSFER" => "consult",
        "FORWARD_TRANSFER" => "forward",
        "CONFERENCE_TRANSFER" => "conference",
        "NO_ANSWER_TRANSFER" => "no_answer",
        "NOT_AVAILABLE_TRANSFER" => "not_available",
        "DND_TRANSFER" => "dnd",
        _ => return None,
    })
}

/// The canonical virtual-agent outcome of a flow's exit reason.
fn flow_outcome(exit_reason: &str) -> String {
    match exit_reason.to_ascii_uppercase().as_str() {
        // The flow transferred the customer on (to a queue, a user, a number).
        "TRANSFER" => "handoff".to_owned(),
        // The flow itself hung up: the customer was served by it.
        "FLOW_DISCONNECT" => "completed".to_owned(),
        // The customer left during the flow.
        "DISCONNECT" | "USER_EXIT" => "abandoned".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// Where a segment's events fall among others at the same millisecond.
fn suffix_rank(suffix: &str) -> u8 {
    match suffix {
        "customer.start" => 10,
        "attributes" => 15,
        "flow.start" => 20,
        "flow.outcome" => 25,
        "flow.end" => 30,
        // A transferring user leaves before the next queue segment starts.
        "user.end" => 40,
        "acd.start" => 50,
        "user.start" => 60,
        "acd.end" => 70,
        "customer.end" => 80,
        "acw" => 90,
        _ => 95,
    }
}
