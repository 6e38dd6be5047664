//! The usual spelling of a JSON input event, read in one pass without serde.
//!
//! It accepts a strict subset of JSON and refuses (`None`) everything else,
//! which then takes the serde paths of `Event::from_json_slice`: those give
//! the same event, or the precise error. The subset is what producers
//! write: envelope strings without escapes, `null` for absent values,
//! whitespace anywhere between envelope tokens, and attributes exactly as
//! serde_json (with `preserve_order`) writes them (no whitespace, no
//! escapes, integers of up to 18 digits, no repeated keys in any object),
//! so their text is kept as it came. Unknown envelope keys are refused
//! too: skipping them would mean checking arbitrary JSON here, which serde
//! already does.

use crate::json_bytes::first_to_escape;

/// The envelope's fields, borrowed from the input; `None` when absent or
/// `null`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ScannedEnvelope<'a> {
    pub event_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub occurred_at: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub direction: Option<&'a str>,
    pub tenant: Option<&'a str>,
    pub source: Option<&'a str>,
    pub attributes: Option<ScannedAttributes<'a>>,
}

/// An attributes object: its text, and each top-level field's key and value
/// text, in order.
#[derive(Debug, PartialEq)]
pub(crate) struct ScannedAttributes<'a> {
    pub text: &'a str,
    pub fields: Vec<(&'a str, &'a str)>,
}

/// The envelope's keys, quoted, in the order of their numbers.
const KEYS: [&[u8]; 9] =
    [b"\"event_id\"", b"\"session_id\"", b"\"type\"", b"\"occurred_at\"", b"\"channel\"", b"\"direction\"", b"\"tenant\"", b"\"source\"", b"\"attributes\""];

/// Deepest array and object nesting accepted inside attributes
/// (serde_json's own limit is 128).
const MAX_DEPTH: usize = 64;

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Some(())
        } else {
            None
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes or control characters: its contents.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.at;
        let end = first_to_escape(self.bytes, start)?;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        // Both ends are at ASCII bytes, so at character boundaries.
        self.text.get(start..end)
    }

    /// One of the envelope's keys, quoted, without escapes: its number
    /// (0 `event_id` … 8 `attributes`). Compared whole, each against its
    /// constant: cheaper than reading the key as a string and matching it.
    #[inline]
    fn envelope_key(&mut self) -> Option<u16> {
        let rest = &self.bytes[self.at..];
        let key = match rest.get(1)? {
            b'e' if rest.starts_with(KEYS[0]) => 0,
            b's' if rest.starts_with(KEYS[1]) => 1,
            b't' if rest.starts_with(KEYS[2]) => 2,
            b'o' if rest.starts_with(KEYS[3]) => 3,
            b'c' if rest.starts_with(KEYS[4]) => 4,
            b'd' if rest.starts_with(KEYS[5]) => 5,
            b't' if rest.starts_with(KEYS[6]) => 6,
            b's' if rest.starts_with(KEYS[7]) => 7,
            b'a' if rest.starts_with(KEYS[8]) => 8,
            _ => return None,
        };
        self.at += KEYS[key].len();
        Some(key as u16)
    }

    /// `null` or a string.
    fn optional_string(&mut self) -> Option<Option<&'a str>> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// An integer as serde_json writes it back: no leading zero, no `-0`,
    /// at most 18 characters, no fraction or exponent after it.
    fn integer(&mut self) -> Option<()> {
        let start = self.at;
        let _ = self.eat(b'-');
        let digits = self.at;
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
        let number = &self.bytes[start..self.at];
        let count = self.at - digits;
        if count == 0 || (count > 1 && self.bytes[digits] == b'0') || number == b"-0" || number.len() > 18 {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(())
    }

    /// A value inside attributes: a string, an integer, a literal, or an
    /// array or object of those.
    fn attribute_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'{' if depth < MAX_DEPTH => self.object(depth + 1, None).map(drop),
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.integer(),
            b'[' if depth < MAX_DEPTH => {
                self.at += 1;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.attribute_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// An object as serde_json writes it (keys in their order, none
    /// repeated), `depth` deep; its fields go to `fields` when given.
    fn object(&mut self, depth: usize, mut fields: Option<&mut Vec<(&'a str, &'a str)>>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        // Keys already read, for the repeated-key check.
        let mut keys: Vec<&'a str> = Vec::new();
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let value_start = self.at;
            self.attribute_value(depth)?;
            match fields.as_deref_mut() {
                Some(fields) => {
                    if fields.iter().any(|(k, _)| *k == key) {
                        return None;
                    }
                    fields.push((key, self.text.get(value_start..self.at)?));
                }
                None => {
                    if keys.contains(&key) {
                        return None;
                    }
                    keys.push(key);
                }
            }
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `null`, or an attributes object as serde_json writes it.
    fn attributes(&mut self) -> Option<Option<ScannedAttributes<'a>>> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            return Some(None);
        }
        let start = self.at;
        let mut fields: Vec<(&str, &str)> = Vec::with_capacity(8);
        self.object(1, Some(&mut fields))?;
        Some(Some(ScannedAttributes { text: self.text.get(start..self.at)?, fields }))
    }
}

/// Reads `text` when it is an attributes object as serde_json writes it
/// (above), with its fields.
pub(crate) fn scan_attributes(text: &str) -> Option<ScannedAttributes<'_>> {
    let mut s = Scanner { text, bytes: text.as_bytes(), at: 0 };
    let attributes = s.attributes()?;
    if s.at == s.bytes.len() { attributes } else { None }
}

/// Reads `text` when it is an event object in the usual spelling (above).
pub(crate) fn scan(text: &str) -> Option<ScannedEnvelope<'_>> {
    let mut s = Scanner { text, bytes: text.as_bytes(), at: 0 };
    let mut envelope = ScannedEnvelope::default();
    // Keys seen: a repeated one is refused (serde reads the last one).
    let mut seen = 0_u16;
    s.skip_whitespace();
    s.eat(b'{')?;
    s.skip_whitespace();
    if s.eat(b'}').is_none() {
        loop {
            let key = s.envelope_key()?;
            s.skip_whitespace();
            s.eat(b':')?;
            s.skip_whitespace();
            if seen & 1 << key != 0 {
                return None;
            }
            seen |= 1 << key;
            match key {
                0 => envelope.event_id = s.optional_string()?,
                1 => envelope.session_id = s.optional_string()?,
                2 => envelope.event_type = s.optional_string()?,
                3 => envelope.occurred_at = s.optional_string()?,
                4 => envelope.channel = s.optional_string()?,
                5 => envelope.direction = s.optional_string()?,
                6 => envelope.tenant = s.optional_string()?,
                7 => envelope.source = s.optional_string()?,
                _ => envelope.attributes = s.attributes()?,
            }
            s.skip_whitespace();
            match s.peek()? {
                b',' => {
                    s.at += 1;
                    s.skip_whitespace();
                }
                b'}' => {
                    s.at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    s.skip_whitespace();
    (s.at == s.bytes.len()).then_some(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_spelling_is_read_field_by_field() {
        let text = r#" { "event_id" : "e1","session_id":"s1", "type":"queue.entered","occurred_at":"2024-07-02T19:06:15Z","channel":null,
            "tenant":"acme","attributes":{"queue":"Q","priority":2,"tags":["a",[1,-2],true,false,null],"empty":[]}} "#;
        let envelope = scan(text).unwrap();
        assert_eq!(envelope.event_id, Some("e1"));
        assert_eq!(envelope.session_id, Some("s1"));
        assert_eq!(envelope.event_type, Some("queue.entered"));
        assert_eq!(envelope.channel, None);
        assert_eq!(envelope.tenant, Some("acme"));
        assert_eq!(envelope.source, None);
        let attributes = envelope.attributes.unwrap();
        assert_eq!(attributes.text, r#"{"queue":"Q","priority":2,"tags":["a",[1,-2],true,false,null],"empty":[]}"#);
        assert_eq!(attributes.fields, vec![("queue", r#""Q""#), ("priority", "2"), ("tags", r#"["a",[1,-2],true,false,null]"#), ("empty", "[]")]);
        assert_eq!(scan("{}"), Some(ScannedEnvelope::default()));
        assert_eq!(scan(r#"{"attributes":null}"#), Some(ScannedEnvelope::default()));
        assert_eq!(scan(r#"{"attributes":{}}"#).unwrap().attributes.unwrap().fields, vec![]);
    }

    #[test]
    fn attributes_are_recognised_when_serde_json_would_write_them_so() {
        assert!(scan_attributes(r#"{"speaker":"agent","text":"Sure, let me check {that}: ok"}"#).is_some());
        assert!(scan_attributes(r#"{"score":42,"n":-7,"ok":true,"x":null,"list":[1,"a"]}"#).is_some());
        assert!(scan_attributes("{}").is_some());
        for refused in [
            "null",
            r#"{"a": 1}"#,
            "{\"a\":1\n}",
            r#"{"a":1.0}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":{"b":1,"b":2}}"#,
            r#"{"a":{"b": 1}}"#,
            r#"{"a":{"b":[{"c":1,"c":1}]}}"#,
            r#"{"a":{1:2}}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1}x"#,
        ] {
            assert!(scan_attributes(refused).is_none(), "{refused}");
        }
        // Whatever it accepts, serde_json writes back unchanged.
        for text in [r#"{"a":[1,-2,"b",true,false,null,[]],"c":"d e"}"#, r#"{"s":"multi-byte é ✓"}"#, r#"{"z":{"y":1,"x":[{"w":"v}"}],"e":{}},"a":2}"#] {
            assert!(scan_attributes(text).is_some());
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&value).unwrap(), text);
        }
    }

    #[test]
    fn anything_else_is_left_to_serde() {
        for refused in [
            // Not JSON, or not one object.
            r#"{"event_id":"e1""#,
            r#"{"event_id":"e1"} x"#,
            r#"{"event_id":"e1",}"#,
            r#"{"event_id" "e1"}"#,
            r#"["e1"]"#,
            "\u{c}{}",
            // Escapes or control characters in strings.
            r#"{"event_id":"e\u0031"}"#,
            "{\"event_id\":\"e\u{1}\"}",
            r#"{"ev\u0065nt_id":"e1"}"#,
            // Unknown or repeated keys; other JSON types.
            r#"{"extra":1}"#,
            r#"{"event_id":"e1","event_id":"e2"}"#,
            r#"{"attributes":{},"attributes":{}}"#,
            r#"{"event_id":1}"#,
            r#"{"event_id":nul}"#,
            r#"{"attributes":[]}"#,
            r#"{"attributes":"x"}"#,
            // Attributes serde_json would write differently.
            r#"{"attributes":{"a": 1}}"#,
            r#"{"attributes":{"a":1.5}}"#,
            r#"{"attributes":{"a":1e3}}"#,
            r#"{"attributes":{"a":-0}}"#,
            r#"{"attributes":{"a":01}}"#,
            r#"{"attributes":{"a":-}}"#,
            r#"{"attributes":{"a":1234567890123456789}}"#,
            r#"{"attributes":{"a":{"b":1,"b":2}}}"#,
            r#"{"attributes":{"a":{"b":1.5}}}"#,
            r#"{"attributes":{"a":{"b":1},}}"#,
            r#"{"attributes":{"a":1,"a":2}}"#,
            r#"{"attributes":{"a":tru}}"#,
            r#"{"attributes":{"a":[1,]}}"#,
        ] {
            assert_eq!(scan(refused), None, "{refused}");
        }
        let deep = format!(r#"{{"attributes":{{"a":{}1{}}}}}"#, "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(scan(&deep), None);
        let deep_enough = format!(r#"{{"attributes":{{"a":{}1{}}}}}"#, "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(scan(&deep_enough).is_some());
        let deep_objects = |n: usize| format!(r#"{{"attributes":{}1{}}}"#, r#"{"a":"#.repeat(n), "}".repeat(n));
        assert_eq!(scan(&deep_objects(MAX_DEPTH + 1)), None);
        assert!(scan(&deep_objects(MAX_DEPTH)).is_some());
    }
}
