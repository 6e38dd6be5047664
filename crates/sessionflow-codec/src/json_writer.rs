//! A compact JSON serializer writing straight into a `Vec<u8>`.
//!
//! Its output is byte for byte that of `serde_json::to_vec` (the compact
//! formatter) for every value serde_json serializes, and it fails where and
//! with the message serde_json fails. It is faster where output records
//! spend their time: strings (every key and most values) are scanned for
//! bytes to escape and written eight bytes at a time, an object key goes
//! out with its separators in one append, and every write is a plain `Vec`
//! append, with no `io::Write` layer.
//!
//! Numbers are formatted by the crates serde_json uses, `itoa` for integers
//! and `zmij` for floats, so they print alike.

use serde::ser::{self, Impossible, Serialize};
use sessionflow_core::json_bytes::{escape_mask, load8};
use std::fmt::{self, Display};

/// A serialization error: a type's `Serialize` impl failed, or a map key is
/// not one JSON can hold. The message is serde_json's for the same case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

impl From<Error> for crate::CodecError {
    fn from(e: Error) -> Self {
        crate::CodecError::Encode(e.0)
    }
}

fn key_must_be_a_string() -> Error {
    Error("key must be a string".to_owned())
}

fn float_key_must_be_finite() -> Error {
    Error("float key must be finite (got NaN or +/-inf)".to_owned())
}

/// Serializes `value` as compact JSON.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, crate::CodecError> {
    to_vec_with_capacity(value, 128)
}

/// Serializes `value` as compact JSON into a vector that starts with room
/// for `capacity` bytes: a good guess saves regrowing it.
pub fn to_vec_with_capacity<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Result<Vec<u8>, crate::CodecError> {
    let mut out = Vec::with_capacity(capacity);
    write_to(&mut out, value)?;
    Ok(out)
}

/// Appends `value` as compact JSON to `out`. On error `out` is left as it
/// was.
pub fn write_to<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), crate::CodecError> {
    let len = out.len();
    value.serialize(Serializer::new(out)).map_err(|e| {
        out.truncate(len);
        crate::CodecError::from(e)
    })
}

/// The serializer: appends to the vector it borrows.
#[derive(Debug)]
pub struct Serializer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Serializer<'a> {
    /// A serializer appending to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Serializer { out }
    }
}

// ---------------------------------------------------------------------------
// Strings

/// Escape of each byte: 0 for none, `u` for `\u00XX`, else the letter after
/// the backslash. Exactly serde_json's set: control characters, `"` and `\`.
static ESCAPE: [u8; 256] = {
    let mut table = [0_u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

#[inline]
fn write_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match ESCAPE[usize::from(byte)] {
        b'u' => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xF)]]),
        letter => out.extend_from_slice(&[b'\\', letter]),
    }
}

/// Appends the escaped contents of `bytes[at..]`, without quotes.
///
/// Each word read is written out whole, a single 8-byte store, and the
/// vector cut back where the word held an escape or ran past the end:
/// cheaper than copying runs of varying length.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], mut at: usize) {
    while at < bytes.len() {
        let word = load8(bytes, at);
        let mask = escape_mask(word);
        out.extend_from_slice(&word.to_le_bytes());
        if mask == 0 {
            at += 8;
            continue;
        }
        let lane = (mask.trailing_zeros() / 8) as usize;
        out.truncate(out.len() - 8 + lane);
        write_escape(out, bytes[at + lane]);
        at += lane + 1;
    }
    // The spaces written past the end.
    out.truncate(out.len() - (at - bytes.len()));
}

/// Appends the escaped contents of `s`, without quotes.
fn write_str_contents(out: &mut Vec<u8>, s: &str) {
    write_escaped(out, s.as_bytes(), 0);
}

/// The rest of a string from the first word holding a byte to escape, and
/// what follows its closing quote. Out of line: it is rare, and keeping it
/// out of `write_quoted` keeps that small enough to inline everywhere.
#[cold]
#[inline(never)]
fn finish_escaped(out: &mut Vec<u8>, bytes: &[u8], at: usize, close: &[u8]) {
    write_escaped(out, bytes, at);
    out.extend_from_slice(close);
}

/// Appends `open`, `s` escaped, and `close` (which begins with the closing
/// quote): a string, or an object key with its separators around it.
#[inline(always)]
pub(crate) fn write_quoted(out: &mut Vec<u8>, open: &[u8], s: &str, close: &[u8]) {
    let bytes = s.as_bytes();
    // Room for everything and the slack of the whole-word writes: nothing
    // below grows the vector unless there are escapes.
    out.reserve(open.len() + bytes.len() + close.len() + 8);
    out.extend_from_slice(open);
    let mut at = 0;
    while at < bytes.len() {
        let word = load8(bytes, at);
        if escape_mask(word) != 0 {
            return finish_escaped(out, bytes, at, close);
        }
        out.extend_from_slice(&word.to_le_bytes());
        at += 8;
    }
    // The spaces written past the end.
    out.truncate(out.len() - (at - bytes.len()));
    out.extend_from_slice(close);
}

/// Appends `s` as a JSON string.
#[inline(always)]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_quoted(out, b"\"", s, b"\"");
}

/// Escapes text written through `fmt::Write`, for `collect_str`.
struct Escaper<'a> {
    out: &'a mut Vec<u8>,
}

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_str_contents(self.out, s);
        Ok(())
    }
}

fn collect_str<T: Display + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    use fmt::Write as _;
    out.push(b'"');
    // Appending to a vector cannot fail: only `value`'s own `Display` can.
    write!(Escaper { out: &mut *out }, "{value}").map_err(<Error as ser::Error>::custom)?;
    out.push(b'"');
    Ok(())
}

// ---------------------------------------------------------------------------
// Numbers

#[inline]
fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A digit for 0–9 (most counts and many durations of a record), else
/// the formatter.
#[inline]
pub(crate) fn write_count<I: itoa::Integer + TryInto<u8> + Copy>(out: &mut Vec<u8>, value: I) {
    match value.try_into() {
        Ok(digit @ 0..=9) => out.push(b'0' + digit),
        _ => write_int(out, value),
    }
}

/// A finite float, as serde_json prints it.
#[inline]
pub(crate) fn write_finite<F: zmij::Float>(out: &mut Vec<u8>, value: F) {
    out.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
}

// ---------------------------------------------------------------------------
// Values

impl<'a> ser::Serializer for Serializer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        // Two fixed-size writes rather than one of varying size (a `memcpy`).
        if v {
            self.out.extend_from_slice(b"true")
        } else {
            self.out.extend_from_slice(b"false")
        }
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        write_count(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        write_count(self.out, v);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        write_count(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        write_count(self.out, v);
        Ok(())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        write_int(self.out, v);
        Ok(())
    }

    /// NaN and infinities have no JSON form: `null`, as serde_json.
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if v.is_finite() {
            write_finite(self.out, v)
        } else {
            self.out.extend_from_slice(b"null")
        }
        Ok(())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if v.is_finite() {
            write_finite(self.out, v)
        } else {
            self.out.extend_from_slice(b"null")
        }
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }

    /// Bytes are an array of numbers, as serde_json writes them.
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.out.push(b'[');
        for (i, byte) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_int(self.out, *byte);
        }
        self.out.push(b']');
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        write_str(self.out, variant);
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    /// `{"Variant":value}`.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _name: &'static str, _index: u32, variant: &'static str, value: &T) -> Result<(), Error> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(Serializer { out: &mut *self.out })?;
        self.out.push(b'}');
        Ok(())
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::open(self.out, b'[', b']', len))
    }

    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    /// `{"Variant":[...]}`.
    fn serialize_tuple_variant(self, _name: &'static str, _index: u32, variant: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self.serialize_seq(Some(len))
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Error> {
        Ok(Compound::open(self.out, b'{', b'}', len))
    }

    #[inline]
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        if name == RAW_VALUE_TOKEN {
            return Ok(Compound { out: self.out, state: State::Raw });
        }
        self.serialize_map(Some(len))
    }

    /// `{"Variant":{...}}`.
    fn serialize_struct_variant(self, _name: &'static str, _index: u32, variant: &'static str, len: usize) -> Result<Compound<'a>, Error> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self.serialize_map(Some(len))
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        collect_str(self.out, value)
    }
}

/// Where an array or object is: serde_json's states, kept exactly, so even
/// a `Serialize` impl announcing a wrong length prints as there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Announced empty: already closed, and `end` writes nothing.
    Empty,
    First,
    Rest,
    /// serde_json's `RawValue`: its one field is JSON text, written as is.
    Raw,
}

/// An array or object being written.
#[derive(Debug)]
pub struct Compound<'a> {
    out: &'a mut Vec<u8>,
    state: State,
}

impl<'a> Compound<'a> {
    #[inline]
    fn open(out: &'a mut Vec<u8>, open: u8, close: u8, len: Option<usize>) -> Self {
        out.push(open);
        let state = if len == Some(0) {
            out.push(close);
            State::Empty
        } else {
            State::First
        };
        Compound { out, state }
    }

    /// The separator before an element or a key.
    #[inline]
    fn next(&mut self) {
        if self.state != State::First {
            self.out.push(b',');
        }
        self.state = State::Rest;
    }

    #[inline]
    fn close(self, close: u8) -> &'a mut Vec<u8> {
        if matches!(self.state, State::First | State::Rest) {
            self.out.push(close);
        }
        self.out
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.next();
        value.serialize(Serializer { out: &mut *self.out })
    }

    #[inline]
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        // `,"key":` in one go: one capacity check for all of it.
        if self.state == State::First {
            write_quoted(self.out, b"\"", key, b"\":");
        } else {
            write_quoted(self.out, b",\"", key, b"\":");
        }
        self.state = State::Rest;
        value.serialize(Serializer { out: &mut *self.out })
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.close(b']');
        Ok(())
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.close(b']');
        Ok(())
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.close(b']');
        Ok(())
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.close(b']').push(b'}');
        Ok(())
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.next();
        key.serialize(MapKeySerializer { out: &mut *self.out })
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.out.push(b':');
        value.serialize(Serializer { out: &mut *self.out })
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        if self.state == State::Raw {
            return value.serialize(RawTextSerializer { out: &mut *self.out });
        }
        self.field(key, value)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.close(b'}');
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Error;

    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }

    #[inline]
    fn end(self) -> Result<(), Error> {
        self.close(b'}').push(b'}');
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Map keys

/// Object keys: strings, and what serde_json turns into one (integers,
/// floats and booleans quoted, chars, unit variants); anything else fails
/// with serde_json's error.
struct MapKeySerializer<'a> {
    out: &'a mut Vec<u8>,
}

impl MapKeySerializer<'_> {
    fn quoted(self, text: &[u8]) -> Result<(), Error> {
        self.out.push(b'"');
        self.out.extend_from_slice(text);
        self.out.push(b'"');
        Ok(())
    }
}

impl ser::Serializer for MapKeySerializer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_str(self.out, v);
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        write_str(self.out, variant);
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.quoted(if v { b"true" } else { b"false" })
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.quoted(itoa::Buffer::new().format(v).as_bytes())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.quoted(zmij::Buffer::new().format_finite(v).as_bytes())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        if !v.is_finite() {
            return Err(float_key_must_be_finite());
        }
        self.quoted(zmij::Buffer::new().format_finite(v).as_bytes())
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _name: &'static str, _index: u32, _variant: &'static str, _value: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(self, _name: &'static str, _index: u32, _variant: &'static str, _len: usize) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(self, _name: &'static str, _index: u32, _variant: &'static str, _len: usize) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }

    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        collect_str(self.out, value)
    }
}

// ---------------------------------------------------------------------------
// Raw JSON text

/// The struct name serde_json's `RawValue` serializes as; serde_json writes
/// its one field, a string of JSON text, unquoted, and so does this writer.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// The field of a `RawValue`: takes its text and writes it as is.
struct RawTextSerializer<'a> {
    out: &'a mut Vec<u8>,
}

fn expected_raw_value() -> Error {
    Error("expected RawValue".to_owned())
}

/// Serializer methods that refuse anything but a string.
macro_rules! refuse_all_but_str {
    ($( $method:ident ( $($arg:ty),* ) -> $ret:ty; )*) => {
        $( fn $method(self, $(_: $arg),*) -> Result<$ret, Error> { Err(expected_raw_value()) } )*
    };
}

impl ser::Serializer for RawTextSerializer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }

    refuse_all_but_str! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_i128(i128) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_u128(u128) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(expected_raw_value())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, _value: &T) -> Result<(), Error> {
        Err(expected_raw_value())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(self, _name: &'static str, _index: u32, _variant: &'static str, _value: &T) -> Result<(), Error> {
        Err(expected_raw_value())
    }

    fn collect_str<T: Display + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(expected_raw_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's `RawValue` is written as is, inside any structure.
    #[test]
    fn raw_values_are_written_as_serde_json_writes_them() {
        let raw = serde_json::value::RawValue::from_string(r#"{"a":[1,"x"],"b":{"c":null}}"#.to_owned()).unwrap();
        let nested = serde_json::json!({"k": 1});
        let value = (&raw, vec![&raw, &raw], std::collections::BTreeMap::from([("raw", &raw)]), nested);
        assert_eq!(to_vec(&value).unwrap(), serde_json::to_vec(&value).unwrap());
    }
}
