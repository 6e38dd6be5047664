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
            Just("[[1,[-2]],[],\"\"]"),
            Just("-7"),
            Just("0"),
            Just(r#"{"x":1,"x":2}"#),
            Just(r#"{"x":{"y":1},"z":{"y":1}}"#),
            Just(r#"{"p":null,"q":[1,{"r":"s,}]"}],"t":{}}"#),
            Just(r#"{"u":{"v":2,"v":3}}"#),
            Just("{}"),
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
    // Envelope fields beyond the required ones: known, unknown, repeated.
    let extra = prop_oneof![
        4 => Just(None),
        1 => Just(Some(r#""tenant":"acme""#)),
        1 => Just(Some(r#""tenant":null"#)),
        1 => Just(Some(r#""source":"ccaip","direction":"inbound""#)),
        1 => Just(Some(r#""direction":"sideways""#)),
        1 => Just(Some(r#""schema":{"v":[1,2]}"#)),
        1 => Just(Some(r#""session_id":"s2""#)),
        1 => Just(Some(r#""tenant":7"#)),
    ];
    (event_type, attributes, channel, any::<bool>(), extra, any::<bool>()).prop_map(|(event_type, attributes, channel, escaped_id, extra, spaced)| {
        let id = if escaped_id { r#""e\u0031""# } else { r#""e1""# };
        let mut fields = vec![
            format!(r#""event_id":{id}"#),
            r#""session_id":"s1""#.to_owned(),
            format!(r#""type":"{event_type}""#),
            r#""occurred_at":"2024-07-02T19:06:15.000-07:00""#.to_owned(),
        ];
        if let Some(channel) = channel {
            fields.push(format!(r#""channel":{channel}"#));
        }
        if let Some(attributes) = attributes {
            fields.push(format!(r#""attributes":{attributes}"#));
        }
        if let Some(extra) = extra {
            fields.push(extra.to_owned());
        }
        // Spaced as Python's `json.dumps` spaces the envelope.
        if spaced { format!("{{{}}}\n", fields.join(", ").replace("\":", "\": ")) } else { format!("{{{}}}", fields.join(",")) }
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
            // Fields read straight from the text read as from the parsed value.
            let parsed = &*bytes.attributes;
            for key in ["speaker", "text", "score", "queue", "priority", "agent_id", "email", "scheduled_for", "a", "bA", "absent"] {
                prop_assert_eq!(bytes.attributes.str(key), parsed.str(key), "{} in {}", key, text);
                prop_assert_eq!(bytes.attributes.id(key), parsed.id(key), "{} in {}", key, text);
                prop_assert_eq!(bytes.attributes.i64(key), parsed.get(key).and_then(Value::as_i64), "{} in {}", key, text);
            }
        }
    }
}

/// The general path alone: the parsed value, or why the bytes are not JSON.
fn general_path(bytes: &[u8]) -> Result<Event, sessionflow_core::InputError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => Event::from_json(value),
        Err(e) => Err(sessionflow_core::InputError { reason: sessionflow_core::DeadLetterReason::DecodeError, detail: format!("invalid JSON: {e}") }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    /// A byte removed, inserted or replaced anywhere: whatever the fast
    /// paths accept is what the general path reads, and what they refuse
    /// gets the general path's error.
    #[test]
    fn damaged_bytes_read_as_the_general_path_reads(
        text in event_text(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![Just(b'"'), Just(b'\\'), Just(b','), Just(b'{'), Just(b'}'), Just(b'['), Just(b' '), Just(b'0'), Just(b'-'), Just(0x01), any::<u8>()],
        damage in 0..3_u8,
    ) {
        let mut bytes = text.into_bytes();
        let at = at.index(bytes.len());
        match damage {
            0 => { bytes.remove(at); }
            1 => bytes.insert(at, byte),
            _ => bytes[at] = byte,
        }
        let read = Event::from_json_slice(&bytes);
        let general = general_path(&bytes);
        prop_assert_eq!(&read, &general, "{}", String::from_utf8_lossy(&bytes));
        if let (Ok(read), Ok(general)) = (&read, &general) {
            prop_assert_eq!(read.attributes.text(), general.attributes.text());
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
