//! An event's attributes, kept as compact JSON text and parsed only when
//! something reads them.
//!
//! Most events (transcript segments, API calls, …) only pass their
//! attributes through: to the timeline record and to the state store. For
//! those, building a JSON map, cloning it and writing it out twice cost more
//! than the rest of the event. The text kept here is always exactly what
//! `serde_json` writes for the value it denotes, so outputs are byte for byte
//! what a parsed map would give.

use crate::json::Json;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// Free-form attributes: canonical JSON text, with its parsed form made on
/// first read (through `Deref` to [`Json`]).
pub struct Attributes {
    /// What `serde_json::to_string` writes for the value. Plain text rather
    /// than a `RawValue`: the input scanner has already checked it, and a
    /// `RawValue` is only made by checking it again. Shared: the timeline
    /// record carries the same text as the stored event.
    text: Arc<str>,
    /// The text is in the subset the input scanner recognises as serde_json's
    /// own spelling (`envelope.rs`: no whitespace, no escapes, integers only,
    /// no repeated key): its top-level fields can be read straight from it.
    canonical: bool,
    parsed: OnceLock<Json>,
}

impl Attributes {
    /// `{}`.
    pub fn empty_object() -> Self {
        Attributes::from(Value::Object(serde_json::Map::new()))
    }

    /// Text already known to be what `serde_json` writes for its value, in
    /// the subset above, kept without parsing it.
    pub(crate) fn from_canonical_text(text: &str) -> Self {
        Attributes { text: text.into(), canonical: true, parsed: OnceLock::new() }
    }

    /// The string at `key`, as [`Json::str`]: read from the text when it
    /// is canonical, which spares parsing the whole object for it.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.canonical_field(key) {
            Some(raw) => raw?.strip_prefix('"')?.strip_suffix('"'),
            None => self.deref().str(key),
        }
    }

    /// A string or integer at `key`, as text, as [`Json::id`].
    pub fn id(&self, key: &str) -> Option<String> {
        match self.canonical_field(key) {
            // A canonical integer is spelled as serde_json prints it.
            Some(raw) => {
                let raw = raw?;
                match raw.as_bytes().first()? {
                    b'"' => raw.strip_prefix('"')?.strip_suffix('"').map(str::to_owned),
                    b'-' | b'0'..=b'9' => Some(raw.to_owned()),
                    _ => None,
                }
            }
            None => self.deref().id(key),
        }
    }

    /// The integer at `key` when it fits an `i64`, as `Value::as_i64`.
    pub fn i64(&self, key: &str) -> Option<i64> {
        match self.canonical_field(key) {
            Some(raw) => raw?.parse().ok(),
            None => self.deref().get(key).and_then(Value::as_i64),
        }
    }

    /// The JSON text of the top-level field `key` (`Some(None)` when there
    /// is none), or `None` when the text is not canonical. In canonical
    /// text strings hold no quotes, so the fields are found by walking it.
    fn canonical_field(&self, key: &str) -> Option<Option<&str>> {
        if !self.canonical {
            return None;
        }
        let text = &*self.text;
        let bytes = text.as_bytes();
        let mut at = 1;
        while bytes.get(at) == Some(&b'"') {
            let key_end = at + 1 + memchr::memchr(b'"', &bytes[at + 1..])?;
            // Past `":`.
            let value_start = key_end + 2;
            let value_end = canonical_value_end(bytes, value_start)?;
            if &text[at + 1..key_end] == key {
                return Some(text.get(value_start..value_end));
            }
            // Past the `,` (or the closing `}`).
            at = value_end + 1;
        }
        Some(None)
    }

    /// The compact JSON text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Changes the value (parsing it first if needed) and rewrites the text.
    pub fn update(&mut self, change: impl FnOnce(&mut Value)) {
        let mut json = self.parsed.take().unwrap_or_else(|| parse(&self.text));
        change(&mut json.0);
        *self = Attributes::from(json.0);
    }

    /// As [`Attributes::update`], for a change that may leave the value as
    /// it is: `change` says whether it changed it. Unchanged, the text
    /// stays (and the parsed value is kept for later reads).
    pub fn update_if(&mut self, change: impl FnOnce(&mut Value) -> bool) {
        let mut json = self.parsed.take().unwrap_or_else(|| parse(&self.text));
        if change(&mut json.0) {
            *self = Attributes::from(json.0);
        } else {
            self.parsed = OnceLock::from(json);
        }
    }
}

fn parse(text: &str) -> Json {
    // The text is valid JSON by construction.
    Json(serde_json::from_str(text).unwrap_or(Value::Null))
}

impl From<Value> for Attributes {
    fn from(value: Value) -> Self {
        // Serialising a `Value` cannot fail (its keys are strings).
        let text = serde_json::to_string(&value).unwrap_or_else(|_| "null".to_owned()).into();
        Attributes { text, canonical: false, parsed: OnceLock::from(Json(value)) }
    }
}

impl Default for Attributes {
    fn default() -> Self {
        Attributes::empty_object()
    }
}

impl Deref for Attributes {
    type Target = Json;

    fn deref(&self) -> &Json {
        self.parsed.get_or_init(|| parse(&self.text))
    }
}

impl Clone for Attributes {
    /// The text only: a copy headed for an output is never read.
    fn clone(&self) -> Self {
        Attributes { text: self.text.clone(), canonical: self.canonical, parsed: OnceLock::new() }
    }
}

impl PartialEq for Attributes {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text || **self == **other
    }
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // Written as is by serde_json and the codec's JSON writer, as a
            // `RawValue` borrowed from the text (valid JSON by construction).
            let raw: &RawValue = serde_json::from_str(&self.text).map_err(serde::ser::Error::custom)?;
            raw.serialize(serializer)
        } else {
            // Binary forms carry JSON text, as for `Json`.
            serializer.serialize_str(&self.text)
        }
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            Value::deserialize(deserializer).map(Attributes::from)
        } else {
            // Written by `serialize` above, so already canonical.
            let text = String::deserialize(deserializer)?;
            serde_json::from_str::<&RawValue>(&text).map_err(serde::de::Error::custom)?;
            Ok(Attributes { text: text.into(), canonical: false, parsed: OnceLock::new() })
        }
    }
}

/// Where the value starting at `at` in canonical text ends: at the `,` or
/// `}` after it.
fn canonical_value_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    // Arrays and objects the walk is inside.
    let mut depth = 0_usize;
    loop {
        match *bytes.get(at)? {
            b'"' => at += 2 + memchr::memchr(b'"', &bytes[at + 1..])?,
            b'[' | b'{' => {
                depth += 1;
                at += 1;
            }
            b']' => {
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                at += 1;
            }
            b',' | b'}' if depth == 0 => return Some(at),
            _ => at += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_what_serde_json_writes_and_binary_forms_carry_it() {
        let a = Attributes::from(json!({"b": [1, "x", null], "a": 2.5}));
        assert_eq!(a.text(), r#"{"b":[1,"x",null],"a":2.5}"#);
        assert_eq!(serde_json::to_string(&a).unwrap(), a.text());
        let bytes = postcard::to_allocvec(&a).unwrap();
        let back: Attributes = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.text(), a.text());
        assert_eq!(back.get("a"), Some(&json!(2.5)));
    }

    #[test]
    fn fields_of_canonical_text_are_read_without_parsing_it() {
        let a = Attributes::from_canonical_text(r#"{"list":["x,]}",[1,"]"]],"queue":"Q","n":-12,"t":true,"z":null,"id":"007"}"#);
        assert_eq!(a.str("queue"), Some("Q"));
        assert_eq!(a.str("n"), None);
        assert_eq!(a.id("n").as_deref(), Some("-12"));
        assert_eq!(a.id("id").as_deref(), Some("007"));
        assert_eq!(a.id("t"), None);
        assert_eq!(a.id("z"), None);
        assert_eq!(a.i64("n"), Some(-12));
        assert_eq!(a.i64("queue"), None);
        assert_eq!(a.str("absent"), None);
        assert_eq!(a.str("x"), None);
        // Nothing of it was parsed.
        assert!(a.parsed.get().is_none());
        assert_eq!(Attributes::from_canonical_text("{}").str("a"), None);
    }

    #[test]
    fn update_if_keeps_the_text_of_an_unchanged_value() {
        let mut a = Attributes::from_canonical_text(r#"{"n":1,"email":"a@b.c"}"#);
        a.update_if(|_| false);
        assert_eq!(a.text(), r#"{"n":1,"email":"a@b.c"}"#);
        assert!(a.canonical);
        a.update_if(|v| v.as_object_mut().unwrap().remove("email").is_some());
        assert_eq!(a.text(), r#"{"n":1}"#);
    }

    #[test]
    fn update_rewrites_the_text() {
        let mut a = Attributes::from(json!({"email": "a@b.c", "n": 1}));
        a.update(|v| {
            v.as_object_mut().unwrap().remove("email");
        });
        assert_eq!(a.text(), r#"{"n":1}"#);
        assert_eq!(a.str("email"), None);
    }
}
