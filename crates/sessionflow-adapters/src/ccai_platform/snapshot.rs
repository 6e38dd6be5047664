//! Reading one CCAI Platform external session event (`{event_id, timestamp,
//! item}`, `item` the whole call or chat so far) into a typed snapshot, with
//! dead-letter errors that name the field.

use crate::InputFormat;
use crate::common::{Json, Object, error, field, optional_object, optional_str, optional_time, required_str};
use sessionflow_core::{DeadLetterReason, InputError, Millis};
use std::borrow::Cow;
use std::fmt;

const FORMAT: InputFormat = InputFormat::CcaiPlatform;

/// Call or chat: CCAIP numbers them separately, so the kind is part of the
/// canonical session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionKind {
    Call,
    Chat,
}

/// A participant of the session (`item.participants[]`).
#[derive(Debug, Clone, Default)]
pub(super) struct Participant<'a> {
    pub id: Option<Cow<'a, str>>,
    /// `end_user`, `agent`, `virtual_agent`, …
    pub role: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    /// `connected`, `accepted`, `disconnected`, `dispositionSubmitted`, …
    pub status: Option<Cow<'a, str>>,
    pub connected_at: Option<Millis>,
    pub ended_at: Option<Millis>,
}

impl Participant<'_> {
    /// The agent's display name, else its id.
    pub fn label(&self) -> Option<&str> {
        self.name.as_deref().or(self.id.as_deref())
    }
}

/// A transfer attempt (`item.transfers[]`).
#[derive(Debug, Clone, Default)]
pub(super) struct Transfer<'a> {
    pub id: Option<Cow<'a, str>>,
    /// `blind`, `warm`, `external`.
    pub kind: Option<Cow<'a, str>>,
    /// `in_progress`, `completed`, `failed`.
    pub status: Option<Cow<'a, str>>,
    pub from_agent: Option<Cow<'a, str>>,
    pub to_queue: Option<Cow<'a, str>>,
    pub to_agent: Option<Cow<'a, str>>,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub fail_reason: Option<Cow<'a, str>>,
}

/// The wrap-up disposition (`item.dispositions`).
#[derive(Debug, Clone, Default)]
pub(super) struct Disposition<'a> {
    pub code: Option<Cow<'a, str>>,
    pub custom_code_id: Option<Cow<'a, str>>,
    pub note: Option<Cow<'a, str>>,
}

/// One snapshot of a session. Its text borrows from the record.
#[derive(Debug, Clone)]
pub(super) struct Snapshot<'a> {
    /// The vendor's id of this notification (one per snapshot, not per transition).
    pub event_id: Cow<'a, str>,
    /// When the vendor generated the notification.
    pub timestamp: Millis,
    pub kind: SessionKind,
    /// `item.id`.
    pub native_id: Cow<'a, str>,
    /// `call_type` or `chat_type`, as sent.
    pub session_type: Cow<'a, str>,
    pub status: Cow<'a, str>,
    pub created_at: Millis,
    pub scheduled_at: Option<Millis>,
    pub queued_at: Option<Millis>,
    pub assigned_at: Option<Millis>,
    pub connected_at: Option<Millis>,
    pub ends_at: Option<Millis>,
    pub lang: Option<Cow<'a, str>>,
    pub support_number: Option<Cow<'a, str>>,
    /// `menu_path.name`: the menu the end user selected, which is the queue.
    pub queue: Option<Cow<'a, str>>,
    pub queue_id: Option<Cow<'a, str>>,
    /// `agent_info`: the last handler, used only when no agent participant is listed.
    pub agent_info: Option<Participant<'a>>,
    pub participants: Vec<Participant<'a>>,
    pub transfers: Vec<Transfer<'a>>,
    pub deflection: Option<Cow<'a, str>>,
    pub disconnected_by: Option<Cow<'a, str>>,
    pub fail_reason: Option<Cow<'a, str>>,
    pub disposition: Option<Disposition<'a>>,
    pub rating: Option<f64>,
    /// The whole item, for pass-through and the fields no event maps.
    pub item: &'a Object<'a>,
}

impl<'a> Snapshot<'a> {
    /// The canonical session id: `call-<id>` or `chat-<id>`.
    pub fn session_id(&self) -> String {
        match self.kind {
            SessionKind::Call => format!("call-{}", self.native_id),
            SessionKind::Chat => format!("chat-{}", self.native_id),
        }
    }

    /// Agent participants, in the order CCAIP lists them (append-only: the
    /// first is the first agent of the session).
    pub fn agents(&self) -> impl Iterator<Item = &Participant<'a>> {
        self.participants.iter().filter(|p| p.role.as_deref() == Some("agent"))
    }

    /// Virtual-agent participants.
    pub fn virtual_agents(&self) -> impl Iterator<Item = &Participant<'a>> {
        self.participants.iter().filter(|p| p.role.as_deref() == Some("virtual_agent"))
    }

    /// Canonical channel, from the session type's wording.
    pub fn channel(&self) -> &'static str {
        let lower = self.session_type.to_ascii_lowercase();
        match self.kind {
            SessionKind::Call => "voice",
            SessionKind::Chat if lower.contains("sms") => "sms",
            SessionKind::Chat if lower.contains("whatsapp") || lower.contains("messaging") && !lower.contains("web") && !lower.contains("mobile") => {
                "messaging"
            }
            SessionKind::Chat => "chat",
        }
    }

    /// Canonical direction: CCAIP spells it inside the session type
    /// ("Voice outbound", "Messaging outbound (SMS)"); callbacks and
    /// scheduled calls are the end user's request, so inbound.
    pub fn direction(&self) -> &'static str {
        if self.session_type.to_ascii_lowercase().contains("outbound") { "outbound" } else { "inbound" }
    }
}

/// Reads one native record, parsed.
pub(super) fn read<'a>(root: &'a Object<'a>) -> Result<Snapshot<'a>, InputError> {
    let event_id = required_str(FORMAT, root, "", "event_id")?;
    let timestamp = required_time(root, "", "timestamp")?;
    let item = match field(root, "item") {
        None => return Err(error(FORMAT, DeadLetterReason::MissingField, "item", "an object (the session snapshot), found nothing")),
        Some(Json::Object(item)) => item,
        Some(other) => return Err(error(FORMAT, DeadLetterReason::BadFieldType, "item", &format!("an object, found {}", other.type_name()))),
    };
    let native_id = required_str(FORMAT, item, "item", "id")?;
    let (kind, session_type) = match (text(item, "item", "call_type")?, text(item, "item", "chat_type")?) {
        (Some(t), _) => (SessionKind::Call, t),
        (None, Some(t)) => (SessionKind::Chat, t),
        (None, None) => {
            return Err(error(FORMAT, DeadLetterReason::MissingField, "item.call_type", "a string (or item.chat_type for a chat), found nothing"));
        }
    };
    let time = |name: &str| optional_time(FORMAT, item, "item", name);
    let menu_path = optional_object(FORMAT, item, "item", "menu_path")?;
    let dispositions = optional_object(FORMAT, item, "item", "dispositions")?;
    Ok(Snapshot {
        event_id,
        timestamp,
        kind,
        native_id,
        session_type,
        status: required_str(FORMAT, item, "item", "status")?,
        created_at: required_time(item, "item", "created_at")?,
        scheduled_at: time("scheduled_at")?,
        queued_at: time("queued_at")?,
        assigned_at: time("assigned_at")?,
        connected_at: time("connected_at")?,
        ends_at: time("ends_at")?,
        lang: text(item, "item", "lang")?,
        support_number: text(item, "item", "support_number")?,
        queue: menu_path.map(|m| text(m, "item.menu_path", "name")).transpose()?.flatten(),
        queue_id: menu_path.map(|m| text(m, "item.menu_path", "id")).transpose()?.flatten(),
        agent_info: optional_object(FORMAT, item, "item", "agent_info")?.map(|a| participant(a, "item.agent_info")).transpose()?,
        participants: elements(item, "participants", participant)?,
        transfers: elements(item, "transfers", transfer)?,
        deflection: text(item, "item", "deflection")?.filter(|d| d != "no_deflection"),
        disconnected_by: text(item, "item", "disconnected_by")?,
        fail_reason: text(item, "item", "fail_reason")?.filter(|r| r != "nothing"),
        disposition: dispositions.map(|d| disposition(d, "item.dispositions")).transpose()?,
        rating: optional_number(item, "item", "rating")?.filter(|r| *r > 0.0),
        item,
    })
}

/// A text field that may be absent.
fn text<'a>(object: &Object<'a>, path: &(impl fmt::Display + ?Sized), name: &str) -> Result<Option<Cow<'a, str>>, InputError> {
    optional_str(FORMAT, object, path, name)
}

fn required_time(object: &Object<'_>, path: &str, name: &str) -> Result<Millis, InputError> {
    optional_time(FORMAT, object, path, name)?.ok_or_else(|| {
        let full = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
        error(FORMAT, DeadLetterReason::MissingField, &full, "an RFC 3339 time or epoch milliseconds, found nothing")
    })
}

fn optional_number(object: &Object<'_>, path: &str, name: &str) -> Result<Option<f64>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(Json::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(error(FORMAT, DeadLetterReason::BadFieldType, &format!("{path}.{name}"), &format!("a number, found {}", other.type_name()))),
    }
}

/// The path of an element of an item's array (`item.participants[2]`),
/// written only for an error.
struct Element {
    array: &'static str,
    index: usize,
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "item.{}[{}]", self.array, self.index)
    }
}

/// The elements of an optional array field of the item, each an object
/// read by `read`.
fn elements<'a, T>(item: &'a Object<'a>, name: &'static str, read: impl Fn(&'a Object<'a>, &Element) -> Result<T, InputError>) -> Result<Vec<T>, InputError> {
    let Some(value) = field(item, name) else { return Ok(Vec::new()) };
    let Json::Array(values) = value else {
        return Err(error(FORMAT, DeadLetterReason::BadFieldType, &format!("item.{name}"), &format!("an array, found {}", value.type_name())));
    };
    // An element that is not an object is the error before any field of
    // another element is read.
    if let Some((index, other)) = values.iter().enumerate().find(|(_, v)| v.as_object().is_none()) {
        let at = Element { array: name, index };
        return Err(error(FORMAT, DeadLetterReason::BadFieldType, &at.to_string(), &format!("an object, found {}", other.type_name())));
    }
    values.iter().enumerate().filter_map(|(index, v)| v.as_object().map(|o| read(o, &Element { array: name, index }))).collect()
}

fn participant<'a>(object: &Object<'a>, path: &(impl fmt::Display + ?Sized)) -> Result<Participant<'a>, InputError> {
    Ok(Participant {
        id: text(object, path, "id")?,
        role: text(object, path, "type")?,
        name: text(object, path, "name")?,
        status: text(object, path, "status")?,
        connected_at: optional_time(FORMAT, object, path, "connected_at")?,
        ended_at: optional_time(FORMAT, object, path, "ended_at")?,
    })
}

fn transfer<'a>(object: &Object<'a>, path: &(impl fmt::Display + ?Sized)) -> Result<Transfer<'a>, InputError> {
    Ok(Transfer {
        id: text(object, path, "id")?,
        kind: text(object, path, "type")?,
        status: text(object, path, "status")?,
        from_agent: text(object, path, "from_agent")?,
        to_queue: text(object, path, "to_queue")?,
        to_agent: text(object, path, "to_agent")?,
        started_at: optional_time(FORMAT, object, path, "started_at")?,
        ended_at: optional_time(FORMAT, object, path, "ended_at")?,
        fail_reason: text(object, path, "fail_reason")?,
    })
}

fn disposition<'a>(object: &Object<'a>, path: &str) -> Result<Disposition<'a>, InputError> {
    Ok(Disposition { code: text(object, path, "code")?, custom_code_id: text(object, path, "custom_code_id")?, note: text(object, path, "note")? })
}
