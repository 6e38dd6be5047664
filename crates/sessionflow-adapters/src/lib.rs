//! Vendor-native input: one native record in, zero or more canonical events
//! out (`docs/adapters.md`). Pure: no Kafka, no store. A snapshot format
//! asks [`AdapterState`] which of a snapshot's transitions the session
//! already has; the daemon and the replay answer from the engine's state.

pub mod amazon_connect;
pub mod canonical;
pub mod ccai_platform;
pub mod common;
pub mod genesys_cloud;
pub mod twilio_taskrouter;
pub mod zoom_contact_center;

use sessionflow_core::{Batch, Event, InputError, StateRead};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// The native format of an input topic (`topics.inputs[].format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InputFormat {
    /// sessionflow's own event (`docs/events.md`).
    #[default]
    Canonical,
    /// Amazon Connect: EventBridge contact events and contact records (CTR).
    AmazonConnect,
    /// Genesys Cloud conversation detail events.
    GenesysCloud,
    /// Twilio TaskRouter: Event Streams (CloudEvents) and workspace callbacks.
    TwilioTaskrouter,
    /// Zoom Contact Center `contact_center.*` webhooks.
    ZoomContactCenter,
    /// CCAI Platform external session events (snapshots).
    CcaiPlatform,
}

impl InputFormat {
    /// Every format, in the order the docs list them.
    pub const ALL: [InputFormat; 6] = [
        InputFormat::Canonical,
        InputFormat::AmazonConnect,
        InputFormat::GenesysCloud,
        InputFormat::TwilioTaskrouter,
        InputFormat::ZoomContactCenter,
        InputFormat::CcaiPlatform,
    ];

    /// The config and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Canonical => "canonical",
            InputFormat::AmazonConnect => "amazon-connect",
            InputFormat::GenesysCloud => "genesys-cloud",
            InputFormat::TwilioTaskrouter => "twilio-taskrouter",
            InputFormat::ZoomContactCenter => "zoom-contact-center",
            InputFormat::CcaiPlatform => "ccai-platform",
        }
    }

    /// The canonical `source` the adapter sets on its events.
    pub fn source(self) -> &'static str {
        match self {
            InputFormat::Canonical => "canonical",
            InputFormat::AmazonConnect => "connect",
            InputFormat::GenesysCloud => "genesys",
            InputFormat::TwilioTaskrouter => "twilio",
            InputFormat::ZoomContactCenter => "zoom",
            InputFormat::CcaiPlatform => "ccaip",
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An input format name that is not one of [`InputFormat::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown input format {0:?}: expected one of canonical, amazon-connect, genesys-cloud, twilio-taskrouter, zoom-contact-center, ccai-platform")]
pub struct UnknownFormat(pub String);

impl FromStr for InputFormat {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        InputFormat::ALL.into_iter().find(|f| f.as_str() == name).ok_or_else(|| UnknownFormat(name.to_owned()))
    }
}

/// What a session is when a vendor splits a contact into legs (a transfer
/// in Amazon Connect creates a new contact id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionIdentity {
    /// The customer's whole journey: all legs are one session, linked by
    /// the vendor's journey id (Connect's `initialContactId`, Genesys'
    /// conversation id); transfers between legs are `transfer.*` events.
    #[default]
    Journey,
    /// Each leg is its own session.
    Leg,
}

/// Settings shared by all adapters.
#[derive(Debug, Clone, Default)]
pub struct AdapterOptions {
    /// Journey (default) or leg.
    pub session_identity: SessionIdentity,
}

/// What an adapter may ask of the session's state: whether an event is
/// already recorded. A snapshot format derives every transition a snapshot
/// proves, and leaves out those already told; the session's event ids are
/// the engine's duplicate check, so the daemon answers from its store (and
/// the batch in progress) and keeps nothing apart. Correctness never hangs
/// on it: an event told twice is a duplicate to the engine.
pub trait AdapterState {
    /// Whether the session already has an event with this id.
    fn has_event(&self, session_id: &str, event_id: &str) -> bool;
    /// The adapter emitted the event (state that is not the engine's own
    /// records it here; the engine-backed state learns it when the event
    /// is processed).
    fn remember(&mut self, session_id: &str, event_id: &str);
}

/// [`AdapterState`] in memory, for tests and tools that run adapters
/// without the engine.
#[derive(Debug, Default, Clone)]
pub struct MemoryState(pub HashMap<String, HashSet<String>>);

impl AdapterState for MemoryState {
    fn has_event(&self, session_id: &str, event_id: &str) -> bool {
        self.0.get(session_id).is_some_and(|ids| ids.contains(event_id))
    }

    fn remember(&mut self, session_id: &str, event_id: &str) {
        self.0.entry(session_id.to_owned()).or_default().insert(event_id.to_owned());
    }
}

/// Turns one native record into canonical events.
pub trait Adapter: fmt::Debug + Send + Sync {
    /// The format it reads.
    fn format(&self) -> InputFormat;

    /// The canonical events of one native record, in the order they
    /// happened: none when the record tells nothing new (a repeated
    /// snapshot). A record that is not the vendor's format is an error
    /// whose detail names the vendor, the field and what was expected; it
    /// becomes a dead letter.
    fn adapt(&self, record: &[u8], state: &mut dyn AdapterState) -> Result<Vec<Event>, InputError>;
}

/// The adapter for a format.
pub fn adapter(format: InputFormat, options: &AdapterOptions) -> Box<dyn Adapter> {
    match format {
        InputFormat::Canonical => Box::new(canonical::Canonical),
        InputFormat::AmazonConnect => Box::new(amazon_connect::AmazonConnect::new(options)),
        InputFormat::GenesysCloud => Box::new(genesys_cloud::GenesysCloud::new(options)),
        InputFormat::TwilioTaskrouter => Box::new(twilio_taskrouter::TwilioTaskrouter::new(options)),
        InputFormat::ZoomContactCenter => Box::new(zoom_contact_center::ZoomContactCenter::new(options)),
        InputFormat::CcaiPlatform => Box::new(ccai_platform::CcaiPlatform::new(options)),
    }
}

/// A batch in progress as [`AdapterState`]: the session's events are the
/// store's and the batch's own.
#[derive(Debug)]
struct BatchState<'b, 'a, S: StateRead>(&'b Batch<'a, S>);

impl<S: StateRead> AdapterState for BatchState<'_, '_, S> {
    fn has_event(&self, session_id: &str, event_id: &str) -> bool {
        // A store error surfaces when the events are recorded; here it
        // only costs a re-derived event, which the engine drops.
        self.0.knows_event(session_id, event_id).unwrap_or(false)
    }

    fn remember(&mut self, _session_id: &str, _event_id: &str) {}
}

/// One native record's canonical events, for the batch that will record
/// them (its state answers the adapter's questions). A record without a
/// value is an error naming the format.
pub fn adapt_for_batch<S: StateRead>(adapter: &dyn Adapter, batch: &Batch<'_, S>, value: Option<&[u8]>) -> Result<Vec<Event>, InputError> {
    match value {
        Some(value) => adapter.adapt(value, &mut BatchState(batch)),
        None => Err(InputError {
            reason: sessionflow_core::DeadLetterReason::MissingField,
            detail: format!("{}: (record): expected a value, found none", adapter.format()),
        }),
    }
}
