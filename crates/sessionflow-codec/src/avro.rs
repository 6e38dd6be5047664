//! Avro with Confluent framing (magic byte 0, 4-byte big-endian schema id,
//! Avro binary body), driven by the schemas under `schemas/`.
//!
//! Records are converted from their JSON form by walking the schema, so the
//! Avro and JSON forms of a record carry the same values by construction.
//! Fields marked `"sessionflow.encoding": "json"` hold free-form JSON as text.
//!
//! [`AvroSchemas::encode`] goes straight from the JSON form to bytes (the
//! `encoder` module); [`json_to_avro`] builds the equivalent apache-avro
//! value, for container files and as the reference the encoder is tested
//! against.

mod encoder;

use crate::CodecError;
use apache_avro::schema::{RecordField, Schema};
use apache_avro::types::Value as Avro;
use encoder::DatumEncoder;
use serde_json::{Map, Number, Value};
use sessionflow_core::Millis;
use std::collections::HashMap;

/// The schema texts shipped in `schemas/`.
pub const EVENT_SCHEMA: &str = include_str!("../../../schemas/event.avsc");
/// Timeline record schema.
pub const TIMELINE_SCHEMA: &str = include_str!("../../../schemas/timeline.avsc");
/// Metadata record schema.
pub const METADATA_SCHEMA: &str = include_str!("../../../schemas/metadata.avsc");

/// Confluent wire-format magic byte.
pub const MAGIC: u8 = 0;

/// Which record a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// Input event.
    Event,
    /// Timeline record.
    Timeline,
    /// Metadata record.
    Metadata,
}

/// Parsed schemas, their compiled encoders and their registry ids.
#[derive(Debug, Clone)]
pub struct AvroSchemas {
    event: Schema,
    timeline: Schema,
    metadata: Schema,
    encoders: Encoders,
    ids: SchemaIds,
}

#[derive(Debug, Clone)]
struct Encoders {
    event: DatumEncoder,
    timeline: DatumEncoder,
    metadata: DatumEncoder,
}

/// Schema registry ids written in the Confluent header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaIds {
    /// Id of `schemas/event.avsc`.
    pub event: u32,
    /// Id of `schemas/timeline.avsc`.
    pub timeline: u32,
    /// Id of `schemas/metadata.avsc`.
    pub metadata: u32,
}

impl Default for SchemaIds {
    fn default() -> Self {
        SchemaIds { event: 1, timeline: 2, metadata: 3 }
    }
}

fn field_is_json(field: &RecordField) -> bool {
    field.custom_attributes.get("sessionflow.encoding").and_then(Value::as_str) == Some("json")
}

impl AvroSchemas {
    /// Parses the shipped schemas.
    pub fn new(ids: SchemaIds) -> Result<Self, CodecError> {
        let parse = |text: &str| Schema::parse_str(text).map_err(|e| CodecError::Schema(e.to_string()));
        let (event, timeline, metadata) = (parse(EVENT_SCHEMA)?, parse(TIMELINE_SCHEMA)?, parse(METADATA_SCHEMA)?);
        let encoders = Encoders { event: DatumEncoder::new(&event)?, timeline: DatumEncoder::new(&timeline)?, metadata: DatumEncoder::new(&metadata)? };
        Ok(AvroSchemas { event, timeline, metadata, encoders, ids })
    }

    /// The schema of a record kind.
    pub fn schema(&self, kind: RecordKind) -> &Schema {
        match kind {
            RecordKind::Event => &self.event,
            RecordKind::Timeline => &self.timeline,
            RecordKind::Metadata => &self.metadata,
        }
    }

    /// The registry id of a record kind.
    pub fn id(&self, kind: RecordKind) -> u32 {
        match kind {
            RecordKind::Event => self.ids.event,
            RecordKind::Timeline => self.ids.timeline,
            RecordKind::Metadata => self.ids.metadata,
        }
    }

    /// Encodes the JSON form of a record as framed Avro: the bytes
    /// `to_avro_datum(schema, json_to_avro(json, ..))` gives, behind the
    /// header, and the errors `json_to_avro` gives.
    pub fn encode(&self, kind: RecordKind, json: &Value) -> Result<Vec<u8>, CodecError> {
        let encoder = match kind {
            RecordKind::Event => &self.encoders.event,
            RecordKind::Timeline => &self.encoders.timeline,
            RecordKind::Metadata => &self.encoders.metadata,
        };
        // Most records take 100-800 bytes.
        let mut out = Vec::with_capacity(512);
        out.push(MAGIC);
        out.extend_from_slice(&self.id(kind).to_be_bytes());
        encoder.encode(json, &mut out)?;
        Ok(out)
    }

    /// Decodes framed Avro into the record's JSON form.
    ///
    /// The body is first walked against the schema without decoding it
    /// ([`check_datum`]): apache-avro allocates a string's length prefix
    /// before reading it (up to 512 MiB for a prefix a few bytes long), and
    /// reads a string cut short by the end of the input as null. Walked
    /// first, a record decodes only when every length it claims is there in
    /// the record, so decoding allocates in proportion to the input.
    pub fn decode(&self, kind: RecordKind, bytes: &[u8]) -> Result<Value, CodecError> {
        let body = unframe(bytes)?.1;
        let schema = self.schema(kind);
        check_datum(schema, body)?;
        let mut reader = body;
        let value = apache_avro::from_avro_datum(schema, &mut reader, None).map_err(|e| CodecError::Decode(e.to_string()))?;
        if !reader.is_empty() {
            return Err(CodecError::Decode(format!("{} trailing bytes after the Avro record", reader.len())));
        }
        avro_to_json(value, schema, false)
    }
}

/// Splits the Confluent header off: (schema id, body).
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), CodecError> {
    match bytes {
        [MAGIC, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [MAGIC, ..] => Err(CodecError::Decode("Confluent header shorter than 5 bytes".into())),
        _ => Err(CodecError::Decode("missing Confluent magic byte 0".into())),
    }
}

/// Checks that `body` is exactly one datum of `schema`: every length and
/// count fits in the bytes left, every union branch exists, and no byte
/// is missing or left over. Decodes nothing and allocates nothing.
pub fn check_datum(schema: &Schema, body: &[u8]) -> Result<(), CodecError> {
    let mut rest = body;
    skip(schema, &mut rest)?;
    if !rest.is_empty() {
        return Err(CodecError::Decode(format!("{} trailing bytes after the Avro record", rest.len())));
    }
    Ok(())
}

fn cut_short() -> CodecError {
    CodecError::Decode("the Avro record ends in the middle of a value".into())
}

/// A zig-zag varint `long`.
fn read_long(rest: &mut &[u8]) -> Result<i64, CodecError> {
    let mut n = 0u64;
    for i in 0..10 {
        let (&byte, tail) = rest.split_first().ok_or_else(cut_short)?;
        *rest = tail;
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((n >> 1) as i64 ^ -((n & 1) as i64));
        }
    }
    Err(CodecError::Decode("an Avro varint longer than 10 bytes".into()))
}

/// Skips `n` bytes: a length prefix that claims more than is left fails.
fn skip_bytes(rest: &mut &[u8], n: i64) -> Result<(), CodecError> {
    let n = usize::try_from(n).map_err(|_| CodecError::Decode(format!("negative Avro length {n}")))?;
    if n > rest.len() {
        return Err(CodecError::Decode(format!("an Avro length of {n} bytes, {} left in the record", rest.len())));
    }
    *rest = &rest[n..];
    Ok(())
}

fn skip(schema: &Schema, rest: &mut &[u8]) -> Result<(), CodecError> {
    match schema {
        Schema::Null => {}
        Schema::Boolean => skip_bytes(rest, 1)?,
        Schema::Int | Schema::Long | Schema::TimestampMillis | Schema::Date | Schema::TimeMillis | Schema::TimestampMicros | Schema::TimeMicros => {
            read_long(rest)?;
        }
        Schema::Float => skip_bytes(rest, 4)?,
        Schema::Double => skip_bytes(rest, 8)?,
        Schema::String | Schema::Bytes => {
            let n = read_long(rest)?;
            skip_bytes(rest, n)?;
        }
        Schema::Union(union) => {
            let index = read_long(rest)?;
            let branch = usize::try_from(index).ok().and_then(|i| union.variants().get(i));
            skip(branch.ok_or_else(|| CodecError::Decode(format!("Avro union branch {index} does not exist")))?, rest)?;
        }
        Schema::Record(record) => {
            for field in &record.fields {
                skip(&field.schema, rest)?;
            }
        }
        Schema::Array(_) | Schema::Map(_) => loop {
            // Blocks of items; a negative count is followed by the block's size.
            let mut count = read_long(rest)?;
            if count == 0 {
                break;
            }
            if count < 0 {
                read_long(rest)?;
                count = count.checked_neg().ok_or_else(|| CodecError::Decode("Avro block count out of range".into()))?;
            }
            // Every item of the shipped schemas takes a byte at least: a
            // count above the bytes left is false, and is not looped over.
            if usize::try_from(count).map_or(true, |n| n > rest.len()) {
                return Err(CodecError::Decode(format!("an Avro block of {count} items, {} bytes left in the record", rest.len())));
            }
            for _ in 0..count {
                match schema {
                    Schema::Array(array) => skip(&array.items, rest)?,
                    Schema::Map(map) => {
                        skip(&Schema::String, rest)?;
                        skip(&map.types, rest)?;
                    }
                    _ => unreachable!("matched as an array or a map"),
                }
            }
        },
        other => return Err(CodecError::Schema(format!("unsupported schema {other:?}"))),
    }
    Ok(())
}

fn mismatch(path: &str, expected: &str, got: &Value) -> CodecError {
    CodecError::Encode(format!("{path}: expected {expected}, got {got}"))
}

/// Converts a record's JSON form to an Avro value of `schema`.
pub fn json_to_avro(value: &Value, schema: &Schema, json_text: bool, path: &str) -> Result<Avro, CodecError> {
    Ok(match schema {
        Schema::Null => match value {
            Value::Null => Avro::Null,
            other => return Err(mismatch(path, "null", other)),
        },
        Schema::Boolean => Avro::Boolean(value.as_bool().ok_or_else(|| mismatch(path, "boolean", value))?),
        Schema::Int => {
            let n = value.as_i64().ok_or_else(|| mismatch(path, "int", value))?;
            Avro::Int(i32::try_from(n).map_err(|_| mismatch(path, "32-bit int", value))?)
        }
        Schema::Long => Avro::Long(value.as_i64().ok_or_else(|| mismatch(path, "long", value))?),
        Schema::Double => Avro::Double(value.as_f64().ok_or_else(|| mismatch(path, "double", value))?),
        Schema::String if json_text => Avro::String(serde_json::to_string(value).map_err(|e| CodecError::Encode(e.to_string()))?),
        Schema::String => Avro::String(value.as_str().ok_or_else(|| mismatch(path, "string", value))?.to_owned()),
        Schema::TimestampMillis => {
            let ms = match value {
                Value::String(s) => Millis::parse_rfc3339(s).map_err(|e| CodecError::Encode(format!("{path}: {e}")))?.0,
                Value::Number(n) => n.as_i64().ok_or_else(|| mismatch(path, "timestamp", value))?,
                other => return Err(mismatch(path, "timestamp", other)),
            };
            Avro::TimestampMillis(ms)
        }
        Schema::Array(array) => {
            let items = value.as_array().ok_or_else(|| mismatch(path, "array", value))?;
            Avro::Array(items.iter().map(|v| json_to_avro(v, &array.items, json_text, path)).collect::<Result<_, _>>()?)
        }
        Schema::Map(map) => {
            let object = value.as_object().ok_or_else(|| mismatch(path, "object", value))?;
            let mut out = HashMap::with_capacity(object.len());
            for (k, v) in object {
                out.insert(k.clone(), json_to_avro(v, &map.types, json_text, path)?);
            }
            Avro::Map(out)
        }
        Schema::Union(union) => {
            let variants = union.variants();
            let null_index = variants.iter().position(|s| matches!(s, Schema::Null));
            match (value, null_index) {
                (Value::Null, Some(i)) => Avro::Union(i as u32, Box::new(Avro::Null)),
                _ => {
                    let (i, inner) = variants
                        .iter()
                        .enumerate()
                        .find(|(_, s)| !matches!(s, Schema::Null))
                        .ok_or_else(|| mismatch(path, "a non-null union branch", value))?;
                    Avro::Union(i as u32, Box::new(json_to_avro(value, inner, json_text, path)?))
                }
            }
        }
        Schema::Record(record) => {
            let object = value.as_object().ok_or_else(|| mismatch(path, "object", value))?;
            let mut fields = Vec::with_capacity(record.fields.len());
            for field in &record.fields {
                let v = object.get(&field.name).unwrap_or(&Value::Null);
                let child = format!("{path}.{}", field.name);
                fields.push((field.name.clone(), json_to_avro(v, &field.schema, field_is_json(field), &child)?));
            }
            Avro::Record(fields)
        }
        other => return Err(CodecError::Schema(format!("{path}: unsupported schema {other:?}"))),
    })
}

fn number(f: f64) -> Value {
    // Integral doubles read back as integers, as the JSON form writes them.
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// Converts an Avro value of `schema` back to the record's JSON form.
pub fn avro_to_json(value: Avro, schema: &Schema, json_text: bool) -> Result<Value, CodecError> {
    let bad = |what: &str| CodecError::Decode(format!("unexpected Avro value for {what}"));
    Ok(match (value, schema) {
        (Avro::Null, _) => Value::Null,
        (Avro::Boolean(b), _) => Value::Bool(b),
        (Avro::Int(n), _) => Value::from(n),
        (Avro::Long(n), Schema::TimestampMillis) | (Avro::TimestampMillis(n), _) => Value::String(Millis(n).to_rfc3339()),
        (Avro::Long(n), _) => Value::from(n),
        (Avro::Double(f), _) => number(f),
        (Avro::Float(f), _) => number(f64::from(f)),
        (Avro::String(s), _) if json_text => serde_json::from_str(&s).map_err(|e| CodecError::Decode(format!("JSON text field: {e}")))?,
        (Avro::String(s), _) => Value::String(s),
        (Avro::Union(i, inner), Schema::Union(union)) => {
            let branch = union.variants().get(i as usize).ok_or_else(|| bad("union"))?;
            avro_to_json(*inner, branch, json_text)?
        }
        (Avro::Array(items), Schema::Array(array)) => {
            Value::Array(items.into_iter().map(|v| avro_to_json(v, &array.items, json_text)).collect::<Result<_, _>>()?)
        }
        (Avro::Map(entries), Schema::Map(map)) => {
            let mut sorted: Vec<_> = entries.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in sorted {
                out.insert(k, avro_to_json(v, &map.types, json_text)?);
            }
            Value::Object(out)
        }
        (Avro::Record(fields), Schema::Record(record)) => {
            let mut out = Map::new();
            for ((name, v), field) in fields.into_iter().zip(&record.fields) {
                out.insert(name, avro_to_json(v, &field.schema, field_is_json(field))?);
            }
            Value::Object(out)
        }
        (other, schema) => return Err(CodecError::Decode(format!("unexpected Avro value {other:?} for schema {schema:?}"))),
    })
}
