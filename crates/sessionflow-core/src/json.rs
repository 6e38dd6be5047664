//! Free-form JSON carried inside typed records (attributes, custom data,
//! survey values, parameters).
//!
//! In JSON outputs these are plain JSON. In binary forms (the state store)
//! they are their JSON text, because binary serde formats cannot describe
//! arbitrary JSON. Avro carries them as JSON text too (see `schemas/`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// An arbitrary JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Json(pub Value);

impl Json {
    /// An empty JSON object.
    pub fn empty_object() -> Self {
        Json(Value::Object(Map::new()))
    }

    /// The object inside, if this is an object.
    pub fn as_object(&self) -> Option<&Map<String, Value>> {
        self.0.as_object()
    }

    /// The string at `key` when this is an object holding a string there.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The value at `key` when this is an object, `null` excluded.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// A string or integer at `key`, as text (identifiers arrive both ways).
    pub fn id(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            let text = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(&text)
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            Value::deserialize(deserializer).map(Json)
        } else {
            let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            serde_json::from_str(&text).map(Json).map_err(serde::de::Error::custom)
        }
    }
}

/// A JSON number kept as `f64`, written as an integer when it is one, so a
/// rating of `4` stays `4` in JSON outputs (Avro carries a `double`).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Num(pub f64);

impl Num {
    /// The integer it holds, when it is one that JSON outputs write as an
    /// integer (below 2^53: beyond it f64 holds no odd integers and the
    /// cast is lossy).
    pub fn as_integer(self) -> Option<i64> {
        let v = self.0;
        (v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0).then_some(v as i64)
    }
}

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.as_integer() {
            Some(integer) if serializer.is_human_readable() => serializer.serialize_i64(integer),
            _ => serializer.serialize_f64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        f64::deserialize(deserializer).map(Num)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_plain_in_json_and_text_in_binary() {
        let j = Json(serde_json::json!({"a": [1, "x", null]}));
        assert_eq!(serde_json::to_string(&j).unwrap(), r#"{"a":[1,"x",null]}"#);
        let bytes = postcard::to_allocvec(&j).unwrap();
        let back: Json = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, j);
    }

    #[test]
    fn integral_numbers_print_as_integers() {
        assert_eq!(serde_json::to_string(&Num(4.0)).unwrap(), "4");
        assert_eq!(serde_json::to_string(&Num(4.5)).unwrap(), "4.5");
    }
}
