//! What every adapter needs: reading a native JSON record with errors that
//! name the vendor and the field, vendor times, stable event ids, and
//! building a canonical event that the core validates like any input.
//!
//! A record is read into [`Json`], whose strings borrow from the record
//! where they can and whose objects are plain vectors: an adapter reads a
//! few fields and copies the rest through, so hashing every key and owning
//! every string (as `serde_json::Value` does) would be most of its cost.

use crate::InputFormat;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Number;
use sessionflow_core::{DeadLetterReason, Event, EventFields, InputError, Millis};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt;

/// A JSON value of a native record.
#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// A JSON object: its fields in the record's order. A repeated name keeps
/// its first place and its last value, as serde_json's order-preserving
/// map does, so that fields copied through are written as before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object<'a> {
    fields: Vec<(Cow<'a, str>, Json<'a>)>,
}

impl<'a> Object<'a> {
    /// An empty object.
    pub fn new() -> Self {
        Object::default()
    }

    /// Sets a field: in place when the name is there, else at the end.
    pub fn insert(&mut self, name: impl Into<Cow<'a, str>>, value: Json<'a>) {
        let name = name.into();
        match self.fields.iter_mut().find(|(k, _)| *k == name) {
            Some((_, slot)) => *slot = value,
            None => self.fields.push((name, value)),
        }
    }

    /// The field of exactly this name (`null` included).
    pub fn get(&self, name: &str) -> Option<&Json<'a>> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// Removes a field as serde_json's order-preserving map does: the last
    /// field takes its place.
    pub fn swap_remove(&mut self, name: &str) -> Option<Json<'a>> {
        let at = self.fields.iter().position(|(k, _)| k == name)?;
        Some(self.fields.swap_remove(at).1)
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Cow<'a, str>, &Json<'a>)> {
        self.fields.iter().map(|(k, v)| (k, v))
    }

    /// A copy of the fields `keep` keeps, in order: the vendor fields a
    /// mapping copies through.
    pub fn filtered(&self, mut keep: impl FnMut(&str, &Json<'a>) -> bool) -> Object<'a> {
        Object { fields: self.fields.iter().filter(|(k, v)| keep(k, v)).cloned().collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

impl<'a> IntoIterator for Object<'a> {
    type Item = (Cow<'a, str>, Json<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Json<'a>)>;

    fn into_iter(self) -> Self::IntoIter {
        self.fields.into_iter()
    }
}

impl<'a> FromIterator<(Cow<'a, str>, Json<'a>)> for Object<'a> {
    fn from_iter<I: IntoIterator<Item = (Cow<'a, str>, Json<'a>)>>(iter: I) -> Self {
        let mut object = Object::new();
        for (name, value) in iter {
            object.insert(name, value);
        }
        object
    }
}

impl<'a> Json<'a> {
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        if let Json::String(s) = self { Some(s) } else { None }
    }

    pub fn as_i64(&self) -> Option<i64> {
        if let Json::Number(n) = self { n.as_i64() } else { None }
    }

    pub fn as_f64(&self) -> Option<f64> {
        if let Json::Number(n) = self { n.as_f64() } else { None }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        if let Json::Object(o) = self { Some(o) } else { None }
    }

    /// The field of exactly this name, when this is an object.
    pub fn get(&self, name: &str) -> Option<&Json<'a>> {
        self.as_object()?.get(name)
    }

    /// The JSON type's name, for details (spelled as the core's
    /// `event::json_type`, so details read alike).
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// A string as is, a number as serde_json prints it.
    fn text(&self) -> Option<Cow<'a, str>> {
        match self {
            Json::String(s) => Some(s.clone()),
            Json::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }
}

impl fmt::Display for Json<'_> {
    /// Compact JSON, as `serde_json::Value` displays.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

impl<'a> From<&'a str> for Json<'a> {
    fn from(s: &'a str) -> Self {
        Json::String(Cow::Borrowed(s))
    }
}

impl From<String> for Json<'_> {
    fn from(s: String) -> Self {
        Json::String(Cow::Owned(s))
    }
}

impl<'a> From<Cow<'a, str>> for Json<'a> {
    fn from(s: Cow<'a, str>) -> Self {
        Json::String(s)
    }
}

impl<'a> From<&Cow<'a, str>> for Json<'a> {
    fn from(s: &Cow<'a, str>) -> Self {
        Json::String(s.clone())
    }
}

impl From<i64> for Json<'_> {
    fn from(n: i64) -> Self {
        Json::Number(n.into())
    }
}

impl From<f64> for Json<'_> {
    /// As `serde_json::Value::from`: not finite is null.
    fn from(n: f64) -> Self {
        Number::from_f64(n).map_or(Json::Null, Json::Number)
    }
}

impl From<bool> for Json<'_> {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

impl<'a> From<Object<'a>> for Json<'a> {
    fn from(o: Object<'a>) -> Self {
        Json::Object(o)
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => serializer.serialize_unit(),
            Json::Bool(b) => serializer.serialize_bool(*b),
            Json::Number(n) => n.serialize(serializer),
            Json::String(s) => serializer.serialize_str(s),
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(o) => o.serialize(serializer),
        }
    }
}

impl Serialize for Object<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

/// A string of the record: borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Reads values as `serde_json::Value` reads them (numbers alike).
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json<'de>, E> {
        Ok(Json::from(n))
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut object = Object { fields: Vec::with_capacity(map.size_hint().unwrap_or(8)) };
        // A 64-bit sketch of the names so far: only a name whose bit is set
        // may repeat one, so only those are looked up.
        let mut seen = 0_u64;
        while let Some(Text(name)) = map.next_key()? {
            let value = map.next_value()?;
            let bytes = name.as_bytes();
            let sketch = bytes.len() ^ usize::from(bytes.first().copied().unwrap_or(0)) << 1 ^ usize::from(bytes.last().copied().unwrap_or(0)) << 3;
            let bit = 1_u64 << (sketch % 64);
            if seen & bit == 0 {
                seen |= bit;
                object.fields.push((name, value));
            } else {
                object.insert(name, value);
            }
        }
        Ok(Json::Object(object))
    }
}

/// Parses a native record as one JSON object.
pub fn parse_object(format: InputFormat, record: &[u8]) -> Result<Object<'_>, InputError> {
    // Checked as UTF-8 once, the text's strings are not checked one by one;
    // bytes that are not UTF-8 take serde_json's own path, for its error.
    let parsed = match std::str::from_utf8(record) {
        Ok(text) => serde_json::from_str::<Json<'_>>(text),
        Err(_) => serde_json::from_slice::<Json<'_>>(record),
    };
    match parsed {
        Ok(Json::Object(object)) => Ok(object),
        Ok(other) => Err(error(format, DeadLetterReason::DecodeError, "(record)", &format!("a JSON object, found {}", other.type_name()))),
        Err(e) => Err(error(format, DeadLetterReason::DecodeError, "(record)", &format!("JSON ({e})"))),
    }
}

/// A dead-letter error naming the vendor, the field and what was expected.
pub fn error(format: InputFormat, reason: DeadLetterReason, field: &str, expected: &str) -> InputError {
    InputError { reason, detail: format!("{format}: {field}: expected {expected}") }
}

/// A field by name, exact spelling first, then ignoring ASCII case (vendors
/// spell `contactId` and `ContactId` in different documented samples).
pub fn field<'o, 'a>(object: &'o Object<'a>, name: &str) -> Option<&'o Json<'a>> {
    // One pass: the exact name wherever it is, else the first other spelling.
    let mut other_case = None;
    for (k, v) in &object.fields {
        if k == name {
            return Some(v).filter(|v| !v.is_null());
        }
        if other_case.is_none() && k.eq_ignore_ascii_case(name) {
            other_case = Some(v);
        }
    }
    other_case.filter(|v| !v.is_null())
}

/// A field that must be a non-empty string (numbers are accepted and
/// printed: ids arrive both ways).
pub fn required_str<'a>(format: InputFormat, object: &Object<'a>, path: &(impl fmt::Display + ?Sized), name: &str) -> Result<Cow<'a, str>, InputError> {
    match field(object, name) {
        None => Err(error(format, DeadLetterReason::MissingField, &join(path, name), "a string, found nothing")),
        Some(value) => value
            .text()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| error(format, DeadLetterReason::BadFieldType, &join(path, name), &format!("a non-empty string, found {}", value.type_name()))),
    }
}

/// A field that may be absent; present, it must be a string or a number.
pub fn optional_str<'a>(format: InputFormat, object: &Object<'a>, path: &(impl fmt::Display + ?Sized), name: &str) -> Result<Option<Cow<'a, str>>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(value) => value
            .text()
            .map(|s| (!s.is_empty()).then_some(s))
            .ok_or_else(|| error(format, DeadLetterReason::BadFieldType, &join(path, name), &format!("a string, found {}", value.type_name()))),
    }
}

/// A field that may be absent; present, it must be an object.
pub fn optional_object<'o, 'a>(
    format: InputFormat,
    object: &'o Object<'a>,
    path: &(impl fmt::Display + ?Sized),
    name: &str,
) -> Result<Option<&'o Object<'a>>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(Json::Object(map)) => Ok(Some(map)),
        Some(other) => Err(error(format, DeadLetterReason::BadFieldType, &join(path, name), &format!("an object, found {}", other.type_name()))),
    }
}

/// A field's path: `path.name`, or `name` at the top level. Paths are
/// written only for an error, so a caller may pass one that costs to write
/// (an array element's) and nothing is written for a field that reads well.
struct FieldPath<'p, P: ?Sized> {
    path: &'p P,
    name: &'p str,
}

impl<P: fmt::Display + ?Sized> fmt::Display for FieldPath<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.to_string();
        if path.is_empty() { f.write_str(self.name) } else { write!(f, "{path}.{}", self.name) }
    }
}

fn join(path: &(impl fmt::Display + ?Sized), name: &str) -> String {
    FieldPath { path, name }.to_string()
}

/// Vendor times read as absent: Amazon Connect writes
/// `1970-01-01T00:00:00.001Z` for "not set"; nothing real happened on the
/// first day of the epoch.
const PLACEHOLDER_BEFORE: i64 = 86_400_000;

/// A vendor time: an RFC 3339 string, epoch milliseconds (number or digit
/// string), or epoch seconds with a fraction (a number below 10^11 is taken
/// as seconds). Placeholders read as `None`.
pub fn time_value(format: InputFormat, value: &Json<'_>, field_path: &(impl fmt::Display + ?Sized)) -> Result<Option<Millis>, InputError> {
    let bad =
        |found: &str| error(format, DeadLetterReason::BadTimestamp, &field_path.to_string(), &format!("an RFC 3339 time or epoch milliseconds, found {found}"));
    let millis = match value {
        Json::Null => return Ok(None),
        Json::Number(n) => {
            if let Some(ms) = n.as_i64() {
                if ms.unsigned_abs() < 100_000_000_000 { ms.checked_mul(1000).ok_or_else(|| bad("an out-of-range number"))? } else { ms }
            } else {
                let secs = n.as_f64().ok_or_else(|| bad("an out-of-range number"))?;
                if !secs.is_finite() || secs.abs() > 1e11 {
                    return Err(bad("an out-of-range number"));
                }
                #[allow(clippy::cast_possible_truncation)]
                let ms = (secs * 1000.0).round() as i64;
                ms
            }
        }
        Json::String(s) if s.is_empty() => return Ok(None),
        // Digits in a string follow the rule for numbers: form-encoded
        // webhooks carry epoch seconds as text.
        Json::String(s) if s.bytes().all(|b| b.is_ascii_digit()) => {
            let n = s.parse::<i64>().map_err(|_| bad(&format!("{s:?}")))?;
            if n < 100_000_000_000 { n.checked_mul(1000).ok_or_else(|| bad("an out-of-range number"))? } else { n }
        }
        Json::String(s) => Millis::parse_rfc3339(s).map_err(|_| bad(&format!("{s:?}")))?.0,
        other => return Err(bad(other.type_name())),
    };
    Ok((millis >= PLACEHOLDER_BEFORE).then_some(Millis(millis)))
}

/// An optional time field of an object.
pub fn optional_time(format: InputFormat, object: &Object<'_>, path: &(impl fmt::Display + ?Sized), name: &str) -> Result<Option<Millis>, InputError> {
    match field(object, name) {
        None => Ok(None),
        Some(value) => time_value(format, value, &FieldPath { path, name }),
    }
}

/// A stable event id from the parts that identify one moment: the same
/// parts give the same id on every delivery, so a redelivered record is a
/// duplicate. `prefix` names the vendor; the digest keeps any id within the
/// canonical 128 characters.
pub fn stable_id(prefix: &str, parts: &[&str]) -> String {
    let mut id = String::with_capacity(prefix.len() + 33);
    write_stable_id(&mut id, prefix, &stable_digest(parts));
    id
}

/// The digest a [`stable_id`] ends with, for an adapter that looks many ids
/// up and keeps few: it writes each into one buffer ([`write_stable_id`]).
pub fn stable_digest(parts: &[&str]) -> [u8; 16] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0x1f]);
    }
    let digest = hash.finalize();
    let mut first = [0; 16];
    first.copy_from_slice(&digest[..16]);
    first
}

/// Writes the [`stable_id`] of `prefix` and a [`stable_digest`] into `out`,
/// in place of what it held.
pub fn write_stable_id(out: &mut String, prefix: &str, digest: &[u8; 16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0_u8; 32];
    for (pair, byte) in hex.chunks_exact_mut(2).zip(digest) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    out.clear();
    out.reserve(prefix.len() + 1 + hex.len());
    out.push_str(prefix);
    out.push('-');
    out.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
}

/// One canonical event under construction, borrowing from the record.
#[derive(Debug, Clone)]
pub struct EventBuilder<'a> {
    event_id: String,
    session_id: Cow<'a, str>,
    event_type: Cow<'a, str>,
    occurred_at: Millis,
    source: &'static str,
    channel: Option<&'a str>,
    direction: Option<&'a str>,
    tenant: Option<Cow<'a, str>>,
    attributes: Object<'a>,
}

impl<'a> EventBuilder<'a> {
    /// An event of `event_type` with its envelope's required fields; `source`
    /// is the format's.
    pub fn new(
        format: InputFormat,
        event_id: impl Into<String>,
        session_id: impl Into<Cow<'a, str>>,
        event_type: impl Into<Cow<'a, str>>,
        occurred_at: Millis,
    ) -> Self {
        EventBuilder {
            event_id: event_id.into(),
            session_id: session_id.into(),
            event_type: event_type.into(),
            occurred_at,
            source: format.source(),
            channel: None,
            direction: None,
            tenant: None,
            attributes: Object::new(),
        }
    }

    /// Sets the canonical channel (`voice`, `chat`, …).
    pub fn channel(mut self, channel: Option<&'a str>) -> Self {
        self.channel = channel.or(self.channel);
        self
    }

    /// Sets the canonical direction (`inbound`, `outbound`).
    pub fn direction(mut self, direction: Option<&'a str>) -> Self {
        self.direction = direction.or(self.direction);
        self
    }

    /// Sets the tenant.
    pub fn tenant(mut self, tenant: Option<impl Into<Cow<'a, str>>>) -> Self {
        if let Some(tenant) = tenant {
            self.tenant = Some(tenant.into());
        }
        self
    }

    /// Sets an attribute, skipping `None` and JSON null.
    pub fn attr(mut self, name: impl Into<Cow<'a, str>>, value: Option<impl Into<Json<'a>>>) -> Self {
        if let Some(value) = value.map(Into::into).filter(|v| !v.is_null()) {
            self.attributes.insert(name, value);
        }
        self
    }

    /// Keeps vendor fields the mapping does not use, under `name`.
    pub fn vendor_fields(mut self, name: &'static str, fields: Object<'a>) -> Self {
        if !fields.is_empty() {
            self.attributes.insert(name, Json::Object(fields));
        }
        self
    }

    /// Validates the event as the core validates any input; a failure here
    /// names the format so the dead letter says which adapter built it.
    pub fn build(self, format: InputFormat) -> Result<Event, InputError> {
        // Writing strings, numbers and maps of them cannot fail.
        let attributes = serde_json::to_string(&self.attributes).unwrap_or_else(|_| "{}".to_owned());
        Event::from_fields(EventFields {
            event_id: &self.event_id,
            session_id: &self.session_id,
            event_type: &self.event_type,
            occurred_at: self.occurred_at,
            channel: self.channel,
            direction: self.direction,
            tenant: self.tenant.as_deref(),
            source: Some(self.source),
            attributes: &attributes,
        })
        .map_err(|e| InputError { reason: e.reason, detail: format!("{format}: {}", e.detail) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A test value as the parser gives it.
    fn owned(value: &Value) -> Json<'static> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::from(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(owned).collect()),
            Value::Object(map) => Json::Object(map.iter().map(|(k, v)| (Cow::Owned(k.clone()), owned(v))).collect()),
        }
    }

    #[test]
    fn records_read_as_serde_json_reads_them() {
        let text = r#"{"a":"x","b":"esc\"aped","n":[1,-2,2.5,1e3,18446744073709551615],"a":{"z":null,"y":true},"é":"ü"}"#;
        let parsed = parse_object(InputFormat::GenesysCloud, text.as_bytes()).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(Json::Object(parsed.clone()), owned(&value));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), value.to_string());
        assert!(matches!(parsed.get("b"), Some(Json::String(Cow::Owned(_)))));
        assert!(matches!(parsed.get("é"), Some(Json::String(Cow::Borrowed("ü")))));
        for bad in ["[1]", "{\"a\":", "nope"] {
            let e = parse_object(InputFormat::GenesysCloud, bad.as_bytes()).unwrap_err();
            assert_eq!(e.reason, DeadLetterReason::DecodeError);
            assert!(e.detail.starts_with("genesys-cloud: (record): expected "), "{}", e.detail);
        }
        // Not UTF-8: serde_json's own error.
        let not_utf8 = b"{\"a\":\"\xff\"}";
        let e = parse_object(InputFormat::GenesysCloud, not_utf8).unwrap_err();
        let serde_error = serde_json::from_slice::<Value>(not_utf8).unwrap_err();
        assert_eq!(e.detail, format!("genesys-cloud: (record): expected JSON ({serde_error})"));
        let mut removed = parsed;
        removed.swap_remove("a");
        let mut map = value.as_object().unwrap().clone();
        map.remove("a");
        assert_eq!(serde_json::to_string(&removed).unwrap(), Value::Object(map).to_string());
    }

    #[test]
    fn times_in_every_vendor_shape() {
        let f = InputFormat::AmazonConnect;
        let at = Millis::parse_rfc3339("2026-03-01T10:00:00.250Z").unwrap();
        assert_eq!(time_value(f, &owned(&json!("2026-03-01T10:00:00.250Z")), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &owned(&json!("2026-03-01T11:00:00.250+01:00")), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &owned(&json!(at.0)), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &owned(&json!(at.0.to_string())), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &owned(&json!(at.0 as f64 / 1000.0)), "t").unwrap(), Some(at));
        assert_eq!(time_value(f, &owned(&json!(at.0 / 1000)), "t").unwrap(), Some(Millis(at.0 - 250)));
        assert_eq!(time_value(f, &owned(&json!((at.0 / 1000).to_string())), "t").unwrap(), Some(Millis(at.0 - 250)));
        assert_eq!(time_value(f, &owned(&json!("1970-01-01T00:00:00.001Z")), "t").unwrap(), None);
        let e = time_value(f, &owned(&json!("yesterday")), "detail.time").unwrap_err();
        assert_eq!(e.reason, DeadLetterReason::BadTimestamp);
        assert!(e.detail.starts_with("amazon-connect: detail.time: expected"), "{}", e.detail);
    }

    #[test]
    fn fields_ignore_case_and_name_the_path() {
        let Json::Object(object) = owned(&json!({"ContactId": "c-1", "n": 7, "o": []})) else { unreachable!() };
        let f = InputFormat::AmazonConnect;
        assert_eq!(required_str(f, &object, "detail", "contactId").unwrap(), "c-1");
        assert_eq!(required_str(f, &object, "detail", "n").unwrap(), "7");
        let missing = required_str(f, &object, "detail", "agentArn").unwrap_err();
        assert_eq!(missing.reason, DeadLetterReason::MissingField);
        assert_eq!(missing.detail, "amazon-connect: detail.agentArn: expected a string, found nothing");
        assert_eq!(optional_str(f, &object, "detail", "o").unwrap_err().reason, DeadLetterReason::BadFieldType);
    }

    #[test]
    fn stable_ids_depend_on_every_part() {
        let a = stable_id("gc", &["conv", "acd.start", "2026"]);
        assert_eq!(a, stable_id("gc", &["conv", "acd.start", "2026"]));
        assert_ne!(a, stable_id("gc", &["conv", "acd.start", "2027"]));
        assert_ne!(stable_id("gc", &["ab", "c"]), stable_id("gc", &["a", "bc"]));
        assert!(a.len() <= 128);
    }

    #[test]
    fn built_events_pass_the_core_validation() {
        let at = Millis(1_772_359_200_000);
        let event = EventBuilder::new(InputFormat::GenesysCloud, "e1", "s1", "session.started", at)
            .channel(Some("voice"))
            .attr("ani", Some("+15550100"))
            .build(InputFormat::GenesysCloud)
            .unwrap();
        assert_eq!(event.source.as_deref(), Some("genesys"));
        assert_eq!(event.occurred_at, at);
        let bad = EventBuilder::new(InputFormat::GenesysCloud, "e1", "s1", "session.started", at).build(InputFormat::GenesysCloud).unwrap_err();
        assert!(bad.detail.starts_with("genesys-cloud: "), "{}", bad.detail);
    }
}
