//! JSON input read straight from its bytes (attributes kept as text) must be
//! the event the general path reads from the parsed value: same fields, same
//! errors, and attributes text that is exactly what serde_json writes for
//! them, whatever spelling, spacing or repeated keys the input used.

use proptest::prelude::*;
use serde_json::Value;
use sessionflow_core::Event;

/// Attribute values spelled the way producers spell them, canonical or not.
fn value_text() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (0u8..100).prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| serde_json::to_string(&f).unwrap()),
        "[a-z é✓\"\\\\/\u{1}]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ];
    prop_oneof![
        4 => scalar,
        1 => prop_oneof![
            Just("1.0"),
            Just("1e2"),
            Just("-0"),
            Just("12345678901234567890"),
            Just(r#""\u00e9\/""#),
            Just(r#""a\"b""#),
            Just("[ 1 , 2 ]"),
            Just("[1,\"x\",[]]"),
            Just(r#"{"x":1,"x":2}"#),
            Just(r#"{ "nested" : [true] }"#),
            Just("\"2024-07-02T19:06:15.000-07:00\""),
        ]
        .prop_map(str::to_owned),
    ]
}

fn attributes_text() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("speaker"),
        Just("text"),
        Just("score"),
        Just("queue"),
        Just("priority"),
        Just("agent_id"),
        Just("email"),
        Just("scheduled_for"),
        Just("a"),
        Just("b\\u0041"),
    ];
    (prop::collection::vec((key, value_text()), 0..6), any::<bool>()).prop_map(|(fields, spaced)| {
        let sep = if spaced { " , " } else { "," };
        let colon = if spaced { ": " } else { ":" };
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\"{colon}{v}")).collect();
        format!("{{{}}}", body.join(sep))
    })
}

fn event_text() -> impl Strategy<Value = String> {
    let event_type = prop_oneof![
        Just("transcript.segment"),
        Just("sentiment.scored"),
        Just("queue.entered"),
        Just("agent.assigned"),
        Just("api.request"),
        Just("email.collected"),
        Just("session.scheduled"),
        Just("session.started"),
        Just("platform.custom"),
    ];
    let attributes = prop_oneof![4 => attributes_text().prop_map(Some), 1 => Just(None), 1 => Just(Some("null".to_owned())), 1 => Just(Some("[1]".to_owned()))];
    let channel = prop_oneof![Just(None), Just(Some("\"chat\"")), Just(Some("\"pigeon\"")), Just(Some("null"))];
    (event_type, attributes, channel, any::<bool>()).prop_map(|(event_type, attributes, channel, escaped_id)| {
        let id = if escaped_id { r#""e\u0031""# } else { r#""e1""# };
        let mut text = format!(r#"{{"event_id":{id},"session_id":"s1","type":"{event_type}","occurred_at":"2024-07-02T19:06:15.000-07:00""#);
        if let Some(channel) = channel {
            text.push_str(&format!(r#","channel":{channel}"#));
        }
        if let Some(attributes) = attributes {
            text.push_str(&format!(r#","attributes":{attributes}"#));
        }
        text.push('}');
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn bytes_read_as_the_parsed_value_reads(text in event_text()) {
        let from_bytes = Event::from_json_slice(text.as_bytes());
        let from_value = Event::from_json(serde_json::from_str::<Value>(&text).unwrap());
        prop_assert_eq!(&from_bytes, &from_value, "{}", text);
        if let (Ok(bytes), Ok(value)) = (&from_bytes, &from_value) {
            prop_assert_eq!(bytes.attributes.text(), value.attributes.text(), "{}", text);
            prop_assert_eq!(bytes.attributes.text(), serde_json::to_string(&bytes.attributes.0).unwrap());
        }
    }
}

#[test]
fn passed_through_attributes_keep_their_text_and_parse_on_demand() {
    let text = r#"{"event_id":"e1","session_id":"s1","type":"transcript.segment","occurred_at":"2024-07-02T19:06:15Z","attributes":{"speaker":"agent","text":"Sure, {let} me check","n":[1,-2]}}"#;
    let event = Event::from_json_slice(text.as_bytes()).unwrap();
    assert_eq!(event.attributes.text(), r#"{"speaker":"agent","text":"Sure, {let} me check","n":[1,-2]}"#);
    assert_eq!(event.attributes.str("speaker"), Some("agent"));
    // A typed attribute of the wrong type is still refused.
    let bad = text.replace(r#""speaker":"agent""#, r#""speaker":7"#);
    let error = Event::from_json_slice(bad.as_bytes()).unwrap_err();
    assert!(error.detail.contains("attributes.speaker"), "{}", error.detail);
}
