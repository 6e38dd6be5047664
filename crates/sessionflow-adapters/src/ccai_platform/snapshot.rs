//! Reading one CCAI Platform external session event (`{event_id, timestamp,
//! item}`, `item` the whole call or chat so far) into a typed snapshot, with
//! dead-letter errors that name the field.

use crate::InputFormat;
use crate::common::{Json, Object, error, field, optional_object, optional_str, optional_time, required_str};
use sessionflow_core::{DeadLetterReason, InputError, Millis};
use std::borrow::Cow;

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
pub(super) struct Participant {
    pub id: Option<String>,
    /// `end_user`, `agent`, `virtual_agent`, …
    pub role: Option<String>,
    pub name: Option<String>,
    /// `connected`, `accepted`, `disconnected`, `dispositionSubmitted`, …
    pub status: Option<String>,
    pub connected_at: Option<Millis>,
    pub ended_at: Option<Millis>,
}

impl Participant {
    /// The agent's display name, else its id.
    pub fn label(&self) -> Option<String> {
        self.name.clone().or_else(|| self.id.clone())
    }
}

/// A transfer attempt (`item.transfers[]`).
#[derive(Debug, Clone, Default)]
pub(super) struct Transfer {
    pub id: Option<String>,
    /// `blind`, `warm`, `external`.
    pub kind: Option<String>,
    /// `in_progress`, `completed`, `failed`.
    pub status: Option<String>,
    pub from_agent: Option<String>,
    pub to_queue: Option<String>,
    pub to_agent: Option<String>,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub fail_reason: Option<String>,
}

/// The wrap-up disposition (`item.dispositions`).
#[derive(Debug, Clone, Default)]
pub(super) struct Disposition {
    pub code: Option<String>,
    pub custom_code_id: Option<String>,
    pub note: Option<String>,
}

/// One snapshot of a session.
#[derive(Debug, Clone)]
pub(super) struct Snapshot<'a> {
    /// The vendor's id of this notification (one per snapshot, not per transition).
    pub event_id: String,
    /// When the vendor generated the notification.
    pub timestamp: Millis,
    pub kind: SessionKind,
    /// `item.id`.
    pub native_id: String,
    /// `call_type` or `chat_type`, as sent.
    pub session_type: String,
    pub status: String,
    pub created_at: Millis,
    pub scheduled_at: Option<Millis>,
    pub queued_at: Option<Millis>,
    pub assigned_at: Option<Millis>,
    pub connected_at: Option<Millis>,
    pub ends_at: Option<Millis>,
    pub lang: Option<String>,
    pub support_number: Option<String>,
    /// `menu_path.name`: the menu the end user selected, which is the queue.
    pub queue: Option<String>,
    pub queue_id: Option<String>,
    /// `agent_info`: the last handler, used only when no agent participant is listed.
    pub agent_info: Option<Participant>,
    pub participants: Vec<Participant>,
    pub transfers: Vec<Transfer>,
    pub deflection: Option<String>,
    pub disconnected_by: Option<String>,
    pub fail_reason: Option<String>,
    pub disposition: Option<Disposition>,
    pub rating: Option<f64>,
    /// The whole item, for pass-through and the fields no event maps.
    pub item: &'a Object<'a>,
}

impl Snapshot<'_> {
    /// The canonical session id: `call-<id>` or `chat-<id>`.
    pub fn session_id(&self) -> String {
        match self.kind {
            SessionKind::Call => format!("call-{}", self.native_id),
            SessionKind::Chat => format!("chat-{}", self.native_id),
        }
    }

    /// Agent participants, in the order CCAIP lists them (append-only: the
    /// first is the first agent of the session).
    pub fn agents(&self) -> impl Iterator<Item = &Participant> {
        self.participants.iter().filter(|p| p.role.as_deref() == Some("agent"))
    }

    /// Virtual-agent participants.
    pub fn virtual_agents(&self) -> impl Iterator<Item = &Participant> {
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
    let event_id = required_str(FORMAT, root, "", "event_id")?.into_owned();
    let timestamp = required_time(root, "", "timestamp")?;
    let item = match field(root, "item") {
        None => return Err(error(FORMAT, DeadLetterReason::MissingField, "item", "an object (the session snapshot), found nothing")),
        Some(Json::Object(item)) => item,
        Some(other) => return Err(error(FORMAT, DeadLetterReason::BadFieldType, "item", &format!("an object, found {}", other.type_name()))),
    };
    let native_id = required_str(FORMAT, item, "item", "id")?.into_owned();
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
        status: required_str(FORMAT, item, "item", "status")?.into_owned(),
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
        participants: array(item, "item", "participants")?.into_iter().map(|(p, path)| participant(p, &path)).collect::<Result<_, _>>()?,
        transfers: array(item, "item", "transfers")?.into_iter().map(|(t, path)| transfer(t, &path)).collect::<Result<_, _>>()?,
        deflection: text(item, "item", "deflection")?.filter(|d| d != "no_deflection"),
        disconnected_by: text(item, "item", "disconnected_by")?,
        fail_reason: text(item, "item", "fail_reason")?.filter(|r| r != "nothing"),
        disposition: dispositions.map(|d| disposition(d, "item.dispositions")).transpose()?,
        rating: optional_number(item, "item", "rating")?.filter(|r| *r > 0.0),
        item,
    })
}

/// A text field that may be absent, owned.
fn text(object: &Object<'_>, path: &str, name: &str) -> Result<Option<String>, InputError> {
    Ok(optional_str(FORMAT, object, path, name)?.map(Cow::into_owned))
}

fn required_time(object: &Object<'_>, path: &str, name: &str) -> Result<Millis, InputError> {
    let full = if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") };
    optional_time(FORMAT, object, path, name)?
        .ok_or_else(|| error(FORMAT, DeadLetterReason::MissingField, &full, "an RFC 3339 time or epoch milliseconds, found nothing"))
}

fn optional_number(object: &Object<'_>, path: &str, name: &str) -> Result<Option<f64>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(Json::Number(n)) => Ok(n.as_f64()),
        Some(other) => Err(error(FORMAT, DeadLetterReason::BadFieldType, &format!("{path}.{name}"), &format!("a number, found {}", other.type_name()))),
    }
}

/// An element of an array field with its path (`item.participants[2]`), for errors.
type Element<'o, 'a> = (&'o Object<'a>, String);

/// The objects of an optional array field.
fn array<'o, 'a>(object: &'o Object<'a>, path: &str, name: &str) -> Result<Vec<Element<'o, 'a>>, InputError> {
    let Some(value) = field(object, name) else { return Ok(Vec::new()) };
    let Json::Array(items) = value else {
        return Err(error(FORMAT, DeadLetterReason::BadFieldType, &format!("{path}.{name}"), &format!("an array, found {}", value.type_name())));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let at = format!("{path}.{name}[{i}]");
            match v {
                Json::Object(o) => Ok((o, at)),
                other => Err(error(FORMAT, DeadLetterReason::BadFieldType, &at, &format!("an object, found {}", other.type_name()))),
            }
        })
        .collect()
}

fn participant(object: &Object<'_>, path: &str) -> Result<Participant, InputError> {
    Ok(Participant {
        id: text(object, path, "id")?,
        role: text(object, path, "type")?,
        name: text(object, path, "name")?,
        status: text(object, path, "status")?,
        connected_at: optional_time(FORMAT, object, path, "connected_at")?,
        ended_at: optional_time(FORMAT, object, path, "ended_at")?,
    })
}

fn transfer(object: &Object<'_>, path: &str) -> Result<Transfer, InputError> {
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

fn disposition(object: &Object<'_>, path: &str) -> Result<Disposition, InputError> {
    Ok(Disposition { code: text(object, path, "code")?, custom_code_id: text(object, path, "custom_code_id")?, note: text(object, path, "note")? })
}
