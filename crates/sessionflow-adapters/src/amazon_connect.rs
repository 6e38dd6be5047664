//! Amazon Connect (`docs/adapters/amazon-connect.md`): EventBridge contact
//! events and contact records (CTR), told apart by their envelope, on one
//! format name.
//!
//! The adapter is stateless on purpose: every record maps to the same
//! events whatever arrived before it, and moments both streams report (the
//! end of a leg, its after-contact work) get the same event id and the same
//! content from either, so the engine keeps one of them and the final
//! record does not depend on which came first.

mod contact_event;
mod contact_record;

use crate::common::{self, EventBuilder, Object};
use crate::{Adapter, AdapterOptions, AdapterState, InputFormat, SessionIdentity};
use sessionflow_core::{DeadLetterReason, Event, InputError, Millis};
use std::borrow::Cow;

const FORMAT: InputFormat = InputFormat::AmazonConnect;

/// The EventBridge `detail-type` of contact events.
const CONTACT_EVENT_DETAIL_TYPE: &str = "Amazon Connect Contact Event";

/// Reads Amazon Connect contact events and contact records.
#[derive(Debug, Clone)]
pub struct AmazonConnect {
    identity: SessionIdentity,
}

impl AmazonConnect {
    /// The adapter with its options.
    pub fn new(options: &AdapterOptions) -> Self {
        AmazonConnect { identity: options.session_identity }
    }
}

impl Adapter for AmazonConnect {
    fn format(&self) -> InputFormat {
        FORMAT
    }

    fn adapt(&self, record: &[u8], _state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError> {
        let object = common::parse_object(FORMAT, record)?;
        if let Some(detail_type) = common::field(&object, "detail-type") {
            if detail_type.as_str() != Some(CONTACT_EVENT_DETAIL_TYPE) {
                let found = detail_type.as_str().map_or_else(|| detail_type.type_name().to_owned(), |s| format!("{s:?}"));
                return Err(common::error(FORMAT, DeadLetterReason::BadFieldType, "detail-type", &format!("{CONTACT_EVENT_DETAIL_TYPE:?}, found {found}")));
            }
            return contact_event::adapt(self.identity, &object);
        }
        if ["ContactId", "LastUpdateTimestamp", "AWSContactTraceRecordFormatVersion"].iter().any(|name| common::field(&object, name).is_some()) {
            return contact_record::adapt(self.identity, &object);
        }
        Err(common::error(
            FORMAT,
            DeadLetterReason::DecodeError,
            "detail-type",
            &format!("{CONTACT_EVENT_DETAIL_TYPE:?} (an EventBridge contact event) or a contact record (ContactId, LastUpdateTimestamp), found neither"),
        ))
    }
}

/// Where an event sorts among events of the same millisecond. The engine
/// folds a session's events by (`occurred_at`, `event_id`), and Connect
/// stamps many moments with the same second (a leg's start and its flow, an
/// agent's assignment and connection, a leg's end and its containment), so
/// every id starts with the rank of its kind of moment, in lifecycle order.
#[derive(Debug, Clone, Copy)]
enum Rank {
    SessionStarted = 0,
    VirtualAgentStarted = 1,
    TransferStarted = 2,
    TransferCompleted = 3,
    VirtualAgentHandoff = 4,
    QueueEntered = 5,
    AgentAssigned = 6,
    AgentConnected = 7,
    HoldStarted = 8,
    HoldEnded = 9,
    VirtualAgentCompleted = 10,
    SessionEnded = 11,
    WrapupCompleted = 12,
    Fact = 13,
    PassThrough = 14,
}

/// A stable event id: the rank, then a digest of the parts that identify the
/// moment (the vendor's event id, or the contact id and the moment's name).
fn event_id(rank: Rank, parts: &[&str]) -> String {
    common::stable_id(&format!("{}-{:02}", FORMAT.source(), rank as u8), parts)
}

/// One contact (leg) of a customer journey, as both shapes describe it.
#[derive(Debug, Clone)]
struct Leg<'a> {
    contact_id: Cow<'a, str>,
    /// `initialContactId`, else the contact itself.
    journey_id: Cow<'a, str>,
    previous_contact_id: Option<Cow<'a, str>>,
    /// `initiationMethod`, upper case.
    method: Option<String>,
    channel: Option<&'static str>,
    direction: Option<&'static str>,
    /// The Connect instance id (from `instanceArn`).
    tenant: Option<Cow<'a, str>>,
}

/// Field names as each shape spells them (lookups ignore case; errors name
/// the field as the shape's documentation does).
struct Spelling {
    path: &'static str,
    contact_id: &'static str,
    initial_contact_id: &'static str,
    previous_contact_id: &'static str,
    initiation_method: &'static str,
    channel: &'static str,
    instance_arn: &'static str,
}

const EVENT_SPELLING: Spelling = Spelling {
    path: "detail",
    contact_id: "contactId",
    initial_contact_id: "initialContactId",
    previous_contact_id: "previousContactId",
    initiation_method: "initiationMethod",
    channel: "channel",
    instance_arn: "instanceArn",
};

const RECORD_SPELLING: Spelling = Spelling {
    path: "",
    contact_id: "ContactId",
    initial_contact_id: "InitialContactId",
    previous_contact_id: "PreviousContactId",
    initiation_method: "InitiationMethod",
    channel: "Channel",
    instance_arn: "InstanceARN",
};

impl<'a> Leg<'a> {
    fn read(object: &Object<'a>, names: &Spelling) -> Result<Leg<'a>, InputError> {
        let path = names.path;
        let contact_id = common::required_str(FORMAT, object, path, names.contact_id)?;
        let journey_id = common::optional_str(FORMAT, object, path, names.initial_contact_id)?.unwrap_or_else(|| contact_id.clone());
        let previous_contact_id = common::optional_str(FORMAT, object, path, names.previous_contact_id)?;
        let method = common::optional_str(FORMAT, object, path, names.initiation_method)?.map(|m| m.to_ascii_uppercase());
        let channel = match common::optional_str(FORMAT, object, path, names.channel)? {
            None => None,
            Some(native) => Some(channel(&native).ok_or_else(|| {
                let field = if path.is_empty() { names.channel.to_owned() } else { format!("{path}.{}", names.channel) };
                common::error(FORMAT, DeadLetterReason::BadFieldType, &field, &format!("VOICE, CHAT, TASK or EMAIL, found {native:?}"))
            })?),
        };
        let direction = method.as_deref().and_then(direction);
        let tenant = common::optional_str(FORMAT, object, path, names.instance_arn)?.map(|arn| arn_resource_id(arn, "instance"));
        Ok(Leg { contact_id, journey_id, previous_contact_id, method, channel, direction, tenant })
    }

    /// The canonical session of this leg.
    fn session_id(&self, identity: SessionIdentity) -> &str {
        match identity {
            SessionIdentity::Journey => &self.journey_id,
            SessionIdentity::Leg => &self.contact_id,
        }
    }

    /// Whether this leg opens its session: every leg does in leg identity;
    /// only the journey's first contact does in journey identity.
    fn opens_session(&self, identity: SessionIdentity) -> bool {
        identity == SessionIdentity::Leg || self.contact_id == self.journey_id
    }

    /// A leg an agent or a flow transferred the customer into.
    fn is_transfer(&self) -> bool {
        matches!(self.method.as_deref(), Some("TRANSFER" | "QUEUE_TRANSFER")) && self.previous_contact_id.is_some()
    }

    /// Whether the contact starts in a contact flow (Connect's IVR or bot),
    /// which is the canonical self-service: inbound calls, chats and
    /// emails, and tasks created by API. Outbound calls and callbacks go
    /// to an agent or a queue first.
    fn starts_in_flow(&self) -> bool {
        matches!(self.method.as_deref(), Some("INBOUND" | "API"))
    }

    /// An event of this leg's session with its envelope fields.
    fn event<'b>(&'b self, identity: SessionIdentity, rank: Rank, id_parts: &[&str], event_type: impl Into<Cow<'b, str>>, at: Millis) -> EventBuilder<'b> {
        EventBuilder::new(FORMAT, event_id(rank, id_parts), self.session_id(identity), event_type, at)
            .channel(self.channel)
            .direction(self.direction)
            .tenant(self.tenant.as_deref())
    }

    /// The end of this leg: the same event from `DISCONNECTED` and from the
    /// contact record (same id, time to the second: contact records carry
    /// whole seconds).
    fn ended(&self, identity: SessionIdentity, disconnected_at: Millis) -> EventBuilder<'_> {
        self.event(identity, Rank::SessionEnded, &[&self.contact_id, "session.ended"], "session.ended", whole_second(disconnected_at))
    }

    /// The end of the leg's after-contact work, from `COMPLETED` and from the
    /// contact record alike.
    fn wrapup_completed<'b>(&'b self, identity: SessionIdentity, at: Millis, agent_id: Option<&'b str>) -> EventBuilder<'b> {
        self.event(identity, Rank::WrapupCompleted, &[&self.contact_id, "wrapup.completed"], "wrapup.completed", whole_second(at)).attr("agent", agent_id)
    }
}

/// The canonical channel of Connect's `channel` (any case). A task (a work
/// item routed like a contact) has no canonical medium of its own; it is
/// asynchronous text work, so it is `messaging`.
fn channel(native: &str) -> Option<&'static str> {
    match native.to_ascii_uppercase().as_str() {
        "VOICE" => Some("voice"),
        "CHAT" => Some("chat"),
        "TASK" => Some("messaging"),
        "EMAIL" => Some("email"),
        _ => None,
    }
}

/// The direction an `initiationMethod` implies; `None` where it does not
/// say (transfers, API, monitoring).
fn direction(method: &str) -> Option<&'static str> {
    match method {
        "INBOUND" => Some("inbound"),
        "OUTBOUND" | "CALLBACK" => Some("outbound"),
        _ => None,
    }
}

/// The id in an ARN after `/<kind>/` (`…/agent/<id>`, `…/queue/<id>`,
/// `…:instance/<id>`), else its last path segment.
fn arn_resource_id<'a>(arn: Cow<'a, str>, kind: &str) -> Cow<'a, str> {
    match arn {
        Cow::Borrowed(arn) => Cow::Borrowed(resource_id(arn, kind)),
        Cow::Owned(arn) => Cow::Owned(resource_id(&arn, kind).to_owned()),
    }
}

fn resource_id<'a>(arn: &'a str, kind: &str) -> &'a str {
    let bytes = arn.as_bytes();
    // The first `<kind>/`.
    let marker = (0..bytes.len()).find(|&at| bytes[at..].starts_with(kind.as_bytes()) && bytes.get(at + kind.len()) == Some(&b'/'));
    let tail = match marker {
        Some(at) if at == 0 || matches!(bytes[at - 1], b'/' | b':') => &arn[at + kind.len() + 1..],
        _ => arn.rsplit('/').next().unwrap_or(arn),
    };
    tail.split('/').next().unwrap_or(tail)
}

fn whole_second(at: Millis) -> Millis {
    Millis(at.0 - at.0.rem_euclid(1000))
}

/// A native field name matches one of `names`, ignoring ASCII case.
fn named(key: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(key))
}

/// The fields of `object` except `used` ones: what the mapping keeps under
/// the `vendor` attribute.
fn unused_fields<'a>(object: &Object<'a>, used: &[&str]) -> Object<'a> {
    object.filtered(|k, v| !named(k, used) && !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_ids() {
        assert_eq!(resource_id("arn:aws:connect:us-east-1:111122223333:instance/inst-1/agent/agent-ann", "agent"), "agent-ann");
        assert_eq!(resource_id("arn:aws:connect:us-east-1:111122223333:instance/inst-1/queue/q-1", "queue"), "q-1");
        assert_eq!(resource_id("arn:aws:connect:us-east-1:111122223333:instance/inst-1", "instance"), "inst-1");
        assert_eq!(resource_id("plain-id", "agent"), "plain-id");
        assert_eq!(arn_resource_id(Cow::Owned("x:queue/q-2".to_owned()), "queue"), "q-2");
    }

    #[test]
    fn ranks_order_ids_within_a_millisecond() {
        let assigned = event_id(Rank::AgentAssigned, &["x"]);
        let connected = event_id(Rank::AgentConnected, &["x"]);
        let ended = event_id(Rank::SessionEnded, &["x"]);
        let pass = event_id(Rank::PassThrough, &["x"]);
        assert!(assigned < connected && connected < ended && ended < pass, "{assigned} {connected} {ended} {pass}");
        assert!(assigned.len() <= 128);
    }

    #[test]
    fn channels_in_any_case() {
        assert_eq!(channel("Voice"), Some("voice"));
        assert_eq!(channel("task"), Some("messaging"));
        assert_eq!(channel("EMAIL"), Some("email"));
        assert_eq!(channel("FAX"), None);
    }
}
