use super::*;
use crate::deadletter::DeadLetterPayload;
use proptest::prelude::*;
use serde_json::json;

fn event(t: &str, attrs: &Value) -> Event {
    let mut v = json!({"event_id": "e", "session_id": "s", "type": t, "occurred_at": "2024-01-01T00:00:00Z", "attributes": attrs});
    if t == "session.started" {
        v["channel"] = json!("voice");
    }
    Event::from_json(v).unwrap()
}

fn policy(settings: PrivacySettings) -> PrivacyPolicy {
    PrivacyPolicy::new(settings, b"k").unwrap()
}

/// The attributes of an event of type `t` after the policy.
fn policed(p: &PrivacyPolicy, t: &str, attrs: &Value) -> Value {
    let mut e = event(t, attrs);
    p.apply(&mut e);
    e.attributes.0.clone()
}

fn rule(path: &str, action: Option<FieldAction>, class: Option<FieldClass>, types: Option<&[&str]>) -> PrivacyRule {
    PrivacyRule { path: path.into(), action, class, event_types: types.map(|t| t.iter().map(|s| (*s).to_owned()).collect()) }
}

/// The hash is HMAC-SHA-256 (RFC 4231, test case 2), and the keyed state
/// a policy keeps is not worn by use: every value hashes from the key alone.
#[test]
fn hash_is_hmac_sha256_of_each_value_alone() {
    let p = PrivacyPolicy::new(PrivacySettings::default(), b"Jefe").unwrap();
    let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    assert_eq!(p.hash("what do ya want for nothing?"), expected);
    let _ = p.hash("another value first");
    assert_eq!(p.clone().hash("what do ya want for nothing?"), expected);
    assert_eq!(p.hash("what do ya want for nothing?"), expected);
}

#[test]
fn hash_drop_keep_per_class() {
    let p = policy(PrivacySettings { contact: FieldAction::Hash, text: FieldAction::Drop, ..Default::default() });
    let mut e = event("email.collected", &json!({"email": "a@b.c"}));
    p.apply(&mut e);
    assert_eq!(e.attributes.str("email"), Some(p.hash("a@b.c").as_str()));
    assert_eq!(p.hash("a@b.c").len(), 64);
    assert_eq!(policed(&p, "rating.received", &json!({"rating": 4, "comment": "rude agent"})), json!({"rating": 4}));
    let answers = json!({"answers": [{"question": "q", "kind": "text", "value": "hi"}, {"question": "c", "kind": "csat", "value": 4}]});
    assert_eq!(policed(&p, "survey.response", &answers)["answers"], json!([{"question": "q", "kind": "text"}, {"question": "c", "kind": "csat", "value": 4}]));
}

#[test]
fn hashes_depend_on_the_key() {
    let a = PrivacyPolicy::new(PrivacySettings::default(), b"s3cret-one").unwrap();
    let b = PrivacyPolicy::new(PrivacySettings::default(), b"two").unwrap();
    assert_ne!(a.hash("x"), b.hash("x"));
    assert_eq!(a.hash("x"), a.hash("x"));
    assert_ne!(a, b);
    assert!(!format!("{a:?}").contains("s3cret"), "the key stays out of Debug");
}

#[test]
fn the_default_keeps_everything_without_parsing() {
    let p = PrivacyPolicy::default();
    assert!(p.is_keep_all());
    let e = event("session.started", &json!({"ani": "+15550100", "x": {"y": 1}}));
    let mut policed = e.clone();
    p.apply(&mut policed);
    assert_eq!(policed.attributes.text(), e.attributes.text());
    // Rules that keep are no changes either.
    let keep_rules = PrivacySettings { rules: vec![rule("attributes.**", Some(FieldAction::Keep), None, None)], ..Default::default() };
    assert!(PrivacyPolicy::new(keep_rules, b"").unwrap().is_keep_all());
    assert!(!policy(PrivacySettings { vendor: FieldAction::Drop, ..Default::default() }).is_keep_all());
}

#[test]
fn events_without_an_anchor_key_are_not_touched() {
    let p = policy(PrivacySettings { contact: FieldAction::Hash, ..Default::default() });
    // `queue.entered` can only carry contact details under `vendor`.
    let e = event("queue.entered", &json!({"queue": "Q", "extra": "+15550100"}));
    let mut policed = e.clone();
    p.apply(&mut policed);
    assert_eq!(policed.attributes.text(), e.attributes.text());
    // Walked, nothing to change: the text stays as it came.
    let plain_vendor = event("queue.entered", &json!({"queue": "Q", "vendor": {"Queue": {"Name": "Support"}}}));
    let mut policed = plain_vendor.clone();
    p.apply(&mut policed);
    assert_eq!(policed.attributes.text(), plain_vendor.attributes.text());
    let with_vendor = policed_text(&p, "queue.entered", &json!({"queue": "Q", "vendor": {"customerEndpoint": {"address": "+15550100", "type": "TELEPHONE"}}}));
    assert!(!with_vendor.contains("+15550100") && with_vendor.contains("TELEPHONE"), "{with_vendor}");
}

fn policed_text(p: &PrivacyPolicy, t: &str, attrs: &Value) -> String {
    policed(p, t, attrs).to_string()
}

#[test]
fn every_class_reaches_its_carriers() {
    let cases: &[(FieldClass, &str, Value, &str)] = &[
        (FieldClass::Contact, "session.started", json!({"ani": "SEED"}), "ani"),
        (FieldClass::Contact, "session.started", json!({"outbound_number": "SEED"}), "outbound_number"),
        (FieldClass::Contact, "phone_number.collected", json!({"callback": "SEED"}), "callback"),
        (FieldClass::Contact, "participant.added", json!({"participant": "SEED", "role": "third_party"}), "participant"),
        (FieldClass::Contact, "sip.redirected", json!({"destination": "SEED"}), "destination"),
        (FieldClass::Contact, "custom_data.received", json!({"connect_transferred_to": "SEED"}), "connect_transferred_to"),
        (FieldClass::Text, "transcript.segment", json!({"speaker": "agent", "text": "SEED"}), "text"),
        (FieldClass::Text, "note.received", json!({"text": "SEED"}), "text"),
        (FieldClass::Text, "disposition.set", json!({"code": "c", "notes": "SEED"}), "notes"),
        (FieldClass::Text, "agent_assist.summary", json!({"summary": "SEED"}), "summary"),
        (FieldClass::Text, "content_card.selected", json!({"card": "c", "response": "SEED"}), "response"),
        (FieldClass::Custom, "custom_data.received", json!({"anything": "SEED"}), "anything"),
        (FieldClass::Custom, "api.request", json!({"body": {"x": "SEED"}}), "body"),
        (FieldClass::Custom, "virtual_agent.started", json!({"params": {"p": "SEED"}}), "params"),
        (FieldClass::Custom, "virtual_agent.variables_captured", json!({"variables": {"v": "SEED"}}), "variables"),
        (FieldClass::Custom, "sip.headers", json!({"headers": {"X-Id": "SEED"}}), "headers"),
        (FieldClass::Custom, "queue.entered", json!({"vendor": {"task_attributes": {"account": "SEED"}}}), "vendor"),
        (FieldClass::Link, "crm.ticket_linked", json!({"ticket_id": "T-1", "url": "SEED"}), "url"),
        (FieldClass::Link, "recording.available", json!({"urls": ["SEED"]}), "urls"),
        (FieldClass::Link, "media.uploaded", json!({"kind": "photo", "url": "SEED"}), "url"),
        (FieldClass::Staff, "agent.connected", json!({"agent": "SEED", "agent_id": "SEED"}), "agent"),
        (FieldClass::Staff, "transfer.started", json!({"from_agent": "SEED"}), "from_agent"),
        (FieldClass::Staff, "participant.added", json!({"participant": "SEED", "role": "agent"}), "participant"),
        (FieldClass::Vendor, "queue.entered", json!({"vendor": {"Queue": {"Name": "SEED"}}}), "vendor"),
    ];
    for (class, t, attrs, key) in cases {
        let mut settings = PrivacySettings::default();
        for c in FieldClass::ALL {
            if c == *class {
                continue;
            }
            // Every other class kept, this one dropped: only its own rules remove the value.
            assert_eq!(settings.action(c), FieldAction::Keep);
        }
        match class {
            FieldClass::Contact => settings.contact = FieldAction::Drop,
            FieldClass::Text => settings.text = FieldAction::Drop,
            FieldClass::Custom => settings.custom = FieldAction::Drop,
            FieldClass::Link => settings.link = FieldAction::Drop,
            FieldClass::Staff => settings.staff = FieldAction::Drop,
            FieldClass::Vendor => settings.vendor = FieldAction::Drop,
        }
        let out = policed(&policy(settings), t, attrs);
        assert!(!out.to_string().contains("SEED"), "{class:?} on {t}: {out}");
        assert!(!out.to_string().contains("null"), "{class:?} on {t}: `{key}` removed, not nulled: {out}");
        // And kept when the class is kept.
        assert!(policed(&policy(PrivacySettings::default()), t, attrs).to_string().contains("SEED"));
    }
}

#[test]
fn known_fields_inside_vendor_data_follow_their_class() {
    let p = policy(PrivacySettings { contact: FieldAction::Hash, text: FieldAction::Drop, ..Default::default() });
    let vendor = json!({"vendor": {
        "CustomerEndpoint": {"Address": "+15550100", "Type": "TELEPHONE_NUMBER"},
        "callbackNumbers": ["+15550101"],
        "dispositions": [{"disposition_name": "ok", "disposition_notes": "called back her mother"}],
        "Queue": {"Name": "Support"}
    }});
    let out = policed(&p, "vendor.CONTACT_RECORD", &vendor);
    assert_eq!(out["vendor"]["CustomerEndpoint"]["Address"], json!(p.hash("+15550100")));
    assert_eq!(out["vendor"]["CustomerEndpoint"]["Type"], "TELEPHONE_NUMBER");
    assert_eq!(out["vendor"]["callbackNumbers"], json!([p.hash("+15550101")]));
    assert_eq!(out["vendor"]["dispositions"], json!([{"disposition_name": "ok"}]));
    assert_eq!(out["vendor"]["Queue"]["Name"], "Support");
}

#[test]
fn hash_of_objects_and_numbers_hashes_every_leaf() {
    let p = policy(PrivacySettings { custom: FieldAction::Hash, ..Default::default() });
    let out = policed(&p, "custom_data.received", &json!({"account": 12_345_678, "profile": {"city": "Lyon", "vip": true, "tags": ["a", 7]}, "none": null}));
    assert_eq!(out["account"], json!(p.hash("12345678")));
    assert_eq!(out["profile"]["city"], json!(p.hash("Lyon")));
    assert_eq!(out["profile"]["vip"], json!(true), "booleans stay");
    assert_eq!(out["profile"]["tags"], json!([p.hash("a"), p.hash("7")]));
    assert_eq!(out["none"], Value::Null);
    let text = out.to_string();
    assert!(!text.contains("12345678") && !text.contains("Lyon"), "{text}");
}

#[test]
fn user_rules_come_first_and_the_first_match_wins() {
    let settings = PrivacySettings {
        contact: FieldAction::Hash,
        rules: vec![
            // An earlier rule on a deeper path wins over a later one on its container.
            rule("attributes.sip_headers.X-Keep", Some(FieldAction::Keep), None, None),
            rule("attributes.sip_headers.*", Some(FieldAction::Drop), None, None),
            // A user rule overrides the built-in class.
            rule("attributes.ani", Some(FieldAction::Keep), None, Some(&["session.started"])),
            rule("attributes.**.ssn", None, Some(FieldClass::Contact), None),
        ],
        ..Default::default()
    };
    let p = policy(settings);
    let out =
        policed(&p, "session.started", &json!({"ani": "+15550100", "sip_headers": {"X-Keep": "k", "X-Caller": "+15550199"}, "deep": [{"ssn": "123-45"}]}));
    assert_eq!(out["ani"], "+15550100");
    assert_eq!(out["sip_headers"], json!({"X-Keep": "k"}));
    assert_eq!(out["deep"], json!([{"ssn": p.hash("123-45")}]));
    // A later rule on a container loses to an earlier one on it.
    let p = policy(PrivacySettings {
        rules: vec![rule("attributes.custom", Some(FieldAction::Drop), None, None), rule("attributes.custom.x", Some(FieldAction::Keep), None, None)],
        ..Default::default()
    });
    assert_eq!(policed(&p, "queue.entered", &json!({"custom": {"x": 1, "y": 2}, "queue": "Q"})), json!({"queue": "Q"}));
}

#[test]
fn event_type_filters_limit_a_rule() {
    let p = policy(PrivacySettings {
        rules: vec![rule("attributes.*", Some(FieldAction::Drop), None, Some(&["custom_data.received", "vendor.CONTACT_RECORD"]))],
        ..Default::default()
    });
    assert_eq!(policed(&p, "custom_data.received", &json!({"a": 1})), json!({}));
    assert_eq!(policed(&p, "vendor.CONTACT_RECORD", &json!({"a": 1})), json!({}));
    assert_eq!(policed(&p, "api.request", &json!({"a": 1})), json!({"a": 1}));
    assert_eq!(policed(&p, "vendor.OTHER", &json!({"a": 1})), json!({"a": 1}));
}

#[test]
fn wildcards_match_keys_elements_and_depths() {
    let p = policy(PrivacySettings {
        rules: vec![rule("attributes.list.*.secret", Some(FieldAction::Drop), None, None), rule("attributes.**.pin", Some(FieldAction::Hash), None, None)],
        ..Default::default()
    });
    let out = policed(&p, "robot.danced", &json!({"list": [{"secret": 1, "ok": 2}, {"secret": 3}], "pin": "1234", "a": {"b": {"pin": 5}}}));
    assert_eq!(out["list"], json!([{"ok": 2}, {}]));
    assert_eq!(out["pin"], json!(p.hash("1234")));
    assert_eq!(out["a"]["b"]["pin"], json!(p.hash("5")));
}

#[test]
fn unknown_attributes_follow_the_default_and_rules_can_keep_some() {
    let settings = PrivacySettings {
        unknown_attributes: FieldAction::Drop,
        rules: vec![rule("attributes.extra.keep_me", Some(FieldAction::Keep), None, None)],
        ..Default::default()
    };
    let p = policy(settings);
    let out = policed(&p, "queue.entered", &json!({"queue": "Q", "priority": 2, "note": "x", "extra": {"keep_me": 1, "other": 2}, "vendor": {"a": 1}}));
    assert_eq!(out, json!({"queue": "Q", "priority": 2, "extra": {"keep_me": 1}, "vendor": {"a": 1}}));
    // Types whose attributes are any keys have no unknown ones; unknown types have only unknown ones.
    assert_eq!(policed(&p, "custom_data.received", &json!({"x": 1})), json!({"x": 1}));
    assert_eq!(policed(&p, "robot.danced", &json!({"x": 1, "contact_id": "c"})), json!({"contact_id": "c"}));
    // The default is keep; hash hashes them.
    assert_eq!(policed(&policy(PrivacySettings::default()), "queue.entered", &json!({"note": "x"})), json!({"note": "x"}));
    let hashing = policy(PrivacySettings { unknown_attributes: FieldAction::Hash, ..Default::default() });
    assert_eq!(policed(&hashing, "queue.entered", &json!({"note": "x", "queue": "Q"})), json!({"note": hashing.hash("x"), "queue": "Q"}));
}

#[test]
fn participants_are_staff_or_contact_by_role() {
    let p = policy(PrivacySettings { contact: FieldAction::Drop, ..Default::default() });
    assert_eq!(policed(&p, "participant.added", &json!({"participant": "agent-7", "role": "agent"}))["participant"], "agent-7");
    assert!(policed(&p, "participant.added", &json!({"participant": "+15550100", "role": "third_party"})).get("participant").is_none());
    assert!(policed(&p, "participant.left", &json!({"participant": "+15550100"})).get("participant").is_none());
}

#[test]
fn bad_settings_name_the_rule_and_the_problem() {
    let with = |rules: Vec<PrivacyRule>| PrivacyPolicy::new(PrivacySettings { rules, ..Default::default() }, b"k").unwrap_err();
    let error = with(vec![rule("attributes.ok", Some(FieldAction::Drop), None, None), rule("attrs.x", Some(FieldAction::Drop), None, None)]);
    assert!(matches!(&error, PolicyError::InvalidPath { index: 1, path, .. } if path == "attrs.x"), "{error:?}");
    assert_eq!(error.to_string(), "privacy.rules[1].path \"attrs.x\" must start with `attributes.` (paths are rooted at the event's attributes)");
    let error = with(vec![rule("attributes.a*", Some(FieldAction::Drop), None, None)]);
    assert!(error.to_string().contains("must be a whole segment"), "{error}");
    let error = with(vec![rule("attributes.a", Some(FieldAction::Drop), Some(FieldClass::Text), None)]);
    assert!(matches!(error, PolicyError::InvalidRule { index: 0, .. }) && error.to_string().contains("both"), "{error}");
    assert!(with(vec![rule("attributes.a", None, None, None)]).to_string().contains("neither"));
    assert!(with(vec![rule("attributes.a", Some(FieldAction::Drop), None, Some(&[]))]).to_string().contains("empty `event_types`"));
    assert!(with(vec![rule("attributes.a", Some(FieldAction::Drop), None, Some(&["x", " "]))]).to_string().contains("empty name"));
    // Hashing needs a key.
    let error = PrivacyPolicy::new(PrivacySettings { link: FieldAction::Hash, ..Default::default() }, b"").unwrap_err();
    assert_eq!(error, PolicyError::MissingHmacKey { what: "privacy.link".into() });
    let hash_rule = PrivacySettings { rules: vec![rule("attributes.a", Some(FieldAction::Hash), None, None)], ..Default::default() };
    assert_eq!(PrivacyPolicy::new(hash_rule, b"").unwrap_err(), PolicyError::MissingHmacKey { what: "privacy.rules[0]".into() });
    assert!(PrivacyPolicy::new(PrivacySettings { contact: FieldAction::Drop, ..Default::default() }, b"").is_ok());
}

#[test]
fn settings_read_as_the_configuration_writes_them() {
    let text = r#"{"contact": "hash", "vendor": "drop", "unknown_attributes": "drop",
        "rules": [{"path": "attributes.sip_headers.*", "action": "drop"}, {"path": "attributes.*", "class": "custom", "event_types": ["custom_data.received"]}]}"#;
    let settings: PrivacySettings = serde_json::from_str(text).unwrap();
    assert_eq!(settings.contact, FieldAction::Hash);
    assert_eq!(settings.text, FieldAction::Keep);
    assert_eq!(settings.rules[1].class, Some(FieldClass::Custom));
    let back: PrivacySettings = serde_json::from_str(&serde_json::to_string(&settings).unwrap()).unwrap();
    assert_eq!(back, settings);
    assert!(serde_json::from_str::<PrivacySettings>(r#"{"contacts": "hash"}"#).is_err(), "unknown keys are refused");
    assert!(serde_json::from_str::<PrivacySettings>(r#"{"rules": [{"path": "attributes.a", "acton": "drop"}]}"#).is_err());
}

// Dead letters.

fn treat(p: &PrivacyPolicy, mode: DeadLetterMode, value: &str, detail: &str) -> TreatedDeadLetter {
    p.treat_dead_letter(mode, Some(value.as_bytes()), detail.to_owned())
}

fn value_of(t: &TreatedDeadLetter) -> Value {
    serde_json::from_slice(t.value.as_deref().unwrap()).unwrap()
}

#[test]
fn kept_dead_letters_are_unchanged() {
    let p = policy(PrivacySettings::all_classes(FieldAction::Hash));
    let t = treat(&p, DeadLetterMode::Keep, "{not json +15550100", "got \"+15550100\"");
    assert_eq!((t.value.as_deref(), t.payload, t.detail.as_str()), (Some(&b"{not json +15550100"[..]), DeadLetterPayload::Kept, "got \"+15550100\""));
}

#[test]
fn a_canonical_dead_letter_gets_the_policy_of_an_accepted_event() {
    let p = policy(PrivacySettings { contact: FieldAction::Hash, unknown_attributes: FieldAction::Drop, ..Default::default() });
    let record = r#"{"event_id":"e1","session_id":"s1","type":"session.started","occurred_at":"2024-01-01T00:00:00Z","channel":"voice","attributes":{"ani":"+15550100","lang":"en","note":"x"},"extra":"+15550101"}"#;
    let t = treat(&p, DeadLetterMode::Redact, record, "occurred_at 2024-01-01T00:00:00.000Z is before 2024-01-02T00:00:00.000Z (engine.min_event_time)");
    assert_eq!(t.payload, DeadLetterPayload::Redacted);
    let v = value_of(&t);
    assert_eq!(v["attributes"], json!({"ani": p.hash("+15550100"), "lang": "en"}));
    assert_eq!((v["event_id"].as_str(), v["session_id"].as_str(), v["channel"].as_str()), (Some("e1"), Some("s1"), Some("voice")));
    assert_eq!(v["extra"], json!(p.hash("+15550101")));
    assert!(t.detail.contains("engine.min_event_time"), "{}", t.detail);
}

#[test]
fn other_json_keeps_structure_numbers_and_ids_and_hashes_or_drops_strings() {
    let record = r#"{"event":"contact_center.engagement_started","event_ts":1700000000000,"payload":{"account_id":"acc-1","object":{"engagement_id":"eng-1","caller_number":"+15550100","n":3,"ok":true,"list":["Ann Smith"]}}}"#;
    let p = policy(PrivacySettings::default());
    let v = value_of(&treat(&p, DeadLetterMode::Redact, record, ""));
    assert_eq!(v["event"], "contact_center.engagement_started");
    assert_eq!(v["event_ts"], 1_700_000_000_000_i64);
    assert_eq!(v["payload"]["account_id"], "acc-1");
    assert_eq!(v["payload"]["object"]["engagement_id"], "eng-1");
    assert_eq!(v["payload"]["object"]["caller_number"], json!(p.hash("+15550100")));
    assert_eq!(v["payload"]["object"]["n"], 3);
    assert_eq!(v["payload"]["object"]["ok"], true);
    assert_eq!(v["payload"]["object"]["list"], json!([p.hash("Ann Smith")]));
    // Without a key, the strings go.
    let keyless = PrivacyPolicy::default();
    let v = value_of(&treat(&keyless, DeadLetterMode::Redact, record, ""));
    assert!(v["payload"]["object"].get("caller_number").is_none());
    assert_eq!(v["payload"]["object"]["list"], json!([]));
    // A canonical record whose envelope is broken: a bad time or channel is not kept.
    let broken = r#"{"event_id":"e1","session_id":"s1","occurred_at":"+15550100","channel":"Ann Smith","attributes":"x"}"#;
    let text = String::from_utf8(treat(&keyless, DeadLetterMode::Redact, broken, "").value.unwrap()).unwrap();
    assert_eq!(text, r#"{"event_id":"e1","session_id":"s1"}"#);
}

#[test]
fn what_cannot_be_parsed_is_dropped_and_drop_drops_everything() {
    let p = policy(PrivacySettings::default());
    for bad in ["{\"ani\": \"+15550100\"", "not json at all", "\u{0}\u{0}\u{0}\u{0}\u{1}\u{2}avro"] {
        let t = treat(&p, DeadLetterMode::Redact, bad, "");
        assert_eq!((t.value, t.payload), (None, DeadLetterPayload::Dropped), "{bad}");
    }
    let t = treat(&p, DeadLetterMode::Drop, r#"{"type":"x"}"#, "");
    assert_eq!((t.value, t.payload), (None, DeadLetterPayload::Dropped));
    let t = p.treat_dead_letter(DeadLetterMode::Redact, None, "the record has no value (null)".into());
    assert_eq!((t.value, t.payload, t.detail.as_str()), (None, DeadLetterPayload::Kept, "the record has no value (null)"));
}

#[test]
fn details_quote_nothing_the_redaction_removed() {
    let p = policy(PrivacySettings { contact: FieldAction::Hash, ..Default::default() });
    let record = r#"{"event_id":"e1","session_id":"s1","type":"session.started","occurred_at":"2024-01-01T00:00:00Z","channel":"voice","attributes":{"ani":15550100999}}"#;
    let detail = "`attributes.ani` of `session.started` must be a string, got 15550100999; session \"s1\", value \"+15550100\", path `a`, unterminated \"tail";
    for mode in [DeadLetterMode::Redact, DeadLetterMode::Drop] {
        let t = treat(&p, mode, record, detail);
        assert!(!t.detail.contains("15550100"), "{mode:?}: {}", t.detail);
        assert!(t.detail.contains("session \"s1\""), "ids the record keeps stay: {}", t.detail);
        assert!(t.detail.contains("`attributes.ani`") && t.detail.ends_with("unterminated \"<redacted>"), "{}", t.detail);
    }
    // Not JSON: every quoted text goes.
    let t = treat(&p, DeadLetterMode::Redact, "{oops", "genesys-cloud: (record): found \"Ann\"");
    assert_eq!(t.detail, "genesys-cloud: (record): found \"<redacted>\"");
}

fn json_tree() -> impl Strategy<Value = Value> {
    let leaf =
        prop_oneof![any::<bool>().prop_map(Value::from), any::<i64>().prop_map(Value::from), "[a-zA-Z0-9 +@.]{1,12}".prop_map(Value::from), Just(Value::Null),];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    /// Custom data through `hash` keeps its shape (keys, booleans, nulls)
    /// and no string or number of it; through `keep` it is unchanged;
    /// through `drop` nothing is left.
    #[test]
    fn custom_data_round_trips_through_each_action(attrs in prop::collection::btree_map("[a-z]{1,6}", json_tree(), 1..5)) {
        let attrs = Value::Object(attrs.into_iter().collect());
        let kept = policed(&policy(PrivacySettings::default()), "custom_data.received", &attrs);
        prop_assert_eq!(&kept, &attrs);
        let hashing = policy(PrivacySettings::all_classes(FieldAction::Hash));
        let hashed = policed(&hashing, "custom_data.received", &attrs);
        fn same_shape(a: &Value, b: &Value, p: &PrivacyPolicy) -> bool {
            match (a, b) {
                (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_shape(v, w, p))),
                (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same_shape(v, w, p)),
                (Value::String(s), Value::String(h)) => *h == p.hash(s),
                (Value::Number(n), Value::String(h)) => *h == p.hash(&n.to_string()),
                (x, y) => x == y && (x.is_boolean() || x.is_null()),
            }
        }
        prop_assert!(same_shape(&attrs, &hashed, &hashing), "{} -> {}", attrs, hashed);
        let dropping = policy(PrivacySettings::all_classes(FieldAction::Drop));
        prop_assert_eq!(policed(&dropping, "custom_data.received", &attrs), json!({}));
    }
}
