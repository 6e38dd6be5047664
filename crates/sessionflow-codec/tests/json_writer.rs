//! The JSON writer prints exactly what `serde_json::to_vec` prints, and
//! fails where it fails with the same message: on free-form JSON, on every
//! record the engine outputs, and on each shape serde can describe.

mod common;

use common::{example_events, example_outputs};
use proptest::prelude::*;
use serde::ser::{Error as _, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTupleVariant};
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value, json};
use sessionflow_codec::avro::RecordKind;
use sessionflow_codec::{Codec, json_capacity, json_writer};
use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{Anomaly, EngineConfig, Event, InputError, Output};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use std::collections::BTreeMap;
use std::fmt;

/// Both serializers succeed with the same bytes, or both fail with the
/// same message. Appending to a non-empty vector appends those bytes, and a
/// failure leaves the vector as it was.
fn check<T: Serialize + ?Sized>(value: &T) -> Result<(), TestCaseError> {
    let ours = json_writer::to_vec(value);
    match (ours, serde_json::to_vec(value)) {
        (Ok(ours), Ok(theirs)) => prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs)),
        (Err(ours), Err(theirs)) => prop_assert_eq!(ours.to_string(), format!("encode: {theirs}")),
        (ours, theirs) => return Err(TestCaseError::fail(format!("writer gave {ours:?}, serde_json gave {theirs:?}"))),
    }
    let mut out = b"prefix".to_vec();
    let appended = json_writer::write_to(&mut out, value);
    match serde_json::to_vec(value) {
        Ok(theirs) => {
            prop_assert!(appended.is_ok());
            prop_assert_eq!(&out[..6], b"prefix");
            prop_assert_eq!(&out[6..], &theirs[..]);
        }
        Err(_) => {
            prop_assert!(appended.is_err());
            prop_assert_eq!(&out[..], b"prefix");
        }
    }
    Ok(())
}

fn assert_same<T: Serialize + ?Sized>(value: &T) {
    if let Err(e) = check(value) {
        panic!("{e}");
    }
}

/// Characters of every kind the escaping treats differently: control
/// characters (those with short escapes and the rest), `"`, `\`, the
/// unescaped neighbours `/`, space and DEL, and 2-, 3- and 4-byte UTF-8.
fn arb_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => proptest::char::range('a', 'z'),
        2 => (0_u8..0x20).prop_map(char::from),
        1 => prop::sample::select(vec!['"', '\\', '/', ' ', '\u{7f}', '\u{80}', 'é', 'ß', '€', '\u{2028}', '\u{fffd}', '😀', '\u{10ffff}']),
        1 => any::<char>(),
    ]
}

/// Strings of 0 to 40 characters, across the 8-byte scanning boundaries.
fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(arb_char(), 0..40).prop_map(|chars| chars.into_iter().collect()),
        1 => any::<String>(),
        1 => "[a-z_]{0,40}",
    ]
}

/// Doubles of every magnitude, negative zero, and the extremes.
fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        (any::<i32>(), -330_i32..310).prop_map(|(m, e)| f64::from(m) * 10_f64.powi(e)),
        (any::<i16>(), 0..12).prop_map(|(m, e)| f64::from(m) / f64::from(1 << e)),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            1e15,
            1e16,
            1e17,
            1e21,
            1e22,
            1e-7,
            1e-6,
            1e-5,
            123_456_789.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::EPSILON,
            9_007_199_254_740_993.0,
        ]),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        arb_f64().prop_filter_map("finite", Number::from_f64).prop_map(Value::Number),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_string(), inner), 0..6).prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn free_form_json_prints_as_serde_json(value in arb_json()) {
        check(&value)?;
    }

    #[test]
    fn strings_print_as_serde_json(s in arb_string(), c in any::<char>()) {
        check(&s)?;
        check(&c)?;
        // Keys go through their own serializer.
        check(&BTreeMap::from([(s.clone(), 1)]))?;
        check(&BTreeMap::from([(c, &s)]))?;
    }

    #[test]
    fn numbers_print_as_serde_json(
        f in arb_f64(),
        g in any::<f32>(),
        i in any::<i64>(),
        u in any::<u64>(),
        wide in any::<i128>(),
        uwide in any::<u128>(),
        small in any::<(i8, i16, i32, u8, u16, u32)>(),
        // Around the one-digit shortcut (0–9) and its edges.
        near_zero in (-12_i64..300, -12_i32..300, 0_u64..300, 0_u32..300),
    ) {
        check(&f)?;
        check(&g)?;
        check(&(i, u, wide, uwide))?;
        check(&small)?;
        check(&near_zero)?;
        // Keys are quoted numbers, and non-finite float keys fail.
        check(&FloatKey(f))?;
        check(&FloatKey(g))?;
        check(&BTreeMap::from([(i, 0)]))?;
        check(&BTreeMap::from([(u, 0)]))?;
        check(&BTreeMap::from([(wide, 0)]))?;
        check(&BTreeMap::from([(uwide, 0)]))?;
        check(&BTreeMap::from([(small, 0)]))?;
    }

    #[test]
    fn bytes_print_as_serde_json(bytes in prop::collection::vec(any::<u8>(), 0..20)) {
        check(&Bytes(&bytes))?;
    }
}

/// Every character kind at every offset of strings up to 24 bytes, alone
/// and followed by another: each position within and across 8-byte words.
#[test]
fn each_character_kind_at_each_offset_prints_as_serde_json() {
    let mut specials: Vec<char> = (0_u8..0x80).map(char::from).collect();
    specials.extend(['\u{80}', 'é', '€', '\u{2028}', '😀']);
    for len in 0..=24 {
        for at in 0..len {
            for &c in &specials {
                let mut s: String = "a".repeat(at);
                s.push(c);
                s.push_str(&"b".repeat(len - at - 1));
                assert_same(&s);
                s.push('"');
                s.push_str(&"c".repeat(at % 9));
                assert_same(&s);
            }
        }
    }
}

/// Every event, and every timeline and metadata record of the sessions
/// they make, encodes through the codec to serde_json's bytes.
fn check_records(events: &[Result<Event, InputError>], outputs: Vec<Output>) -> [usize; 3] {
    let codec = Codec::json();
    let mut counts = [0; 3];
    for event in events.iter().flatten() {
        assert_eq!(codec.encode_event(event).unwrap(), serde_json::to_vec(event).unwrap());
        counts[0] += 1;
    }
    for output in outputs {
        let theirs = match &output {
            Output::Timeline(r) => {
                counts[1] += 1;
                serde_json::to_vec(r).unwrap()
            }
            Output::Metadata(r) => {
                counts[2] += 1;
                serde_json::to_vec(r).unwrap()
            }
            _ => continue,
        };
        let ours = codec.encode_output(&output).unwrap().expect("timeline and metadata records have a value");
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
    }
    counts
}

#[test]
fn example_records_encode_to_serde_jsons_bytes() {
    let [events, timelines, metadata] = check_records(&example_events(), example_outputs());
    assert!(events > 30 && timelines > 30 && metadata > 10, "{events} {timelines} {metadata}");
}

/// The simulator's traffic with its duplicates, late, out-of-order and
/// malformed records and erasures: anomalies, revisions, dead letters.
#[test]
fn simulated_records_encode_to_serde_jsons_bytes() {
    let codec = Codec::json();
    let events: Vec<_> = Simulator::new(SimConfig { seed: 11, ..SimConfig::default() })
        .take(20_000)
        .map(|record| match record {
            SimRecord::Event(event) => Ok(event),
            SimRecord::Malformed { value, .. } => codec.decode_event(Some(&value)),
        })
        .collect();
    let outputs = replay_in_memory(&EngineConfig::default(), &events, 500).0;
    let [events, timelines, metadata] = check_records(&events, outputs);
    assert!(events > 15_000 && timelines > 15_000 && metadata > 3_000, "{events} {timelines} {metadata}");
}

/// The codec sizes its JSON output vectors for the records of each kind:
/// none of the simulator's records makes its vector grow.
#[test]
fn json_outputs_are_allocated_once() {
    let codec = Codec::json();
    let events: Vec<_> = Simulator::new(SimConfig { extra_events_per_session: 24, ..SimConfig::clean(7) })
        .take(20_000)
        .filter_map(|r| if let SimRecord::Event(e) = r { Some(Ok(e)) } else { None })
        .collect();
    let mut counts = [0; 3];
    let mut check = |kind: RecordKind, bytes: Vec<u8>| {
        assert_eq!(bytes.capacity(), json_capacity(kind), "a {kind:?} record of {} bytes outgrew its vector", bytes.len());
        counts[kind as usize] += 1;
    };
    for event in events.iter().flatten() {
        check(RecordKind::Event, codec.encode_event(event).unwrap());
    }
    for output in replay_in_memory(&EngineConfig::default(), &events, 500).0 {
        match &output {
            Output::Timeline(r) => check(RecordKind::Timeline, codec.encode_timeline(r).unwrap()),
            Output::Metadata(r) => check(RecordKind::Metadata, codec.encode_metadata(r).unwrap()),
            _ => {}
        }
    }
    assert!(counts.iter().all(|n| *n > 5_000), "{counts:?}");
}

// ---------------------------------------------------------------------------
// Shapes

#[derive(Serialize)]
enum Shape {
    Unit,
    #[serde(rename = "renamed \"unit\"")]
    Renamed,
    Newtype(i32),
    NewtypeNone(Option<String>),
    Tuple(i32, String),
    EmptyTuple(),
    Struct {
        a: i32,
        b: Option<String>,
        c: Vec<u8>,
    },
    EmptyStruct {},
}

#[derive(Serialize)]
struct UnitStruct;

#[derive(Serialize)]
struct NewtypeStruct(String);

#[derive(Serialize)]
struct TupleStruct(i32, &'static str, ());

#[derive(Serialize)]
struct EmptyStruct {}

#[derive(Serialize)]
struct Fields {
    #[serde(rename = "with \"quotes\"\n")]
    quoted: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    #[serde(flatten)]
    flattened: BTreeMap<String, Value>,
    tail: Vec<Shape>,
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
enum KeyVariant {
    Alpha,
    Beta(u8),
}

#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
struct NewtypeKey(u16);

/// A map with float keys (no std map can hold them).
struct FloatKey<F>(F);

impl<F: Serialize> Serialize for FloatKey<F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.0, "v")?;
        map.end()
    }
}

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Text written in pieces through `collect_str`.
struct Pieces;

impl fmt::Display for Pieces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Several fragments, escapes in the literal parts and in the arguments.
        let (n, text) = (42, "a \\ \"backslash\"");
        write!(f, "a \"quoted\"\tpiece, {n} and {text}\u{1}é")
    }
}

impl Serialize for Pieces {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Announces no elements, then writes some: printed as serde_json prints
/// it, wrong as that is.
struct WrongLengths;

impl Serialize for WrongLengths {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(0))?;
        seq.serialize_element(&LyingMap)?;
        seq.serialize_element(&LyingStruct)?;
        seq.serialize_element(&LyingVariants)?;
        seq.end()
    }
}

struct LyingMap;

impl Serialize for LyingMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(0))?;
        map.serialize_entry("k", &1)?;
        map.serialize_entry("l", &2)?;
        map.end()
    }
}

struct LyingStruct;

impl Serialize for LyingStruct {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("LyingStruct", 0)?;
        s.serialize_field("f", &true)?;
        s.end()
    }
}

struct LyingVariants;

impl Serialize for LyingVariants {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("tuple", &LyingTupleVariant)?;
        map.serialize_entry("struct", &LyingStructVariant)?;
        map.end()
    }
}

struct LyingTupleVariant;

impl Serialize for LyingTupleVariant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut t = serializer.serialize_tuple_variant("E", 0, "T", 0)?;
        t.serialize_field(&1)?;
        t.end()
    }
}

struct LyingStructVariant;

impl Serialize for LyingStructVariant {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct_variant("E", 0, "S", 0)?;
        s.serialize_field("x", &1)?;
        s.end()
    }
}

/// Fails with its message, after writing part of its output.
struct Failing(&'static str);

impl Serialize for Failing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        seq.serialize_element("written")?;
        Err(S::Error::custom(self.0))
    }
}

/// Records whether the serializer is human-readable, as `Millis` and
/// `Json` ask.
struct HumanReadable;

impl Serialize for HumanReadable {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let readable = serializer.is_human_readable();
        serializer.serialize_bool(readable)
    }
}

#[test]
fn every_shape_prints_as_serde_json() {
    assert_same(&Shape::Unit);
    assert_same(&Shape::Renamed);
    assert_same(&Shape::Newtype(-7));
    assert_same(&Shape::NewtypeNone(None));
    assert_same(&Shape::Tuple(1, "two".into()));
    assert_same(&Shape::EmptyTuple());
    assert_same(&Shape::Struct { a: 1, b: None, c: vec![] });
    assert_same(&Shape::Struct { a: 1, b: Some("x\u{0}".into()), c: vec![1, 2] });
    assert_same(&Shape::EmptyStruct {});
    assert_same(&UnitStruct);
    assert_same(&NewtypeStruct("n".into()));
    assert_same(&TupleStruct(3, "t", ()));
    assert_same(&EmptyStruct {});
    assert_same(&());
    assert_same(&(1, "a", [0.5, -0.0], ('c', '"')));
    assert_same(&None::<i32>);
    assert_same(&Some(Some(3)));
    assert_same(&Some(None::<i32>));
    assert_same(&Vec::<i32>::new());
    assert_same(&[[0_u8; 0]; 2]);
    assert_same(&BTreeMap::<String, i32>::new());
    assert_same(&json!({}));
    assert_same(&json!([]));
    assert_same(&json!({"a": {}, "b": [], "c": [{}, []], "": ""}));
    assert_same(&Fields { quoted: 1, skipped: None, flattened: BTreeMap::new(), tail: vec![] });
    assert_same(&Fields {
        quoted: 2,
        skipped: Some(3),
        flattened: BTreeMap::from([("x".into(), json!(1)), ("y\u{1f}".into(), json!({"z": null}))]),
        tail: vec![Shape::Unit, Shape::EmptyStruct {}, Shape::Tuple(0, String::new())],
    });
    assert_same(&Bytes(&[]));
    assert_same(&Bytes(&[0, 127, 255]));
    assert_same(&Pieces);
    assert_same(&WrongLengths);
    // Sequences and maps of unknown length.
    assert_same(&Unsized(vec![]));
    assert_same(&Unsized(vec![1, 2, 3]));
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0, 1e21, 1e-7] {
        assert_same(&f);
        assert_same(&(f as f32));
    }
    assert_same(&(i64::MIN, u64::MAX, i128::MIN, i128::MAX, u128::MAX, i8::MIN));
    assert_eq!(json_writer::to_vec(&HumanReadable).unwrap(), b"true");
}

/// Elements from an iterator without an exact length: `serialize_seq(None)`
/// and `serialize_map(None)`.
struct Unsized(Vec<i32>);

impl Serialize for Unsized {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("seq", &UnsizedSeq(&self.0))?;
        map.end()
    }
}

struct UnsizedSeq<'a>(&'a [i32]);

impl Serialize for UnsizedSeq<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().filter(|_| true))
    }
}

#[test]
fn map_keys_print_or_fail_as_serde_json() {
    assert_same(&BTreeMap::from([(-3_i32, "neg"), (7, "pos")]));
    assert_same(&BTreeMap::from([(u128::MAX, 1)]));
    assert_same(&BTreeMap::from([(false, 0), (true, 1)]));
    assert_same(&BTreeMap::from([('"', 0), ('\n', 1), ('é', 2)]));
    assert_same(&BTreeMap::from([(Anomaly::ALL[0], 2_u32)]));
    assert_same(&BTreeMap::from([(KeyVariant::Alpha, 1)]));
    assert_same(&BTreeMap::from([(NewtypeKey(9), 1)]));
    assert_same(&BTreeMap::from([(Some("some"), 1)]));
    assert_same(&BTreeMap::from([(PiecesKey, 1)]));
    assert_same(&FloatKey(1.5));
    assert_same(&FloatKey(-0.0_f64));
    assert_same(&FloatKey(1e300));
    assert_same(&FloatKey(0.1_f32));
    // Keys JSON cannot hold.
    macro_rules! assert_fails {
        ($($value:expr),* $(,)?) => {$(
            assert!(json_writer::to_vec(&$value).is_err(), "{}", stringify!($value));
            assert_same(&$value);
        )*};
    }
    assert_fails![
        FloatKey(f64::NAN),
        FloatKey(f32::INFINITY),
        FloatKey(f64::NEG_INFINITY),
        BTreeMap::from([((), 1)]),
        BTreeMap::from([(None::<i32>, 1)]),
        BTreeMap::from([(vec![1], 1)]),
        BTreeMap::from([((1, 2), 1)]),
        BTreeMap::from([(KeyVariant::Beta(1), 1)]),
        BTreeMap::from([(BTreeMap::from([(1, 1)]), 1)]),
        FloatKey(UnitStruct),
        FloatKey(TupleStruct(1, "", ())),
        FloatKey(Shape::Tuple(1, String::new())),
        FloatKey(Shape::Struct { a: 1, b: None, c: vec![] }),
        FloatKey(EmptyStruct {}),
        FloatKey(Bytes(b"k")),
    ];
    assert_eq!(json_writer::to_vec(&BTreeMap::from([((), 1)])).unwrap_err().to_string(), "encode: key must be a string");
    assert_eq!(json_writer::to_vec(&FloatKey(f64::NAN)).unwrap_err().to_string(), "encode: float key must be finite (got NaN or +/-inf)");
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct PiecesKey;

impl Serialize for PiecesKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&Pieces)
    }
}

#[test]
fn failures_carry_the_message_of_the_impl_that_failed() {
    assert_same(&Failing("nope"));
    // serde_json reads a position off the end of the message and prints it back.
    assert_same(&Failing("nope at line 3 column 4"));
    assert_same(&(1, json!({"a": [2]}), vec![Failing("deep")]));
    assert_eq!(json_writer::to_vec(&Failing("nope")).unwrap_err().to_string(), "encode: nope");
}
