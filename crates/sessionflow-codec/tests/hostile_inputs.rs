//! A corpus of hostile inputs (issue 23, "bad input at volume"): each named
//! case goes through the decoder or a vendor's adapter and the fold, and
//! must become a dead letter with its specific reason (or, where the input
//! is usable, be accepted), without a panic and within the memory bound of
//! `fuzzing::memory_bound`. `fuzz.rs` generates inputs at volume; this file
//! keeps the hand-made extremes and the regressions the fuzzing found.

mod fuzzing;

use fuzzing::{Harness, InputReport, Target, memory_bound};
use serde_json::{Value, json};
use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, adapter};
use sessionflow_core::{DeadLetterReason as Reason, EngineConfig, Millis};
use sessionflow_sim::SimConfig;
use sessionflow_sim::vendors::VendorSimulator;

/// 2024-07-03T09:46:40Z, the simulator's start.
const T0: i64 = 1_720_000_000_000;
const MIB: usize = 1 << 20;

fn harness() -> Harness {
    Harness::new(EngineConfig::default(), Millis(T0 + 600_000))
}

/// One input through a fresh pipeline; checks the memory bound.
fn run(target: Target, value: Option<Vec<u8>>) -> InputReport {
    let report = harness().run_one(target, value);
    assert!(
        report.within_memory_bound(),
        "{} bytes allocated for an input of {} bytes, bound {}",
        report.peak_bytes,
        report.len,
        memory_bound(report.len, report.records)
    );
    report
}

#[track_caller]
fn assert_dead(report: &InputReport, reason: Reason) {
    assert_eq!(report.dead_letter_reason(), Some(reason), "{report:?}");
}

#[track_caller]
fn assert_all_dead(report: &InputReport, reason: Reason) {
    assert!(report.timeline == 0 && !report.dead_letters.is_empty(), "{report:?}");
    assert!(report.dead_letters.iter().all(|(r, _)| *r == reason), "{report:?}");
}

#[track_caller]
fn assert_accepted(report: &InputReport) {
    assert!(report.timeline == 1 && report.dead_letters.is_empty(), "{report:?}");
}

// ---------------------------------------------------------------- canonical JSON

fn event() -> Value {
    json!({
        "event_id": "e1",
        "session_id": "s1",
        "type": "session.started",
        "occurred_at": Millis(T0).to_rfc3339(),
        "channel": "voice",
        "direction": "inbound",
        "tenant": "acme",
        "source": "fuzz",
        "attributes": {"lang": "en", "priority": 3}
    })
}

/// An event with a typed number: `priority` of `queue.entered` is an integer from 1 to 8.
fn queued() -> Value {
    json!({"event_id": "e1", "session_id": "s1", "type": "queue.entered", "occurred_at": Millis(T0).to_rfc3339(), "attributes": {"queue": "Q", "priority": 3}})
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn canonical(bytes: Vec<u8>) -> InputReport {
    run(Target::Canonical, Some(bytes))
}

fn with_field(field: &str, value: Value) -> Vec<u8> {
    let mut e = event();
    e[field] = value;
    json_bytes(&e)
}

const STRING_FIELDS: [&str; 8] = ["event_id", "session_id", "type", "occurred_at", "channel", "direction", "tenant", "source"];

#[test]
fn the_reference_event_is_accepted() {
    assert_accepted(&canonical(json_bytes(&event())));
    assert_accepted(&canonical(sessionflow_codec::Codec::avro().encode_event(&sessionflow_core::Event::from_json(event()).unwrap()).unwrap()));
}

#[test]
fn empty_null_and_non_object_values_are_decode_errors() {
    assert_dead(&run(Target::Canonical, None), Reason::DecodeError);
    for text in ["", " ", "\n", "null", "[]", "\"text\"", "123", "true", "{", "}", "{\"event_id\":", "{}{}"] {
        assert_dead(&canonical(text.as_bytes().to_vec()), Reason::DecodeError);
    }
    assert_dead(&canonical(b"{}".to_vec()), Reason::MissingField);
}

#[test]
fn a_byte_order_mark_is_a_decode_error() {
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend(json_bytes(&event()));
    assert_dead(&canonical(bytes), Reason::DecodeError);
}

#[test]
fn deeply_nested_json_is_a_decode_error() {
    let deep = |open: &str, close: &str, n: usize| format!("{}{}", open.repeat(n), close.repeat(n));
    assert_dead(&canonical(deep("[", "]", 100_000).into_bytes()), Reason::DecodeError);
    assert_dead(&canonical("[".repeat(100_000).into_bytes()), Reason::DecodeError);
    // Nested in the attributes, in an attribute, in an unknown field.
    // 80 000 levels of `{"a":…}` take 480 000 bytes, within `max_event_bytes`.
    let nested = deep("{\"a\":", "}", 80_000);
    let e = json_bytes(&event());
    let text = String::from_utf8(e).unwrap();
    let in_attributes = text.replace("{\"lang\":\"en\",\"priority\":3}", &nested);
    assert_dead(&canonical(in_attributes.into_bytes()), Reason::DecodeError);
    let in_attribute = text.replace("\"en\"", &deep("[", "]", 100_000));
    assert_dead(&canonical(in_attribute.into_bytes()), Reason::DecodeError);
    // A field sessionflow ignores is skipped, at any depth, without
    // building it (serde_json skips it iteratively).
    let in_unknown_field = text.replacen('{', &format!("{{\"extra\":{},", deep("[", "]", 100_000)), 1);
    assert_accepted(&canonical(in_unknown_field.into_bytes()));
}

#[test]
fn a_1_mib_string_in_any_field_is_oversize() {
    let long = "x".repeat(MIB);
    for field in STRING_FIELDS {
        assert_dead(&canonical(with_field(field, json!(long))), Reason::Oversize);
    }
    let mut e = event();
    e["attributes"]["lang"] = json!(long);
    assert_dead(&canonical(json_bytes(&e)), Reason::Oversize);
    e = event();
    e["attributes"] = json!({ long.clone(): 1 });
    assert_dead(&canonical(json_bytes(&e)), Reason::Oversize);
}

#[test]
fn a_400_kib_string_has_the_reason_of_its_field() {
    // Under `encoding.max_event_bytes`, the string is judged where it is.
    let long = "x".repeat(400 << 10);
    for (field, reason) in [
        ("event_id", Some(Reason::BadFieldType)),
        ("session_id", Some(Reason::BadFieldType)),
        ("occurred_at", Some(Reason::BadTimestamp)),
        ("channel", Some(Reason::BadFieldType)),
        ("direction", Some(Reason::BadFieldType)),
        // An unknown type, a tenant and a source may be long.
        ("type", None),
        ("tenant", None),
        ("source", None),
    ] {
        let report = canonical(with_field(field, json!(long)));
        match reason {
            Some(reason) => assert_dead(&report, reason),
            None => assert_accepted(&report),
        }
    }
}

/// A marker that the JSON writer leaves as ASCII, swapped for bytes that
/// are not UTF-8 after writing.
const MARK: &str = "\u{1}MARK\u{1}";
const MARK_JSON: &[u8] = b"\\u0001MARK\\u0001";

fn poison(bytes: &[u8]) -> Vec<u8> {
    let at = bytes.windows(MARK_JSON.len()).position(|w| w == MARK_JSON).expect("the marker");
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(b"a\xff\xfeb");
    out.extend_from_slice(&bytes[at + MARK_JSON.len()..]);
    out
}

#[test]
fn invalid_utf8_in_any_field_is_a_decode_error() {
    for field in STRING_FIELDS {
        assert_dead(&canonical(poison(&with_field(field, json!(MARK)))), Reason::DecodeError);
    }
    for attributes in [json!({"lang": MARK}), json!({ MARK: "en" }), json!({"lang": ["en", {"k": MARK}]})] {
        assert_dead(&canonical(poison(&with_field("attributes", attributes))), Reason::DecodeError);
    }
    // In a field sessionflow ignores, and in a key.
    assert_dead(&canonical(poison(&with_field("extra", json!(MARK)))), Reason::DecodeError);
    assert_dead(&canonical(poison(&with_field(MARK, json!(1)))), Reason::DecodeError);
}

#[test]
fn timestamps_at_the_edges_are_bad_timestamps() {
    for at in [
        json!("9999-12-31T23:59:59.999Z"),
        json!("0000-01-01T00:00:00Z"),
        json!("1970-01-01T00:00:00Z"),
        json!("1969-12-31T23:59:59.999Z"),
        json!("1970-01-01T23:59:59.999Z"),
        json!("+275760-09-13T00:00:00Z"),
        json!("2100-01-01T00:00:00Z"),
        json!(Millis(T0 + 3_600_000 + 600_001).to_rfc3339()),
        json!("2024-02-30T00:00:00Z"),
        json!("2024-07-03T25:00:00Z"),
        json!("2024-07-03T09:46:40"),
        json!("NaN"),
        json!("Infinity"),
        json!("-0"),
        json!(""),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-1),
        json!(0),
        json!(T0),
        json!(1.5),
        json!(1e308),
        json!(-1e308),
        json!(true),
        json!([]),
        json!({}),
    ] {
        let report = canonical(with_field("occurred_at", at.clone()));
        assert_eq!(report.dead_letter_reason(), Some(Reason::BadTimestamp), "occurred_at {at}: {report:?}");
    }
    // A time an hour ahead of the wall clock, just, is trusted.
    assert_accepted(&canonical(with_field("occurred_at", json!(Millis(T0 + 3_600_000 + 600_000).to_rfc3339()))));
}

#[test]
fn numbers_with_400_digits_are_decode_errors() {
    let digits = format!("1{}", "0".repeat(399));
    let text = String::from_utf8(json_bytes(&queued())).unwrap();
    for (from, to) in [
        ("\"priority\":3", format!("\"priority\":{digits}")),
        ("\"priority\":3", format!("\"extra\":{digits}")),
        ("\"priority\":3", format!("\"priority\":-{digits}")),
        ("\"priority\":3", format!("\"priority\":1e{}", "9".repeat(400))),
        ("\"queue\":\"Q\"", format!("\"queue\":{digits}")),
    ] {
        let input = text.replacen(from, &to, 1);
        assert_ne!(input, text);
        assert_dead(&canonical(input.into_bytes()), Reason::DecodeError);
    }
    // Digits that a double holds (as 1e300 does) are a number of the wrong type or range.
    let input = text.replacen("\"priority\":3", &format!("\"priority\":1{}", "0".repeat(300)), 1);
    assert_dead(&canonical(input.into_bytes()), Reason::BadFieldType);
    let input = text.replacen("\"priority\":3", &format!("\"extra\":1{}", "0".repeat(300)), 1);
    assert_accepted(&canonical(input.into_bytes()));
}

#[test]
fn wrong_types_in_each_field_have_their_reasons() {
    // (field, reason of a value of the wrong type, reason of null: `None` is accepted)
    for (field, wrong, null) in [
        ("event_id", Reason::BadFieldType, Some(Reason::MissingField)),
        ("session_id", Reason::BadFieldType, Some(Reason::MissingField)),
        ("type", Reason::BadFieldType, Some(Reason::MissingField)),
        ("occurred_at", Reason::BadTimestamp, Some(Reason::MissingField)),
        // `session.started` requires its channel.
        ("channel", Reason::BadFieldType, Some(Reason::MissingField)),
        ("direction", Reason::BadFieldType, None),
        ("tenant", Reason::BadFieldType, None),
        ("source", Reason::BadFieldType, None),
        ("attributes", Reason::BadFieldType, None),
    ] {
        for value in [json!([1]), json!(7), json!(true), json!({"a": 1})] {
            if field == "attributes" && value.is_object() {
                continue;
            }
            let report = canonical(with_field(field, value.clone()));
            assert_eq!(report.dead_letter_reason(), Some(wrong), "{field} = {value}: {report:?}");
        }
        let report = canonical(with_field(field, Value::Null));
        match null {
            Some(reason) => assert_eq!(report.dead_letter_reason(), Some(reason), "{field} = null: {report:?}"),
            None => assert_accepted(&report),
        }
    }
    let mut e = queued();
    e["attributes"]["priority"] = json!("3");
    assert_dead(&canonical(json_bytes(&e)), Reason::BadFieldType);
    e["attributes"]["priority"] = json!(f64::MAX);
    assert_dead(&canonical(json_bytes(&e)), Reason::BadFieldType);
    e["attributes"]["priority"] = json!(9);
    assert_dead(&canonical(json_bytes(&e)), Reason::BadFieldType);
    e["attributes"]["priority"] = json!(8);
    assert_accepted(&canonical(json_bytes(&e)));
}

#[test]
fn repeated_keys_read_as_the_last_one() {
    let text = String::from_utf8(json_bytes(&event())).unwrap();
    let twice = |field: &str, first: &str| text.replacen('{', &format!("{{\"{field}\":{first},"), 1);
    // A bad first value is overridden by the good last one…
    assert_accepted(&canonical(twice("occurred_at", "\"yesterday\"").into_bytes()));
    assert_accepted(&canonical(twice("event_id", "7").into_bytes()));
    assert_accepted(&canonical(twice("attributes", "[]").into_bytes()));
    // …and a bad last value is the one read.
    let last_bad = text.replacen("\"attributes\"", "\"occurred_at\":\"yesterday\",\"attributes\"", 1);
    assert_dead(&canonical(last_bad.into_bytes()), Reason::BadTimestamp);
    let text = String::from_utf8(json_bytes(&queued())).unwrap();
    let mut repeated_attribute = text.replacen("\"priority\":3", "\"priority\":3,\"priority\":\"high\"", 1);
    assert_dead(&canonical(repeated_attribute.clone().into_bytes()), Reason::BadFieldType);
    repeated_attribute = text.replacen("\"priority\":3", "\"priority\":\"high\",\"priority\":3", 1);
    assert_accepted(&canonical(repeated_attribute.into_bytes()));
}

// ---------------------------------------------------------------- canonical Avro

/// A zig-zag varint.
fn varint(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn avro_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = varint(bytes.len() as i64);
    out.extend_from_slice(bytes);
    out
}

/// The fields of an Avro event, in schema order, each already encoded.
fn avro_fields() -> Vec<Vec<u8>> {
    let some = |s: &[u8]| [vec![2], avro_string(s)].concat();
    vec![
        avro_string(b"e1"),
        avro_string(b"s1"),
        avro_string(b"session.started"),
        varint(T0),
        some(b"voice"),
        some(b"inbound"),
        some(b"acme"),
        vec![0],
        avro_string(b"{\"lang\":\"en\"}"),
    ]
}

fn framed(fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0, 0, 0, 0, 1];
    for f in fields {
        out.extend_from_slice(f);
    }
    out
}

/// The string fields: their index and whether they sit in a union.
const AVRO_STRINGS: [(usize, bool); 8] = [(0, false), (1, false), (2, false), (4, true), (5, true), (6, true), (7, true), (8, false)];

#[test]
fn the_hand_built_avro_event_is_accepted() {
    assert_accepted(&canonical(framed(&avro_fields())));
}

#[test]
fn avro_length_prefixes_claiming_gigabytes_are_decode_errors() {
    // 500 MiB is under apache-avro's own limit of 512 MiB: it would be
    // allocated before the read fails. The others are over it.
    for claim in [500 * MIB as i64, 4 << 30, i64::MAX, 1 << 62] {
        for (i, in_union) in AVRO_STRINGS {
            let mut fields = avro_fields();
            let mut prefix = if in_union { vec![2] } else { vec![] };
            prefix.extend(varint(claim));
            prefix.extend_from_slice(b"abc");
            fields[i] = prefix;
            fields.truncate(i + 1);
            let report = canonical(framed(&fields));
            assert_dead(&report, Reason::DecodeError);
        }
    }
}

#[test]
fn a_1_mib_avro_string_in_any_field_is_oversize() {
    let long = vec![b'x'; MIB];
    for (i, in_union) in AVRO_STRINGS {
        let mut fields = avro_fields();
        let mut field = if in_union { vec![2] } else { vec![] };
        field.extend(avro_string(&long));
        fields[i] = field;
        assert_dead(&canonical(framed(&fields)), Reason::Oversize);
    }
}

#[test]
fn avro_negative_and_overlong_lengths_are_decode_errors() {
    for bytes in [varint(-1), varint(i64::MIN), vec![0xff; 11], vec![0x80; 10]] {
        let mut fields = avro_fields();
        fields[0] = [bytes, b"abc".to_vec()].concat();
        assert_dead(&canonical(framed(&fields)), Reason::DecodeError);
    }
}

#[test]
fn avro_cut_short_anywhere_is_a_decode_error() {
    // apache-avro reads a string cut short by the end of the input as null,
    // and a union there as null: a record cut inside its attributes text
    // was an event without attributes.
    let full = framed(&avro_fields());
    for len in 0..full.len() {
        let report = canonical(full[..len].to_vec());
        assert_dead(&report, Reason::DecodeError);
    }
}

#[test]
fn avro_framing_errors_are_decode_errors() {
    let mut trailing = framed(&avro_fields());
    trailing.push(0);
    let mut bad_union = avro_fields();
    bad_union[4] = vec![4];
    let mut negative_union = avro_fields();
    negative_union[4] = vec![1];
    for bytes in [vec![0], vec![0, 0, 0, 0], vec![0, 0, 0, 0, 1], trailing, framed(&bad_union), framed(&negative_union)] {
        assert_dead(&canonical(bytes), Reason::DecodeError);
    }
}

#[test]
fn invalid_utf8_in_any_avro_string_is_a_decode_error() {
    for (i, in_union) in AVRO_STRINGS {
        let mut fields = avro_fields();
        let mut field = if in_union { vec![2] } else { vec![] };
        field.extend(avro_string(b"a\xff\xfeb"));
        fields[i] = field;
        assert_dead(&canonical(framed(&fields)), Reason::DecodeError);
    }
}

#[test]
fn avro_timestamps_at_the_edges_are_bad_timestamps() {
    for at in [i64::MIN, i64::MIN + 1, -1, 0, 1, 86_399_999, T0 + 3_600_000 + 600_001, 253_402_300_799_999, 253_402_300_800_000, i64::MAX] {
        let mut fields = avro_fields();
        fields[3] = varint(at);
        assert_dead(&canonical(framed(&fields)), Reason::BadTimestamp);
    }
}

#[test]
fn avro_attributes_that_are_not_an_object_are_bad_field_types() {
    for (text, reason) in [(&b"[1]"[..], Reason::BadFieldType), (b"null", Reason::BadFieldType), (b"{", Reason::DecodeError), (b"", Reason::DecodeError)] {
        let mut fields = avro_fields();
        fields[8] = avro_string(text);
        let report = canonical(framed(&fields));
        if text == b"null" {
            // Null attributes are absent ones, as in JSON.
            assert_accepted(&report);
        } else {
            assert_dead(&report, reason);
        }
    }
    let mut fields = avro_fields();
    fields[8] = avro_string(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes());
    assert_dead(&canonical(framed(&fields)), Reason::DecodeError);
}

// ---------------------------------------------------------------- vendors

const VENDORS: [InputFormat; 5] =
    [InputFormat::AmazonConnect, InputFormat::GenesysCloud, InputFormat::TwilioTaskrouter, InputFormat::ZoomContactCenter, InputFormat::CcaiPlatform];

/// The simulator's first record of a vendor that gives events, as JSON.
fn vendor_record(format: InputFormat) -> Value {
    let a = adapter(format, &AdapterOptions::default());
    VendorSimulator::new(format, SimConfig::clean(3))
        .unwrap()
        .take(200)
        .map(|r| r.value)
        .find(|v| a.adapt(v.as_bytes(), &mut MemoryState::default()).is_ok_and(|e| !e.is_empty()))
        .map(|v| serde_json::from_str(&v).unwrap())
        .unwrap_or_else(|| panic!("{format}: a record with events"))
}

fn vendor(format: InputFormat, bytes: Vec<u8>) -> InputReport {
    run(Target::Vendor(format), Some(bytes))
}

/// JSON pointers to every value of `value` that satisfies `pick`.
fn pointers(value: &Value, path: &str, pick: &dyn Fn(&Value) -> bool, out: &mut Vec<String>) {
    if pick(value) {
        out.push(path.to_owned());
    }
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(v, &format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")), pick, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, &format!("{path}/{i}"), pick, out);
            }
        }
        _ => {}
    }
}

/// A vendor time: RFC 3339 text, or epoch seconds or milliseconds (as a
/// number or as digits).
fn is_time(value: &Value) -> bool {
    let epoch = |n: f64| (1e9..1e14).contains(&n);
    match value {
        Value::String(s) => Millis::parse_rfc3339(s).is_ok() || s.parse::<f64>().is_ok_and(epoch),
        other => other.as_f64().is_some_and(epoch),
    }
}

#[test]
fn the_vendor_records_are_accepted() {
    for format in VENDORS {
        let report = vendor(format, json_bytes(&vendor_record(format)));
        assert!(report.timeline > 0 && report.dead_letters.is_empty(), "{format}: {report:?}");
    }
}

#[test]
fn deeply_nested_vendor_records_are_decode_errors() {
    for format in VENDORS {
        assert_dead(&vendor(format, format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()), Reason::DecodeError);
        assert_dead(&vendor(format, "{\"a\":".repeat(100_000).into_bytes()), Reason::DecodeError);
        let text = String::from_utf8(json_bytes(&vendor_record(format))).unwrap();
        let nested = text.replacen('{', &format!("{{\"extra\":{}{},", "[".repeat(100_000), "]".repeat(100_000)), 1);
        assert_dead(&vendor(format, nested.into_bytes()), Reason::DecodeError);
    }
}

#[test]
fn a_1_mib_string_in_a_vendor_record_is_oversize() {
    // The record is read (vendor topics have no size check of their own),
    // and each of its events would take the session past
    // `engine.max_session_bytes`.
    for format in VENDORS {
        let mut record = vendor_record(format);
        record["extra"] = json!("x".repeat(MIB));
        assert_all_dead(&vendor(format, json_bytes(&record)), Reason::Oversize);
    }
}

#[test]
fn invalid_utf8_in_any_vendor_field_is_a_decode_error() {
    for format in VENDORS {
        let record = vendor_record(format);
        let mut strings = Vec::new();
        pointers(&record, "", &|v| v.is_string(), &mut strings);
        assert!(strings.len() >= 3, "{format}: {record}");
        for pointer in strings {
            let mut poisoned = record.clone();
            *poisoned.pointer_mut(&pointer).unwrap() = json!(MARK);
            let report = vendor(format, poison(&json_bytes(&poisoned)));
            assert_eq!(report.dead_letter_reason(), Some(Reason::DecodeError), "{format} {pointer}: {report:?}");
        }
    }
}

#[test]
fn vendor_timestamps_at_the_edges_are_bad_timestamps() {
    for format in VENDORS {
        let record = vendor_record(format);
        let mut times = Vec::new();
        pointers(&record, "", &is_time, &mut times);
        assert!(!times.is_empty(), "{format}: {record}");
        for at in [
            json!("9999-12-31T23:59:59.999Z"),
            json!("+275760-09-13T00:00:00Z"),
            json!(Millis(T0 + 3_600_000 + 600_001).to_rfc3339()),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(-1e300),
            json!(1e300),
            json!("99999999999999999999999"),
            json!("yesterday"),
            json!(true),
        ] {
            // Every time of the record at the edge.
            let mut edged = record.clone();
            for pointer in &times {
                *edged.pointer_mut(pointer).unwrap() = at.clone();
            }
            let report = vendor(format, json_bytes(&edged));
            assert!(report.timeline == 0 && !report.dead_letters.is_empty(), "{format} at {at}: {report:?}");
            assert!(report.dead_letters.iter().all(|(r, _)| *r == Reason::BadTimestamp), "{format} at {at}: {report:?}");
        }
        // Times before 1970-01-02 are the vendors' "not set" placeholders
        // (`docs/adapters.md`): they read as absent, and a record without
        // its times is a dead letter for the missing time (or, where the
        // adapter reads another time instead, for that one). i64::MIN
        // panicked on `abs` in a debug build.
        for at in [json!(i64::MIN), json!(i64::MIN + 1), json!(-1), json!(0), json!("1969-12-31T23:59:59Z"), json!("1970-01-01T00:00:00.001Z")] {
            let mut edged = record.clone();
            for pointer in &times {
                *edged.pointer_mut(pointer).unwrap() = at.clone();
            }
            let report = vendor(format, json_bytes(&edged));
            assert!(report.timeline == 0 && !report.dead_letters.is_empty(), "{format} at {at}: {report:?}");
            assert!(report.dead_letters.iter().all(|(r, _)| [Reason::MissingField, Reason::BadTimestamp].contains(r)), "{format} at {at}: {report:?}");
        }
    }
}

// ---------------------------------------------------------------- memory

/// Values that cost the most memory per input byte: many small JSON values
/// (each a tree node of its own), as the whole input, as attributes, and
/// as a vendor record's extra field.
fn wide_values(bytes: usize) -> Vec<(&'static str, String)> {
    let keys = |n: usize| (0..n).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>().join(",");
    vec![
        ("zeros", format!("[{}0]", "0,".repeat(bytes / 2))),
        ("empty arrays", format!("[{}[]]", "[],".repeat(bytes / 3))),
        ("empty objects", format!("[{}{{}}]", "{},".repeat(bytes / 3))),
        ("keys", format!("{{{}}}", keys(bytes / 9))),
    ]
}

#[test]
fn wide_json_values_stay_within_the_memory_bound() {
    // Twice this is within `max_event_bytes`.
    let budget = 240 << 10;
    for (name, wide) in wide_values(budget) {
        // The whole value: not an event.
        let report = canonical(wide.clone().into_bytes());
        assert_eq!(report.dead_letter_reason(), Some(if name == "keys" { Reason::MissingField } else { Reason::DecodeError }), "{name}");
        println!("{name}: {} bytes allocated for {} input bytes", report.peak_bytes, report.len);
        // As an attribute of an event, read by the fast path, and with a
        // repeated key, by the general one.
        let text = String::from_utf8(json_bytes(&queued())).unwrap();
        for input in
            [text.replacen("\"priority\":3", &format!("\"wide\":{wide}"), 1), text.replacen("\"priority\":3", &format!("\"wide\":{wide},\"wide\":{wide}"), 1)]
        {
            let report = canonical(input.into_bytes());
            assert!(report.len <= 1 << 20, "{name}: {report:?}");
            println!("{name}: {} bytes allocated for {} input bytes", report.peak_bytes, report.len);
        }
    }
    for format in VENDORS {
        for (name, wide) in wide_values(budget) {
            let mut record = vendor_record(format);
            record["extra"] = serde_json::from_str(&wide).unwrap();
            let report = vendor(format, json_bytes(&record));
            println!(
                "{format} {name}: {} bytes allocated for {} input bytes: {} events, {:?}",
                report.peak_bytes,
                report.len,
                report.timeline,
                report.dead_letters.iter().map(|d| d.0).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn an_out_of_order_event_refolds_its_session_within_the_memory_bound() {
    // A session at its byte bound, of many events (transcript segments,
    // or the smallest events there are); then one event out of order,
    // which refolds the session from its stored events.
    for minimal in [false, true] {
        let mut h = harness();
        let event_n = |n: i64| {
            let at = Millis(T0 + 1000 + n).to_rfc3339();
            if n == 0 {
                event()
            } else if minimal {
                json!({"event_id": format!("{n}"), "session_id": "s1", "type": "x", "occurred_at": at})
            } else {
                json!({"event_id": format!("t{n}"), "session_id": "s1", "type": "transcript.segment", "occurred_at": at, "attributes": {"speaker": "agent", "text": "ok"}})
            }
        };
        let budget = EngineConfig::default().max_session_bytes as usize;
        let (mut inputs, mut bytes, mut n) = (Vec::new(), 0, 0);
        while bytes + 200 < budget && n < 9_999 {
            let input = json_bytes(&event_n(n));
            bytes += input.len();
            inputs.push((Target::Canonical, Some(input)));
            n += 1;
        }
        for chunk in inputs.chunks(500) {
            let reports = h.run_batch(chunk).unwrap();
            assert!(reports.iter().all(|r| r.timeline == 1), "{:?}", reports.iter().find(|r| r.timeline != 1));
        }
        let mut late = event_n(n);
        late["occurred_at"] = json!(Millis(T0 + 500).to_rfc3339());
        let report = h.run_one(Target::Canonical, Some(json_bytes(&late)));
        assert_eq!((report.timeline, report.dead_letters.len()), (1, 0), "{report:?}");
        println!("refold of {n} events ({bytes} input bytes): {} bytes allocated", report.peak_bytes);
        assert!(report.within_memory_bound(), "{report:?}: bound {}", memory_bound(report.len, report.records));
    }
}
