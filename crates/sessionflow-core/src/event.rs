//! The canonical input event (`events.md`): envelope, types, typed attributes,
//! and the validation that sorts good input from dead letters.

use crate::attributes::Attributes;
use crate::deadletter::{DeadLetterReason, InputError};
use crate::envelope::{self, ScannedAttributes, ScannedEnvelope};
use crate::time::Millis;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::sync::Arc;

macro_rules! event_types {
    ($( $variant:ident => $name:literal, $role:ident; )*) => {
        /// Every event type the contract names, plus `Other` for types a
        /// platform added later: those pass through to the timeline unchanged.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $( #[doc = $name] $variant, )*
            /// A type the contract does not name (yet).
            Other(String),
        }

        impl EventType {
            /// All types the contract names.
            pub const KNOWN: &'static [EventType] = &[ $( EventType::$variant, )* ];

            /// The wire name.
            pub fn as_str(&self) -> &str {
                match self {
                    $( EventType::$variant => $name, )*
                    EventType::Other(name) => name,
                }
            }

            /// Parses a wire name; unknown names become `Other`.
            pub fn parse(name: &str) -> Self {
                match name {
                    $( $name => EventType::$variant, )*
                    other => EventType::Other(other.to_owned()),
                }
            }

            /// Whether the type belongs to the lifecycle table of `events.md`
            /// (as opposed to facts, timeline-only types and unknown types).
            pub fn role(&self) -> TypeRole {
                match self {
                    $( EventType::$variant => TypeRole::$role, )*
                    EventType::Other(_) => TypeRole::Unknown,
                }
            }
        }
    };
}

/// How an event type relates to the session lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeRole {
    /// Listed under "types that drive the lifecycle".
    Lifecycle,
    /// Adds facts to the metadata record without moving the lifecycle.
    Fact,
    /// Timeline only.
    TimelineOnly,
    /// Not named by the contract.
    Unknown,
}

event_types! {
    SessionStarted => "session.started", Lifecycle;
    SessionScheduled => "session.scheduled", Lifecycle;
    VirtualAgentStarted => "virtual_agent.started", Lifecycle;
    VirtualAgentEnded => "virtual_agent.ended", Lifecycle;
    VirtualAgentConnected => "virtual_agent.connected", Lifecycle;
    QueueEntered => "queue.entered", Lifecycle;
    AgentOffered => "agent.offered", Lifecycle;
    AgentDeclined => "agent.declined", Lifecycle;
    AgentAssigned => "agent.assigned", Lifecycle;
    AgentConnected => "agent.connected", Lifecycle;
    HoldStarted => "hold.started", Lifecycle;
    HoldEnded => "hold.ended", Lifecycle;
    TransferStarted => "transfer.started", Lifecycle;
    TransferCompleted => "transfer.completed", Lifecycle;
    TransferFailed => "transfer.failed", Lifecycle;
    EngagementReleased => "engagement.released", Lifecycle;
    SessionEnded => "session.ended", Lifecycle;
    WrapupCompleted => "wrapup.completed", Lifecycle;
    DispositionSet => "disposition.set", Lifecycle;
    DeflectionOffered => "deflection.offered", Lifecycle;
    DeflectionAccepted => "deflection.accepted", Lifecycle;
    DeflectionDeclined => "deflection.declined", Lifecycle;
    PostSessionStarted => "post_session.started", Lifecycle;
    PostSessionEnded => "post_session.ended", Lifecycle;
    ParticipantAddStarted => "participant.add_started", Lifecycle;
    ParticipantAdded => "participant.added", Lifecycle;
    ParticipantAddFailed => "participant.add_failed", Lifecycle;
    ParticipantLeft => "participant.left", Lifecycle;
    SessionErased => "session.erased", Lifecycle;
    CustomDataReceived => "custom_data.received", Fact;
    PhoneNumberCollected => "phone_number.collected", Fact;
    EmailCollected => "email.collected", Fact;
    VerificationCompleted => "verification.completed", Fact;
    MediaUploaded => "media.uploaded", Fact;
    PaymentProcessed => "payment.processed", Fact;
    RatingReceived => "rating.received", Fact;
    SurveyResponse => "survey.response", Fact;
    NoteReceived => "note.received", Fact;
    SentimentScored => "sentiment.scored", Fact;
    AgentAssistSummary => "agent_assist.summary", Fact;
    RecordingAvailable => "recording.available", Fact;
    MaskingStarted => "masking.started", Fact;
    MaskingEnded => "masking.ended", Fact;
    CrmTicketLinked => "crm.ticket_linked", Fact;
    ApiRequest => "api.request", TimelineOnly;
    ApiResponse => "api.response", TimelineOnly;
    VirtualAgentVariablesCaptured => "virtual_agent.variables_captured", Fact;
    CobrowseStarted => "cobrowse.started", Fact;
    CobrowseEnded => "cobrowse.ended", Fact;
    CobrowseControlRequested => "cobrowse.control_requested", Fact;
    CobrowseControlAccepted => "cobrowse.control_accepted", Fact;
    CobrowseControlDeclined => "cobrowse.control_declined", Fact;
    TranscriptSegment => "transcript.segment", TimelineOnly;
    TranslationUsed => "translation.used", TimelineOnly;
    SipRedirected => "sip.redirected", TimelineOnly;
    SipHeaders => "sip.headers", TimelineOnly;
    ContentCardSelected => "content_card.selected", TimelineOnly;
    EmergencyRequested => "emergency.requested", Fact;
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(EventType::parse(&name))
    }
}

macro_rules! closed_enum {
    ($(#[$doc:meta])* $name:ident { $( $variant:ident => $text:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $( #[doc = $text] #[serde(rename = $text)] $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )* }
            }

            /// Parses a wire name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $( $text => Some($name::$variant), )* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use closed_enum;

closed_enum! {
    /// The medium of a session.
    Channel { Voice => "voice", Chat => "chat", Messaging => "messaging", Email => "email", Video => "video", Sms => "sms" }
}

closed_enum! {
    /// Who started the contact.
    Direction { Inbound => "inbound", Outbound => "outbound" }
}

/// One canonical event, validated and normalised (timestamps in UTC ms,
/// privacy policy applied to its attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event; the dedup key within a session.
    pub event_id: String,
    /// The session this event belongs to.
    pub session_id: Arc<str>,
    /// The event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// Event time.
    pub occurred_at: Millis,
    /// Medium, required on `session.started`.
    pub channel: Option<Channel>,
    /// Inbound or outbound.
    pub direction: Option<Direction>,
    /// Contact-center account.
    pub tenant: Option<String>,
    /// Emitting platform.
    pub source: Option<String>,
    /// Type-specific fields; unknown fields kept.
    pub attributes: Attributes,
}

/// Longest `event_id` / `session_id`, in characters.
pub const MAX_ID_CHARS: usize = 128;

/// The JSON type an attribute named by the contract must have.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Str,
    /// String or integer (identifiers arrive both ways).
    Id,
    /// String or number (amounts).
    StrOrNum,
    Int(i64, i64),
    Num(f64, f64),
    Bool,
    Obj,
    /// Array of strings, or one string.
    Strings,
    Time,
    Answers,
}

impl Kind {
    fn expected(self) -> String {
        match self {
            Kind::Str => "a string".into(),
            Kind::Id => "a string or an integer".into(),
            Kind::StrOrNum => "a string or a number".into(),
            Kind::Int(lo, hi) => format!("an integer from {lo} to {hi}"),
            Kind::Num(lo, hi) => format!("a number from {lo} to {hi}"),
            Kind::Bool => "true or false".into(),
            Kind::Obj => "an object".into(),
            Kind::Strings => "a string or an array of strings".into(),
            Kind::Time => "an RFC 3339 timestamp with offset".into(),
            Kind::Answers => "an array of {question, kind, value} objects".into(),
        }
    }

    /// [`Kind::accepts`] for the text of a value the input scanner read
    /// (`envelope.rs`: a string without escapes, an integer of at most 18
    /// characters, `true`, `false`, or an array or object of those; never
    /// `null` here), without parsing it; `None` where only the parsed value
    /// tells.
    fn accepts_scanned(self, raw: &str) -> Option<bool> {
        let first = *raw.as_bytes().first()?;
        let string = first == b'"';
        // Up to 18 characters: always an i64, and `as_i64` of its value.
        let integer = || if first == b'-' || first.is_ascii_digit() { raw.parse::<i64>().ok() } else { None };
        Some(match self {
            Kind::Str => string,
            Kind::Id | Kind::StrOrNum => string || integer().is_some(),
            Kind::Int(lo, hi) => integer().is_some_and(|n| (lo..=hi).contains(&n)),
            // `as_f64` of an integer's value is the integer converted.
            Kind::Num(lo, hi) => integer().is_some_and(|n| n as f64 >= lo && n as f64 <= hi),
            Kind::Bool => first == b't' || first == b'f',
            Kind::Obj => first == b'{',
            Kind::Strings if string => true,
            // Without escapes, the quotes' contents are the string.
            Kind::Time => string && raw.len() >= 2 && Millis::parse_rfc3339(&raw[1..raw.len() - 1]).is_ok(),
            Kind::Strings | Kind::Answers => return None,
        })
    }

    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Str => v.is_string(),
            Kind::Id => v.is_string() || v.is_i64() || v.is_u64(),
            Kind::StrOrNum => v.is_string() || v.is_number(),
            Kind::Int(lo, hi) => v.as_i64().is_some_and(|n| (lo..=hi).contains(&n)),
            Kind::Num(lo, hi) => v.as_f64().is_some_and(|n| n >= lo && n <= hi),
            Kind::Bool => v.is_boolean(),
            Kind::Obj => v.is_object(),
            Kind::Strings => v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::Time => v.as_str().is_some_and(|s| Millis::parse_rfc3339(s).is_ok()),
            Kind::Answers => v.as_array().is_some_and(|a| {
                a.iter().all(|x| x.as_object().is_some_and(|o| o.get("question").is_none_or(Value::is_string) && o.get("kind").is_none_or(Value::is_string)))
            }),
        }
    }
}

/// The attributes the contract names for a type, with their JSON types.
/// Enumerated values (`kind`, `outcome`, `reason`, …) are typed as strings:
/// platforms add values over time and new values pass through.
fn typed_attributes(t: &EventType) -> &'static [(&'static str, Kind)] {
    use EventType as T;
    use Kind::*;
    const AGENT: &[(&str, Kind)] = &[("agent", Str), ("agent_id", Id)];
    const TRANSFER: &[(&str, Kind)] = &[("from_queue", Str), ("from_agent", Str), ("to_queue", Str), ("to_agent", Str), ("kind", Str), ("reason", Str)];
    const PARTICIPANT: &[(&str, Kind)] = &[("participant", Id), ("role", Str), ("by", Str), ("reason", Str)];
    const DEFLECTION: &[(&str, Kind)] = &[("kind", Str), ("queue", Str)];
    const COBROWSE: &[(&str, Kind)] = &[("level", Str)];
    match t {
        T::SessionStarted => {
            &[("lang", Str), ("menu_path", Str), ("menu_path_id", Id), ("support_number", Str), ("outbound_number", Str), ("device", Str), ("ani", Str)]
        }
        T::SessionScheduled => &[("scheduled_for", Time)],
        T::VirtualAgentStarted | T::VirtualAgentConnected => &[("virtual_agent", Str), ("platform", Str), ("params", Obj)],
        T::VirtualAgentEnded => &[("virtual_agent", Str), ("outcome", Str)],
        T::QueueEntered => &[("queue", Str), ("queue_id", Id), ("priority", Int(1, 8))],
        T::AgentOffered | T::AgentAssigned | T::AgentConnected => AGENT,
        T::AgentDeclined => &[("agent", Str), ("agent_id", Id), ("reason", Str)],
        T::TransferStarted | T::TransferCompleted | T::TransferFailed => TRANSFER,
        T::EngagementReleased => &[("agent", Str), ("queue", Str)],
        T::SessionEnded => &[("ended_by", Str), ("reason", Str)],
        T::WrapupCompleted => &[("agent", Str)],
        T::DispositionSet => &[("code", Id), ("notes", Str), ("list", Str), ("custom_code_id", Id), ("agent", Str), ("list_id", Id), ("code_id", Id)],
        T::DeflectionOffered | T::DeflectionAccepted | T::DeflectionDeclined => DEFLECTION,
        T::PostSessionStarted => &[("virtual_agent", Str), ("opted_in", Bool), ("params", Obj)],
        T::PostSessionEnded => &[("virtual_agent", Str), ("outcome", Str)],
        T::ParticipantAddStarted | T::ParticipantAdded | T::ParticipantAddFailed | T::ParticipantLeft => PARTICIPANT,
        T::SessionErased => &[("reason", Str)],
        T::PhoneNumberCollected => &[("inbound", Str), ("callback", Str)],
        T::EmailCollected => &[("email", Str)],
        T::VerificationCompleted => &[("by", Str), ("method", Str)],
        T::MediaUploaded => &[("kind", Str), ("url", Str)],
        T::PaymentProcessed => &[("product", Str), ("amount", StrOrNum), ("currency", Str), ("status", Str), ("transaction_id", Id), ("agent", Str)],
        T::RatingReceived => &[("rating", Num(f64::MIN, f64::MAX)), ("comment", Str)],
        T::SurveyResponse => &[("answers", Answers)],
        T::NoteReceived => &[("text", Str)],
        T::SentimentScored => &[("score", Num(0.0, 100.0))],
        T::AgentAssistSummary => &[("summary", Str), ("agent", Str)],
        T::RecordingAvailable => &[("url", Str), ("urls", Strings), ("permission", Str)],
        T::CrmTicketLinked => &[("ticket_id", Id), ("url", Str)],
        T::VirtualAgentVariablesCaptured => &[("intent", Str), ("variables", Obj)],
        T::CobrowseStarted | T::CobrowseEnded | T::CobrowseControlRequested | T::CobrowseControlAccepted | T::CobrowseControlDeclined => COBROWSE,
        T::TranscriptSegment => &[("speaker", Str), ("text", Str)],
        T::TranslationUsed => &[("languages", Strings)],
        T::SipRedirected | T::SipHeaders => &[("destination", Str), ("params", Obj), ("headers", Obj)],
        T::ContentCardSelected => &[("card", Str), ("button", Str), ("response", Str)],
        T::EmergencyRequested => &[("by", Str)],
        T::HoldStarted | T::HoldEnded | T::MaskingStarted | T::MaskingEnded | T::CustomDataReceived | T::ApiRequest | T::ApiResponse | T::Other(_) => &[],
    }
}

/// The attribute names the contract lists for `event_type` (`events.md`),
/// for the privacy policy's unknown-attribute default. Types whose
/// attributes are any keys ([`accepts_any_attributes`]) list none.
pub fn known_attribute_names(event_type: &EventType) -> impl Iterator<Item = &'static str> {
    typed_attributes(event_type).iter().map(|(name, _)| *name)
}

/// Whether every attribute of `event_type` is part of its model: the
/// contract says "any keys" (`custom_data.received`, `api.request`,
/// `api.response`).
pub fn accepts_any_attributes(event_type: &EventType) -> bool {
    matches!(event_type, EventType::CustomDataReceived | EventType::ApiRequest | EventType::ApiResponse)
}

/// What a dead-letter detail says of a value of the wrong type: numbers
/// of the numeric kinds (a priority, a score) as they are, which names no
/// one; strings quoted (the privacy policy scrubs quoted text from details
/// when dead letters are redacted); anything else by its JSON type, so
/// that an unquoted number (a phone number sent as one) or the contents of
/// an object never reach `dlq.detail`.
fn described(kind: Kind, v: &Value) -> String {
    match (kind, v) {
        (Kind::Int(..) | Kind::Num(..), Value::Number(n)) => n.to_string(),
        (_, Value::String(_)) => v.to_string(),
        _ => json_type(v).to_owned(),
    }
}

/// Checks the attributes the contract names for `event_type` against their types.
fn check_typed_attributes(event_type: &EventType, attributes: &Map<String, Value>) -> Result<(), InputError> {
    for (key, kind) in typed_attributes(event_type) {
        if let Some(v) = attributes.get(*key).filter(|v| !v.is_null())
            && !kind.accepts(v)
        {
            let reason = if matches!(kind, Kind::Time) { DeadLetterReason::BadTimestamp } else { DeadLetterReason::BadFieldType };
            return Err(err(reason, format!("`attributes.{key}` of `{}` must be {}, got {}", event_type.as_str(), kind.expected(), described(*kind, v))));
        }
    }
    Ok(())
}

fn err(reason: DeadLetterReason, detail: impl Into<String>) -> InputError {
    InputError { reason, detail: detail.into() }
}

fn required_id(value: Option<Value>, key: &str) -> Result<String, InputError> {
    match value {
        None | Some(Value::Null) => Err(err(DeadLetterReason::MissingField, format!("required field `{key}` is missing"))),
        Some(Value::String(s)) => check_id(&s, key).map(|()| s),
        Some(other) => Err(err(DeadLetterReason::BadFieldType, format!("`{key}` must be a string, got {}", json_type(&other)))),
    }
}

fn check_id(id: &str, key: &str) -> Result<(), InputError> {
    if id.is_empty() {
        Err(err(DeadLetterReason::MissingField, format!("required field `{key}` is empty")))
    } else if is_valid_id(id) {
        Ok(())
    } else {
        Err(err(DeadLetterReason::BadFieldType, format!("`{key}` is longer than {MAX_ID_CHARS} characters")))
    }
}

fn optional_str(value: Option<Value>, key: &str) -> Result<Option<String>, InputError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(err(DeadLetterReason::BadFieldType, format!("`{key}` must be a string, got {}", json_type(&other)))),
    }
}

fn optional_enum<T>(value: Option<Value>, key: &str, parse: fn(&str) -> Option<T>, allowed: &str) -> Result<Option<T>, InputError> {
    enum_text(optional_str(value, key)?.as_deref(), key, parse, allowed)
}

fn enum_text<T>(text: Option<&str>, key: &str, parse: fn(&str) -> Option<T>, allowed: &str) -> Result<Option<T>, InputError> {
    match text {
        None => Ok(None),
        Some(text) => parse(text).map(Some).ok_or_else(|| err(DeadLetterReason::BadFieldType, format!("`{key}` must be one of {allowed}, got {text:?}"))),
    }
}

/// The envelope fields of an input object, each still untyped: the
/// checks below give every field its own dead-letter reason. JSON input is
/// read straight into it, without building a map of the whole object.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    event_id: Option<Value>,
    session_id: Option<Value>,
    #[serde(rename = "type")]
    event_type: Option<Value>,
    occurred_at: Option<Value>,
    channel: Option<Value>,
    direction: Option<Value>,
    tenant: Option<Value>,
    source: Option<Value>,
    attributes: Option<Value>,
}

impl Envelope {
    fn from_map(mut obj: Map<String, Value>) -> Envelope {
        let mut take = |key: &str| obj.remove(key);
        Envelope {
            event_id: take("event_id"),
            session_id: take("session_id"),
            event_type: take("type"),
            occurred_at: take("occurred_at"),
            channel: take("channel"),
            direction: take("direction"),
            tenant: take("tenant"),
            source: take("source"),
            attributes: take("attributes"),
        }
    }
}

/// The envelope as text borrowed from the input, for the common case (see
/// `Event::from_envelope_text`). A field of another JSON type, or a repeated
/// field, fails it.
#[derive(Deserialize)]
struct EnvelopeText<'a> {
    event_id: Option<String>,
    session_id: Option<String>,
    // Borrowed: a value with escapes fails, and takes the general path.
    #[serde(borrow, rename = "type")]
    event_type: Option<&'a str>,
    #[serde(borrow)]
    occurred_at: Option<&'a str>,
    #[serde(borrow)]
    channel: Option<&'a str>,
    #[serde(borrow)]
    direction: Option<&'a str>,
    tenant: Option<String>,
    source: Option<String>,
    #[serde(borrow)]
    attributes: Option<&'a RawValue>,
}

/// A usable `event_id` or `session_id`: not empty, at most `MAX_ID_CHARS`
/// characters.
fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && (id.len() <= MAX_ID_CHARS || id.chars().count() <= MAX_ID_CHARS)
}

/// The envelope's typed fields read from their text: `None` for anything
/// the general path must judge (an error, a `session.started` without a
/// channel).
fn envelope_head(
    event_type: Option<&str>,
    occurred_at: Option<&str>,
    channel: Option<&str>,
    direction: Option<&str>,
) -> Option<(EventType, Millis, Option<Channel>, Option<Direction>)> {
    let event_type = EventType::parse(event_type.filter(|s| !s.is_empty())?);
    let occurred_at = Millis::parse_rfc3339(occurred_at?).ok()?;
    let channel = match channel {
        Some(text) => Some(Channel::parse(text)?),
        None if event_type == EventType::SessionStarted => return None,
        None => None,
    };
    let direction = match direction {
        Some(text) => Some(Direction::parse(text)?),
        None => None,
    };
    Some((event_type, occurred_at, channel, direction))
}

/// Attributes in serde_json's own spelling, kept as their text when the
/// ones the contract types for `event_type` each have their type (`null`
/// counts as absent); `None` for the general path to judge.
fn canonical_attributes(event_type: &EventType, attributes: &ScannedAttributes<'_>) -> Option<Attributes> {
    let accepted = typed_attributes(event_type).iter().all(|(key, kind)| {
        let Some((_, raw)) = attributes.fields.iter().find(|(k, _)| k == key) else { return true };
        match kind {
            _ if *raw == "null" => true,
            kind => kind.accepts_scanned(raw).unwrap_or_else(|| serde_json::from_str::<Value>(raw).is_ok_and(|v| kind.accepts(&v))),
        }
    });
    accepted.then(|| Attributes::from_canonical_text(attributes.text))
}

/// The JSON type name of a value, for error details.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The fields of an event a program makes (an adapter), for
/// [`Event::from_fields`]: the envelope as text and typed values, the
/// attributes as the JSON text serde_json writes for them.
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
    pub event_id: &'a str,
    pub session_id: &'a str,
    pub event_type: &'a str,
    pub occurred_at: Millis,
    pub channel: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub tenant: Option<&'a str>,
    pub source: Option<&'a str>,
    /// A JSON object, compact, as `serde_json::to_string` writes it.
    pub attributes: &'a str,
}

impl Event {
    /// An event from its fields, checked as [`Event::from_json`] checks the
    /// same fields as JSON (same reasons, same details), without writing
    /// and reading them as JSON. Attributes in the scanner's subset of
    /// serde_json's spelling are kept as text, as canonical input's are.
    pub fn from_fields(fields: EventFields<'_>) -> Result<Event, InputError> {
        let EventFields { event_id, session_id, event_type, occurred_at, channel, direction, tenant, source, attributes } = fields;
        check_id(event_id, "event_id")?;
        check_id(session_id, "session_id")?;
        if event_type.is_empty() {
            return Err(err(DeadLetterReason::MissingField, "required field `type` is empty"));
        }
        let event_type = EventType::parse(event_type);
        // Outside four-digit years the RFC 3339 text of a time does not
        // read back: refused as the same time in JSON input is.
        if occurred_at.rfc3339_bytes().is_none() {
            Millis::parse_rfc3339(&occurred_at.to_rfc3339()).map_err(|e| err(DeadLetterReason::BadTimestamp, format!("`occurred_at`: {e}")))?;
        }
        let channel = enum_text(channel, "channel", Channel::parse, "voice, chat, messaging, email, video, sms")?;
        if channel.is_none() && event_type == EventType::SessionStarted {
            return Err(err(DeadLetterReason::MissingField, "`channel` is required on `session.started`"));
        }
        let direction = enum_text(direction, "direction", Direction::parse, "inbound, outbound")?;
        let scanned = envelope::scan_attributes(attributes).and_then(|scanned| canonical_attributes(&event_type, &scanned));
        let attributes = match scanned {
            Some(attributes) => attributes,
            // Outside the scanner's subset, or a typed attribute to judge on its value.
            None => match serde_json::from_str::<Value>(attributes) {
                Ok(Value::Object(map)) => {
                    check_typed_attributes(&event_type, &map)?;
                    Attributes::from(Value::Object(map))
                }
                Ok(other) => return Err(err(DeadLetterReason::BadFieldType, format!("`attributes` must be an object, got {}", json_type(&other)))),
                Err(e) => return Err(err(DeadLetterReason::DecodeError, format!("`attributes`: invalid JSON: {e}"))),
            },
        };
        Ok(Event {
            event_id: event_id.to_owned(),
            session_id: session_id.into(),
            event_type,
            occurred_at,
            channel,
            direction,
            tenant: tenant.map(str::to_owned),
            source: source.map(str::to_owned),
            attributes,
        })
    }

    /// Validates a decoded JSON object against the envelope and the typed
    /// attributes of `events.md`. Unknown envelope fields are ignored (the Avro
    /// form cannot carry them, and both encodings must carry the same fields);
    /// unknown attributes are kept.
    pub fn from_json(value: Value) -> Result<Event, InputError> {
        let Value::Object(obj) = value else {
            return Err(err(DeadLetterReason::DecodeError, format!("the value is {}, not a JSON object", json_type(&value))));
        };
        Event::from_envelope(Envelope::from_map(obj))
    }

    fn from_envelope(envelope: Envelope) -> Result<Event, InputError> {
        let Envelope { event_id, session_id, event_type, occurred_at, channel, direction, tenant, source, attributes } = envelope;
        let event_id = required_id(event_id, "event_id")?;
        let session_id = required_id(session_id, "session_id")?;
        let event_type = match event_type {
            None | Some(Value::Null) => return Err(err(DeadLetterReason::MissingField, "required field `type` is missing")),
            Some(Value::String(s)) if s.is_empty() => {
                return Err(err(DeadLetterReason::MissingField, "required field `type` is empty"));
            }
            Some(Value::String(s)) => EventType::parse(&s),
            Some(other) => {
                return Err(err(DeadLetterReason::BadFieldType, format!("`type` must be a string, got {}", json_type(&other))));
            }
        };
        let occurred_at = match occurred_at {
            None | Some(Value::Null) => {
                return Err(err(DeadLetterReason::MissingField, "required field `occurred_at` is missing"));
            }
            Some(Value::String(s)) => Millis::parse_rfc3339(&s).map_err(|e| err(DeadLetterReason::BadTimestamp, format!("`occurred_at`: {e}")))?,
            Some(other) => {
                return Err(err(DeadLetterReason::BadTimestamp, format!("`occurred_at` must be an RFC 3339 string, got {}", json_type(&other))));
            }
        };
        let channel = optional_enum(channel, "channel", Channel::parse, "voice, chat, messaging, email, video, sms")?;
        if channel.is_none() && event_type == EventType::SessionStarted {
            return Err(err(DeadLetterReason::MissingField, "`channel` is required on `session.started`"));
        }
        let direction = optional_enum(direction, "direction", Direction::parse, "inbound, outbound")?;
        let tenant = optional_str(tenant, "tenant")?;
        let source = optional_str(source, "source")?;
        let attributes = match attributes {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(err(DeadLetterReason::BadFieldType, format!("`attributes` must be an object, got {}", json_type(&other))));
            }
        };
        check_typed_attributes(&event_type, &attributes)?;
        Ok(Event {
            event_id,
            session_id: session_id.into(),
            event_type,
            occurred_at,
            channel,
            direction,
            tenant,
            source,
            attributes: Attributes::from(Value::Object(attributes)),
        })
    }

    /// The common case of JSON input, read without building any JSON value:
    /// `None` for anything it is not sure of (an error, a repeated key, an
    /// unusual field type), which the general path then reads.
    fn from_envelope_text(envelope: EnvelopeText<'_>) -> Option<Event> {
        let EnvelopeText { event_id, session_id, event_type, occurred_at, channel, direction, tenant, source, attributes } = envelope;
        let event_id = event_id.filter(|id| is_valid_id(id))?;
        let session_id = session_id.filter(|id| is_valid_id(id))?;
        let (event_type, occurred_at, channel, direction) = envelope_head(event_type, occurred_at, channel, direction)?;
        let attributes = match attributes {
            None => Attributes::empty_object(),
            Some(text) => match envelope::scan_attributes(text.get()) {
                Some(attributes) => canonical_attributes(&event_type, &attributes)?,
                None => {
                    // Written out again: serde_json's spelling, the last of repeated keys.
                    let Ok(Value::Object(map)) = serde_json::from_str(text.get()) else { return None };
                    check_typed_attributes(&event_type, &map).ok()?;
                    Attributes::from(Value::Object(map))
                }
            },
        };
        Some(Event { event_id, session_id: session_id.into(), event_type, occurred_at, channel, direction, tenant, source, attributes })
    }

    /// The usual spelling, read in one pass (`envelope::scan`): `None`
    /// where it is not sure, as `from_envelope_text`.
    fn from_scanned(envelope: ScannedEnvelope<'_>) -> Option<Event> {
        let ScannedEnvelope { event_id, session_id, event_type, occurred_at, channel, direction, tenant, source, attributes } = envelope;
        let event_id = event_id.filter(|id| is_valid_id(id))?.to_owned();
        let session_id = Arc::from(session_id.filter(|id| is_valid_id(id))?);
        let (event_type, occurred_at, channel, direction) = envelope_head(event_type, occurred_at, channel, direction)?;
        let attributes = match attributes {
            None => Attributes::empty_object(),
            Some(attributes) => canonical_attributes(&event_type, &attributes)?,
        };
        Some(Event {
            event_id,
            session_id,
            event_type,
            occurred_at,
            channel,
            direction,
            tenant: tenant.map(str::to_owned),
            source: source.map(str::to_owned),
            attributes,
        })
    }

    /// Decodes and validates one JSON input value.
    pub fn from_json_slice(bytes: &[u8]) -> Result<Event, InputError> {
        // The common case, read straight into the envelope. Anything it
        // refuses (not an object, a repeated key, bad JSON) takes the general
        // path, which gives the precise error or, for a repeated key, the
        // same last-one-wins reading as any JSON object.
        // (A derived struct would also accept an array, by position.)
        // Input that is not UTF-8 is not JSON (`events.md`), wherever the
        // bad bytes are: it goes straight to the general path's error.
        // (serde skips the strings of unknown fields without checking them.)
        if bytes.trim_ascii_start().first() == Some(&b'{')
            && let Ok(text) = std::str::from_utf8(bytes)
        {
            if let Some(event) = envelope::scan(text).and_then(Event::from_scanned) {
                return Ok(event);
            }
            if let Ok(envelope) = serde_json::from_str::<EnvelopeText<'_>>(text)
                && let Some(event) = Event::from_envelope_text(envelope)
            {
                return Ok(event);
            }
            if let Ok(envelope) = serde_json::from_str::<Envelope>(text) {
                return Event::from_envelope(envelope);
            }
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| err(DeadLetterReason::DecodeError, format!("invalid JSON: {e}")))?;
        Event::from_json(value)
    }

    /// The canonical JSON object of this event (the input format, normalised).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The `(occurred_at, event_id)` key that orders a session's events.
    pub fn order_key(&self) -> (Millis, &str) {
        (self.occurred_at, &self.event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"event_id": "e1", "session_id": "s1", "type": "queue.entered",
               "occurred_at": "2024-07-02T19:06:15.000-07:00", "attributes": {"queue": "Q", "priority": 2, "extra": [1]}})
    }

    #[test]
    fn valid_event_keeps_unknown_attributes_and_normalises_time() {
        let e = Event::from_json(base()).unwrap();
        assert_eq!(e.event_type, EventType::QueueEntered);
        assert_eq!(e.occurred_at.to_rfc3339(), "2024-07-03T02:06:15.000Z");
        assert_eq!(e.attributes.get("extra"), Some(&json!([1])));
    }

    fn reason_of(v: Value) -> DeadLetterReason {
        Event::from_json(v).unwrap_err().reason
    }

    /// Every kind judges a scanned value's text as it judges the value.
    #[test]
    fn scanned_texts_are_accepted_as_their_values_are() {
        let kinds = [
            Kind::Str,
            Kind::Id,
            Kind::StrOrNum,
            Kind::Int(1, 8),
            Kind::Int(i64::MIN, i64::MAX),
            Kind::Num(-1.0, 1.0),
            Kind::Num(0.0, 10.0),
            Kind::Bool,
            Kind::Obj,
            Kind::Strings,
            Kind::Time,
            Kind::Answers,
        ];
        let texts = [
            r#""""#,
            r#""agent-7""#,
            r#""2024-07-02T19:06:15.000-07:00""#,
            r#""2024-07-02 19:06""#,
            "0",
            "1",
            "8",
            "9",
            "-1",
            "-2",
            "10",
            "999999999999999999",
            "-99999999999999999",
            "true",
            "false",
            "[]",
            r#"["a","b"]"#,
            r#"["a",1]"#,
            "[[1],-2]",
            "{}",
            r#"{"a":{"b":[1]}}"#,
            r#"[{"question":"q","kind":"stars","value":4}]"#,
        ];
        for text in texts {
            let object = format!(r#"{{"k":{text}}}"#);
            let scanned = crate::envelope::scan_attributes(&object).unwrap();
            assert_eq!(scanned.fields, vec![("k", text)]);
            let value: Value = serde_json::from_str(text).unwrap();
            for kind in kinds {
                if let Some(accepted) = kind.accepts_scanned(text) {
                    assert_eq!(accepted, kind.accepts(&value), "{kind:?} of {text}");
                }
            }
        }
        // Only arrays are left to the parsed value.
        assert_eq!(Kind::Strings.accepts_scanned(r#"["a"]"#), None);
        assert_eq!(Kind::Strings.accepts_scanned(r#""a""#), Some(true));
        assert_eq!(Kind::Time.accepts_scanned(r#""2024-07-02T19:06:15Z""#), Some(true));
    }

    #[test]
    fn envelope_errors_have_their_reason() {
        let mut v = base();
        v.as_object_mut().unwrap().remove("event_id");
        assert_eq!(reason_of(v), DeadLetterReason::MissingField);
        let mut v = base();
        v["session_id"] = json!(42);
        assert_eq!(reason_of(v), DeadLetterReason::BadFieldType);
        let mut v = base();
        v["occurred_at"] = json!("2024-07-02 19:06");
        assert_eq!(reason_of(v), DeadLetterReason::BadTimestamp);
        let mut v = base();
        v["channel"] = json!("pigeon");
        assert_eq!(reason_of(v), DeadLetterReason::BadFieldType);
        let mut v = base();
        v["event_id"] = json!("x".repeat(129));
        assert_eq!(reason_of(v), DeadLetterReason::BadFieldType);
        assert_eq!(reason_of(json!([1, 2])), DeadLetterReason::DecodeError);
        let start = json!({"event_id": "e1", "session_id": "s1", "type": "session.started", "occurred_at": "2024-07-02T19:06:15Z"});
        assert_eq!(reason_of(start), DeadLetterReason::MissingField);
    }

    #[test]
    fn bytes_decode_as_their_json_value_does() {
        let text = |v: &Value| serde_json::to_vec(v).unwrap();
        let mut unknown_field = base();
        unknown_field["extra_envelope_field"] = json!({"nested": [1, 2]});
        let mut null_channel = base();
        null_channel["channel"] = Value::Null;
        for v in [base(), unknown_field, null_channel, json!([1, 2]), json!(["e1", "s1", "queue.entered", "2024-07-02T19:06:15Z"]), json!("text")] {
            assert_eq!(Event::from_json_slice(&text(&v)), Event::from_json(v.clone()), "{v}");
        }
        // A repeated key: the last one wins, as in any JSON object.
        let repeated = br#"{"event_id": "e1", "event_id": "e2", "session_id": "s1", "type": "hold.started", "occurred_at": "2024-07-02T19:06:15Z"}"#;
        assert_eq!(Event::from_json_slice(repeated).unwrap().event_id, "e2");
        assert_eq!(Event::from_json_slice(b"{not json").unwrap_err().reason, DeadLetterReason::DecodeError);
        // Not UTF-8, even inside a field that is otherwise ignored: not JSON.
        let mut not_utf8 = br#"{"event_id":"e1","session_id":"s1","type":"hold.started","occurred_at":"2024-07-02T19:06:15Z","extra":"x"}"#.to_vec();
        let at = not_utf8.len() - 3;
        not_utf8[at] = 0xFF;
        let error = Event::from_json_slice(&not_utf8).unwrap_err();
        assert_eq!(error.reason, DeadLetterReason::DecodeError);
        assert!(error.detail.contains("invalid unicode"), "{}", error.detail);
    }

    /// An event from its fields is the event of the same fields as JSON,
    /// or the same error.
    #[test]
    fn fields_are_checked_as_json_is() {
        let fields = |event_type: &'static str, channel: Option<&'static str>, attributes: &'static str| EventFields {
            event_id: "e1",
            session_id: "s1",
            event_type,
            occurred_at: Millis(1_720_000_000_123),
            channel,
            direction: Some("inbound"),
            tenant: None,
            source: Some("genesys"),
            attributes,
        };
        let as_json = |f: &EventFields<'_>| {
            let mut v = json!({"event_id": f.event_id, "session_id": f.session_id, "type": f.event_type,
                               "occurred_at": f.occurred_at.to_rfc3339(), "direction": f.direction, "source": f.source});
            v["channel"] = json!(f.channel);
            v["attributes"] = serde_json::from_str(f.attributes).unwrap();
            Event::from_json(v)
        };
        let cases = [
            fields("queue.entered", None, r#"{"queue":"Q","priority":2,"vendor":{"a":[1,"x"]}}"#),
            fields("queue.entered", None, r#"{"queue":"Q","priority":9}"#),
            fields("queue.entered", None, r#"{"queue":"Q\"1","n":2.5}"#),
            fields("rating.received", None, r#"{"rating":4.5}"#),
            fields("session.started", None, "{}"),
            fields("session.started", Some("pigeon"), "{}"),
            fields("session.started", Some("voice"), r#"{"ani":"+1555"}"#),
            fields("session.scheduled", None, r#"{"scheduled_for":"tomorrow"}"#),
            fields("robot.danced", None, "{}"),
            fields("", None, "{}"),
            EventFields { event_id: "", ..fields("hold.started", None, "{}") },
            EventFields { occurred_at: Millis(i64::MAX / 2), ..fields("hold.started", None, "{}") },
        ];
        for f in cases {
            assert_eq!(Event::from_fields(f), as_json(&f), "{f:?}");
        }
        let kept = Event::from_fields(fields("queue.entered", None, r#"{"queue":"Q"}"#)).unwrap();
        assert_eq!(kept.attributes.text(), r#"{"queue":"Q"}"#);
    }

    #[test]
    fn typed_attributes_are_checked() {
        let mut v = base();
        v["attributes"]["priority"] = json!(9);
        let e = Event::from_json(v).unwrap_err();
        assert_eq!(e.reason, DeadLetterReason::BadFieldType);
        assert!(e.detail.contains("attributes.priority"), "{}", e.detail);
        let v = json!({"event_id": "e1", "session_id": "s1", "type": "session.scheduled",
                       "occurred_at": "2024-07-02T19:06:15Z", "attributes": {"scheduled_for": "tomorrow"}});
        assert_eq!(reason_of(v), DeadLetterReason::BadTimestamp);
    }

    #[test]
    fn unknown_types_are_accepted() {
        let mut v = base();
        v["type"] = json!("robot.danced");
        let e = Event::from_json(v).unwrap();
        assert_eq!(e.event_type, EventType::Other("robot.danced".into()));
        assert_eq!(e.event_type.role(), TypeRole::Unknown);
    }

    #[test]
    fn every_known_type_round_trips_its_name() {
        assert_eq!(EventType::KNOWN.len(), 58);
        for t in EventType::KNOWN {
            assert_eq!(&EventType::parse(t.as_str()), t);
        }
    }
}
