//! The Twilio TaskRouter adapter against fixtures written from the vendor's
//! documented field lists (`docs/adapters/twilio-taskrouter.md`).

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, SessionIdentity, adapter};
use sessionflow_core::DeadLetterReason;

const F: InputFormat = InputFormat::TwilioTaskrouter;

const ANSWERED: &str = "WT68c780cd132a0299c7cd3fa8649783cb";
const ABANDONED: &str = "WT20e7f550122ee415de2b6d761a474ea5";
const TRANSFER_LEG1: &str = "WT29fe09ef255ecf5b03e6bd51638e72e0";
const TRANSFER_LEG2: &str = "WTd02f2c5869f568b0568887b67b2013a3";
const CALLBACK: &str = "WTf2579d976934c7888785842d8e5a48a1";
const FIXTURES: [&str; 4] = ["answered.jsonl", "abandoned.jsonl", "transferred.jsonl", "deflected-callback.jsonl"];

fn final_record(name: &str, options: &AdapterOptions, session: &str) -> Value {
    let run = run(F, options, &fixture_lines(F, name));
    assert!(run.dead_letters().is_empty(), "{name}: {:?}", run.dead_letters());
    run.final_metadata().remove(session).unwrap_or_else(|| panic!("{name}: no session {session}"))
}

#[test]
fn answered_call_after_a_timed_out_offer() {
    let m = final_record("answered.jsonl", &AdapterOptions::default(), ANSWERED);
    assert_fields(
        &m,
        &[
            ("source", json!("twilio")),
            ("state", json!("ended")),
            ("outcome", json!("completed")),
            ("channel", json!("voice")),
            ("direction", json!("inbound")),
            ("answer_type", json!("human")),
            ("ended_by", json!("end_user")),
            ("agent", json!("Bo Lind")),
            ("queue", json!("Support")),
            ("support_number", json!("+15550199")),
            ("offers", json!(2)),
            ("declines", json!(1)),
            ("created_at", json!("2026-03-02T09:00:00.000Z")),
            ("queued_at", json!("2026-03-02T09:00:00.200Z")),
            ("assigned_at", json!("2026-03-02T09:00:30.000Z")),
            ("connected_at", json!("2026-03-02T09:00:30.000Z")),
            ("ended_at", json!("2026-03-02T09:03:20.000Z")),
            ("wrapup_completed_at", json!("2026-03-02T09:04:05.000Z")),
            // Queued from 0.2 s to 30 s; ringing 5–20 s (Ann) and 22–30 s (Bo).
            ("queue_wait_ms", json!(29_800)),
            ("ring_ms", json!(23_000)),
            ("talk_ms", json!(170_000)),
            ("wrapup_ms", json!(45_000)),
            ("handle_ms", json!(215_000)),
            ("total_ms", json!(200_000)),
            // TaskRouter has no hold events.
            ("hold_ms", json!(0)),
            ("hold_count", json!(0)),
            ("transfer_count", json!(0)),
            ("transfers", json!([])),
            ("anomaly_count", json!(0)),
            // task.updated passes through as vendor.task.updated.
            ("unknown_event_count", json!(1)),
            ("event_count", json!(11)),
        ],
    );
    assert_eq!(
        m["queues"],
        json!([{"queue": "Support", "queue_id": "WQa18603086e5bdf9df88ccc9f5a083fed", "priority": 2,
                "entered_at": "2026-03-02T09:00:00.200Z", "left_at": "2026-03-02T09:00:30.000Z", "outcome": "answered"}])
    );
    assert_eq!(
        m["participants"],
        json!([{"id": "WK3d099d0f13df9d0bb4427a6ce99d61b9", "role": "agent", "joined_at": "2026-03-02T09:00:30.000Z", "left_at": "2026-03-02T09:03:20.000Z", "by": null}])
    );
    assert_eq!(m["disposition"]["code"], json!("Resolved"));
    assert_eq!(m["disposition"]["agent"], json!("Bo Lind"));
}

#[test]
fn abandoned_in_queue_from_form_encoded_callbacks() {
    let m = final_record("abandoned.jsonl", &AdapterOptions::default(), ABANDONED);
    assert_fields(
        &m,
        &[
            ("state", json!("abandoned")),
            ("outcome", json!("abandoned")),
            ("abandon_phase", json!("queued")),
            ("short_abandon", json!(false)),
            ("ended_by", json!("end_user")),
            ("answer_type", json!("none")),
            ("channel", json!("voice")),
            ("direction", json!("inbound")),
            ("agent", Value::Null),
            ("assigned_at", Value::Null),
            ("connected_at", Value::Null),
            // task.created carries only `Timestamp` (epoch seconds).
            ("created_at", json!("2026-03-02T10:00:00.000Z")),
            ("ended_at", json!("2026-03-02T10:00:50.000Z")),
            ("queue_wait_ms", json!(49_900)),
            ("ring_ms", json!(4_000)),
            ("talk_ms", json!(0)),
            ("total_ms", json!(50_000)),
            ("handle_ms", Value::Null),
            ("offers", json!(1)),
            ("declines", json!(1)),
            ("queue", json!("Sales")),
            ("anomaly_count", json!(0)),
            ("unknown_event_count", json!(1)),
        ],
    );
    assert_eq!(m["queues"][0]["outcome"], json!("abandoned"));
    assert_eq!(m["queues"][0]["left_at"], json!("2026-03-02T10:00:50.000Z"));
    assert_eq!(m["queues"][0]["priority"], json!(1));
}

#[test]
fn cold_transfer_to_a_queue_is_one_journey() {
    let m = final_record("transferred.jsonl", &AdapterOptions::default(), TRANSFER_LEG1);
    assert_fields(
        &m,
        &[
            ("state", json!("ended")),
            ("outcome", json!("completed")),
            ("ended_by", json!("agent")),
            ("agent", json!("Bo Lind")),
            ("queue", json!("Billing")),
            ("transfer_count", json!(1)),
            ("offers", json!(2)),
            ("declines", json!(0)),
            ("assigned_at", json!("2026-03-02T11:00:06.000Z")),
            ("ended_at", json!("2026-03-02T11:06:40.000Z")),
            ("wrapup_completed_at", json!("2026-03-02T11:07:10.000Z")),
            // Support 0.1–6 s, Billing 121.1–155 s.
            ("queue_wait_ms", json!(39_800)),
            ("ring_ms", json!(8_000)),
            // Ann 6–121.1 s (until the new task queues), Bo 155–400 s.
            ("talk_ms", json!(360_100)),
            ("wrapup_ms", json!(30_000)),
            ("handle_ms", json!(424_000)),
            ("total_ms", json!(400_000)),
            ("anomaly_count", json!(0)),
            // The new task's creation and the first task's wrap-up and completion.
            ("unknown_event_count", json!(3)),
        ],
    );
    assert_eq!(
        m["transfers"],
        json!([{"from": {"queue": "Support", "agent": "Ann Lee"}, "to": {"queue": "WQ0c95c7ece1ce1a9750275ef1c6d7ad6b", "agent": null},
                "kind": "blind", "started_at": "2026-03-02T11:02:00.000Z", "outcome": "completed", "reason": null}])
    );
    let queues: Vec<_> = m["queues"].as_array().unwrap().iter().map(|q| (q["queue"].clone(), q["outcome"].clone())).collect();
    assert_eq!(queues, [(json!("Support"), json!("answered")), (json!("Billing"), json!("answered"))]);
    let agents: Vec<_> = m["participants"].as_array().unwrap().iter().map(|p| (p["joined_at"].clone(), p["left_at"].clone())).collect();
    assert_eq!(
        agents,
        [(json!("2026-03-02T11:00:06.000Z"), json!("2026-03-02T11:02:01.100Z")), (json!("2026-03-02T11:02:35.000Z"), json!("2026-03-02T11:06:40.000Z"))]
    );
}

#[test]
fn leg_identity_makes_each_task_a_session() {
    let options = AdapterOptions { session_identity: SessionIdentity::Leg };
    let run = run(F, &options, &fixture_lines(F, "transferred.jsonl"));
    let finals = run.final_metadata();
    assert_eq!(finals.keys().collect::<Vec<_>>(), [TRANSFER_LEG1, TRANSFER_LEG2]);
    let first = &finals[TRANSFER_LEG1];
    // Ann's leg ends with her wrap-up; the transfer completes (Bo accepts)
    // after it, which the core records as a late fact.
    assert_fields(
        first,
        &[
            ("state", json!("ended")),
            ("agent", json!("Ann Lee")),
            ("transfer_count", json!(1)),
            ("ended_at", json!("2026-03-02T11:02:02.000Z")),
            ("wrapup_completed_at", json!("2026-03-02T11:02:20.000Z")),
            ("talk_ms", json!(116_000)),
            ("anomalies", json!({"after_terminal": 1})),
        ],
    );
    let second = &finals[TRANSFER_LEG2];
    assert_fields(
        second,
        &[
            ("state", json!("ended")),
            ("channel", json!("voice")),
            ("agent", json!("Bo Lind")),
            ("queue", json!("Billing")),
            ("created_at", json!("2026-03-02T11:02:01.000Z")),
            ("queue_wait_ms", json!(33_900)),
            ("transfer_count", json!(0)),
            ("ended_by", json!("agent")),
            ("anomaly_count", json!(0)),
        ],
    );
}

#[test]
fn callback_request_in_queue_is_a_deflection() {
    let m = final_record("deflected-callback.jsonl", &AdapterOptions::default(), CALLBACK);
    assert_fields(
        &m,
        &[
            ("state", json!("deflected")),
            ("outcome", json!("deflected")),
            ("deflection", json!({"kind": "callback", "offered_at": null, "accepted": true, "queue": "Support"})),
            ("answer_type", json!("none")),
            ("ended_by", Value::Null),
            // reservation.canceled and task.canceled share a millisecond: the
            // decline sorts first (event id rank), so the deflection leaves the queue.
            ("queue_wait_ms", json!(44_950)),
            ("ring_ms", json!(25_000)),
            ("offers", json!(1)),
            ("declines", json!(1)),
            ("total_ms", json!(45_000)),
            ("anomaly_count", json!(0)),
        ],
    );
    assert_eq!(m["queues"][0]["outcome"], json!("deflected"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn duplicated_and_shuffled_records_give_the_same_final_records(seed in any::<u64>(), leg in any::<bool>()) {
        let options = AdapterOptions { session_identity: if leg { SessionIdentity::Leg } else { SessionIdentity::Journey } };
        for name in FIXTURES {
            let records = fixture_lines(F, name);
            let expected: Vec<_> = run(F, &options, &records).final_metadata().into_values().map(order_independent).collect();
            let shuffled: Vec<_> = run(F, &options, &duplicated_and_shuffled(&records, seed)).final_metadata().into_values().map(order_independent).collect();
            prop_assert_eq!(shuffled, expected, "{}", name);
        }
    }
}

#[test]
fn shuffled_runs_differ_only_in_versioning_and_arrival_fields() {
    // Which fields the comparison sets aside actually change: the property
    // above must not pass because everything is set aside.
    let records = fixture_lines(F, "transferred.jsonl");
    let in_order = run(F, &AdapterOptions::default(), &records).final_metadata().remove(TRANSFER_LEG1).unwrap();
    let mut differing = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let shuffled = run(F, &AdapterOptions::default(), &duplicated_and_shuffled(&records, seed)).final_metadata().remove(TRANSFER_LEG1).unwrap();
        for (field, value) in shuffled.as_object().unwrap() {
            if in_order[field] != *value {
                differing.insert(field.clone());
            }
        }
    }
    assert!(differing.contains("duplicate_count"), "{differing:?}");
    let allowed = ["version", "revision_reason", "finalized_at", "late_event_count", "duplicate_count", "is_final"];
    assert!(differing.iter().all(|f| allowed.contains(&f.as_str())), "{differing:?}");
}

fn adapt(record: &str) -> Result<Vec<sessionflow_core::Event>, sessionflow_core::InputError> {
    adapter(F, &AdapterOptions::default()).adapt(record.as_bytes(), &mut MemoryState::default())
}

fn callback_json(changes: &Value) -> String {
    let mut record = json!({
        "EventType": "reservation.accepted", "Sid": "EV00000000000000000000000000000042", "Timestamp": "1772442030",
        "TimestampMs": "1772442030000", "TaskSid": "WT00000000000000000000000000000001", "TaskChannelUniqueName": "chat",
        "TaskAttributes": "{\"channelType\":\"web\",\"from\":\"Ann\"}", "WorkerName": "Bo Lind", "WorkerSid": "WK00000000000000000000000000000002",
        "TaskQueueName": "Support", "WorkspaceSid": "WS00000000000000000000000000000003"
    });
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            record.as_object_mut().unwrap().remove(k);
        } else {
            record[k] = v.clone();
        }
    }
    record.to_string()
}

fn error_of(record: &str) -> (DeadLetterReason, String) {
    let e = adapt(record).expect_err(record);
    (e.reason, e.detail)
}

#[test]
fn malformed_records_are_dead_letters_naming_vendor_and_field() {
    let cases: Vec<(String, DeadLetterReason, &str)> = vec![
        ("{not json".into(), DeadLetterReason::DecodeError, "twilio-taskrouter: (record): expected JSON"),
        ("just some text".into(), DeadLetterReason::DecodeError, "twilio-taskrouter: (record): expected a JSON object or an application/x-www-form-urlencoded"),
        ("[1,2]".into(), DeadLetterReason::DecodeError, "twilio-taskrouter: (record): expected a JSON object, found an array"),
        (
            "EventType=task.created&TaskSid=%zz".into(),
            DeadLetterReason::DecodeError,
            "twilio-taskrouter: (record): expected an application/x-www-form-urlencoded body",
        ),
        (
            json!({"contactId": "c-1", "channel": "VOICE"}).to_string(),
            DeadLetterReason::MissingField,
            "twilio-taskrouter: EventType: expected a TaskRouter event type",
        ),
        (
            json!({"contactId": "c-1", "eventType": "INITIATED"}).to_string(),
            DeadLetterReason::BadFieldType,
            "twilio-taskrouter: EventType: expected a TaskRouter event type",
        ),
        (
            json!({"specversion": "1.0", "type": "com.zoom.meeting", "id": "x", "data": {}}).to_string(),
            DeadLetterReason::BadFieldType,
            "twilio-taskrouter: type: expected com.twilio.taskrouter.<event type>",
        ),
        (
            json!({"specversion": "1.0", "type": "com.twilio.taskrouter.task.created", "id": "x", "data": {}}).to_string(),
            DeadLetterReason::MissingField,
            "twilio-taskrouter: data.payload: expected an object",
        ),
        (callback_json(&json!({"TaskSid": null})), DeadLetterReason::MissingField, "twilio-taskrouter: TaskSid: expected a string, found nothing"),
        (
            callback_json(&json!({"TimestampMs": "soon", "Timestamp": null})),
            DeadLetterReason::BadTimestamp,
            "twilio-taskrouter: TimestampMs: expected an RFC 3339 time",
        ),
        (callback_json(&json!({"TimestampMs": null, "Timestamp": null})), DeadLetterReason::MissingField, "twilio-taskrouter: Timestamp: expected a time"),
        (callback_json(&json!({"WorkerName": ["Bo"]})), DeadLetterReason::BadFieldType, "twilio-taskrouter: WorkerName: expected a string, found an array"),
        (
            callback_json(&json!({"TaskAttributes": "{broken"})),
            DeadLetterReason::BadFieldType,
            "twilio-taskrouter: TaskAttributes: expected a JSON object in a string",
        ),
        (
            callback_json(&json!({"EventType": "task.created", "TaskChannelUniqueName": "default", "TaskAttributes": "{}"})),
            DeadLetterReason::BadFieldType,
            "twilio-taskrouter: TaskChannelUniqueName: expected voice, chat, sms, email, video or a messaging channel, found \"default\"",
        ),
    ];
    for (record, reason, detail) in cases {
        let (got_reason, got_detail) = error_of(&record);
        assert_eq!(got_reason, reason, "{record}: {got_detail}");
        assert!(got_detail.starts_with(detail), "{record}: {got_detail}");
    }
    // Through the engine they become dead letters with those reasons.
    let records = vec!["{not json".to_owned(), callback_json(&json!({"TaskSid": null}))];
    let run = run(F, &AdapterOptions::default(), &records);
    let reasons: Vec<_> = run.dead_letters().iter().map(|d| d.reason).collect();
    assert_eq!(reasons, [DeadLetterReason::DecodeError, DeadLetterReason::MissingField]);
}

#[test]
fn event_streams_fields_are_named_by_their_path() {
    let line = &fixture_lines(F, "answered.jsonl")[2];
    let mut record: Value = serde_json::from_str(line).unwrap();
    record["data"]["payload"]["worker_name"] = json!({"first": "Ann"});
    let (reason, detail) = error_of(&record.to_string());
    assert_eq!(reason, DeadLetterReason::BadFieldType);
    assert_eq!(detail, "twilio-taskrouter: data.payload.worker_name: expected a string, found an object");
    record["data"]["payload"]["timestamp"] = json!("yesterday");
    assert_eq!(error_of(&record.to_string()).0, DeadLetterReason::BadTimestamp);
}

#[test]
fn redelivery_gives_the_same_event_ids() {
    for name in FIXTURES {
        let records = fixture_lines(F, name);
        let first: Vec<_> = adapt_all(F, &AdapterOptions::default(), &records).into_iter().map(|e| e.unwrap().event_id).collect();
        let again: Vec<_> = adapt_all(F, &AdapterOptions::default(), &records).into_iter().map(|e| e.unwrap().event_id).collect();
        assert_eq!(first, again, "{name}");
        let distinct: std::collections::BTreeSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), first.len(), "{name}: ids must be unique");
    }
    // One record, two events: the vendor's sid with a rank prefix and a suffix each.
    let ids: Vec<_> = adapt(&callback_json(&json!({}))).unwrap().into_iter().map(|e| (e.event_type.as_str().to_owned(), e.event_id)).collect();
    assert_eq!(
        ids,
        [
            ("agent.assigned".to_owned(), "tr04-EV00000000000000000000000000000042.1".to_owned()),
            ("agent.connected".to_owned(), "tr05-EV00000000000000000000000000000042.2".to_owned())
        ]
    );
    // Without the vendor's sid: the same moment gives the same derived id.
    let without_sid = callback_json(&json!({"Sid": null}));
    let a = adapt(&without_sid).unwrap();
    assert!(a[0].event_id.starts_with("tr04-twilio-"), "{}", a[0].event_id);
    assert_eq!(a[0].event_id, adapt(&without_sid).unwrap()[0].event_id);
    let later = callback_json(&json!({"Sid": null, "TimestampMs": "1772442031000"}));
    assert_ne!(a[0].event_id, adapt(&later).unwrap()[0].event_id);
}

#[test]
fn redelivered_records_are_duplicates_in_the_engine() {
    let mut records = fixture_lines(F, "answered.jsonl");
    records.extend(fixture_lines(F, "answered.jsonl"));
    let m = run(F, &AdapterOptions::default(), &records).final_metadata().remove(ANSWERED).unwrap();
    assert_eq!(m["duplicate_count"], json!(11));
    assert_eq!(m["event_count"], json!(11));
}

#[test]
fn placeholder_times_read_as_absent() {
    // A zero TimestampMs falls back to Timestamp (epoch seconds).
    let events = adapt(&callback_json(&json!({"TimestampMs": "0", "Timestamp": "1772442031"}))).unwrap();
    assert_eq!(events[0].occurred_at.to_rfc3339(), "2026-03-02T09:00:31.000Z");
    // An epoch-day payload timestamp falls back to the CloudEvent's time.
    let mut record: Value = serde_json::from_str(&fixture_lines(F, "answered.jsonl")[0]).unwrap();
    record["data"]["payload"]["timestamp"] = json!("1970-01-01T00:00:00.000Z");
    let events = adapt(&record.to_string()).unwrap();
    assert_eq!(events[0].occurred_at.to_rfc3339(), "2026-03-02T09:00:00.350Z");
    // Only placeholders: no time at all.
    record["time"] = json!("1970-01-01T00:00:00.001Z");
    assert_eq!(error_of(&record.to_string()).0, DeadLetterReason::MissingField);
}

#[test]
fn the_three_spellings_give_the_same_events() {
    let json_record = callback_json(&json!({}));
    let object: serde_json::Map<String, Value> = serde_json::from_str(&json_record).unwrap();
    let form: Vec<String> = object.iter().map(|(k, v)| format!("{k}={}", encode(v.as_str().unwrap()))).collect();
    let from_form = adapt(&form.join("&")).unwrap();
    assert_eq!(from_form, adapt(&json_record).unwrap());
    let cloudevent = json!({"specversion": "1.0", "type": "com.twilio.taskrouter.reservation.accepted", "id": "NO1", "time": "2026-03-02T09:00:30.400Z",
        "data": {"payload": {"sid": "EV00000000000000000000000000000042", "timestamp": "2026-03-02T09:00:30.000Z",
        "task_sid": "WT00000000000000000000000000000001", "task_channel_unique_name": "chat", "task_attributes": "{\"channelType\":\"web\",\"from\":\"Ann\"}",
        "worker_name": "Bo Lind", "worker_sid": "WK00000000000000000000000000000002", "task_queue_name": "Support", "workspace_sid": "WS00000000000000000000000000000003"}}});
    let from_stream = adapt(&cloudevent.to_string()).unwrap();
    let envelope = |events: &[sessionflow_core::Event]| {
        events.iter().map(|e| (e.event_id.clone(), e.occurred_at, e.channel, e.attributes.get("agent").cloned())).collect::<Vec<_>>()
    };
    assert_eq!(envelope(&from_stream), envelope(&from_form));
}

fn encode(text: &str) -> String {
    text.bytes().map(|b| if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[test]
fn unknown_types_pass_through_and_unused_fields_are_kept() {
    let events = adapt(&callback_json(&json!({"EventType": "task.transfer-attempt-failed"}))).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type.as_str(), "vendor.task.transfer-attempt-failed");
    let vendor = events[0].attributes.get("vendor").expect("vendor fields");
    assert_eq!(vendor["WorkspaceSid"], json!("WS00000000000000000000000000000003"));
    // Task attributes are kept, minus the personal data the mapping moves
    // into canonical attributes (`from` is the caller).
    assert_eq!(vendor["task_attributes"], json!({"channelType": "web"}));
    assert!(vendor.get("TaskSid").is_none() && vendor.get("WorkerName").is_none());
    // Worker and workspace events concern no task: no session, no event.
    let worker =
        json!({"EventType": "worker.activity.update", "Sid": "EV9", "TimestampMs": "1772442030000", "WorkerSid": "WK1", "WorkerActivityName": "Offline"});
    assert_eq!(adapt(&worker.to_string()).unwrap(), []);
}

#[test]
fn journey_takes_the_flex_conversation_id_and_marks_follow_up_legs() {
    let leg2_created = &fixture_lines(F, "transferred.jsonl")[5];
    let journey = adapt(leg2_created).unwrap();
    assert_eq!(&*journey[0].session_id, TRANSFER_LEG1);
    assert_eq!(journey[0].event_type.as_str(), "vendor.task.created");
    assert_eq!(journey[0].attributes.get("task_sid"), Some(&json!(TRANSFER_LEG2)));
    let leg = adapter(F, &AdapterOptions { session_identity: SessionIdentity::Leg }).adapt(leg2_created.as_bytes(), &mut MemoryState::default()).unwrap();
    assert_eq!(&*leg[0].session_id, TRANSFER_LEG2);
    assert_eq!(leg[0].event_type.as_str(), "session.started");
    assert_eq!(leg[0].attributes.get("ani"), Some(&json!("+15550122")));
}
