//! What every adapter needs: reading a native JSON record with errors that
//! name the vendor and the field, vendor times, stable event ids, and
//! building a canonical event that the core validates like any input.

use crate::InputFormat;
use serde_json::{Map, Value};
/// The JSON type's name, for details (the core's, so details read alike).
pub use sessionflow_core::event::json_type;
use sessionflow_core::{DeadLetterReason, Event, InputError, Millis};
use sha2::{Digest, Sha256};

/// Parses a native record as one JSON object.
pub fn parse_object(format: InputFormat, record: &[u8]) -> Result<Map<String, Value>, InputError> {
    match serde_json::from_slice::<Value>(record) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(error(format, DeadLetterReason::DecodeError, "(record)", &format!("a JSON object, found {}", json_type(&other)))),
        Err(e) => Err(error(format, DeadLetterReason::DecodeError, "(record)", &format!("JSON ({e})"))),
    }
}

/// A dead-letter error naming the vendor, the field and what was expected.
pub fn error(format: InputFormat, reason: DeadLetterReason, field: &str, expected: &str) -> InputError {
    InputError { reason, detail: format!("{format}: {field}: expected {expected}") }
}

/// A field by name, exact spelling first, then ignoring ASCII case (vendors
/// spell `contactId` and `ContactId` in different documented samples).
pub fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| object.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)).filter(|v| !v.is_null())
}

/// A field that must be a non-empty string (numbers are accepted and
/// printed: ids arrive both ways).
pub fn required_str(format: InputFormat, object: &Map<String, Value>, path: &str, name: &str) -> Result<String, InputError> {
    match field(object, name) {
        None => Err(error(format, DeadLetterReason::MissingField, &join(path, name), "a string, found nothing")),
        Some(value) => as_text(value)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| error(format, DeadLetterReason::BadFieldType, &join(path, name), &format!("a non-empty string, found {}", json_type(value)))),
    }
}

/// A field that may be absent; present, it must be a string or a number.
pub fn optional_str(format: InputFormat, object: &Map<String, Value>, path: &str, name: &str) -> Result<Option<String>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(value) => as_text(value)
            .map(|s| (!s.is_empty()).then_some(s))
            .ok_or_else(|| error(format, DeadLetterReason::BadFieldType, &join(path, name), &format!("a string, found {}", json_type(value)))),
    }
}

/// A field that may be absent; present, it must be an object.
pub fn optional_object<'a>(format: InputFormat, object: &'a Map<String, Value>, path: &str, name: &str) -> Result<Option<&'a Map<String, Value>>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(error(format, DeadLetterReason::BadFieldType, &join(path, name), &format!("an object, found {}", json_type(other)))),
    }
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

/// Vendor times read as absent: Amazon Connect writes
/// `1970-01-01T00:00:00.001Z` for "not set"; nothing real happened on the
/// first day of the epoch.
const PLACEHOLDER_BEFORE: i64 = 86_400_000;

/// A vendor time: an RFC 3339 string, epoch milliseconds (number or digit
/// string), or epoch seconds with a fraction (a number below 10^11 is taken
/// as seconds). Placeholders read as `None`.
pub fn time_value(format: InputFormat, value: &Value, field_path: &str) -> Result<Option<Millis>, InputError> {
    let bad = |found: &str| error(format, DeadLetterReason::BadTimestamp, field_path, &format!("an RFC 3339 time or epoch milliseconds, found {found}"));
    let millis = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => {
            if let Some(ms) = n.as_i64() {
                if ms.unsigned_abs() < 100_000_000_000 { ms.checked_mul(1000).ok_or_else(|| bad("an out-of-range number"))? } else { ms }
            } else {
                let secs = n.as_f64().ok_or_else(|| bad("an out-of-range number"))?;
                if !secs.is_finite() || secs.abs() > 1e11 {
                    return Err(bad("an out-of-range number"));
                }
                #[allow(clippy::cast_possible_truncation)]
                let ms = (secs * 1000.0).round() as i64;
                ms
            }
        }
        Value::String(s) if s.is_empty() => return Ok(None),
        // Digits in a string follow the rule for numbers: form-encoded
        // webhooks carry epoch seconds as text.
        Value::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
            let n = s.parse::<i64>().map_err(|_| bad(&format!("{s:?}")))?;
            if n < 100_000_000_000 { n.checked_mul(1000).ok_or_else(|| bad("an out-of-range number"))? } else { n }
        }
        Value::String(s) => Millis::parse_rfc3339(s).map_err(|_| bad(&format!("{s:?}")))?.0,
        other => return Err(bad(json_type(other))),
    };
    Ok((millis >= PLACEHOLDER_BEFORE).then_some(Millis(millis)))
}

/// An optional time field of an object.
pub fn optional_time(format: InputFormat, object: &Map<String, Value>, path: &str, name: &str) -> Result<Option<Millis>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(value) => time_value(format, value, &join(path, name)),
    }
}

/// A stable event id from the parts that identify one moment: the same
/// parts give the same id on every delivery, so a redelivered record is a
/// duplicate. `prefix` names the vendor; the digest keeps any id within the
/// canonical 128 characters.
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0x1f]);
    }
    format!("{prefix}-{}", hex::encode(&hash.finalize()[..16]))
}

/// One canonical event under construction.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    object: Map<String, Value>,
    attributes: Map<String, Value>,
}

impl EventBuilder {
    /// An event of `event_type` with its envelope's required fields; `source`
    /// is the format's.
    pub fn new(format: InputFormat, event_id: impl Into<String>, session_id: impl Into<String>, event_type: &str, occurred_at: Millis) -> Self {
        let mut object = Map::new();
        object.insert("event_id".into(), Value::String(event_id.into()));
        object.insert("session_id".into(), Value::String(session_id.into()));
        object.insert("type".into(), Value::String(event_type.to_owned()));
        object.insert("occurred_at".into(), Value::String(occurred_at.to_rfc3339()));
        object.insert("source".into(), Value::String(format.source().to_owned()));
        EventBuilder { object, attributes: Map::new() }
    }

    /// Sets an envelope field (`channel`, `direction`, `tenant`).
    pub fn envelope(mut self, name: &str, value: Option<impl Into<String>>) -> Self {
        if let Some(value) = value {
            self.object.insert(name.to_owned(), Value::String(value.into()));
        }
        self
    }

    /// Sets an attribute, skipping `None` and JSON null.
    pub fn attr(mut self, name: &str, value: Option<impl Into<Value>>) -> Self {
        if let Some(value) = value.map(Into::into).filter(|v| !v.is_null()) {
            self.attributes.insert(name.to_owned(), value);
        }
        self
    }

    /// Keeps vendor fields the mapping does not use, under `name`.
    pub fn vendor_fields(mut self, name: &str, fields: Map<String, Value>) -> Self {
        if !fields.is_empty() {
            self.attributes.insert(name.to_owned(), Value::Object(fields));
        }
        self
    }

    /// Validates the event as the core validates any input; a failure here
    /// names the format so the dead letter says which adapter built it.
    pub fn build(mut self, format: InputFormat) -> Result<Event, InputError> {
        self.object.insert("attributes".into(), Value::Object(self.attributes));
        Event::from_json(Value::Object(self.object)).map_err(|e| InputError { reason: e.reason, detail: format!("{format}: {}", e.detail) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_in_every_vendor_shape() {
        let f = InputFormat::AmazonConnect;
        let at = Millis::parse_rfc3339("2026-03-01T10:00:00.250Z").unwrap();
        assert_eq!(time_value(f, &json!("2026-03-01T10:00:00.250Z"), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &json!("2026-03-01T11:00:00.250+01:00"), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &json!(at.0), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &json!(at.0.to_string()), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &json!(at.0 as f64 / 1000.0), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &json!(at.0 / 1000), "t").unwrap(), Some(Millis(at.0 - 250)));
        assert_eq!(time_value(f, &json!((at.0 / 1000).to_string()), "t").unwrap(), Some(Millis(at.0 - 250)));
        assert_eq!(time_value(f, &json!("1970-01-01T00:00:00.001Z"), "t").unwrap(), None);
        let e = time_value(f, &json!("yesterday"), "detail.time").unwrap_err();
        assert_eq!(e.reason, DeadLetterReason::BadTimestamp);
        assert!(e.detail.starts_with("amazon-connect: detail.time: expected"), "{}", e.detail);
    }

    #[test]
    fn fields_ignore_case_and_name_the_path() {
        let object = json!({"ContactId": "c-1", "n": 7, "o": []}).as_object().unwrap().clone();
        let f = InputFormat::AmazonConnect;
        assert_eq!(required_str(f, &object, "detail", "contactId").unwrap(), "c-1");
        assert_eq!(required_str(f, &object, "detail", "n").unwrap(), "7");
        let missing = required_str(f, &object, "detail", "agentArn").unwrap_err();
        assert_eq!(missing.reason, DeadLetterReason::MissingField);
        assert_eq!(missing.detail, "amazon-connect: detail.agentArn: expected a string, found nothing");
        assert_eq!(optional_str(f, &object, "detail", "o").unwrap_err().reason, DeadLetterReason::BadFieldType);
    }

    #[test]
    fn stable_ids_depend_on_every_part() {
        let a = stable_id("gc", &["conv", "acd.start", "2026"]);
        assert_eq!(a, stable_id("gc", &["conv", "acd.start", "2026"]));
        assert_ne!(a, stable_id("gc", &["conv", "acd.start", "2027"]));
        assert_ne!(stable_id("gc", &["ab", "c"]), stable_id("gc", &["a", "bc"]));
        assert!(a.len() <= 128);
    }

    #[test]
    fn built_events_pass_the_core_validation() {
        let at = Millis(1_772_359_200_000);
        let event = EventBuilder::new(InputFormat::GenesysCloud, "e1", "s1", "session.started", at)
            .envelope("channel", Some("voice"))
            .attr("ani", Some("+15550100"))
            .build(InputFormat::GenesysCloud)
            .unwrap();
        assert_eq!(event.source.as_deref(), Some("genesys"));
        assert_eq!(event.occurred_at, at);
        let bad = EventBuilder::new(InputFormat::GenesysCloud, "e1", "s1", "session.started", at).build(InputFormat::GenesysCloud).unwrap_err();
        assert!(bad.detail.starts_with("genesys-cloud: "), "{}", bad.detail);
    }
}
