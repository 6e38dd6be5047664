//! The built-in classification: where personal data sits in canonical
//! events and in what the adapters pass through (`docs/privacy.md` has the
//! table). Rules here come after the user's, in this order: the first that
//! matches a value or one of its containers decides, so the specific come
//! before the carriers that hold them (a phone number inside a vendor
//! object is `contact`, the rest of the object `vendor`).

use super::FieldClass::{self, Contact, Custom, Link, Staff, Text, Vendor};
use super::path::{Pattern, Segment};
use crate::event::EventType as T;

/// The event types a built-in rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Types {
    All,
    Only(&'static [T]),
}

/// A condition on the object holding the matched value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// The sibling `key` is a string among `values` (ASCII case ignored).
    SiblingIn(&'static str, &'static [&'static str]),
}

/// One built-in rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Builtin {
    pub(crate) types: Types,
    pub(crate) pattern: Pattern,
    pub(crate) class: FieldClass,
    pub(crate) condition: Option<Condition>,
}

/// Survey answer kinds whose value is free text.
pub(crate) const FREE_TEXT_ANSWER_KINDS: &[&str] = &["text", "comment", "free_text", "open", "verbatim"];

/// Participant roles whose ids are staff (agents, bots), not addresses.
const STAFF_ROLES: &[&str] = &["agent", "virtual_agent"];

/// Field names that hold contact details wherever structured data is passed
/// through (custom data, virtual-agent variables and parameters, SIP
/// headers, vendor fields), normalised: lower case, `_` and `-` removed.
pub(crate) const CONTACT_KEYS: &[&str] = &[
    "ani",
    "dnis",
    "phone",
    "phonenumber",
    "phonenumbers",
    "mobile",
    "mobilenumber",
    "msisdn",
    "email",
    "emails",
    "emailaddress",
    "callbacknumber",
    "callbacknumbers",
    "callernumber",
    "calleenumber",
    "consumernumber",
    "customernumber",
    "customerphone",
    "consumeremail",
    "customeremail",
    "useremail",
    "address",
    "addressfrom",
    "addressto",
    "fromnumber",
    "tonumber",
    "sipuri",
    "callbackusername",
    "consumerdisplayname",
    "customername",
    "endusername",
];

/// More contact fields, under `vendor` only (too common a word elsewhere).
pub(crate) const VENDOR_CONTACT_KEYS: &[&str] = &["from", "to", "caller", "called"];

/// Field names that hold free text, normalised.
pub(crate) const TEXT_KEYS: &[&str] =
    &["notes", "note", "wrapupnotes", "dispositionnotes", "comment", "comments", "transcript", "summary", "freetext", "feedback"];

/// Field names that hold staff names, normalised.
pub(crate) const STAFF_KEYS: &[&str] = &["username", "agentusername", "workername", "agentname", "userdisplayname", "assigneduserdisplayname", "agentemail"];

/// Field names of links (recordings, CRM records, uploads), normalised.
pub(crate) const LINK_KEYS: &[&str] = &["url", "urls", "recordingurl", "recordinglocation", "location", "link", "href"];

/// Vendor fields that hold customer-supplied structured data, normalised:
/// Twilio's task attributes, Connect's contact attributes, details and
/// references, user data of other platforms.
pub(crate) const VENDOR_CUSTOM_KEYS: &[&str] =
    &["taskattributes", "attributes", "contactdetails", "references", "customdata", "participantdata", "userdata", "contactattributes"];

/// Attributes adapters add to events of any type (`docs/adapters.md`):
/// part of the model, so never "unknown".
pub(crate) const ADAPTER_ATTRIBUTES: &[&str] = &["vendor", "contact_id", "task_sid", "synthetic"];

/// Attributes that carry structured data of any shape, and the types
/// carrying them; the key lists above apply at any depth inside them.
const PARAMS_TYPES: &[T] = &[T::VirtualAgentStarted, T::VirtualAgentConnected, T::PostSessionStarted, T::SipRedirected, T::SipHeaders];
const ANY_KEYS_TYPES: &[T] = &[T::CustomDataReceived, T::ApiRequest, T::ApiResponse];

const PARTICIPANT_TYPES: &[T] = &[T::ParticipantAddStarted, T::ParticipantAdded, T::ParticipantAddFailed, T::ParticipantLeft];
const AGENT_TYPES: &[T] = &[
    T::AgentOffered,
    T::AgentDeclined,
    T::AgentAssigned,
    T::AgentConnected,
    T::EngagementReleased,
    T::WrapupCompleted,
    T::DispositionSet,
    T::PaymentProcessed,
    T::AgentAssistSummary,
];
const TRANSFER_TYPES: &[T] = &[T::TransferStarted, T::TransferCompleted, T::TransferFailed];
const SIP_TYPES: &[T] = &[T::SipRedirected, T::SipHeaders];

fn key(k: &str) -> Segment {
    Segment::Key(k.to_owned())
}

fn one(types: &'static [T], attribute: &str, class: FieldClass) -> Builtin {
    Builtin { types: Types::Only(types), pattern: Pattern::of(vec![key(attribute)]), class, condition: None }
}

/// The built-in rules, in order.
pub(crate) fn builtins() -> Vec<Builtin> {
    let mut rules = vec![
        // Contact details of the canonical model.
        one(&[T::SessionStarted], "ani", Contact),
        one(&[T::SessionStarted], "outbound_number", Contact),
        one(&[T::PhoneNumberCollected], "inbound", Contact),
        one(&[T::PhoneNumberCollected], "callback", Contact),
        one(&[T::EmailCollected], "email", Contact),
        one(SIP_TYPES, "destination", Contact),
        // Connect's `TransferredToEndpoint.Address`, in its custom data.
        one(&[T::CustomDataReceived], "connect_transferred_to", Contact),
        // A participant is staff when its role says so, else an address.
        Builtin { condition: Some(Condition::SiblingIn("role", STAFF_ROLES)), ..one(PARTICIPANT_TYPES, "participant", Staff) },
        one(PARTICIPANT_TYPES, "participant", Contact),
        one(PARTICIPANT_TYPES, "by", Staff),
        // Free text.
        one(&[T::TranscriptSegment], "text", Text),
        one(&[T::RatingReceived], "comment", Text),
        one(&[T::NoteReceived], "text", Text),
        one(&[T::DispositionSet], "notes", Text),
        one(&[T::AgentAssistSummary], "summary", Text),
        one(&[T::ContentCardSelected], "response", Text),
        Builtin {
            types: Types::Only(&[T::SurveyResponse]),
            pattern: Pattern::of(vec![key("answers"), Segment::Any, key("value")]),
            class: Text,
            condition: Some(Condition::SiblingIn("kind", FREE_TEXT_ANSWER_KINDS)),
        },
        // Links.
        one(&[T::MediaUploaded], "url", Link),
        one(&[T::RecordingAvailable], "url", Link),
        one(&[T::RecordingAvailable], "urls", Link),
        one(&[T::CrmTicketLinked], "url", Link),
        // Staff.
        one(AGENT_TYPES, "agent", Staff),
        one(AGENT_TYPES, "agent_id", Staff),
        one(TRANSFER_TYPES, "from_agent", Staff),
        one(TRANSFER_TYPES, "to_agent", Staff),
        one(&[T::VerificationCompleted, T::EmergencyRequested], "by", Staff),
    ];
    // Known field names inside the carriers of structured data.
    let carriers: [(Types, &str); 4] = [
        (Types::All, "vendor"),
        (Types::Only(PARAMS_TYPES), "params"),
        (Types::Only(&[T::VirtualAgentVariablesCaptured]), "variables"),
        (Types::Only(SIP_TYPES), "headers"),
    ];
    for (keys, class) in [(CONTACT_KEYS, Contact), (TEXT_KEYS, Text), (STAFF_KEYS, Staff), (LINK_KEYS, Link)] {
        for (types, carrier) in &carriers {
            rules.push(Builtin {
                types: types.clone(),
                pattern: Pattern::of(vec![key(carrier), Segment::AnyDepth, Segment::Loose(keys)]),
                class,
                condition: None,
            });
        }
        rules.push(Builtin { types: Types::Only(ANY_KEYS_TYPES), pattern: Pattern::of(vec![Segment::AnyDepth, Segment::Loose(keys)]), class, condition: None });
    }
    rules.push(Builtin {
        types: Types::All,
        pattern: Pattern::of(vec![key("vendor"), Segment::AnyDepth, Segment::Loose(VENDOR_CONTACT_KEYS)]),
        class: Contact,
        condition: None,
    });
    // The carriers themselves.
    rules.extend([
        Builtin { types: Types::Only(ANY_KEYS_TYPES), pattern: Pattern::of(vec![Segment::Any]), class: Custom, condition: None },
        one(PARAMS_TYPES, "params", Custom),
        one(&[T::VirtualAgentVariablesCaptured], "variables", Custom),
        one(SIP_TYPES, "headers", Custom),
        Builtin {
            types: Types::All,
            pattern: Pattern::of(vec![key("vendor"), Segment::AnyDepth, Segment::Loose(VENDOR_CUSTOM_KEYS)]),
            class: Custom,
            condition: None,
        },
        Builtin { types: Types::All, pattern: Pattern::of(vec![key("vendor")]), class: Vendor, condition: None },
    ]);
    rules
}
