//! Twilio TaskRouter (Flex): Event Streams CloudEvents and workspace event
//! callbacks to canonical events (`docs/adapters/twilio-taskrouter.md`).
//!
//! TaskRouter sends one record per moment (a delta format), so the mapping
//! of a record depends on that record alone: no adapter state, and the same
//! record gives the same events in any arrival order.

mod record;

use crate::common::{EventBuilder, Json, Object, error, stable_id};
use crate::{Adapter, AdapterOptions, AdapterState, InputFormat, SessionIdentity};
use record::Native;
use sessionflow_core::{DeadLetterReason, Event, InputError};

const FORMAT: InputFormat = InputFormat::TwilioTaskrouter;

/// Fields the mapping reads; every other payload field is kept under the
/// `vendor` attribute. (Snake-case names; the callback's PascalCase names
/// match them, see `record::lookup`.)
const MAPPED_FIELDS: &[&str] = &[
    "sid",
    "event_type",
    "eventtype",
    "timestamp",
    "timestamp_ms",
    "task_sid",
    "task_attributes",
    "task_channel_unique_name",
    "task_queue_name",
    "task_queue_sid",
    "task_priority",
    "worker_name",
    "worker_sid",
    "task_canceled_reason",
    "task_completed_reason",
    "reason",
    "transfer_to",
    "transfer_type",
    "transfer_mode",
    "transfer_failed_reason",
];

/// Task attributes the mapping reads (they are personal data: `from` is the
/// caller), removed from the copy kept under `vendor.task_attributes`.
const MAPPED_TASK_ATTRIBUTES: &[&str] = &["from", "to", "direction"];

/// Native types that concern a task (they must name one); any other type
/// without a `TaskSid` (worker, activity, workspace events) is no session's.
const TASK_EVENT_PREFIXES: &[&str] = &["task.", "reservation."];
const TASK_EVENTS: &[&str] =
    &["task-queue.entered", "task-queue.moved", "task-queue.timeout", "workflow.entered", "workflow.timeout", "workflow.target-matched"];

/// The adapter.
#[derive(Debug, Clone)]
pub struct TwilioTaskrouter {
    identity: SessionIdentity,
}

impl TwilioTaskrouter {
    /// The adapter with its options.
    pub fn new(options: &AdapterOptions) -> Self {
        TwilioTaskrouter { identity: options.session_identity }
    }
}

impl Adapter for TwilioTaskrouter {
    fn format(&self) -> InputFormat {
        InputFormat::TwilioTaskrouter
    }

    fn adapt(&self, record: &[u8], _state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError> {
        let parsed = record::parse(record)?;
        let native = record::read(&parsed)?;
        let Some(task_sid) = native.text("task_sid")? else {
            let about_a_task = TASK_EVENT_PREFIXES.iter().any(|p| native.event_type.starts_with(p)) || TASK_EVENTS.contains(&native.event_type.as_str());
            if about_a_task {
                return Err(error(FORMAT, DeadLetterReason::MissingField, &native.field_name("task_sid"), "a string, found nothing"));
            }
            return Ok(Vec::new());
        };
        let task = Task::read(&native, task_sid, self.identity)?;
        let planned = plan(&native, &task)?;
        build(&native, &task, planned)
    }
}

/// What a record says about its task and the journey the task belongs to.
#[derive(Debug)]
struct Task<'a> {
    sid: String,
    session_id: String,
    /// Journey mode: a task a transfer created (its conversation began with another task).
    follow_up_leg: bool,
    /// Journey mode: Flex marked the task as transferred away
    /// (`conversations.followed_by`), so its end is not the journey's.
    transferred_away: bool,
    attributes: Object<'a>,
    channel: Option<&'static str>,
    channel_name: Option<String>,
    queue: Option<String>,
    queue_id: Option<String>,
    agent: Option<String>,
    agent_id: Option<String>,
}

impl<'a> Task<'a> {
    fn read(native: &Native<'a>, sid: String, identity: SessionIdentity) -> Result<Task<'a>, InputError> {
        let attributes = native.task_attributes()?;
        let conversations = attributes.get("conversations").and_then(Json::as_object);
        let conversation_field = |name: &str| conversations.and_then(|c| c.get(name)).and_then(Json::as_str).filter(|s| !s.is_empty());
        let journey = identity == SessionIdentity::Journey;
        let conversation_id = conversation_field("conversation_id").filter(|_| journey);
        let session_id = conversation_id.map_or_else(|| sid.clone(), str::to_owned);
        let channel_name = native.text("task_channel_unique_name")?.or_else(|| attributes.get("channelType").and_then(Json::as_str).map(str::to_owned));
        Ok(Task {
            follow_up_leg: session_id != sid,
            transferred_away: journey && conversation_field("followed_by").is_some_and(|f| f.to_ascii_lowercase().contains("transfer")),
            session_id,
            sid,
            channel: channel_name.as_deref().and_then(canonical_channel),
            channel_name,
            queue: native.text("task_queue_name")?,
            queue_id: native.text("task_queue_sid")?,
            agent: native.text("worker_name")?,
            agent_id: native.text("worker_sid")?,
            attributes,
        })
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Json::as_str).filter(|s| !s.is_empty())
    }

    fn hang_up_by(&self) -> Option<&str> {
        self.attributes.get("conversations").and_then(|c| c.get("hang_up_by")).and_then(Json::as_str)
    }
}

/// TaskRouter's channel unique names (and Flex's `channelType`) to the canonical channel.
fn canonical_channel(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "voice" => Some("voice"),
        "chat" | "web" | "webchat" => Some("chat"),
        "sms" => Some("sms"),
        "email" => Some("email"),
        "video" => Some("video"),
        "messaging" | "whatsapp" | "facebook" | "messenger" | "line" | "gbm" => Some("messaging"),
        _ => None,
    }
}

/// The position of a canonical type in a session's natural order. Event ids
/// start with it: the core orders events of the same millisecond by event
/// id, and TaskRouter stamps e.g. `task.created` and `task-queue.entered`,
/// or `reservation.canceled` and `task.canceled`, with the same time.
fn rank(event_type: &str) -> u8 {
    match event_type {
        "session.started" => 0,
        "queue.entered" => 1,
        "agent.offered" => 2,
        "agent.declined" => 3,
        "agent.assigned" => 4,
        "agent.connected" => 5,
        "transfer.started" => 6,
        "transfer.completed" | "transfer.failed" => 7,
        "deflection.accepted" => 8,
        "session.ended" => 9,
        "disposition.set" => 10,
        "wrapup.completed" => 11,
        _ => 12,
    }
}

/// One canonical event a record yields, before its envelope is added.
#[derive(Debug)]
struct Planned<'a> {
    event_type: String,
    attributes: Vec<(&'static str, Json<'a>)>,
}

impl<'a> Planned<'a> {
    fn new(event_type: &str) -> Self {
        Planned { event_type: event_type.to_owned(), attributes: Vec::new() }
    }

    fn attr(mut self, name: &'static str, value: Option<impl Into<Json<'a>>>) -> Self {
        if let Some(value) = value {
            self.attributes.push((name, value.into()));
        }
        self
    }

    fn agent(self, task: &Task<'_>) -> Self {
        self.attr("agent", task.agent.clone()).attr("agent_id", task.agent_id.clone())
    }
}

/// The canonical events of one record, in the order they happened.
fn plan<'a>(native: &'a Native<'_>, task: &'a Task<'_>) -> Result<Vec<Planned<'a>>, InputError> {
    let passthrough = || vec![Planned::new(&format!("vendor.{}", native.event_type))];
    let reason = native.text("reason")?;
    Ok(match native.event_type.as_str() {
        "task.created" if task.follow_up_leg => passthrough(),
        "task.created" => {
            // The envelope requires a channel on `session.started`.
            if task.channel.is_none() {
                let found = task.channel_name.as_deref().map_or_else(|| "nothing".to_owned(), |c| format!("{c:?}"));
                let expected = format!("voice, chat, sms, email, video or a messaging channel, found {found}");
                return Err(error(FORMAT, DeadLetterReason::BadFieldType, &native.field_name("task_channel_unique_name"), &expected));
            }
            vec![Planned::new("session.started").attr("ani", task.attribute("from")).attr("support_number", task.attribute("to"))]
        }
        "task-queue.entered" | "task-queue.moved" => {
            let priority = native.get("task_priority").and_then(|p| p.as_i64().or_else(|| p.as_str()?.parse().ok())).filter(|p| (1..=8).contains(p));
            vec![Planned::new("queue.entered").attr("queue", task.queue.clone()).attr("queue_id", task.queue_id.clone()).attr("priority", priority)]
        }
        "reservation.created" => vec![Planned::new("agent.offered").agent(task)],
        // Accepting a reservation is TaskRouter's last word on the agent: Flex
        // joins the agent to the call or conversation on accept.
        "reservation.accepted" => vec![Planned::new("agent.assigned").agent(task), Planned::new("agent.connected").agent(task)],
        "reservation.rejected" | "reservation.timeout" | "reservation.canceled" | "reservation.rescinded" => {
            let why = native.event_type.trim_start_matches("reservation.");
            vec![Planned::new("agent.declined").agent(task).attr("reason", Some(why))]
        }
        "task.transfer-initiated" => {
            let (to_queue, to_agent) = transfer_target(native)?;
            vec![
                Planned::new("transfer.started")
                    .attr("from_queue", task.queue.clone())
                    .attr("from_agent", task.agent.clone().or(native.text("transfer_initiating_worker_sid")?))
                    .attr("to_queue", to_queue)
                    .attr("to_agent", to_agent)
                    .attr("kind", transfer_kind(native)?),
            ]
        }
        // The target is left out: the start named it, and a target here would
        // make the core open a queue visit (or assign an agent) that the
        // transferred task's own events already tell.
        "task.transfer-completed" => vec![Planned::new("transfer.completed").attr("kind", transfer_kind(native)?)],
        "task.transfer-failed" | "task.transfer-canceled" => {
            let why = native.text("transfer_failed_reason")?.or(reason).or_else(|| Some(native.event_type.trim_start_matches("task.transfer-").to_owned()));
            vec![Planned::new("transfer.failed").attr("kind", transfer_kind(native)?).attr("reason", why)]
        }
        "task.canceled" => {
            let why = native.text("task_canceled_reason")?.or(reason);
            let lower = why.as_deref().unwrap_or_default().to_ascii_lowercase();
            if let Some(kind) = ["callback", "voicemail"].into_iter().find(|k| lower.contains(k)) {
                vec![Planned::new("deflection.accepted").attr("kind", Some(kind)).attr("queue", task.queue.clone())]
            } else {
                let ended_by = ended_by(task.hang_up_by()).or_else(|| canceled_by(&lower));
                vec![Planned::new("session.ended").attr("ended_by", ended_by).attr("reason", why)]
            }
        }
        "task.wrapup" if task.transferred_away => passthrough(),
        "task.wrapup" => {
            let why = native.text("task_completed_reason")?.or(reason);
            vec![Planned::new("session.ended").attr("ended_by", ended_by(task.hang_up_by())).attr("reason", why)]
        }
        "task.completed" if task.transferred_away => passthrough(),
        "task.completed" => {
            let outcome = task.attributes.get("conversations").and_then(|c| c.get("outcome")).and_then(Json::as_str);
            let disposition = outcome.map(|code| Planned::new("disposition.set").attr("code", Some(code)).attr("agent", task.agent.clone()));
            disposition.into_iter().chain([Planned::new("wrapup.completed").attr("agent", task.agent.clone())]).collect()
        }
        _ => passthrough(),
    })
}

/// `TransferTo` is a TaskQueue or Worker sid, by `TransferType`.
fn transfer_target(native: &Native<'_>) -> Result<(Option<String>, Option<String>), InputError> {
    let to = native.text("transfer_to")?;
    Ok(match native.text("transfer_type")?.map(|t| t.to_ascii_uppercase()).as_deref() {
        Some("WORKER") => (None, to),
        _ => (to, None),
    })
}

fn transfer_kind(native: &Native<'_>) -> Result<Option<&'static str>, InputError> {
    Ok(native.text("transfer_mode")?.and_then(|mode| match mode.to_ascii_uppercase().as_str() {
        "COLD" => Some("blind"),
        "WARM" => Some("consult"),
        _ => None,
    }))
}

/// Flex's `conversations.hang_up_by` (`Customer`, `Agent`, …) to `ended_by`.
fn ended_by(hang_up_by: Option<&str>) -> Option<&'static str> {
    let who = hang_up_by?.to_ascii_lowercase();
    if who.contains("customer") {
        Some("end_user")
    } else if who.contains("agent") {
        Some("agent")
    } else {
        None
    }
}

/// Who canceled a task, from its cancel reason (free text the canceling
/// application chose; these are the common ones).
fn canceled_by(reason: &str) -> Option<&'static str> {
    if reason.contains("hangup") || reason.contains("hung up") || reason.contains("customer") || reason.contains("abandon") {
        Some("end_user")
    } else if reason.contains("ttl") || reason.contains("timeout") || reason.contains("expired") {
        Some("system")
    } else {
        None
    }
}

/// The envelopes: ids, session, channel, direction, and the vendor fields.
fn build(native: &Native<'_>, task: &Task<'_>, planned: Vec<Planned<'_>>) -> Result<Vec<Event>, InputError> {
    let base_id = match &native.event_sid {
        Some(sid) => sid.clone(),
        // No event sid (a bridge that drops `Sid`): the fields that identify the moment.
        None => {
            let parts = [&native.event_type, &task.sid, &native.text("reservation_sid")?.unwrap_or_default(), &native.occurred_at.0.to_string()];
            stable_id("twilio", &parts.map(String::as_str))
        }
    };
    let vendor = vendor_fields(native, task);
    let direction = task.attribute("direction").filter(|d| matches!(*d, "inbound" | "outbound"));
    let several = planned.len() > 1;
    planned
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let suffix = if several { format!(".{}", i + 1) } else { String::new() };
            let event_id = format!("tr{:02}-{base_id}{suffix}", rank(&p.event_type));
            let mut builder =
                EventBuilder::new(FORMAT, event_id, task.session_id.as_str(), p.event_type, native.occurred_at).channel(task.channel).direction(direction);
            for (name, value) in p.attributes {
                builder = builder.attr(name, Some(value));
            }
            if task.follow_up_leg {
                builder = builder.attr("task_sid", Some(task.sid.as_str()));
            }
            builder.vendor_fields("vendor", vendor.clone()).build(FORMAT)
        })
        .collect()
}

/// Payload fields the mapping did not use, with the task attributes parsed
/// (minus the personal data the mapping moved into canonical attributes).
fn vendor_fields<'a>(native: &Native<'a>, task: &Task<'a>) -> Object<'a> {
    let mut vendor = native.payload.filtered(|k, _| !MAPPED_FIELDS.iter().any(|m| record::same_name(m, k)));
    let mut attributes = task.attributes.clone();
    for name in MAPPED_TASK_ATTRIBUTES {
        // serde_json's order-preserving map removes this way: kept alike.
        attributes.swap_remove(name);
    }
    if !attributes.is_empty() {
        vendor.insert("task_attributes", Json::Object(attributes));
    }
    if let Some(id) = native.cloudevent_id.as_ref().filter(|id| native.event_sid.as_ref() != Some(*id)) {
        vendor.insert("cloudevent_id", Json::from(id.clone()));
    }
    vendor
}
