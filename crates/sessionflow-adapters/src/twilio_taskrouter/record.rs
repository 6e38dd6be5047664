//! Reading one TaskRouter record in any of its three spellings: an Event
//! Streams CloudEvent, a workspace event callback as a JSON object of its
//! form fields, or the callback's raw `application/x-www-form-urlencoded`
//! body. Field names differ between the shapes (`TaskSid`, `task_sid`), so
//! lookups compare names without case and underscores.

use crate::InputFormat;
use crate::common::{self, Json, Object, error};
use sessionflow_core::{DeadLetterReason, InputError, Millis};
use std::borrow::Cow;

const FORMAT: InputFormat = InputFormat::TwilioTaskrouter;
const CLOUDEVENT_TYPE_PREFIX: &str = "com.twilio.taskrouter.";

/// Which documented shape a record has: it decides how fields are named in
/// error details.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// Event Streams (CloudEvents 1.0); the TaskRouter fields are under `data.payload`.
    EventStreams,
    /// The workspace `EventCallbackUrl` POST, as JSON or as the form body.
    Callback,
}

/// One native record, read: its type, id, time and payload fields.
#[derive(Debug)]
pub(super) struct Native<'a> {
    pub shape: Shape,
    /// The TaskRouter event type without the CloudEvents prefix (`task.created`).
    pub event_type: String,
    /// The vendor's event id (`EV…`), when the record has one.
    pub event_sid: Option<String>,
    pub occurred_at: Millis,
    /// The TaskRouter fields (the callback's form fields, or Event Streams' `data.payload`).
    pub payload: &'a Object<'a>,
    /// The CloudEvent `id`, kept for the record when the payload has its own event sid.
    pub cloudevent_id: Option<String>,
}

/// `TaskSid`, `task_sid` and `tasksid` are one name: equal without
/// underscores, ignoring ASCII case.
pub(super) fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        while a.get(i) == Some(&b'_') {
            i += 1;
        }
        while b.get(j) == Some(&b'_') {
            j += 1;
        }
        match (a.get(i), b.get(j)) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => (i, j) = (i + 1, j + 1),
            _ => return false,
        }
    }
}

/// A field of `object` under any of the shapes' spellings of `snake_name`.
pub(super) fn lookup<'o, 'a>(object: &'o Object<'a>, snake_name: &str) -> Option<(&'o str, &'o Json<'a>)> {
    object.iter().find(|(k, v)| !v.is_null() && same_name(k, snake_name)).map(|(k, v)| (k.as_ref(), v))
}

impl<'a> Native<'a> {
    /// The field's name as this record's shape spells it, for error details.
    pub fn field_name(&self, snake_name: &str) -> String {
        match self.shape {
            Shape::EventStreams => format!("data.payload.{snake_name}"),
            Shape::Callback => pascal_case(snake_name),
        }
    }

    /// A payload field, if present.
    pub fn get(&self, snake_name: &str) -> Option<&'a Json<'a>> {
        lookup(self.payload, snake_name).map(|(_, v)| v)
    }

    /// A payload field that may be absent; present, a string or a number.
    pub fn text(&self, snake_name: &str) -> Result<Option<String>, InputError> {
        match self.get(snake_name) {
            None => Ok(None),
            Some(Json::String(s)) => Ok((!s.is_empty()).then(|| s.clone().into_owned())),
            Some(Json::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(error(FORMAT, DeadLetterReason::BadFieldType, &self.field_name(snake_name), &format!("a string, found {}", other.type_name()))),
        }
    }

    /// `TaskAttributes`: a JSON object, which TaskRouter sends as a string.
    pub fn task_attributes(&self) -> Result<Object<'a>, InputError> {
        let name = || self.field_name("task_attributes");
        match self.get("task_attributes") {
            None => Ok(Object::new()),
            Some(Json::Object(map)) => Ok(map.clone()),
            Some(Json::String(s)) if s.trim().is_empty() => Ok(Object::new()),
            Some(Json::String(s)) => match serde_json::from_str::<Json<'a>>(s) {
                Ok(Json::Object(map)) => Ok(map),
                Ok(other) => Err(error(FORMAT, DeadLetterReason::BadFieldType, &name(), &format!("a JSON object in a string, found {}", other.type_name()))),
                Err(e) => Err(error(FORMAT, DeadLetterReason::BadFieldType, &name(), &format!("a JSON object in a string ({e})"))),
            },
            Some(other) => Err(error(FORMAT, DeadLetterReason::BadFieldType, &name(), &format!("a JSON object in a string, found {}", other.type_name()))),
        }
    }
}

/// `task_sid` as the callback spells it: `TaskSid`.
fn pascal_case(snake_name: &str) -> String {
    snake_name
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Parses a record in any of the three spellings into its fields.
pub(super) fn parse(record: &[u8]) -> Result<Object<'_>, InputError> {
    if record.trim_ascii_start().first() == Some(&b'{') || !looks_like_form(record) {
        common::parse_object(FORMAT, record).map_err(|e| {
            // Neither JSON nor a form body: say both were expected.
            if e.detail.contains(": expected JSON (") && record.trim_ascii_start().first() != Some(&b'{') {
                error(FORMAT, DeadLetterReason::DecodeError, "(record)", "a JSON object or an application/x-www-form-urlencoded callback body")
            } else {
                e
            }
        })
    } else {
        decode_form(record)
    }
}

/// Reads a parsed record.
pub(super) fn read<'a>(object: &'a Object<'a>) -> Result<Native<'a>, InputError> {
    if lookup(object, "specversion").is_some() { read_cloudevent(object) } else { read_callback(object) }
}

fn read_cloudevent<'a>(envelope: &'a Object<'a>) -> Result<Native<'a>, InputError> {
    let cloudevent_type = common::required_str(FORMAT, envelope, "", "type")?;
    let Some(event_type) = cloudevent_type.strip_prefix(CLOUDEVENT_TYPE_PREFIX).filter(|t| !t.is_empty()) else {
        return Err(error(FORMAT, DeadLetterReason::BadFieldType, "type", &format!("{CLOUDEVENT_TYPE_PREFIX}<event type>, found {cloudevent_type:?}")));
    };
    let data = common::optional_object(FORMAT, envelope, "", "data")?
        .ok_or_else(|| error(FORMAT, DeadLetterReason::MissingField, "data", "an object, found nothing"))?;
    let payload = common::optional_object(FORMAT, data, "data", "payload")?
        .ok_or_else(|| error(FORMAT, DeadLetterReason::MissingField, "data.payload", "an object, found nothing"))?;
    let cloudevent_id = common::optional_str(FORMAT, envelope, "", "id")?.map(Cow::into_owned);
    let mut native = Native { shape: Shape::EventStreams, event_type: event_type.to_owned(), event_sid: None, occurred_at: Millis(0), payload, cloudevent_id };
    native.event_sid = native.text("sid")?.or_else(|| native.cloudevent_id.clone());
    if native.event_sid.is_none() {
        return Err(error(FORMAT, DeadLetterReason::MissingField, "id", "the CloudEvent id or data.payload.sid, found nothing"));
    }
    // The payload's timestamp is when TaskRouter saw the event; the
    // CloudEvent's `time` (when it was published) only stands in for it.
    let payload_time = common::optional_time(FORMAT, native.payload, "data.payload", "timestamp")?;
    let envelope_time = || common::optional_time(FORMAT, envelope, "", "time");
    native.occurred_at = match payload_time {
        Some(at) => at,
        None => envelope_time()?.ok_or_else(|| {
            error(FORMAT, DeadLetterReason::MissingField, "data.payload.timestamp", "a time (or the CloudEvent time), found nothing (or only placeholders)")
        })?,
    };
    Ok(native)
}

fn read_callback<'a>(fields: &'a Object<'a>) -> Result<Native<'a>, InputError> {
    let mut native =
        Native { shape: Shape::Callback, event_type: String::new(), event_sid: None, occurred_at: Millis(0), payload: fields, cloudevent_id: None };
    native.event_type = native.text("event_type")?.ok_or_else(|| {
        error(
            FORMAT,
            DeadLetterReason::MissingField,
            "EventType",
            "a TaskRouter event type (a workspace event callback) or specversion (an Event Streams CloudEvent), found neither",
        )
    })?;
    // Other vendors also have an `eventType` (Amazon Connect's `INITIATED`).
    let is_taskrouter_type = |t: &str| t.contains('.') && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'-');
    if !is_taskrouter_type(&native.event_type) {
        let expected = format!("a TaskRouter event type (task.created, reservation.accepted, …), found {:?}", native.event_type);
        return Err(error(FORMAT, DeadLetterReason::BadFieldType, "EventType", &expected));
    }
    native.event_sid = native.text("sid")?;
    // `TimestampMs` (since 2018) is precise; `Timestamp` is epoch seconds.
    let mut occurred_at = None;
    for name in ["timestamp_ms", "timestamp"] {
        if let Some(value) = native.get(name) {
            occurred_at = common::time_value(FORMAT, &digits_as_number(value), &native.field_name(name))?;
            if occurred_at.is_some() {
                break;
            }
        }
    }
    native.occurred_at =
        occurred_at.ok_or_else(|| error(FORMAT, DeadLetterReason::MissingField, "Timestamp", "a time, found nothing (or only placeholders)"))?;
    Ok(native)
}

/// Form fields are strings; `common::time_value` reads a digit string as
/// epoch milliseconds but a number below 10^11 as seconds, and the
/// callback's `Timestamp` is epoch seconds. A digit string becomes the
/// number it spells, so both fields read by their magnitude.
fn digits_as_number<'a>(value: &Json<'a>) -> Json<'a> {
    match value {
        Json::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse::<i64>().map_or_else(|_| value.clone(), Json::from),
        other => other.clone(),
    }
}

/// A form body: `name=value` pairs joined by `&`, names of letters, digits
/// and underscores.
fn looks_like_form(record: &[u8]) -> bool {
    let text = record.trim_ascii();
    !text.is_empty()
        && text.split(|b| *b == b'&').all(|pair| {
            let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
            pair.contains(&b'=') && !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        })
}

/// The form fields as a JSON object of strings (a repeated name: the last wins).
fn decode_form(record: &[u8]) -> Result<Object<'static>, InputError> {
    let mut fields = Object::new();
    for pair in record.trim_ascii().split(|b| *b == b'&') {
        let at = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
        let name = percent_decode(&pair[..at])?;
        let value = percent_decode(pair.get(at + 1..).unwrap_or_default())?;
        fields.insert(name, Json::from(value));
    }
    Ok(fields)
}

/// `+` is a space and `%XX` a byte; the bytes must be UTF-8.
fn percent_decode(text: &[u8]) -> Result<String, InputError> {
    let bad = |what: &str| error(FORMAT, DeadLetterReason::DecodeError, "(record)", &format!("an application/x-www-form-urlencoded body ({what})"));
    let mut bytes = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
                bytes.push(hex.ok_or_else(|| bad("a % not followed by two hex digits"))?);
                i += 2;
            }
            b => bytes.push(b),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| bad("percent-encoded bytes that are not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_across_shapes() {
        let object = parse(br#"{"TaskSid": "WT1", "task_queue_name": "Support"}"#).unwrap();
        assert_eq!(lookup(&object, "task_sid").map(|(k, _)| k), Some("TaskSid"));
        assert!(same_name("task_sid", "TaskSid") && same_name("tasksid", "TASK_SID") && !same_name("task_sid", "task_sids"));
        assert_eq!(lookup(&object, "task_queue_name").map(|(k, _)| k), Some("task_queue_name"));
        assert_eq!(pascal_case("task_channel_unique_name"), "TaskChannelUniqueName");
    }

    #[test]
    fn form_bodies_decode() {
        let fields = decode_form(b"EventType=task.created&TaskAttributes=%7B%22a%22%3A1%7D&WorkerName=Ann+Lee").unwrap();
        assert_eq!(fields.get("EventType").and_then(Json::as_str), Some("task.created"));
        assert_eq!(fields.get("TaskAttributes").and_then(Json::as_str), Some("{\"a\":1}"));
        assert_eq!(fields.get("WorkerName").and_then(Json::as_str), Some("Ann Lee"));
        assert!(percent_decode(b"%zz").is_err());
        assert!(percent_decode(b"%FF").is_err());
        assert!(!looks_like_form(b"hello world"));
        assert!(looks_like_form(b"A=1&B="));
    }
}
