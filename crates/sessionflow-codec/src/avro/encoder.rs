//! A schema-driven Avro binary encoder that writes a record's JSON form
//! straight to bytes.
//!
//! Why not apache-avro (0.21): `to_avro_datum` builds a `ResolvedSchema`
//! twice per call (validation, then encoding), validates the value and looks
//! every record field up in a fresh `HashMap`, and needs the record rebuilt
//! as a generic `types::Value` first, with a path string formatted per
//! field. That was about three quarters of Avro encoding time. Its other
//! entry points do not fit: `Writer` writes container files,
//! `GenericSingleObjectWriter` the single-object header (Confluent's 5-byte
//! header is refused), both still validate and encode through the generic
//! `Value`; its serde serializer (`write_avro_datum_ref`) expects the Avro
//! shape (integer timestamps, JSON text fields as strings), not our JSON form.
//!
//! This encoder walks the JSON value along a schema compiled once into a
//! tree of `Node`s. It accepts exactly what `json_to_avro` accepts, fails
//! with the same messages, and writes the bytes `to_avro_datum` writes for
//! that value (tests/avro_encoder.rs compares the two). The one difference:
//! map entries are written in the JSON object's order, where apache-avro
//! writes its `HashMap`'s arbitrary order; both decode to the same map.

use super::{field_is_json, mismatch};
use crate::CodecError;
use apache_avro::schema::Schema;
use serde_json::Value;
use sessionflow_core::Millis;
use std::fmt;

/// One schema node, with what encoding needs worked out in advance.
#[derive(Debug, Clone)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Double,
    String,
    /// A string under a field marked `"sessionflow.encoding": "json"`:
    /// any JSON value, written as its text.
    JsonText,
    TimestampMillis,
    Array(Box<Node>),
    Map(Box<Node>),
    /// `json_to_avro` writes null to the null branch and anything else to
    /// the first non-null branch; both are found here once.
    Union {
        null_branch: Option<i64>,
        value_branch: Option<(i64, Box<Node>)>,
    },
    Record(Vec<Field>),
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    node: Node,
}

/// A schema compiled for encoding.
#[derive(Debug, Clone)]
pub(crate) struct DatumEncoder {
    root: Node,
}

impl DatumEncoder {
    /// Compiles `schema`; fails on schema types the records never use
    /// (which `json_to_avro` rejects too), so that shows at start-up.
    pub(crate) fn new(schema: &Schema) -> Result<Self, CodecError> {
        Ok(DatumEncoder { root: compile(schema, false, &Path::Root)? })
    }

    /// Appends the Avro binary form of `value` to `out`. On error `out` may
    /// hold part of the record.
    pub(crate) fn encode(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode(&self.root, value, &Path::Root, out)
    }
}

/// Where a value sits in the record, rendered only for error messages, as
/// `json_to_avro` renders its path (`.card.color`).
#[derive(Debug, Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
        }
    }
}

fn compile(schema: &Schema, json_text: bool, path: &Path<'_>) -> Result<Node, CodecError> {
    Ok(match schema {
        Schema::Null => Node::Null,
        Schema::Boolean => Node::Boolean,
        Schema::Int => Node::Int,
        Schema::Long => Node::Long,
        Schema::Double => Node::Double,
        Schema::String if json_text => Node::JsonText,
        Schema::String => Node::String,
        Schema::TimestampMillis => Node::TimestampMillis,
        Schema::Array(array) => Node::Array(Box::new(compile(&array.items, json_text, path)?)),
        Schema::Map(map) => Node::Map(Box::new(compile(&map.types, json_text, path)?)),
        Schema::Union(union) => {
            let variants = union.variants();
            let null_branch = variants.iter().position(|s| matches!(s, Schema::Null)).map(index);
            let value_branch = match variants.iter().enumerate().find(|(_, s)| !matches!(s, Schema::Null)) {
                Some((i, inner)) => Some((index(i), Box::new(compile(inner, json_text, path)?))),
                None => None,
            };
            Node::Union { null_branch, value_branch }
        }
        Schema::Record(record) => {
            let mut fields = Vec::with_capacity(record.fields.len());
            for field in &record.fields {
                let child = Path::Field(path, &field.name);
                fields.push(Field { name: field.name.clone(), node: compile(&field.schema, field_is_json(field), &child)? });
            }
            Node::Record(fields)
        }
        other => return Err(CodecError::Schema(format!("{path}: unsupported schema {other:?}"))),
    })
}

/// A union branch or collection length as the Avro long that encodes it.
fn index(i: usize) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

fn encode(node: &Node, value: &Value, path: &Path<'_>, out: &mut Vec<u8>) -> Result<(), CodecError> {
    match node {
        Node::Null => match value {
            Value::Null => {}
            other => return Err(mismatch(&path.to_string(), "null", other)),
        },
        Node::Boolean => out.push(u8::from(value.as_bool().ok_or_else(|| mismatch(&path.to_string(), "boolean", value))?)),
        Node::Int => {
            let n = value.as_i64().ok_or_else(|| mismatch(&path.to_string(), "int", value))?;
            let n = i32::try_from(n).map_err(|_| mismatch(&path.to_string(), "32-bit int", value))?;
            write_long(out, i64::from(n));
        }
        Node::Long => write_long(out, value.as_i64().ok_or_else(|| mismatch(&path.to_string(), "long", value))?),
        Node::Double => out.extend_from_slice(&value.as_f64().ok_or_else(|| mismatch(&path.to_string(), "double", value))?.to_le_bytes()),
        Node::String => write_bytes(out, value.as_str().ok_or_else(|| mismatch(&path.to_string(), "string", value))?.as_bytes()),
        Node::JsonText => write_json_text(out, value)?,
        Node::TimestampMillis => {
            let ms = match value {
                Value::String(s) => Millis::parse_rfc3339(s).map_err(|e| CodecError::Encode(format!("{path}: {e}")))?.0,
                Value::Number(n) => n.as_i64().ok_or_else(|| mismatch(&path.to_string(), "timestamp", value))?,
                other => return Err(mismatch(&path.to_string(), "timestamp", other)),
            };
            write_long(out, ms);
        }
        Node::Array(items) => {
            let values = value.as_array().ok_or_else(|| mismatch(&path.to_string(), "array", value))?;
            // One block holding every item, then the empty block that ends
            // the array, as apache-avro writes it.
            if !values.is_empty() {
                write_long(out, index(values.len()));
                for v in values {
                    encode(items, v, path, out)?;
                }
            }
            out.push(0);
        }
        Node::Map(values) => {
            let object = value.as_object().ok_or_else(|| mismatch(&path.to_string(), "object", value))?;
            if !object.is_empty() {
                write_long(out, index(object.len()));
                for (k, v) in object {
                    write_bytes(out, k.as_bytes());
                    encode(values, v, path, out)?;
                }
            }
            out.push(0);
        }
        Node::Union { null_branch, value_branch } => match (value, null_branch) {
            (Value::Null, Some(i)) => write_long(out, *i),
            _ => {
                let (i, inner) = value_branch.as_ref().ok_or_else(|| mismatch(&path.to_string(), "a non-null union branch", value))?;
                write_long(out, *i);
                encode(inner, value, path, out)?;
            }
        },
        Node::Record(fields) => {
            let object = value.as_object().ok_or_else(|| mismatch(&path.to_string(), "object", value))?;
            // Records serialise their fields in schema order, so the next
            // entry is almost always the one wanted: compare names before
            // falling back to a hash lookup. Absent fields read as null.
            let mut entries = object.iter().peekable();
            for field in fields {
                let v = match entries.next_if(|(k, _)| **k == field.name) {
                    Some((_, v)) => v,
                    None => object.get(&field.name).unwrap_or(&Value::Null),
                };
                encode(&field.node, v, &Path::Field(path, &field.name), out)?;
            }
        }
    }
    Ok(())
}

/// Avro `long`: zigzag, then base-128 varint, low group first.
fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z > 0x7f {
        out.push((z & 0x7f) as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Avro `bytes` / `string`: the length as a long, then the bytes.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_long(out, index(bytes.len()));
    out.extend_from_slice(bytes);
}

/// A JSON text field: the value serialised in place, then its length
/// prefix rotated in front of it (no temporary string).
fn write_json_text(out: &mut Vec<u8>, value: &Value) -> Result<(), CodecError> {
    let start = out.len();
    serde_json::to_writer(&mut *out, value).map_err(|e| CodecError::Encode(e.to_string()))?;
    let text_len = out.len() - start;
    write_long(out, index(text_len));
    let prefix_len = out.len() - start - text_len;
    out[start..].rotate_right(prefix_len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(n: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_long(&mut out, n);
        out
    }

    #[test]
    fn longs_are_zigzag_varints() {
        assert_eq!(long(0), [0x00]);
        assert_eq!(long(-1), [0x01]);
        assert_eq!(long(1), [0x02]);
        assert_eq!(long(-64), [0x7f]);
        assert_eq!(long(64), [0x80, 0x01]);
        assert_eq!(long(i64::MAX), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(long(i64::MIN), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    }

    #[test]
    fn json_text_gets_its_length_in_front_of_it() {
        // 200 bytes of text need a two-byte length; what is already in the
        // buffer stays where it was.
        let value = Value::String("x".repeat(198));
        let mut out = vec![7];
        write_json_text(&mut out, &value).unwrap();
        let text = serde_json::to_string(&value).unwrap();
        let expected = apache_avro::to_avro_datum(&Schema::String, apache_avro::types::Value::String(text)).unwrap();
        assert_eq!(out[0], 7);
        assert_eq!(out[1..3], [0x90, 0x03]);
        assert_eq!(out[1..], expected[..]);
    }
}
