//! Zoom Contact Center `contact_center.*` webhooks
//! (`docs/adapters/zoom-contact-center.md`): one webhook body in, the
//! canonical events of that moment out.
//!
//! Zoom sends deltas, not snapshots, so the adapter keeps no per-session
//! state: every record maps on its own, which makes the result independent
//! of arrival order by construction (the engine's fold sorts the events).
//! Zoom gives no event id; ids are derived from what identifies the moment.

use crate::common::{self, EventBuilder, Json, Object, field, optional_str, required_str, stable_id, time_value};
use crate::{Adapter, AdapterOptions, AdapterState, InputFormat, SessionIdentity};
use sessionflow_core::{DeadLetterReason, Event, InputError, Millis};
use std::borrow::Cow;

const FORMAT: InputFormat = InputFormat::ZoomContactCenter;
const PREFIX: &str = "contact_center.";
const OBJECT: &str = "payload.object";

/// Object fields the mapping reads; every other field is kept under
/// `attributes.vendor` (the personal ones in [`PERSONAL`] excepted).
const MAPPED: &[&str] = &[
    "engagement_id",
    "channel",
    "channel_name",
    "direction",
    "queue_id",
    "cc_queue_id",
    "queue_name",
    "user_id",
    "assigned_user_id",
    "user_display_name",
    "assigned_user_display_name",
    "display_name",
    "transfer_type",
    "transfer_to_queue_id",
    "transfer_to_queue_name",
    "transfer_to_user_id",
    "transfer_to_user_display_name",
    "dispositions",
    "disposition_id",
    "disposition_name",
    "disposition_notes",
];

/// Personal data: only the canonical attributes the privacy policy knows
/// (`ani`, `support_number`, `outbound_number`) may carry it, so these are
/// never copied into `attributes.vendor`.
const PERSONAL: &[&str] = &["caller_number", "callee_number", "consumer_number", "consumer_display_name", "consumer_email", "user_email", "callback_number"];

const AGENT_IDS: &[&str] = &["user_id", "assigned_user_id"];
const AGENT_NAMES: &[&str] = &["user_display_name", "assigned_user_display_name", "display_name"];

/// Reads Zoom Contact Center webhooks.
#[derive(Debug, Clone)]
pub struct ZoomContactCenter {
    /// Kept for the documented contract; Zoom keeps one `engagement_id`
    /// across transfers, so journey and leg name the same session.
    identity: SessionIdentity,
}

impl ZoomContactCenter {
    /// The adapter with its options.
    pub fn new(options: &AdapterOptions) -> Self {
        ZoomContactCenter { identity: options.session_identity }
    }

    /// The session of an engagement. Zoom has no leg id: transfers keep the
    /// engagement id and the engagement-level events (answer, hold, end)
    /// carry no task id, so a leg cannot be told from a record alone.
    fn session_id(&self, engagement_id: &str) -> String {
        match self.identity {
            SessionIdentity::Journey | SessionIdentity::Leg => engagement_id.to_owned(),
        }
    }
}

impl Adapter for ZoomContactCenter {
    fn format(&self) -> InputFormat {
        FORMAT
    }

    fn adapt(&self, record: &[u8], _state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError> {
        let root = common::parse_object(FORMAT, record)?;
        let webhook = Webhook::read(&root)?;
        let session_id = self.session_id(&webhook.engagement_id);
        let steps = webhook.steps()?;
        let count = steps.len();
        let passthrough = steps.first().is_some_and(|s| s.event_type.starts_with("vendor."));
        let mut events = Vec::with_capacity(count);
        for (index, step) in steps.into_iter().enumerate() {
            // Suffixes in emission order: events of one record share a time,
            // and the fold breaks that tie by event id.
            let event_id = if count == 1 { webhook.base_id.clone() } else { format!("{}-{}", webhook.base_id, index + 1) };
            let mut builder = EventBuilder::new(FORMAT, event_id, session_id.as_str(), step.event_type, webhook.occurred_at)
                .channel(webhook.channel)
                .direction(webhook.direction)
                .tenant(Some(webhook.tenant.as_str()));
            for (name, value) in step.attributes {
                builder = builder.attr(name, Some(value));
            }
            if index == 0 {
                builder = builder.vendor_fields("vendor", webhook.vendor_fields(passthrough));
            }
            events.push(builder.build(FORMAT)?);
        }
        Ok(events)
    }
}

/// One canonical event to build.
struct Step {
    event_type: String,
    attributes: Object<'static>,
}

impl Step {
    fn new(event_type: &str) -> Self {
        Step { event_type: event_type.to_owned(), attributes: Object::new() }
    }

    fn attr(mut self, name: &'static str, value: Option<impl Into<Json<'static>>>) -> Self {
        if let Some(value) = value {
            self.attributes.insert(name, value.into());
        }
        self
    }
}

/// An agent as the canonical attributes name one.
struct Agent {
    id: String,
    name: String,
}

/// The parts of a webhook body every mapping needs.
struct Webhook<'a> {
    /// The event name without `contact_center.`.
    name: String,
    tenant: String,
    object: &'a Object<'a>,
    engagement_id: String,
    occurred_at: Millis,
    base_id: String,
    channel: Option<&'static str>,
    direction: Option<&'static str>,
}

impl<'a> Webhook<'a> {
    fn read(root: &'a Object<'a>) -> Result<Self, InputError> {
        let event = required_str(FORMAT, root, "", "event")?;
        let Some(name) = event.strip_prefix(PREFIX).filter(|n| !n.is_empty()) else {
            return Err(common::error(FORMAT, DeadLetterReason::BadFieldType, "event", &format!("a `contact_center.*` event name, found {event:?}")));
        };
        let payload = required_object(root, "", "payload")?;
        let tenant = required_str(FORMAT, payload, "payload", "account_id")?.into_owned();
        let object = required_object(payload, "payload", "object")?;
        let engagement_id = required_str(FORMAT, object, OBJECT, "engagement_id")?.into_owned();
        let occurred_at = event_time(root, object)?;
        let task_id = text(object, OBJECT, "task_id")?.unwrap_or_default();
        let agent_id = first_str(object, AGENT_IDS)?.unwrap_or_default();
        let millis = occurred_at.0.to_string();
        // What identifies the moment: engagement, event, task, agent, time.
        let base_id = stable_id("zoom", &[&engagement_id, name, &task_id, &agent_id, &millis]);
        let channel_text = first_str(object, &["channel", "channel_name"])?;
        let direction = text(object, OBJECT, "direction")?.and_then(|d| direction_of(&d));
        Ok(Webhook {
            name: name.to_owned(),
            tenant,
            object,
            engagement_id,
            occurred_at,
            base_id,
            channel: channel_text.as_deref().and_then(channel_of),
            direction,
        })
    }

    fn str(&self, name: &str) -> Result<Option<String>, InputError> {
        text(self.object, OBJECT, name)
    }

    /// The agent of a record; `id_field` names the documented id field in
    /// the error when no id is there.
    fn agent(&self, id_field: &str) -> Result<Agent, InputError> {
        let Some(id) = first_str(self.object, AGENT_IDS)? else {
            return Err(common::error(FORMAT, DeadLetterReason::MissingField, &format!("{OBJECT}.{id_field}"), "the agent's user id, found nothing"));
        };
        let name = first_str(self.object, AGENT_NAMES)?.unwrap_or_else(|| id.clone());
        Ok(Agent { id, name })
    }

    /// The agent a transfer goes to, when the record names one.
    fn transfer_target_agent(&self) -> Result<Option<Agent>, InputError> {
        let Some(id) = self.str("transfer_to_user_id")? else { return Ok(None) };
        let name = self.str("transfer_to_user_display_name")?.unwrap_or_else(|| id.clone());
        Ok(Some(Agent { id, name }))
    }

    fn transfer_target_queue(&self) -> Result<Option<String>, InputError> {
        Ok(self.str("transfer_to_queue_name")?.or(self.str("transfer_to_queue_id")?))
    }

    fn queue(&self) -> Result<Option<String>, InputError> {
        Ok(self.str("queue_name")?.or(first_str(self.object, &["queue_id", "cc_queue_id"])?))
    }

    /// The canonical events of this record, in the order they happened.
    fn steps(&self) -> Result<Vec<Step>, InputError> {
        let mut steps = match self.name.as_str() {
            "engagement_started" => vec![self.session_started()?],
            "engagement_ended" => vec![Step::new("session.ended")],
            "engagement_user_answered" => vec![agent_step("agent.connected", &self.agent("user_id")?)],
            "engagement_user_hold" => vec![Step::new("hold.started")],
            "engagement_user_unhold" => vec![Step::new("hold.ended")],
            "engagement_user_ended" => {
                let agent = self.agent("user_id")?;
                vec![Step::new("participant.left").attr("participant", Some(agent.id)).attr("role", Some("agent"))]
            }
            "engagement_transfer_initiated" => {
                let from = first_str(self.object, AGENT_NAMES)?.or(first_str(self.object, AGENT_IDS)?);
                let kind = self.str("transfer_type")?.map(|t| transfer_kind(&t));
                vec![
                    Step::new("transfer.started")
                        .attr("from_agent", from)
                        .attr("from_queue", self.str("queue_name")?)
                        .attr("to_queue", self.transfer_target_queue()?)
                        .attr("to_agent", self.transfer_target_agent()?.map(|a| a.name))
                        .attr("kind", kind),
                ]
            }
            // The engagement waits in the target queue: the transfer is done.
            "engagement_transfer_queued" => {
                let queue = self.transfer_target_queue()?.or(self.queue()?);
                vec![Step::new("transfer.completed").attr("to_queue", queue)]
            }
            "engagement_transfer_reserved" => match (self.transfer_target_queue()?, self.receiving_agent()?) {
                (Some(_), Some(agent)) => vec![agent_step("agent.offered", &agent)],
                // A direct transfer to an agent rings inside the pending
                // transfer; its acceptance completes it.
                _ => vec![self.passthrough()],
            },
            "engagement_transfer_accepted" => match (self.transfer_target_queue()?, self.receiving_agent()?) {
                (Some(_), Some(agent)) => vec![agent_step("agent.assigned", &agent)],
                (None, Some(agent)) => vec![Step::new("transfer.completed").attr("to_agent", Some(agent.name))],
                (_, None) => vec![self.passthrough()],
            },
            "task_created" => {
                vec![Step::new("queue.entered").attr("queue", self.queue()?).attr("queue_id", first_str(self.object, &["queue_id", "cc_queue_id"])?)]
            }
            "task_reservation_created" => vec![agent_step("agent.offered", &self.agent("assigned_user_id")?)],
            "task_reservation_accepted" => vec![agent_step("agent.assigned", &self.agent("assigned_user_id")?)],
            "task_reservation_rejected" => vec![agent_step("agent.declined", &self.agent("assigned_user_id")?).attr("reason", Some("rejected"))],
            "task_reservation_timeout" => vec![agent_step("agent.declined", &self.agent("assigned_user_id")?).attr("reason", Some("timeout"))],
            "task_updated" => vec![self.task_updated()?],
            "task_completed" => vec![Step::new("wrapup.completed").attr("agent", first_str(self.object, AGENT_NAMES)?)],
            "queue_scheduled_callback_created" => {
                let queue = self.queue()?;
                let mut steps = vec![
                    Step::new("deflection.offered").attr("kind", Some("callback")).attr("queue", queue.clone()),
                    Step::new("deflection.accepted").attr("kind", Some("callback")).attr("queue", queue),
                ];
                if let Some(number) = self.str("callback_number")? {
                    steps.push(Step::new("phone_number.collected").attr("callback", Some(number)));
                }
                steps
            }
            _ => vec![self.passthrough()],
        };
        if let Some(disposition) = self.disposition()? {
            steps.push(disposition);
        }
        Ok(steps)
    }

    fn session_started(&self) -> Result<Step, InputError> {
        if self.channel.is_none() {
            let found = first_str(self.object, &["channel", "channel_name"])?.map_or_else(|| "nothing".to_owned(), |c| format!("{c:?}"));
            return Err(common::error(
                FORMAT,
                DeadLetterReason::MissingField,
                &format!("{OBJECT}.channel"),
                &format!("a channel (voice, video, chat, messaging, email, sms, in_app_chat, …), found {found}"),
            ));
        }
        let consumer = first_str(self.object, &["consumer_number", "caller_number"])?;
        let step = Step::new("session.started");
        Ok(if self.direction == Some("outbound") {
            step.attr("outbound_number", first_str(self.object, &["consumer_number", "callee_number"])?)
        } else {
            step.attr("ani", consumer).attr("support_number", self.str("callee_number")?)
        })
    }

    /// The agent a transfer reservation or acceptance is for.
    fn receiving_agent(&self) -> Result<Option<Agent>, InputError> {
        match self.transfer_target_agent()? {
            Some(agent) => Ok(Some(agent)),
            None if first_str(self.object, AGENT_IDS)?.is_some() => self.agent("user_id").map(Some),
            None => Ok(None),
        }
    }

    /// `task_updated` is a status snapshot. Only one status is a moment of
    /// its own: back to `pending` from an agent who held it, i.e. the agent
    /// released the (async) engagement to the queue. A status refresh
    /// without the releasing agent tells nothing new.
    fn task_updated(&self) -> Result<Step, InputError> {
        let status = self.str("task_status")?;
        if status.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("pending"))
            && let Some(agent) = first_str(self.object, AGENT_NAMES)?.or(first_str(self.object, AGENT_IDS)?)
        {
            return Ok(Step::new("engagement.released").attr("agent", Some(agent)).attr("queue", self.queue()?));
        }
        Ok(self.passthrough())
    }

    /// The disposition a record carries. Zoom allows several per
    /// engagement; the canonical model keeps one, so the last listed is
    /// mapped (across records, the latest event wins in the fold) and the
    /// whole list stays in `attributes.vendor.dispositions`.
    fn disposition(&self) -> Result<Option<Step>, InputError> {
        let listed = match field(self.object, "dispositions") {
            None => None,
            Some(Json::Array(list)) => match list.last() {
                None => None,
                Some(Json::Object(last)) => Some(last),
                Some(other) => {
                    let expected = format!("an array of disposition objects, found an element that is {}", other.type_name());
                    return Err(common::error(FORMAT, DeadLetterReason::BadFieldType, &format!("{OBJECT}.dispositions"), &expected));
                }
            },
            Some(other) => {
                let expected = format!("an array of disposition objects, found {}", other.type_name());
                return Err(common::error(FORMAT, DeadLetterReason::BadFieldType, &format!("{OBJECT}.dispositions"), &expected));
            }
        };
        let (source, path) = match listed {
            Some(last) => (last, format!("{OBJECT}.dispositions[]")),
            None => (self.object, OBJECT.to_owned()),
        };
        let code = text(source, &path, "disposition_name")?;
        let custom_code_id = text(source, &path, "disposition_id")?;
        if code.is_none() && custom_code_id.is_none() {
            return Ok(None);
        }
        let notes = text(source, &path, "disposition_notes")?.or(text(source, &path, "notes")?);
        let agent = first_str(self.object, AGENT_NAMES)?;
        Ok(Some(
            Step::new("disposition.set")
                .attr("code", code.or_else(|| custom_code_id.clone()))
                .attr("custom_code_id", custom_code_id)
                .attr("notes", notes)
                .attr("agent", agent),
        ))
    }

    /// A Zoom event the mapping does not name: to the timeline as
    /// `vendor.<event name>`, its fields under `attributes.vendor`.
    fn passthrough(&self) -> Step {
        Step::new(&format!("vendor.{}", self.name))
    }

    /// The object's fields the mapping did not read (all of them for a
    /// pass-through record), personal data and the session id excepted.
    fn vendor_fields(&self, passthrough: bool) -> Object<'a> {
        self.object.filtered(|k, _| {
            !PERSONAL.iter().any(|p| k.eq_ignore_ascii_case(p))
                && (passthrough || !MAPPED.iter().any(|m| k.eq_ignore_ascii_case(m)) || k == "dispositions")
                && k != "engagement_id"
        })
    }
}

fn agent_step(event_type: &str, agent: &Agent) -> Step {
    Step::new(event_type).attr("agent", Some(agent.name.clone())).attr("agent_id", Some(agent.id.clone()))
}

/// The event time: `event_ts`, or, when that is a placeholder, the object's
/// own modification or creation time.
fn event_time(root: &Object<'_>, object: &Object<'_>) -> Result<Millis, InputError> {
    let Some(event_ts) = field(root, "event_ts") else {
        return Err(common::error(FORMAT, DeadLetterReason::MissingField, "event_ts", "epoch milliseconds, found nothing"));
    };
    if let Some(at) = time_value(FORMAT, event_ts, "event_ts")? {
        return Ok(at);
    }
    for name in ["last_modified_time_ms", "last_modified_time", "created_time_ms", "created_time"] {
        if let Some(value) = field(object, name)
            && let Some(at) = time_value(FORMAT, value, &format!("{OBJECT}.{name}"))?
        {
            return Ok(at);
        }
    }
    Err(common::error(
        FORMAT,
        DeadLetterReason::BadTimestamp,
        "event_ts",
        &format!("a real event time, found a placeholder ({event_ts}) and no time in {OBJECT}"),
    ))
}

/// An object field that must be there.
fn required_object<'o, 'a>(object: &'o Object<'a>, path: &str, name: &str) -> Result<&'o Object<'a>, InputError> {
    common::optional_object(FORMAT, object, path, name)?.ok_or_else(|| {
        let at = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        common::error(FORMAT, DeadLetterReason::MissingField, &at, "an object, found nothing")
    })
}

/// A text field that may be absent, owned (the steps outlive the record).
fn text(object: &Object<'_>, path: &str, name: &str) -> Result<Option<String>, InputError> {
    Ok(optional_str(FORMAT, object, path, name)?.map(Cow::into_owned))
}

/// The first of several alias fields that is present.
fn first_str(object: &Object<'_>, names: &[&str]) -> Result<Option<String>, InputError> {
    for name in names {
        if let Some(value) = text(object, OBJECT, name)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Zoom's channel names (`channel` on engagement events, `channel_name` on
/// tasks) to the canonical channel; unknown names give none.
fn channel_of(zoom: &str) -> Option<&'static str> {
    Some(match zoom.to_ascii_lowercase().as_str() {
        "voice" | "phone" => "voice",
        "video" | "in_app_video" | "kiosk" => "video",
        "chat" | "in_app_chat" | "web_chat" | "webchat" => "chat",
        "messaging" | "whatsapp" | "facebook_messenger" | "messenger" | "instagram" => "messaging",
        "sms" => "sms",
        "email" => "email",
        _ => return None,
    })
}

fn direction_of(zoom: &str) -> Option<&'static str> {
    match zoom.to_ascii_lowercase().as_str() {
        "inbound" => Some("inbound"),
        "outbound" => Some("outbound"),
        _ => None,
    }
}

/// Zoom's transfer types to the canonical kinds; others pass as written.
fn transfer_kind(zoom: &str) -> String {
    match zoom.to_ascii_lowercase().as_str() {
        "cold" | "blind" | "direct" => "blind".to_owned(),
        "warm" | "consult" | "consultative" => "consult".to_owned(),
        "external" | "phone_number" | "pstn" | "sip" => "external_sip".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_names_map_to_canonical_values() {
        assert_eq!(channel_of("in_app_chat"), Some("chat"));
        assert_eq!(channel_of("VOICE"), Some("voice"));
        assert_eq!(channel_of("kiosk"), Some("video"));
        assert_eq!(channel_of("carrier_pigeon"), None);
        assert_eq!(transfer_kind("Cold"), "blind");
        assert_eq!(transfer_kind("warm"), "consult");
        assert_eq!(transfer_kind("conference"), "conference");
        assert_eq!(direction_of("Outbound"), Some("outbound"));
    }
}
