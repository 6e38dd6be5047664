//! Encodings of sessionflow's records: JSON, and Avro with Confluent framing.
//!
//! Input values are recognised by their first byte: `0` is Confluent-framed
//! Avro, anything else is JSON. Outputs use the configured [`Encoding`].

pub mod avro;
pub mod files;
pub mod json_records;
pub mod json_schema;
pub mod json_writer;

use avro::{AvroSchemas, RecordKind, SchemaIds};
use serde::{Deserialize, Serialize};
use sessionflow_core::{DeadLetterReason, Event, InputError, MetadataRecord, Output, TimelineRecord};

/// Errors of the codecs.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A shipped schema did not parse or does not fit the records.
    #[error("schema: {0}")]
    Schema(String),
    /// A record could not be encoded.
    #[error("encode: {0}")]
    Encode(String),
    /// Bytes could not be decoded.
    #[error("decode: {0}")]
    Decode(String),
    /// Writing a file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 JSON, one object per record.
    #[default]
    Json,
    /// Avro binary with the Confluent header.
    Avro,
}

impl std::str::FromStr for Encoding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "json" => Ok(Encoding::Json),
            "avro" => Ok(Encoding::Avro),
            other => Err(format!("unknown encoding {other:?}: use json or avro")),
        }
    }
}

/// Largest input value accepted by default; larger ones are dead letters
/// with reason `oversize`.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 512 * 1024;

/// Decodes input values and encodes output records.
#[derive(Debug, Clone)]
pub struct Codec {
    /// Output encoding.
    pub encoding: Encoding,
    /// Avro schemas and ids.
    pub schemas: AvroSchemas,
    /// Largest input value accepted.
    pub max_event_bytes: usize,
}

/// Starting capacity of the vector a JSON record of `kind` is written to:
/// room for nearly all of them (`tests/json_writer.rs` checks the
/// simulator's), so it is allocated once and never regrows.
pub fn json_capacity(kind: RecordKind) -> usize {
    match kind {
        RecordKind::Event => 512,
        RecordKind::Timeline => 768,
        RecordKind::Metadata => 4096,
    }
}

fn input_error(reason: DeadLetterReason, detail: impl Into<String>) -> InputError {
    InputError { reason, detail: detail.into() }
}

impl Codec {
    /// A codec with the shipped schemas.
    pub fn new(encoding: Encoding, ids: SchemaIds, max_event_bytes: usize) -> Result<Self, CodecError> {
        Ok(Codec { encoding, schemas: AvroSchemas::new(ids)?, max_event_bytes })
    }

    /// JSON output, default ids and size limit.
    pub fn json() -> Self {
        Codec::new(Encoding::Json, SchemaIds::default(), DEFAULT_MAX_EVENT_BYTES).expect("shipped schemas parse")
    }

    /// Avro output, default ids and size limit.
    pub fn avro() -> Self {
        Codec::new(Encoding::Avro, SchemaIds::default(), DEFAULT_MAX_EVENT_BYTES).expect("shipped schemas parse")
    }

    /// Refuses an input value over `max_event_bytes` (`oversize`), before
    /// anything reads it: canonical or a vendor's native record.
    pub fn check_size(&self, value: Option<&[u8]>) -> Result<(), InputError> {
        match value {
            Some(bytes) if bytes.len() > self.max_event_bytes => Err(input_error(
                DeadLetterReason::Oversize,
                format!("the value has {} bytes, more than max_event_bytes = {}", bytes.len(), self.max_event_bytes),
            )),
            _ => Ok(()),
        }
    }

    /// Decodes one input value (JSON or framed Avro) into a validated event.
    pub fn decode_event(&self, value: Option<&[u8]>) -> Result<Event, InputError> {
        let Some(bytes) = value else {
            return Err(input_error(DeadLetterReason::DecodeError, "the record has no value (null)"));
        };
        self.check_size(value)?;
        if bytes.first() == Some(&avro::MAGIC) {
            let json =
                self.schemas.decode(RecordKind::Event, bytes).map_err(|e| input_error(DeadLetterReason::DecodeError, format!("invalid Avro event: {e}")))?;
            return Event::from_json(json);
        }
        Event::from_json_slice(bytes)
    }

    /// Encodes an input event (for producers: the simulator, tests).
    pub fn encode_event(&self, event: &Event) -> Result<Vec<u8>, CodecError> {
        match self.encoding {
            Encoding::Json => json_writer::to_vec_with_capacity(event, json_capacity(RecordKind::Event)),
            Encoding::Avro => self.schemas.encode(RecordKind::Event, &event.to_json()),
        }
    }

    /// Encodes a timeline record.
    pub fn encode_timeline(&self, record: &TimelineRecord) -> Result<Vec<u8>, CodecError> {
        self.encode_record(RecordKind::Timeline, record)
    }

    /// Encodes a metadata record.
    pub fn encode_metadata(&self, record: &MetadataRecord) -> Result<Vec<u8>, CodecError> {
        self.encode_record(RecordKind::Metadata, record)
    }

    fn encode_record<T: Serialize + json_records::WriteJson>(&self, kind: RecordKind, record: &T) -> Result<Vec<u8>, CodecError> {
        match self.encoding {
            Encoding::Json => Ok(json_records::to_vec(record, json_capacity(kind))),
            Encoding::Avro => {
                let json = serde_json::to_value(record).map_err(|e| CodecError::Encode(e.to_string()))?;
                self.schemas.encode(kind, &json)
            }
        }
    }

    /// The value bytes of an output record (`None` for a tombstone).
    pub fn encode_output(&self, output: &Output) -> Result<Option<Vec<u8>>, CodecError> {
        Ok(match output {
            Output::Timeline(r) => Some(self.encode_timeline(r)?),
            Output::Metadata(r) => Some(self.encode_metadata(r)?),
            Output::Tombstone(_) => None,
            Output::DeadLetter(d) => d.value.clone(),
        })
    }

    /// Decodes an output value of either encoding to its JSON form.
    pub fn decode_record(&self, kind: RecordKind, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        if bytes.first() == Some(&avro::MAGIC) {
            self.schemas.decode(kind, bytes)
        } else {
            serde_json::from_slice(bytes).map_err(|e| CodecError::Decode(e.to_string()))
        }
    }
}
