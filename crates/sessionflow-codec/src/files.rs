//! The files of an offline replay: `timeline.jsonl`, `metadata.jsonl` and
//! `dead_letter.jsonl` (JSONL), or `timeline.avro` / `metadata.avro` (Avro
//! object container files with the shipped schemas) plus `tombstones.jsonl`
//! and `dead_letter.jsonl`.

use crate::avro::{AvroSchemas, RecordKind, json_to_avro};
use crate::{CodecError, Encoding};
use serde_json::{Value, json};
use sessionflow_core::{DeadLetter, DeadLetterPayload, Output};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// One dead letter as a JSON line: key and value as UTF-8 text when they
/// are, else as hex (`key_hex`, `value_hex`), plus the `dlq.*` headers
/// (`dlq.payload` when the value was redacted or dropped).
pub fn dead_letter_json(d: &DeadLetter) -> Value {
    let text = |bytes: &Option<Vec<u8>>| bytes.as_ref().and_then(|b| std::str::from_utf8(b).ok()).map(str::to_owned);
    let hex = |bytes: &Option<Vec<u8>>| match bytes {
        Some(b) if std::str::from_utf8(b).is_err() => Some(hex_encode(b)),
        _ => None,
    };
    let mut headers: serde_json::Map<String, Value> = d.headers().into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect();
    // Absent means kept, as on dead letters written before the setting.
    if d.payload != DeadLetterPayload::Kept {
        let (k, v) = d.payload_header();
        headers.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    json!({
        "key": text(&d.key),
        "key_hex": hex(&d.key),
        "value": text(&d.value),
        "value_hex": hex(&d.value),
        "headers": headers,
    })
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tombstone line of an erased session.
pub fn tombstone_json(session_id: &str) -> Value {
    json!({"session_id": session_id, "tombstone": true})
}

enum Sink<'a> {
    Jsonl(BufWriter<File>),
    Avro(apache_avro::Writer<'a, BufWriter<File>>, RecordKind),
}

/// Writes replay outputs to a directory.
pub struct OutputFiles<'a> {
    timeline: Sink<'a>,
    metadata: Sink<'a>,
    tombstones: Option<BufWriter<File>>,
    dead_letter: BufWriter<File>,
    schemas: &'a AvroSchemas,
}

impl std::fmt::Debug for OutputFiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputFiles").finish_non_exhaustive()
    }
}

fn create(dir: &Path, name: &str) -> Result<BufWriter<File>, CodecError> {
    Ok(BufWriter::with_capacity(1 << 20, File::create(dir.join(name))?))
}

impl<'a> OutputFiles<'a> {
    /// Creates the files (truncating old ones) in `dir`, which must exist.
    pub fn create(dir: &Path, encoding: Encoding, schemas: &'a AvroSchemas) -> Result<Self, CodecError> {
        let (timeline, metadata, tombstones) = match encoding {
            Encoding::Json => {
                for stale in ["timeline.avro", "metadata.avro", "tombstones.jsonl"] {
                    let _ = std::fs::remove_file(dir.join(stale));
                }
                (Sink::Jsonl(create(dir, "timeline.jsonl")?), Sink::Jsonl(create(dir, "metadata.jsonl")?), None)
            }
            Encoding::Avro => {
                for stale in ["timeline.jsonl", "metadata.jsonl"] {
                    let _ = std::fs::remove_file(dir.join(stale));
                }
                let avro = |name: &str, kind: RecordKind| -> Result<Sink<'a>, CodecError> {
                    let writer = apache_avro::Writer::new(schemas.schema(kind), create(dir, name)?);
                    Ok(Sink::Avro(writer, kind))
                };
                (avro("timeline.avro", RecordKind::Timeline)?, avro("metadata.avro", RecordKind::Metadata)?, Some(create(dir, "tombstones.jsonl")?))
            }
        };
        Ok(OutputFiles { timeline, metadata, tombstones, dead_letter: create(dir, "dead_letter.jsonl")?, schemas })
    }

    fn write_sink(sink: &mut Sink<'a>, schemas: &AvroSchemas, json: &Value) -> Result<(), CodecError> {
        match sink {
            Sink::Jsonl(w) => {
                serde_json::to_writer(&mut *w, json).map_err(|e| CodecError::Encode(e.to_string()))?;
                w.write_all(b"\n")?;
            }
            Sink::Avro(w, kind) => {
                let value = json_to_avro(json, schemas.schema(*kind), false, "")?;
                w.append(value).map_err(|e| CodecError::Encode(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Writes one output.
    pub fn write(&mut self, output: &Output) -> Result<(), CodecError> {
        match output {
            Output::Timeline(r) => Self::write_sink(&mut self.timeline, self.schemas, &to_json(r.as_ref())?),
            Output::Metadata(r) => Self::write_sink(&mut self.metadata, self.schemas, &to_json(r.as_ref())?),
            Output::Tombstone(id) => {
                let line = tombstone_json(id);
                match &mut self.tombstones {
                    Some(w) => write_line(w, &line),
                    None => Self::write_sink(&mut self.metadata, self.schemas, &line),
                }
            }
            Output::DeadLetter(d) => write_line(&mut self.dead_letter, &dead_letter_json(d)),
        }
    }

    /// Flushes every file.
    pub fn finish(self) -> Result<(), CodecError> {
        for sink in [self.timeline, self.metadata] {
            match sink {
                Sink::Jsonl(mut w) => w.flush()?,
                Sink::Avro(w, _) => {
                    let mut inner = w.into_inner().map_err(|e| CodecError::Encode(e.to_string()))?;
                    inner.flush()?;
                }
            }
        }
        if let Some(mut w) = self.tombstones {
            w.flush()?;
        }
        let mut dlq = self.dead_letter;
        dlq.flush()?;
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(record: &T) -> Result<Value, CodecError> {
    serde_json::to_value(record).map_err(|e| CodecError::Encode(e.to_string()))
}

fn write_line(w: &mut BufWriter<File>, json: &Value) -> Result<(), CodecError> {
    serde_json::to_writer(&mut *w, json).map_err(|e| CodecError::Encode(e.to_string()))?;
    w.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessionflow_core::{DeadLetterReason, InputPosition, Millis};

    #[test]
    fn dead_letter_lines_say_when_the_value_was_redacted_or_dropped() {
        let kept = DeadLetter {
            key: Some(b"s1".to_vec()),
            value: Some(b"{\"a\":1}".to_vec()),
            reason: DeadLetterReason::MissingField,
            detail: "d".into(),
            input: InputPosition { topic: "t".into(), partition: 0, offset: 3 },
            at: Millis(0),
            payload: DeadLetterPayload::Kept,
        };
        let line = dead_letter_json(&kept);
        assert_eq!(line["value"], "{\"a\":1}");
        assert!(line["headers"].get("dlq.payload").is_none(), "absent means kept: {line}");
        let dropped = DeadLetter { value: None, payload: DeadLetterPayload::Dropped, ..kept.clone() };
        let line = dead_letter_json(&dropped);
        assert_eq!((line["value"].clone(), line["headers"]["dlq.payload"].clone()), (Value::Null, json!("dropped")));
        let redacted = DeadLetter { payload: DeadLetterPayload::Redacted, ..kept };
        assert_eq!(dead_letter_json(&redacted)["headers"]["dlq.payload"], "redacted");
    }
}
