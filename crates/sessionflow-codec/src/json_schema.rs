//! JSON Schema (draft 2020-12) documents for the JSON encoding of each record
//! kind, derived from the Avro schemas in `schemas/`, so the two encodings
//! cannot drift apart. The shipped copies are `schemas/json/*.schema.json`;
//! `sessionflow json-schemas` writes them and a test keeps them in step.
//!
//! The JSON encoding differs from Avro's in two ways, and the translation
//! follows `outputs.md`: a `timestamp-millis` long is an RFC 3339 string,
//! and a string field marked `"sessionflow.encoding": "json"` (JSON text in
//! Avro) is a JSON value in place.

use crate::CodecError;
use crate::avro::{EVENT_SCHEMA, METADATA_SCHEMA, TIMELINE_SCHEMA};
use serde_json::{Map, Value, json};

/// Output timestamps: always UTC, always milliseconds (`outputs.md`).
const OUTPUT_TIMESTAMP_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$";

/// What a JSON document is: the input the daemon reads, or a record it
/// writes. Outputs are strict (every field present, nothing else, UTC
/// millisecond timestamps); input is as lenient as the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A canonical input event: fields with an Avro default may be left out,
    /// unknown fields are ignored, timestamps may carry any offset.
    Input,
    /// An output record: absent values are `null`, never omitted.
    Output,
}

/// The shipped JSON Schemas: file name and document.
pub fn shipped() -> Result<Vec<(&'static str, Value)>, CodecError> {
    Ok(vec![
        ("event.schema.json", from_avro(EVENT_SCHEMA, Direction::Input, "event")?),
        ("timeline.schema.json", from_avro(TIMELINE_SCHEMA, Direction::Output, "timeline")?),
        ("metadata.schema.json", from_avro(METADATA_SCHEMA, Direction::Output, "metadata")?),
    ])
}

/// A schema document as the shipped files hold it: pretty-printed, with a
/// final newline.
pub fn to_text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// Translates one Avro schema text into a JSON Schema document for the JSON
/// encoding of the same records.
pub fn from_avro(avro_text: &str, direction: Direction, id: &str) -> Result<Value, CodecError> {
    let avro: Value = serde_json::from_str(avro_text).map_err(|e| CodecError::Schema(format!("Avro schema of {id}: {e}")))?;
    let mut translator = Translator { direction, defs: Map::new(), named: Map::new() };
    let body = translator.translate(&avro, false, "")?;
    let Value::Object(body) = body else {
        return Err(CodecError::Schema(format!("Avro schema of {id}: the top level is not a record")));
    };
    let mut document = Map::new();
    document.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
    document.insert("$id".into(), json!(format!("https://sessionflow.dev/schemas/json/{id}.schema.json")));
    document.insert("title".into(), avro.get("name").cloned().unwrap_or(Value::Null));
    document.extend(body);
    if !translator.defs.is_empty() {
        document.insert("$defs".into(), Value::Object(translator.defs));
    }
    Ok(Value::Object(document))
}

struct Translator {
    direction: Direction,
    /// Named types referred to by name after their definition.
    defs: Map<String, Value>,
    /// Every named type defined so far, by full name.
    named: Map<String, Value>,
}

impl Translator {
    fn translate(&mut self, avro: &Value, json_text: bool, namespace: &str) -> Result<Value, CodecError> {
        match avro {
            Value::String(name) => self.primitive_or_reference(name, json_text, namespace),
            Value::Array(branches) => {
                let any_of = branches.iter().map(|b| self.translate(b, json_text, namespace)).collect::<Result<Vec<_>, _>>()?;
                // JSON text admits every value, null included.
                if any_of.iter().any(|s| s.as_object().is_some_and(Map::is_empty)) {
                    return Ok(json!({}));
                }
                Ok(json!({ "anyOf": any_of }))
            }
            Value::Object(schema) => self.complex(schema, json_text, namespace),
            other => Err(CodecError::Schema(format!("not an Avro schema: {other}"))),
        }
    }

    fn primitive_or_reference(&mut self, name: &str, json_text: bool, namespace: &str) -> Result<Value, CodecError> {
        Ok(match name {
            "null" => json!({ "type": "null" }),
            "boolean" => json!({ "type": "boolean" }),
            "int" | "long" => json!({ "type": "integer" }),
            "float" | "double" => json!({ "type": "number" }),
            "string" if json_text => json!({}),
            "string" => json!({ "type": "string" }),
            "bytes" => return Err(CodecError::Schema("Avro `bytes` has no JSON form in sessionflow's records".into())),
            _ => {
                let full = full_name(name, namespace);
                let Some(definition) = self.named.get(&full).cloned() else {
                    return Err(CodecError::Schema(format!("Avro type `{full}` is used before it is defined")));
                };
                self.defs.insert(full.clone(), definition);
                json!({ "$ref": format!("#/$defs/{full}") })
            }
        })
    }

    fn complex(&mut self, schema: &Map<String, Value>, json_text: bool, namespace: &str) -> Result<Value, CodecError> {
        let kind = schema.get("type").ok_or_else(|| CodecError::Schema("an Avro schema object without `type`".into()))?;
        let Value::String(kind) = kind else {
            return self.translate(kind, json_text, namespace);
        };
        let mut out = match (kind.as_str(), schema.get("logicalType").and_then(Value::as_str)) {
            ("long", Some("timestamp-millis")) => match self.direction {
                Direction::Output => json!({ "type": "string", "format": "date-time", "pattern": OUTPUT_TIMESTAMP_PATTERN }),
                Direction::Input => json!({ "type": "string", "format": "date-time" }),
            },
            ("record", _) => return self.record(schema, namespace),
            ("enum", _) => {
                let symbols = schema.get("symbols").cloned().unwrap_or(json!([]));
                let definition = json!({ "enum": symbols });
                self.define(schema, namespace, &definition);
                definition
            }
            ("array", _) => {
                let items = schema.get("items").ok_or_else(|| CodecError::Schema("an Avro array without `items`".into()))?;
                json!({ "type": "array", "items": self.translate(items, json_text, namespace)? })
            }
            ("map", _) => {
                let values = schema.get("values").ok_or_else(|| CodecError::Schema("an Avro map without `values`".into()))?;
                json!({ "type": "object", "additionalProperties": self.translate(values, json_text, namespace)? })
            }
            (primitive, _) => self.primitive_or_reference(primitive, json_text, namespace)?,
        };
        if let (Some(doc), Value::Object(out)) = (schema.get("doc"), &mut out) {
            out.insert("description".into(), doc.clone());
        }
        Ok(out)
    }

    fn record(&mut self, schema: &Map<String, Value>, namespace: &str) -> Result<Value, CodecError> {
        let namespace = schema.get("namespace").and_then(Value::as_str).unwrap_or(namespace).to_owned();
        let fields = schema.get("fields").and_then(Value::as_array).ok_or_else(|| CodecError::Schema("an Avro record without `fields`".into()))?;
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in fields {
            let name = field.get("name").and_then(Value::as_str).ok_or_else(|| CodecError::Schema("an Avro field without `name`".into()))?;
            let json_text = field.get("sessionflow.encoding").and_then(Value::as_str) == Some("json");
            let field_type = field.get("type").ok_or_else(|| CodecError::Schema(format!("Avro field `{name}` without `type`")))?;
            let mut property = self.translate(field_type, json_text, &namespace)?;
            if let (Some(doc), Value::Object(p)) = (field.get("doc"), &mut property) {
                p.insert("description".into(), doc.clone());
            }
            properties.insert(name.to_owned(), property);
            if self.direction == Direction::Output || field.get("default").is_none() {
                required.push(json!(name));
            }
        }
        let mut definition = Map::new();
        definition.insert("type".into(), json!("object"));
        if let Some(doc) = schema.get("doc") {
            definition.insert("description".into(), doc.clone());
        }
        definition.insert("properties".into(), Value::Object(properties));
        definition.insert("required".into(), Value::Array(required));
        // The decoder ignores unknown envelope fields; outputs carry none.
        definition.insert("additionalProperties".into(), json!(self.direction == Direction::Input));
        let definition = Value::Object(definition);
        self.define(schema, &namespace, &definition);
        Ok(definition)
    }

    fn define(&mut self, schema: &Map<String, Value>, namespace: &str, definition: &Value) {
        if let Some(name) = schema.get("name").and_then(Value::as_str) {
            self.named.insert(full_name(name, namespace), definition.clone());
        }
    }
}

fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() { name.to_owned() } else { format!("{namespace}.{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_each_avro_construct() {
        let avro = r#"{"type": "record", "name": "R", "namespace": "n", "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "maybe", "type": ["null", "string"], "default": null},
            {"name": "attrs", "type": "string", "sessionflow.encoding": "json", "doc": "JSON text"},
            {"name": "inner", "type": {"type": "record", "name": "I", "fields": [{"name": "x", "type": "int"}]}},
            {"name": "again", "type": ["null", "I"]},
            {"name": "kind", "type": {"type": "enum", "name": "K", "symbols": ["a", "b"]}},
            {"name": "list", "type": {"type": "array", "items": "double"}},
            {"name": "counts", "type": {"type": "map", "values": "long"}}
        ]}"#;
        let out = from_avro(avro, Direction::Output, "r").unwrap();
        let props = &out["properties"];
        assert_eq!(props["at"]["pattern"], OUTPUT_TIMESTAMP_PATTERN);
        assert_eq!(props["maybe"], json!({"anyOf": [{"type": "null"}, {"type": "string"}]}));
        assert_eq!(props["attrs"], json!({"description": "JSON text"}));
        assert_eq!(props["inner"]["properties"]["x"], json!({"type": "integer"}));
        assert_eq!(props["again"], json!({"anyOf": [{"type": "null"}, {"$ref": "#/$defs/n.I"}]}));
        assert_eq!(out["$defs"]["n.I"]["required"], json!(["x"]));
        assert_eq!(props["kind"], json!({"enum": ["a", "b"]}));
        assert_eq!(props["list"], json!({"type": "array", "items": {"type": "number"}}));
        assert_eq!(props["counts"]["additionalProperties"], json!({"type": "integer"}));
        assert_eq!(out["required"].as_array().unwrap().len(), 8);
        assert_eq!(out["additionalProperties"], json!(false));

        let input = from_avro(avro, Direction::Input, "r").unwrap();
        assert!(!input["required"].as_array().unwrap().contains(&json!("maybe")));
        assert!(input["properties"]["at"].get("pattern").is_none());
        assert_eq!(input["additionalProperties"], json!(true));
    }

    #[test]
    fn refuses_what_it_cannot_translate() {
        let undefined = r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "Nowhere"}]}"#;
        assert!(from_avro(undefined, Direction::Output, "r").unwrap_err().to_string().contains("Nowhere"));
        let bytes = r#"{"type": "record", "name": "R", "fields": [{"name": "x", "type": "bytes"}]}"#;
        assert!(from_avro(bytes, Direction::Output, "r").is_err());
    }
}
