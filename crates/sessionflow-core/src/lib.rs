//! The pure lifecycle engine of sessionflow.
//!
//! Events in, timeline / metadata / dead-letter records and state writes out.
//! No Kafka, no RocksDB, no async: the daemon and the offline replay drive
//! the same [`processor::Batch`] over their own [`state::StateRead`].

pub mod attributes;
pub mod cache;
pub mod deadletter;
mod envelope;
pub mod event;
pub mod fold;
pub mod json;
pub mod json_bytes;
pub mod lifecycle;
pub mod memstore;
pub mod privacy;
pub mod processor;
pub mod records;
pub mod state;
pub mod time;

pub use attributes::Attributes;
pub use cache::SessionCache;
pub use deadletter::{DeadLetter, DeadLetterPayload, DeadLetterReason, InputError, InputPosition};
pub use event::{Channel, Direction, Event, EventFields, EventType};
pub use fold::{Fold, FoldRules};
pub use lifecycle::{Anomaly, AnswerType, Outcome, RevisionReason, State};
pub use privacy::{DeadLetterMode, FieldAction, FieldClass, PolicyError, PrivacyPolicy, PrivacyRule, PrivacySettings};
pub use processor::{Batch, BatchResult, BatchStats, EngineConfig, InputRecord, Output};
pub use records::{MetadataRecord, TimelineRecord};
pub use state::{EventsKey, Marker, PartitionMeta, SessionEntry, StateRead, Timer, TimerKind, Write};
pub use time::Millis;
