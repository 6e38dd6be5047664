//! The contract's example sessions, with the figures of the acceptance list.

use serde_json::Value;
use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{EngineConfig, Event, MetadataRecord, Output};

fn load(name: &str) -> Vec<Result<Event, sessionflow_core::InputError>> {
    let path = format!("{}/../../../shared/spec/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Event::from_json_slice(l.as_bytes())).collect()
}

fn final_record(outputs: &[Output]) -> Value {
    let finals: Vec<&MetadataRecord> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Metadata(m) if m.is_final => Some(m.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(finals.len(), 1, "exactly one final record");
    serde_json::to_value(finals[0]).unwrap()
}

#[test]
fn voice_inbound_transfer_survey() {
    let (outputs, _) = replay_in_memory(&EngineConfig::default(), &load("voice-inbound-transfer-survey.jsonl"), 1000);
    let m = final_record(&outputs);
    let expect = [
        ("outcome", Value::from("completed")),
        ("state", "ended".into()),
        ("handle_ms", 446_000.into()),
        ("queue_wait_ms", 91_500.into()),
        ("ring_ms", 19_000.into()),
        ("talk_ms", 353_000.into()),
        ("hold_ms", 23_000.into()),
        ("hold_count", 1.into()),
        ("wrapup_ms", 30_000.into()),
        ("self_service_ms", 24_500.into()),
        ("total_ms", 495_000.into()),
        ("transfer_count", 1.into()),
        ("offers", 2.into()),
        ("declines", 1.into()),
        ("answer_type", "human".into()),
    ];
    for (field, value) in expect {
        assert_eq!(m[field], value, "{field}");
    }
    assert_eq!(m["csat"]["rating"], 4);
    assert_eq!(m["is_final"], true);
    assert_eq!(m["queues"].as_array().unwrap().len(), 2);
    assert_eq!(m["agent"], "Ariel C");
    assert_eq!(m["disposition"]["code"], "test001");
    assert_eq!(m["post_session"]["opted_in"], true);
    assert_eq!(m["created_at"], "2024-07-03T02:06:15.000Z");
    assert_eq!(m["anomaly_count"], 0);
    let timeline = outputs.iter().filter(|o| matches!(o, Output::Timeline(_))).count();
    assert_eq!(timeline, 22);
}

#[test]
fn chat_abandoned_in_queue() {
    let (outputs, _) = replay_in_memory(&EngineConfig::default(), &load("chat-abandoned-in-queue.jsonl"), 1000);
    let m = final_record(&outputs);
    assert_eq!(m["state"], "abandoned");
    assert_eq!(m["outcome"], "abandoned");
    assert_eq!(m["abandon_phase"], "queued");
    assert_eq!(m["short_abandon"], false);
    assert_eq!(m["custom_data"]["membershipNumber"], "21754");
    assert_eq!(m["card"]["color"], "white");
}

#[test]
fn email_released_and_reassigned() {
    let (outputs, _) = replay_in_memory(&EngineConfig::default(), &load("email-released-and-reassigned.jsonl"), 1000);
    let m = final_record(&outputs);
    assert_eq!(m["duplicate_count"], 1);
    assert_eq!(m["event_count"], 9);
    assert_eq!(m["outcome"], "completed");
    assert_eq!(m["queues"].as_array().unwrap().len(), 2);
    assert_eq!(m["agent"], "Lee P");
    // 09:05 first assignment to 09:41 wrap-up completed.
    assert_eq!(m["handle_ms"], 36 * 60_000);
    let timeline = outputs.iter().filter(|o| matches!(o, Output::Timeline(_))).count();
    assert_eq!(timeline, 9, "the duplicate is dropped from the timeline");
}

#[test]
fn voice_deflected_to_sms() {
    let (outputs, _) = replay_in_memory(&EngineConfig::default(), &load("voice-deflected-to-sms.jsonl"), 1000);
    let m = final_record(&outputs);
    assert_eq!(m["state"], "deflected");
    assert_eq!(m["outcome"], "deflected");
    assert_eq!(m["deflection"]["kind"], "sms");
    assert_eq!(m["deflection"]["accepted"], true);
    assert_eq!(m["total_ms"], 78_000);
}
