//! Avro and JSON forms of every record carry the same values.

mod common;

use common::example_outputs;
use proptest::prelude::*;
use serde_json::{Value, json};
use sessionflow_codec::Codec;
use sessionflow_codec::avro::{RecordKind, unframe};
use sessionflow_core::{DeadLetterReason, Event, Output};

#[test]
fn timeline_and_metadata_round_trip_through_avro() {
    let avro = Codec::avro();
    let json = Codec::json();
    let (mut timelines, mut metadata) = (0, 0);
    for output in example_outputs() {
        let (kind, bytes_json, bytes_avro) = match &output {
            Output::Timeline(r) => (RecordKind::Timeline, json.encode_timeline(r).unwrap(), avro.encode_timeline(r).unwrap()),
            Output::Metadata(r) => (RecordKind::Metadata, json.encode_metadata(r).unwrap(), avro.encode_metadata(r).unwrap()),
            _ => continue,
        };
        let from_json: Value = serde_json::from_slice(&bytes_json).unwrap();
        let from_avro = avro.decode_record(kind, &bytes_avro).unwrap();
        assert_eq!(from_avro, from_json, "{kind:?}");
        let (id, _) = unframe(&bytes_avro).unwrap();
        assert_eq!(id, avro.schemas.id(kind));
        match kind {
            RecordKind::Timeline => timelines += 1,
            _ => metadata += 1,
        }
    }
    assert!(timelines > 30 && metadata > 10, "{timelines} {metadata}");
}

#[test]
fn avro_input_events_decode_like_json_ones() {
    let json_codec = Codec::json();
    let avro_codec = Codec::avro();
    let line = br#"{"event_id":"e20","session_id":"call-6679","type":"post_session.started","occurred_at":"2024-07-02T19:15:01.000-07:00","channel":"voice","attributes":{"virtual_agent":"PN","opted_in":true,"params":{"order":"yes","queueId":502}}}"#;
    let event = json_codec.decode_event(Some(line)).unwrap();
    let framed = avro_codec.encode_event(&event).unwrap();
    assert_eq!(framed[0], 0);
    let back = avro_codec.decode_event(Some(&framed)).unwrap();
    assert_eq!(back, event);
    // The JSON codec reads Avro input too: the first byte tells them apart.
    assert_eq!(json_codec.decode_event(Some(&framed)).unwrap(), event);
}

#[test]
fn undecodable_inputs_have_their_reason() {
    let codec = Codec::json();
    let reason = |bytes: Option<&[u8]>| codec.decode_event(bytes).unwrap_err().reason;
    assert_eq!(reason(None), DeadLetterReason::DecodeError);
    assert_eq!(reason(Some(b"{not json")), DeadLetterReason::DecodeError);
    assert_eq!(reason(Some(&[0, 0, 0, 0, 1, 0xff, 0xff])), DeadLetterReason::DecodeError);
    assert_eq!(reason(Some(&[0, 1])), DeadLetterReason::DecodeError);
    let big = format!(
        r#"{{"event_id":"a","session_id":"b","type":"note.received","occurred_at":"2024-01-01T00:00:00Z","attributes":{{"text":"{}"}}}}"#,
        "x".repeat(600 * 1024)
    );
    assert_eq!(reason(Some(big.as_bytes())), DeadLetterReason::Oversize);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9 éü_-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_event_round_trips_through_both_encodings(
        event_id in "[a-zA-Z0-9_-]{1,20}",
        session_id in "[a-zA-Z0-9_:.-]{1,40}",
        kind in prop::sample::select(vec!["custom_data.received", "api.request", "robot.danced", "masking.started"]),
        ms in 0_i64..4_102_444_800_000,
        channel in prop::option::of(prop::sample::select(vec!["voice", "chat", "email", "sms"])),
        tenant in prop::option::of("[a-z]{1,8}"),
        attrs in prop::collection::btree_map("[a-z_]{1,8}", arb_json(), 0..5),
    ) {
        let value = json!({
            "event_id": event_id, "session_id": session_id, "type": kind,
            "occurred_at": sessionflow_core::Millis(ms).to_rfc3339(),
            "channel": channel, "tenant": tenant,
            "attributes": Value::Object(attrs.into_iter().collect()),
        });
        let event = Event::from_json(value).unwrap();
        for codec in [Codec::json(), Codec::avro()] {
            let bytes = codec.encode_event(&event).unwrap();
            prop_assert_eq!(codec.decode_event(Some(&bytes)).unwrap(), event.clone());
        }
    }
}
