//! The policy applied before the fold: hashed values still join (a
//! participant who joins and leaves, an agent who connects and wraps up),
//! dropped ones leave their metadata fields empty, and dead letters follow
//! `dead_letter_payload`.

mod common;

use common::{drive, ev, last, numbered, run_with};
use serde_json::json;
use sessionflow_core::{DeadLetterMode, DeadLetterPayload, EngineConfig, FieldAction, PrivacyPolicy, PrivacySettings};

fn config(settings: PrivacySettings, payload: DeadLetterMode) -> EngineConfig {
    EngineConfig { privacy: PrivacyPolicy::new(settings, b"k").unwrap(), dead_letter_payload: payload, ..EngineConfig::default() }
}

#[test]
fn hashed_values_still_join_in_the_metadata() {
    let config = config(PrivacySettings { contact: FieldAction::Hash, staff: FieldAction::Hash, ..Default::default() }, DeadLetterMode::Keep);
    let events = [
        ev("a", "session.started", 0.0, json!({"ani": "+15550100"})),
        ev("b", "queue.entered", 1.0, json!({"queue": "Q"})),
        ev("c", "agent.assigned", 2.0, json!({"agent": "Ann Lee", "agent_id": "a-1"})),
        ev("d", "agent.connected", 3.0, json!({"agent": "Ann Lee", "agent_id": "a-1"})),
        ev("e", "participant.added", 4.0, json!({"participant": "+15550199", "role": "third_party"})),
        ev("f", "participant.left", 5.0, json!({"participant": "+15550199"})),
        ev("g", "session.ended", 6.0, json!({"ended_by": "end_user"})),
        ev("h", "wrapup.completed", 7.0, json!({"agent": "Ann Lee"})),
    ];
    let out = run_with(&config, &events);
    let m = last(&out);
    let hash = |s: &str| config.privacy.hash(s);
    assert_eq!(m["agent"], json!(hash("Ann Lee")));
    let third = m["participants"].as_array().unwrap().iter().find(|p| p["role"] == "third_party").unwrap();
    assert_eq!(third["id"], json!(hash("+15550199")));
    assert!(!third["left_at"].is_null(), "the hashed participant left: {third}");
    assert_eq!(m["state"], "ended", "the hashed agent's wrap-up ended the session: {m}");
    let text: String = common::timeline(&out)
        .iter()
        .map(|t| serde_json::to_string(t).unwrap())
        .chain(common::metadata(&out).iter().map(|m| serde_json::to_string(m).unwrap()))
        .collect();
    assert!(!text.contains("+15550199") && !text.contains("Ann Lee"));
}

#[test]
fn dropped_values_leave_their_metadata_fields_empty() {
    let config = config(PrivacySettings::all_classes(FieldAction::Drop), DeadLetterMode::Keep);
    let events = [
        ev("a", "session.started", 0.0, json!({"ani": "+15550100", "lang": "en"})),
        ev("b", "email.collected", 1.0, json!({"email": "a@b.c"})),
        ev("c", "custom_data.received", 2.0, json!({"account": "x"})),
        ev("d", "rating.received", 3.0, json!({"rating": 4, "comment": "slow"})),
    ];
    let m = last(&run_with(&config, &events));
    assert_eq!((m["email"].clone(), m["lang"].clone(), m["csat"]["rating"].clone()), (json!(null), json!("en"), json!(4)));
    assert_eq!(m["csat"]["comment"], json!(null));
    assert!(m["custom_data"].is_null() || m["custom_data"] == json!({}), "{}", m["custom_data"]);
}

#[test]
fn dead_letters_follow_the_payload_setting() {
    let settings = PrivacySettings { contact: FieldAction::Hash, ..Default::default() };
    // An event before engine.min_event_time: a bad_timestamp dead letter with its value.
    let early = sessionflow_core::Event::from_json(json!({"event_id": "x", "session_id": "s9", "type": "session.started", "channel": "voice",
        "occurred_at": "1970-01-01T00:00:01Z", "attributes": {"ani": "+15550100"}}))
    .unwrap();
    for (mode, payload) in [
        (DeadLetterMode::Keep, DeadLetterPayload::Kept),
        (DeadLetterMode::Redact, DeadLetterPayload::Redacted),
        (DeadLetterMode::Drop, DeadLetterPayload::Dropped),
    ] {
        let driven = drive(&config(settings.clone(), mode), &numbered(std::slice::from_ref(&early)), 1, None, false);
        let dead = driven.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].payload, payload);
        let value = dead[0].value.as_deref().map(|v| String::from_utf8_lossy(v).into_owned());
        match mode {
            DeadLetterMode::Keep => assert!(value.unwrap().contains("+15550100")),
            DeadLetterMode::Redact => {
                let value = value.unwrap();
                assert!(!value.contains("+15550100") && value.contains("\"session_id\":\"s9\""), "{value}");
            }
            DeadLetterMode::Drop => assert!(value.is_none()),
        }
        assert_eq!(dead[0].key.as_deref(), Some(b"s9".as_slice()), "the key stays");
        driven.assert_accounting();
    }
}
