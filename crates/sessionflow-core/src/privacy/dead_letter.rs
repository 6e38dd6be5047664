//! Dead letters without leaks (`dead_letter.payload`): a dead letter's value
//! kept as it came, redacted, or dropped, and its detail scrubbed of what
//! the redaction removed.

use super::{PrivacyPolicy, Tally};
use crate::deadletter::DeadLetterPayload;
use crate::event::{Channel, Direction, EventType};
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// What dead letters carry of the record that could not be used
/// (`[dead_letter] payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterMode {
    /// The original value, byte for byte (replayable). The default.
    #[default]
    Keep,
    /// The privacy policy applied to what can be parsed: a canonical event
    /// gets the policy of an accepted event; other JSON keeps its
    /// structure, numbers, booleans and identifying envelope fields, its
    /// other strings hashed (with a key) or dropped; anything else (not
    /// JSON, Avro) is dropped.
    Redact,
    /// No value at all: the headers tell what and where.
    Drop,
}

/// A dead letter's value and detail after [`PrivacyPolicy::treat_dead_letter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreatedDeadLetter {
    /// The value to write.
    pub value: Option<Vec<u8>>,
    /// What was done to it.
    pub payload: DeadLetterPayload,
    /// `dlq.detail`, scrubbed of personal values unless the mode is `keep`.
    pub detail: String,
}

/// Field names (normalised: lower case, `_` and `-` removed) whose string
/// values are identifiers of records, not of people, and stay in a redacted
/// dead letter when they look like one (`token`): the canonical envelope's
/// and the vendors' ids, accounts and instances.
const ID_KEYS: &[&str] = &[
    "eventid",
    "sessionid",
    "id",
    "contactid",
    "initialcontactid",
    "previouscontactid",
    "nextcontactid",
    "relatedcontactid",
    "conversationid",
    "engagementid",
    "taskid",
    "tasksid",
    "sid",
    "reservationsid",
    "workspacesid",
    "accountsid",
    "workersid",
    "taskqueuesid",
    "queueid",
    "participantid",
    "instancearn",
    "accountid",
    "account",
    "region",
    "tenant",
    "source",
    "specversion",
    "version",
    "topicname",
];

/// Field names whose string values are record types, channels and
/// statuses: kept when they look like a word list (`word`).
const ENUM_KEYS: &[&str] = &[
    "type",
    "detailtype",
    "eventtype",
    "event",
    "status",
    "channel",
    "direction",
    "mediatype",
    "initiationmethod",
    "resourcetype",
    "taskchanneluniquename",
    "disconnectreason",
];

fn normalised(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

/// An identifier's shape: ASCII letters, digits and `.:/_-`, at most 200
/// characters, not a phone number (`+…`).
fn token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && !s.starts_with('+') && s.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/_-".contains(&b))
}

/// A type or status: letters and `._-`, no digits, no spaces, at most 64
/// (EventBridge's `detail-type` may have spaces).
fn word(key: &str, s: &str) -> bool {
    let space = if key == "detailtype" { b' ' } else { b'.' };
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphabetic() || b"._-".contains(&b) || b == space)
}

/// A time field: named `…_at`, `…At`, `…time`, `…timestamp`, `…ts`.
fn time_key(key: &str) -> bool {
    let n = normalised(key);
    key.ends_with("_at") || key.ends_with("At") || n.ends_with("time") || n.ends_with("timestamp") || n.ends_with("ts")
}

/// A time value: RFC 3339, or epoch digits.
fn time_value(s: &str) -> bool {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())) || Millis::parse_rfc3339(s).is_ok()
}

/// Whether the string at `key` is kept in a redacted dead letter.
fn allowed(key: &str, value: &str) -> bool {
    match key {
        "channel" if Channel::parse(value).is_some() => return true,
        "direction" if Direction::parse(value).is_some() => return true,
        _ => {}
    }
    if time_key(key) {
        return time_value(value);
    }
    let n = normalised(key);
    (ID_KEYS.contains(&n.as_str()) && token(value)) || (ENUM_KEYS.contains(&n.as_str()) && word(&n, value))
}

impl PrivacyPolicy {
    /// A dead letter's value and detail under `mode`. `keep` changes
    /// nothing; `redact` and `drop` scrub the detail of every quoted text
    /// the redacted value does not itself hold and of every value the
    /// redaction removed, so that `dlq.detail` quotes nothing personal.
    pub fn treat_dead_letter(&self, mode: DeadLetterMode, value: Option<&[u8]>, detail: String) -> TreatedDeadLetter {
        if mode == DeadLetterMode::Keep {
            return TreatedDeadLetter { value: value.map(<[u8]>::to_vec), payload: DeadLetterPayload::Kept, detail };
        }
        let Some(bytes) = value else {
            // A record without a value has nothing to redact.
            return TreatedDeadLetter { value: None, payload: DeadLetterPayload::Kept, detail: scrub_detail(&detail, &HashSet::new(), &[]) };
        };
        let mut removed = Vec::new();
        let redacted = self.redact_value(bytes, &mut Tally { changed: false, removed: Some(&mut removed) });
        let mut kept = HashSet::new();
        if let Some(v) = &redacted {
            strings_of(v, &mut kept);
        }
        let detail = scrub_detail(&detail, &kept, &removed);
        match (mode, redacted) {
            (DeadLetterMode::Redact, Some(v)) => {
                // Writing a `Value` cannot fail.
                let bytes = serde_json::to_vec(&v).unwrap_or_default();
                TreatedDeadLetter { value: Some(bytes), payload: DeadLetterPayload::Redacted, detail }
            }
            _ => TreatedDeadLetter { value: None, payload: DeadLetterPayload::Dropped, detail },
        }
    }

    /// The redaction of a dead letter's value, `None` when nothing of it
    /// can be kept (not JSON, Avro, not UTF-8, or nothing left).
    fn redact_value(&self, bytes: &[u8], tally: &mut Tally<'_>) -> Option<Value> {
        let mut value: Value = serde_json::from_slice(bytes).ok()?;
        let canonical = match &value {
            Value::Object(map) => {
                map.get("type").and_then(Value::as_str).filter(|t| !t.is_empty()).is_some()
                    && map.get("attributes").is_none_or(|a| a.is_object() || a.is_null())
            }
            _ => false,
        };
        if canonical && let Value::Object(map) = &mut value {
            let event_type = EventType::parse(map.get("type").and_then(Value::as_str).unwrap_or_default());
            map.retain(|key, v| match (key.as_str(), v) {
                ("attributes", Value::Object(attributes)) => {
                    self.police_attributes_of(&event_type, attributes, tally);
                    true
                }
                // The envelope keeps what looks like its fields' values
                // (ids, a type, a time, a channel); the rest, and fields of
                // no event, are treated as any JSON.
                (key, v) => self.redact_generic(key, v, tally),
            });
            return Some(value);
        }
        self.redact_generic("", &mut value, tally).then_some(value)
    }

    /// Any JSON: structure, numbers, booleans and allowed identifiers stay;
    /// other strings are hashed with a key, else dropped. `false`: remove.
    fn redact_generic(&self, key: &str, value: &mut Value, tally: &mut Tally<'_>) -> bool {
        match value {
            Value::String(s) if allowed(key, s) => true,
            Value::String(s) => {
                if let Some(out) = tally.removed.as_deref_mut() {
                    out.push(s.clone());
                }
                if self.has_hmac_key() {
                    *s = self.hash(s);
                    true
                } else {
                    false
                }
            }
            Value::Array(items) => {
                items.retain_mut(|v| self.redact_generic(key, v, tally));
                true
            }
            Value::Object(map) => {
                map.retain(|k, v| self.redact_generic(k, v, tally));
                true
            }
            Value::Number(_) | Value::Bool(_) | Value::Null => true,
        }
    }
}

/// Every string of a value, keys included.
fn strings_of(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            out.insert(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| strings_of(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                strings_of(v, out);
            }
        }
        Value::Number(_) | Value::Bool(_) | Value::Null => {}
    }
}

/// Shortest removed value scrubbed where it appears unquoted: shorter ones
/// are common substrings of any detail and name no one.
const MIN_SCRUBBED: usize = 4;

/// The placeholder of a scrubbed value.
const SCRUBBED: &str = "<redacted>";

/// `detail` with every quoted text (`"…"`, escapes honoured) that is not in
/// `kept` replaced, and then every removed value of at least
/// [`MIN_SCRUBBED`] characters wherever it appears.
pub(crate) fn scrub_detail(detail: &str, kept: &HashSet<String>, removed: &[String]) -> String {
    let mut out = String::with_capacity(detail.len());
    let mut rest = detail;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        let body = &rest[open + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(end) = end else {
            // An unterminated quote: what follows is not trusted.
            out.push('"');
            out.push_str(SCRUBBED);
            return scrub_removed(out, removed);
        };
        let raw = &body[..end];
        let text = raw.replace("\\\"", "\"").replace("\\\\", "\\");
        out.push('"');
        out.push_str(if kept.contains(&text) { raw } else { SCRUBBED });
        out.push('"');
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    scrub_removed(out, removed)
}

fn scrub_removed(mut detail: String, removed: &[String]) -> String {
    let mut values: Vec<&str> = removed.iter().map(String::as_str).filter(|v| v.chars().count() >= MIN_SCRUBBED && *v != SCRUBBED).collect();
    // Longest first, so that a value is not half scrubbed by a part of it.
    values.sort_unstable_by_key(|v| std::cmp::Reverse(v.len()));
    values.dedup();
    for v in values {
        if detail.contains(v) {
            detail = detail.replace(v, SCRUBBED);
        }
    }
    detail
}
