//! Dead letters: input the daemon could not use, kept byte for byte with the
//! reason in headers, so a fixed record can be replayed into the input topic.

use crate::event::closed_enum;
use crate::time::Millis;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

closed_enum! {
    /// Why a record went to the dead-letter topic (`dlq.reason`), a closed list.
    DeadLetterReason {
        DecodeError => "decode_error",
        MissingField => "missing_field",
        BadTimestamp => "bad_timestamp",
        BadFieldType => "bad_field_type",
        Oversize => "oversize",
        LateAfterRetention => "late_after_retention",
    }
}

/// A record that cannot become an event, with a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct InputError {
    /// The closed-list reason.
    pub reason: DeadLetterReason,
    /// What exactly was wrong (`dlq.detail`).
    pub detail: String,
}

/// Where an input record came from: provenance for audit and `dlq.*` headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InputPosition {
    /// Input topic (or file name in an offline replay): shared, as every
    /// record of a topic carries the same name.
    pub topic: Arc<str>,
    /// Input partition.
    pub partition: i32,
    /// Offset within the partition (record index in a replay).
    pub offset: i64,
}

closed_enum! {
    /// What the dead-letter payload setting (`dead_letter.payload`) did to a
    /// dead letter's value: the `dlq.payload` header, which tells the replay
    /// tooling what it can do with the record. `kept`: the original value,
    /// byte for byte (replayable). `redacted`: the privacy policy applied to
    /// what could be parsed (for inspection, not replay: it is not the
    /// record that came in). `dropped`: no value, headers only.
    DeadLetterPayload {
        Kept => "kept",
        Redacted => "redacted",
        Dropped => "dropped",
    }
}

/// A dead-letter record: the original key and value (unchanged unless the
/// dead-letter payload setting redacts or drops the value), plus headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Original record key (always kept: producers key by session id).
    pub key: Option<Vec<u8>>,
    /// The record value: the original, its redaction, or none (`payload`
    /// says which).
    pub value: Option<Vec<u8>>,
    /// `dlq.reason`.
    pub reason: DeadLetterReason,
    /// `dlq.detail`.
    pub detail: String,
    /// `dlq.topic`, `dlq.partition`, `dlq.offset`.
    pub input: InputPosition,
    /// `dlq.at`: processing time (wall clock in the daemon, stream time in a
    /// replay, so replays stay deterministic).
    pub at: Millis,
    /// `dlq.payload`: what was done to `value` (see [`DeadLetterPayload`]).
    pub payload: DeadLetterPayload,
}

impl DeadLetter {
    /// The `dlq.*` headers, in a fixed order.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("dlq.reason", self.reason.as_str().to_owned()),
            ("dlq.detail", self.detail.clone()),
            ("dlq.topic", self.input.topic.to_string()),
            ("dlq.partition", self.input.partition.to_string()),
            ("dlq.offset", self.input.offset.to_string()),
            ("dlq.at", self.at.to_rfc3339()),
        ]
    }

    /// The `dlq.payload` header (`kept`, `redacted` or `dropped`). Not part
    /// of [`DeadLetter::headers`], whose list is fixed: writers add it (the
    /// replay files when it is not `kept`; a reader takes an absent header
    /// for `kept`, as on dead letters written before the setting).
    pub fn payload_header(&self) -> (&'static str, &'static str) {
        ("dlq.payload", self.payload.as_str())
    }
}
