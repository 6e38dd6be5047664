//! The direct Avro encoder behind `AvroSchemas::encode` writes the bytes
//! apache-avro's `to_avro_datum` writes for the value `json_to_avro` builds
//! (the encoding path before it), and fails where and as `json_to_avro` does.

mod common;

use apache_avro::schema::{RecordField, Schema};
use apache_avro::types::Value as Avro;
use common::{example_events, example_outputs};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Number, Value, json};
use sessionflow_codec::Codec;
use sessionflow_codec::avro::{AvroSchemas, MAGIC, RecordKind, json_to_avro, unframe};
use sessionflow_core::{Millis, Output};
use std::sync::LazyLock;

static CODEC: LazyLock<Codec> = LazyLock::new(Codec::avro);

/// Encodes `json` with the new path and with the old one (`json_to_avro`,
/// then `to_avro_datum`) and checks they agree: the same error text, or the
/// same bytes behind the same header. Returns the new bytes on success.
///
/// apache-avro writes a map's entries in its `HashMap`'s arbitrary order,
/// the new path in the JSON object's order. So the byte comparison encodes
/// a copy of `json` whose maps list their entries in apache-avro's order,
/// and the plain encoding must then differ from it at most in that order:
/// same length, same decoded record.
fn assert_paths_agree(schemas: &AvroSchemas, kind: RecordKind, json: &Value) -> Result<Option<Vec<u8>>, TestCaseError> {
    let schema = schemas.schema(kind);
    let new = schemas.encode(kind, json);
    let avro = match json_to_avro(json, schema, false, "") {
        Ok(avro) => avro,
        Err(old) => {
            let new = new.err().ok_or_else(|| TestCaseError::fail(format!("old path failed ({old}), new path encoded {json}")))?;
            prop_assert_eq!(new.to_string(), old.to_string());
            return Ok(None);
        }
    };
    let new = new.map_err(|e| TestCaseError::fail(format!("old path encoded, new path failed: {e}")))?;
    let mut in_avro_order = json.clone();
    align_map_order(&mut in_avro_order, &avro);
    let old_body = apache_avro::to_avro_datum(schema, avro).map_err(|e| TestCaseError::fail(format!("apache-avro rejected json_to_avro's value: {e}")))?;

    let aligned = schemas.encode(kind, &in_avro_order).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let (id, body) = unframe(&aligned).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(aligned[0], MAGIC);
    prop_assert_eq!(id, schemas.id(kind));
    prop_assert_eq!(body, &old_body[..]);

    prop_assert_eq!(new.len(), aligned.len());
    let decode = |bytes: &[u8]| schemas.decode(kind, bytes).map_err(|e| TestCaseError::fail(e.to_string()));
    prop_assert_eq!(decode(&new)?, decode(&aligned)?);
    Ok(Some(new))
}

/// Reorders the entries of every map in `json` to the order apache-avro's
/// value `avro` (built from `json`) holds them in.
fn align_map_order(json: &mut Value, avro: &Avro) {
    match (json, avro) {
        (Value::Object(object), Avro::Map(entries)) => {
            let mut reordered = Map::new();
            for (key, entry) in entries {
                let mut value = object.remove(key).expect("json_to_avro keeps every map entry");
                align_map_order(&mut value, entry);
                reordered.insert(key.clone(), value);
            }
            *object = reordered;
        }
        (Value::Object(object), Avro::Record(fields)) => {
            for (name, field) in fields {
                if let Some(value) = object.get_mut(name) {
                    align_map_order(value, field);
                }
            }
        }
        (Value::Array(items), Avro::Array(values)) => items.iter_mut().zip(values).for_each(|(item, value)| align_map_order(item, value)),
        (json, Avro::Union(_, inner)) => align_map_order(json, inner),
        _ => {}
    }
}

const KINDS: [RecordKind; 3] = [RecordKind::Event, RecordKind::Timeline, RecordKind::Metadata];

#[test]
fn example_records_encode_to_apache_avros_bytes_and_decode_to_their_json_form() {
    let codec = &*CODEC;
    let mut compared = [0_usize; 3];
    let mut check = |kind: RecordKind, json: Value| {
        let bytes = assert_paths_agree(&codec.schemas, kind, &json).unwrap().expect("example records encode");
        if kind != RecordKind::Event {
            // Event JSON is read back through `Event::from_json` (round_trips.rs).
            assert_eq!(codec.decode_record(kind, &bytes).unwrap(), json, "{kind:?}");
        }
        compared[KINDS.iter().position(|k| *k == kind).unwrap()] += 1;
    };
    for event in example_events().into_iter().flatten() {
        check(RecordKind::Event, event.to_json());
    }
    for output in example_outputs() {
        match output {
            Output::Timeline(r) => check(RecordKind::Timeline, serde_json::to_value(&r).unwrap()),
            Output::Metadata(r) => check(RecordKind::Metadata, serde_json::to_value(&r).unwrap()),
            _ => {}
        }
    }
    let [events, timelines, metadata] = compared;
    assert!(events > 30 && timelines > 30 && metadata > 10, "{compared:?}");
}

#[test]
fn mismatches_name_the_field_and_the_value() {
    let codec = &*CODEC;
    let Some(Output::Timeline(timeline)) = example_outputs().into_iter().find(|o| matches!(o, Output::Timeline(_))) else {
        panic!("the examples have timeline records");
    };
    let mut json = serde_json::to_value(&timeline).unwrap();
    json["input"]["partition"] = json!(3_000_000_000_i64);
    let err = codec.schemas.encode(RecordKind::Timeline, &json).unwrap_err();
    assert_eq!(err.to_string(), "encode: .input.partition: expected 32-bit int, got 3000000000");
    json["input"]["partition"] = json!(2);
    json["occurred_at"] = json!("yesterday");
    let err = codec.schemas.encode(RecordKind::Timeline, &json).unwrap_err();
    assert_eq!(err.to_string(), r#"encode: .occurred_at: not an RFC 3339 timestamp with offset: "yesterday""#);
    json["occurred_at"] = json!(0);
    json.as_object_mut().unwrap().remove("state_after");
    let err = codec.schemas.encode(RecordKind::Timeline, &json).unwrap_err();
    assert_eq!(err.to_string(), "encode: .state_after: expected string, got null");
}

/// Values that fit no schema node or only some.
fn misfits() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(3_000_000_000_i64),
        json!(u64::MAX),
        json!(1.5),
        json!("text"),
        json!("2024-13-03T02:06:15Z"),
        json!([]),
        json!([1, "two"]),
        json!({}),
        json!({"color": "blue"}),
    ]
}

#[test]
fn example_records_damaged_anywhere_fail_or_encode_as_before() {
    // The largest example record of each kind, each node in turn replaced
    // by each misfit.
    let largest = |records: Vec<Value>| records.into_iter().max_by_key(count_nodes).expect("examples");
    let outputs = example_outputs();
    let of_kind = |pick: fn(&Output) -> Option<Value>| outputs.iter().filter_map(pick).collect::<Vec<_>>();
    let records = [
        (RecordKind::Event, largest(example_events().into_iter().flatten().map(|e| e.to_json()).collect())),
        (RecordKind::Timeline, largest(of_kind(|o| if let Output::Timeline(r) = o { serde_json::to_value(r).ok() } else { None }))),
        (RecordKind::Metadata, largest(of_kind(|o| if let Output::Metadata(r) = o { serde_json::to_value(r).ok() } else { None }))),
    ];
    let (mut encoded, mut failed) = (0, 0);
    for (kind, json) in records {
        for at in 0..count_nodes(&json) {
            for misfit in misfits() {
                let mut damaged = json.clone();
                assert!(replace_nth(&mut damaged, &mut { at }, &misfit));
                match assert_paths_agree(&CODEC.schemas, kind, &damaged) {
                    Ok(Some(_)) => encoded += 1,
                    Ok(None) => failed += 1,
                    Err(e) => panic!("{kind:?} node {at} replaced by {misfit}: {e}"),
                }
            }
        }
    }
    assert!(encoded > 100 && failed > 1000, "{encoded} encoded, {failed} failed");
}

fn is_json_text(field: &RecordField) -> bool {
    field.custom_attributes.get("sessionflow.encoding") == Some(&json!("json"))
}

/// Free-form JSON, as attributes and other JSON text fields carry.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        // Few-digit floats: serde_json (built without `float_roundtrip`) may
        // read long ones back an ulp off, in any JSON text, Avro or not.
        (any::<i16>(), 0..8).prop_map(|(m, e)| json!(f64::from(m) / f64::from(1 << e))),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Timestamps between years 1 and 9999, the range RFC 3339 text covers.
const TIMESTAMP_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800_000..=253_402_300_799_999;

/// JSON values that fit `schema` as a record's JSON form may: timestamps as
/// UTC or `+00:00` text or as numbers, nullable fields null or left out,
/// record fields in schema order or shuffled, unknown fields added.
fn conforming(schema: &Schema, json_text: bool) -> BoxedStrategy<Value> {
    match schema {
        Schema::Null => Just(Value::Null).boxed(),
        Schema::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
        Schema::Int => any::<i32>().prop_map(Value::from).boxed(),
        Schema::Long => prop_oneof![any::<i64>(), -200_i64..200].prop_map(Value::from).boxed(),
        // Decoding reads -0.0 back as 0 (integral doubles come back as
        // integers), which would break the re-encoding check below.
        Schema::Double => prop_oneof![
            any::<f64>().prop_filter_map("finite, not -0", |f| Number::from_f64(if f == 0.0 { 0.0 } else { f })).prop_map(Value::Number),
            any::<i32>().prop_map(Value::from),
        ]
        .boxed(),
        Schema::String if json_text => arb_json().boxed(),
        Schema::String => any::<String>().prop_map(Value::String).boxed(),
        Schema::TimestampMillis => prop_oneof![
            TIMESTAMP_RANGE.prop_map(|ms| Value::String(Millis(ms).to_rfc3339())),
            TIMESTAMP_RANGE.prop_map(|ms| Value::String(Millis(ms).to_rfc3339().replace('Z', "+00:00"))),
            TIMESTAMP_RANGE.prop_map(Value::from),
        ]
        .boxed(),
        Schema::Array(array) => prop::collection::vec(conforming(&array.items, json_text), 0..3).prop_map(Value::Array).boxed(),
        Schema::Map(map) => {
            prop::collection::btree_map(any::<String>(), conforming(&map.types, json_text), 0..4).prop_map(|m| Value::Object(m.into_iter().collect())).boxed()
        }
        Schema::Union(union) => {
            let inner = union.variants().iter().find(|s| !matches!(s, Schema::Null)).expect("shipped unions have a non-null branch");
            prop_oneof![1 => Just(Value::Null), 3 => conforming(inner, json_text)].boxed()
        }
        Schema::Record(record) => {
            let fields: Vec<_> = record
                .fields
                .iter()
                .map(|field| {
                    let name = field.name.clone();
                    (conforming(&field.schema, is_json_text(field)), any::<bool>()).prop_map(move |(value, keep_null)| (name.clone(), value, keep_null))
                })
                .collect();
            let fields = prop_oneof![fields.clone().boxed(), fields.prop_shuffle().boxed()];
            (fields, prop::option::weighted(0.1, arb_json()))
                .prop_map(|(fields, extra)| {
                    let mut object: Map<String, Value> =
                        fields.into_iter().filter(|(_, value, keep_null)| *keep_null || !value.is_null()).map(|(name, value, _)| (name, value)).collect();
                    if let Some(extra) = extra {
                        object.insert("not_in_the_schema".into(), extra);
                    }
                    Value::Object(object)
                })
                .boxed()
        }
        other => panic!("no generator for {other:?}"),
    }
}

fn record(kind: RecordKind) -> impl Strategy<Value = (RecordKind, Value)> {
    conforming(CODEC.schemas.schema(kind), false).prop_map(move |json| (kind, json))
}

fn any_record() -> impl Strategy<Value = (RecordKind, Value)> {
    prop_oneof![record(RecordKind::Event), record(RecordKind::Timeline), record(RecordKind::Metadata)]
}

/// Replaces the `n`-th node (pre-order) of `value` with `with`; false when
/// `value` has fewer nodes.
fn replace_nth(value: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *value = with.clone();
        return true;
    }
    *n -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|item| replace_nth(item, n, with)),
        Value::Object(object) => object.values_mut().any(|item| replace_nth(item, n, with)),
        _ => false,
    }
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(object) => object.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn misfit() -> impl Strategy<Value = Value> {
    prop_oneof![arb_json(), prop::sample::select(misfits())]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn conforming_records_encode_to_apache_avros_bytes_and_decode_back((kind, json) in any_record()) {
        let schemas = &CODEC.schemas;
        let bytes = assert_paths_agree(schemas, kind, &json)?.expect("conforming records encode");
        // Decoding gives the canonical JSON form, which encodes to the same bytes.
        let decoded = schemas.decode(kind, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = schemas.encode(kind, &decoded).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn damaged_records_fail_or_encode_as_before((kind, mut json) in any_record(), at in any::<Index>(), with in misfit()) {
        let schemas = &CODEC.schemas;
        let mut n = at.index(count_nodes(&json));
        prop_assert!(replace_nth(&mut json, &mut n, &with));
        assert_paths_agree(schemas, kind, &json)?;
    }
}
