//! Zoom Contact Center webhooks through the adapter and the engine: the
//! fixtures' final metadata, worked out by hand from the event times, and
//! its independence from arrival order and redelivery.

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, SessionIdentity, adapter};
use sessionflow_core::{DeadLetterReason, InputError, Millis};

const ZOOM: InputFormat = InputFormat::ZoomContactCenter;
const FIXTURES: [&str; 5] = ["answered.jsonl", "abandoned-in-queue.jsonl", "transferred.jsonl", "callback.jsonl", "async-released.jsonl"];

fn records(name: &str) -> Vec<String> {
    fixture_lines(ZOOM, name)
}

fn all_records() -> Vec<String> {
    FIXTURES.iter().flat_map(|f| records(f)).collect()
}

/// The final record of one session with the versioning and arrival-quality
/// fields removed (`lifecycle.md`: those may differ between orders).
fn comparable(run: &Run) -> std::collections::BTreeMap<String, Value> {
    order_independent_finals(run.final_metadata())
}

fn final_of(name: &str, session: &str) -> Value {
    let run = run(ZOOM, &AdapterOptions::default(), &records(name));
    assert!(run.dead_letters().is_empty(), "{:?}", run.dead_letters());
    run.final_metadata().remove(session).unwrap_or_else(|| panic!("no record for {session}"))
}

/// `2026-03-02T<hh:mm:ss>Z` plus `secs`, as the metadata prints it.
fn at(base: &str, secs: i64) -> Value {
    let t = Millis::parse_rfc3339(&format!("2026-03-02T{base}Z")).unwrap();
    json!(Millis(t.0 + secs * 1000).to_rfc3339())
}

fn adapt_one(record: &Value) -> Result<Vec<sessionflow_core::Event>, InputError> {
    adapter(ZOOM, &AdapterOptions::default()).adapt(record.to_string().as_bytes(), &mut MemoryState::default())
}

fn webhook(event: &str, event_ts: Value, object: Value) -> Value {
    let mut body = json!({"event": format!("contact_center.{event}"), "payload": {"account_id": "acct-zcc-1"}});
    body["event_ts"] = event_ts;
    body["payload"]["object"] = object;
    body
}

#[test]
fn answered_call_with_a_timeout_a_hold_and_two_dispositions() {
    let m = final_of("answered.jsonl", "eng-answered-1");
    let t = |s| at("09:00:00", s);
    assert_eq!(m["state"], "ended");
    assert_eq!(m["outcome"], "completed");
    assert_eq!(m["answer_type"], "human");
    assert_eq!(m["channel"], "voice");
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["tenant"], "acct-zcc-1");
    assert_eq!(m["source"], "zoom");
    assert_eq!(m["support_number"], "+15550199");
    // Zoom does not say who hung up.
    assert_eq!(m["ended_by"], Value::Null);
    assert_eq!(m["created_at"], t(0));
    assert_eq!(m["queued_at"], t(5));
    assert_eq!(m["assigned_at"], t(30));
    assert_eq!(m["connected_at"], t(32));
    assert_eq!(m["ended_at"], t(201));
    assert_eq!(m["wrapup_completed_at"], t(261));
    // Queued 5–8, ringing Ann 8–23 (timeout), queued 23–25, ringing Bo 25–30.
    assert_eq!(m["queue_wait_ms"], 25_000);
    assert_eq!(m["ring_ms"], 20_000);
    // Talking 32–92 and 122–201, on hold 92–122.
    assert_eq!(m["talk_ms"], 139_000);
    assert_eq!(m["hold_ms"], 30_000);
    assert_eq!(m["hold_count"], 1);
    assert_eq!(m["longest_hold_ms"], 30_000);
    assert_eq!(m["wrapup_ms"], 60_000);
    assert_eq!(m["handle_ms"], 231_000);
    assert_eq!(m["total_ms"], 201_000);
    assert_eq!(m["offers"], 2);
    assert_eq!(m["declines"], 1);
    assert_eq!(m["agent"], "Bo");
    assert_eq!(m["queue"], "Billing");
    assert_eq!(
        m["queues"],
        json!([{"queue": "Billing", "queue_id": "q-billing", "priority": null, "entered_at": t(5), "left_at": t(30), "outcome": "answered"}])
    );
    assert_eq!(m["participants"], json!([{"id": "u-bo", "role": "agent", "joined_at": t(32), "left_at": t(200), "by": null}]));
    assert_eq!(m["transfer_count"], 0);
    // The last of the two dispositions (the adapter sends only the last;
    // the canonical model now keeps every one in `dispositions`).
    assert_eq!(
        m["disposition"],
        json!({"code": "Refund issued", "notes": null, "list": null, "custom_code_id": "d-2", "agent": "Bo", "list_id": null, "code_id": null})
    );
    assert_eq!(m["dispositions"].as_array().and_then(|d| d.last()), Some(&m["disposition"]));
    assert_eq!(m["event_count"], 14);
    assert_eq!(m["unknown_event_count"], 1);
    assert_eq!(m["anomaly_count"], 0);
}

#[test]
fn chat_abandoned_in_queue_after_a_rejected_offer() {
    let m = final_of("abandoned-in-queue.jsonl", "eng-abandoned-2");
    let t = |s| at("09:10:00", s);
    assert_eq!(m["state"], "abandoned");
    assert_eq!(m["outcome"], "abandoned");
    assert_eq!(m["abandon_phase"], "queued");
    assert_eq!(m["short_abandon"], false);
    assert_eq!(m["answer_type"], "none");
    assert_eq!(m["channel"], "chat");
    assert_eq!(m["ended_by"], Value::Null);
    assert_eq!(m["connected_at"], Value::Null);
    assert_eq!(m["ended_at"], t(70));
    // Queued 2–10, ringing Cy 10–16 (rejected), queued 16–70.
    assert_eq!(m["queue_wait_ms"], 68_000);
    assert_eq!(m["ring_ms"], 6_000);
    assert_eq!(m["talk_ms"], 0);
    assert_eq!(m["handle_ms"], Value::Null);
    assert_eq!(m["total_ms"], 70_000);
    assert_eq!(m["offers"], 1);
    assert_eq!(m["declines"], 1);
    assert_eq!(m["agent"], Value::Null);
    assert_eq!(m["participants"], json!([]));
    assert_eq!(
        m["queues"],
        json!([{"queue": "Support", "queue_id": "q-support", "priority": null, "entered_at": t(2), "left_at": t(70), "outcome": "abandoned"}])
    );
    // task_canceled passes through to the timeline only.
    assert_eq!(m["unknown_event_count"], 1);
    assert_eq!(m["anomaly_count"], 0);
}

#[test]
fn cold_transfer_to_another_queue_keeps_one_session() {
    let m = final_of("transferred.jsonl", "eng-transfer-3");
    let t = |s| at("09:20:00", s);
    assert_eq!(m["state"], "ended");
    assert_eq!(m["outcome"], "completed");
    assert_eq!(m["channel"], "voice");
    assert_eq!(m["assigned_at"], t(10));
    assert_eq!(m["connected_at"], t(11));
    assert_eq!(m["ended_at"], t(211));
    assert_eq!(m["wrapup_completed_at"], t(241));
    // Sales 4–10 (ringing 6–10), Support 73–90 (ringing 83–90).
    assert_eq!(m["queue_wait_ms"], 23_000);
    assert_eq!(m["ring_ms"], 11_000);
    // Dee 11–73 (the transfer pends while she talks), Eve 91–211.
    assert_eq!(m["talk_ms"], 182_000);
    assert_eq!(m["hold_ms"], 0);
    assert_eq!(m["wrapup_ms"], 30_000);
    assert_eq!(m["handle_ms"], 231_000);
    assert_eq!(m["total_ms"], 211_000);
    assert_eq!(m["transfer_count"], 1);
    assert_eq!(
        m["transfers"],
        json!([{"from": {"queue": "Sales", "agent": "Dee"}, "to": {"queue": "Support", "agent": null}, "kind": "blind", "started_at": t(71), "outcome": "completed", "reason": null}])
    );
    assert_eq!(
        m["queues"],
        json!([
            {"queue": "Sales", "queue_id": "q-sales", "priority": null, "entered_at": t(4), "left_at": t(10), "outcome": "answered"},
            {"queue": "Support", "queue_id": null, "priority": null, "entered_at": t(73), "left_at": t(90), "outcome": "answered"}
        ])
    );
    assert_eq!(m["queue"], "Support");
    assert_eq!(m["agent"], "Eve");
    assert_eq!(m["offers"], 2);
    assert_eq!(m["declines"], 0);
    assert_eq!(
        m["participants"],
        json!([
            {"id": "u-dee", "role": "agent", "joined_at": t(11), "left_at": t(73), "by": null},
            {"id": "u-eve", "role": "agent", "joined_at": t(91), "left_at": t(210), "by": null}
        ])
    );
    assert_eq!(m["anomaly_count"], 0);
}

#[test]
fn scheduled_callback_deflects_the_call() {
    let m = final_of("callback.jsonl", "eng-callback-4");
    let t = |s| at("09:30:00", s);
    assert_eq!(m["state"], "deflected");
    assert_eq!(m["outcome"], "deflected");
    assert_eq!(m["answer_type"], "none");
    assert_eq!(m["abandon_phase"], Value::Null);
    assert_eq!(m["deflection"], json!({"kind": "callback", "offered_at": t(63), "accepted": true, "queue": "Billing"}));
    assert_eq!(m["phone_numbers"]["callback"], "+15550122");
    assert_eq!(m["queue_wait_ms"], 60_000);
    assert_eq!(
        m["queues"],
        json!([{"queue": "Billing", "queue_id": "q-billing", "priority": null, "entered_at": t(3), "left_at": t(63), "outcome": "deflected"}])
    );
    assert_eq!(m["ended_at"], t(65));
    assert_eq!(m["total_ms"], 65_000);
    assert_eq!(m["anomaly_count"], 0);
}

#[test]
fn async_messaging_released_back_to_the_queue() {
    let m = final_of("async-released.jsonl", "eng-async-5");
    let t = |s| at("09:40:00", s);
    assert_eq!(m["state"], "ended");
    assert_eq!(m["channel"], "messaging");
    // Fay 6–306, released; queued 306–906, ringing Gus 906–910; Gus 911–1211.
    assert_eq!(m["queue_wait_ms"], 608_000);
    assert_eq!(m["ring_ms"], 6_000);
    assert_eq!(m["talk_ms"], 600_000);
    assert_eq!(m["wrapup_ms"], 20_000);
    assert_eq!(m["handle_ms"], 1_226_000);
    assert_eq!(m["total_ms"], 1_211_000);
    assert_eq!(
        m["queues"],
        json!([
            {"queue": "Messaging", "queue_id": "q-msg", "priority": null, "entered_at": t(1), "left_at": t(5), "outcome": "answered"},
            {"queue": "Messaging", "queue_id": null, "priority": null, "entered_at": t(306), "left_at": t(910), "outcome": "answered"}
        ])
    );
    assert_eq!(
        m["participants"],
        json!([
            {"id": "u-fay", "role": "agent", "joined_at": t(6), "left_at": t(306), "by": null},
            {"id": "u-gus", "role": "agent", "joined_at": t(911), "left_at": t(1211), "by": null}
        ])
    );
    assert_eq!(m["agent"], "Gus");
    assert_eq!(m["disposition"]["code"], "Order status");
    assert_eq!(m["anomaly_count"], 0);
}

#[test]
fn timelines_follow_the_documented_sequences() {
    let run = run(ZOOM, &AdapterOptions::default(), &all_records());
    assert_eq!(
        run.timeline_types("eng-answered-1"),
        [
            "session.started",
            "queue.entered",
            "agent.offered",
            "agent.declined",
            "agent.offered",
            "agent.assigned",
            "agent.connected",
            "hold.started",
            "hold.ended",
            "vendor.engagement_user_dtmf_sent",
            "participant.left",
            "session.ended",
            "wrapup.completed",
            "disposition.set"
        ]
    );
    assert_eq!(
        run.timeline_types("eng-callback-4"),
        ["session.started", "queue.entered", "deflection.offered", "deflection.accepted", "phone_number.collected", "session.ended"]
    );
    assert!(run.dead_letters().is_empty());
}

#[test]
fn each_fixture_duplicated_and_shuffled_gives_the_same_final_record() {
    for name in FIXTURES {
        let in_order = comparable(&run(ZOOM, &AdapterOptions::default(), &records(name)));
        for seed in 0..20 {
            let shuffled = duplicated_and_shuffled(&records(name), seed);
            assert_eq!(comparable(&run(ZOOM, &AdapterOptions::default(), &shuffled)), in_order, "{name}, seed {seed}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn final_records_do_not_depend_on_arrival_order_or_redelivery(seed in any::<u64>()) {
        let records = all_records();
        let in_order = comparable(&run(ZOOM, &AdapterOptions::default(), &records));
        let shuffled = duplicated_and_shuffled(&records, seed);
        prop_assert_eq!(comparable(&run(ZOOM, &AdapterOptions::default(), &shuffled)), in_order);
    }
}

#[test]
fn redelivery_gives_the_same_event_ids_and_every_event_its_own() {
    let every = all_records();
    let first: Vec<String> = adapt_all(ZOOM, &AdapterOptions::default(), &every).into_iter().map(|e| e.unwrap().event_id).collect();
    let again: Vec<String> = adapt_all(ZOOM, &AdapterOptions::default(), &every).into_iter().map(|e| e.unwrap().event_id).collect();
    assert_eq!(first, again);
    let distinct: std::collections::BTreeSet<_> = first.iter().collect();
    assert_eq!(distinct.len(), first.len(), "ids collide");
    // A record that yields several events numbers them in emission order.
    let callback = adapt_all(ZOOM, &AdapterOptions::default(), &records("callback.jsonl"));
    let ids: Vec<_> = callback.iter().map(|e| e.as_ref().unwrap().event_id.clone()).collect();
    assert!(ids[2].ends_with("-1") && ids[3].ends_with("-2") && ids[4].ends_with("-3"), "{ids:?}");
    assert_eq!(ids[2].trim_end_matches("-1"), ids[3].trim_end_matches("-2"));
    // Redelivered into the engine, the copy is a duplicate, not an event.
    let mut twice = records("answered.jsonl");
    twice.push(twice[6].clone());
    let m = run(ZOOM, &AdapterOptions::default(), &twice).final_metadata().remove("eng-answered-1").unwrap();
    assert_eq!(m["duplicate_count"], 1);
    assert_eq!(m["event_count"], 14);
}

#[test]
fn event_time_is_event_ts_and_a_placeholder_falls_back_to_the_object_time() {
    let object = json!({"engagement_id": "e-1", "last_modified_time_ms": "2026-03-02T10:00:00.250Z"});
    let real = adapt_one(&webhook("engagement_user_hold", json!(1_772_445_600_000_i64), object.clone())).unwrap();
    assert_eq!(real[0].occurred_at, Millis(1_772_445_600_000));
    for placeholder in [json!(0), json!("1970-01-01T00:00:00.001Z"), json!("")] {
        let events = adapt_one(&webhook("engagement_user_hold", placeholder.clone(), object.clone())).unwrap();
        assert_eq!(events[0].occurred_at, Millis::parse_rfc3339("2026-03-02T10:00:00.250Z").unwrap(), "{placeholder}");
    }
    let nothing = adapt_one(&webhook("engagement_user_hold", json!(0), json!({"engagement_id": "e-1"}))).unwrap_err();
    assert_eq!(nothing.reason, DeadLetterReason::BadTimestamp);
    assert!(nothing.detail.starts_with("zoom-contact-center: event_ts: expected a real event time"), "{}", nothing.detail);
}

#[test]
fn unknown_events_pass_through_with_their_fields_and_no_personal_data() {
    let object = json!({"engagement_id": "e-1", "user_id": "u-1", "whisper_target": "u-2", "consumer_number": "+15550100"});
    let events = adapt_one(&webhook("engagement_user_whisper_initiated", json!(1_772_445_600_000_i64), object)).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type.as_str(), "vendor.engagement_user_whisper_initiated");
    let attributes = serde_json::to_value(&events[0].attributes).unwrap();
    assert_eq!(attributes["vendor"], json!({"user_id": "u-1", "whisper_target": "u-2"}));
    assert_eq!(events[0].source.as_deref(), Some("zoom"));
    assert_eq!(events[0].tenant.as_deref(), Some("acct-zcc-1"));
    // Mapped records keep only what the mapping did not read.
    let task =
        adapt_one(&webhook("task_created", json!(1_772_445_600_000_i64), json!({"engagement_id": "e-1", "task_id": "t-1", "queue_name": "Q", "flow_id": "f"})))
            .unwrap();
    assert_eq!(serde_json::to_value(&task[0].attributes).unwrap(), json!({"queue": "Q", "vendor": {"task_id": "t-1", "flow_id": "f"}}));
}

#[test]
fn a_status_refresh_and_late_or_repeated_records_invent_no_transition() {
    // task_updated without the releasing agent tells nothing new.
    let refresh = adapt_one(&webhook("task_updated", json!(1_772_445_600_000_i64), json!({"engagement_id": "e-1", "task_status": "pending"}))).unwrap();
    assert_eq!(refresh[0].event_type.as_str(), "vendor.task_updated");
    // A release delivered late, after the session ended, changes nothing.
    let mut answered = records("answered.jsonl");
    let base = answered.len();
    let late = webhook(
        "task_updated",
        json!(1_772_442_000_000_i64 + 300_000),
        json!({"engagement_id": "eng-answered-1", "task_status": "pending", "assigned_user_id": "u-bo", "queue_name": "Billing"}),
    );
    answered.push(late.to_string());
    answered.push(late.to_string());
    let m = run(ZOOM, &AdapterOptions::default(), &answered).final_metadata().remove("eng-answered-1").unwrap();
    assert_eq!(m["state"], "ended");
    assert_eq!(m["queues"].as_array().unwrap().len(), 1);
    assert_eq!(m["event_count"], 15, "{base} records, one late event, one duplicate");
    assert_eq!(m["duplicate_count"], 1);
}

#[test]
fn journey_and_leg_name_the_same_session_because_zoom_keeps_the_engagement_id() {
    let leg = AdapterOptions { session_identity: SessionIdentity::Leg };
    let journey = adapt_all(ZOOM, &AdapterOptions::default(), &records("transferred.jsonl"));
    let legs = adapt_all(ZOOM, &leg, &records("transferred.jsonl"));
    assert_eq!(journey, legs);
    assert!(journey.iter().all(|e| &*e.as_ref().unwrap().session_id == "eng-transfer-3"));
}

fn dead_letter(record: &[u8]) -> InputError {
    adapter(ZOOM, &AdapterOptions::default()).adapt(record, &mut MemoryState::default()).unwrap_err()
}

#[test]
fn malformed_records_are_dead_letters_naming_the_vendor_and_the_field() {
    let ts = json!(1_772_445_600_000_i64);
    let good = webhook("engagement_user_hold", ts.clone(), json!({"engagement_id": "e-1"}));
    let cases: Vec<(Vec<u8>, DeadLetterReason, &str)> = vec![
        (b"not json".to_vec(), DeadLetterReason::DecodeError, "zoom-contact-center: (record): expected JSON"),
        (b"[1,2]".to_vec(), DeadLetterReason::DecodeError, "zoom-contact-center: (record): expected a JSON object, found an array"),
        // Another vendor's shape (an Amazon Connect EventBridge event).
        (
            json!({"detail-type": "Amazon Connect Contact Event", "detail": {"contactId": "c-1"}}).to_string().into_bytes(),
            DeadLetterReason::MissingField,
            "zoom-contact-center: event: expected a string, found nothing",
        ),
        (
            webhook("x", ts.clone(), json!({})).to_string().replace("contact_center.x", "meeting.started").into_bytes(),
            DeadLetterReason::BadFieldType,
            "zoom-contact-center: event: expected a `contact_center.*` event name, found \"meeting.started\"",
        ),
        (
            json!({"event": "contact_center.engagement_ended", "event_ts": ts}).to_string().into_bytes(),
            DeadLetterReason::MissingField,
            "zoom-contact-center: payload: expected an object, found nothing",
        ),
        (
            webhook("engagement_ended", ts.clone(), json!({"channel": "voice"})).to_string().into_bytes(),
            DeadLetterReason::MissingField,
            "zoom-contact-center: payload.object.engagement_id: expected a string, found nothing",
        ),
        (
            webhook("engagement_ended", ts.clone(), json!({"engagement_id": ["e-1"]})).to_string().into_bytes(),
            DeadLetterReason::BadFieldType,
            "zoom-contact-center: payload.object.engagement_id: expected a non-empty string, found an array",
        ),
        (
            webhook("engagement_ended", json!("yesterday"), json!({"engagement_id": "e-1"})).to_string().into_bytes(),
            DeadLetterReason::BadTimestamp,
            "zoom-contact-center: event_ts: expected an RFC 3339 time or epoch milliseconds, found \"yesterday\"",
        ),
        (
            json!({"event": "contact_center.engagement_ended", "payload": {"account_id": "a", "object": {"engagement_id": "e-1"}}}).to_string().into_bytes(),
            DeadLetterReason::MissingField,
            "zoom-contact-center: event_ts: expected epoch milliseconds, found nothing",
        ),
        (
            webhook("task_reservation_created", ts.clone(), json!({"engagement_id": "e-1", "task_id": "t-1"})).to_string().into_bytes(),
            DeadLetterReason::MissingField,
            "zoom-contact-center: payload.object.assigned_user_id: expected the agent's user id, found nothing",
        ),
        (
            webhook("engagement_started", ts.clone(), json!({"engagement_id": "e-1", "channel": "carrier_pigeon"})).to_string().into_bytes(),
            DeadLetterReason::MissingField,
            "zoom-contact-center: payload.object.channel: expected a channel",
        ),
        (
            webhook("task_completed", ts.clone(), json!({"engagement_id": "e-1", "dispositions": "Refund"})).to_string().into_bytes(),
            DeadLetterReason::BadFieldType,
            "zoom-contact-center: payload.object.dispositions: expected an array of disposition objects, found a string",
        ),
    ];
    for (record, reason, detail) in cases {
        let e = dead_letter(&record);
        assert_eq!(e.reason, reason, "{}", String::from_utf8_lossy(&record));
        assert!(e.detail.starts_with(detail), "{} does not start with {detail}", e.detail);
    }
    assert!(adapt_one(&good).is_ok());
    // Through the engine they become dead letters with that reason.
    let run = run(ZOOM, &AdapterOptions::default(), &["not json".to_owned(), good.to_string()]);
    assert_eq!(run.dead_letters().len(), 1);
}
