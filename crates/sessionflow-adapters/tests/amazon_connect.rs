//! Amazon Connect: contact events and contact records through the adapter
//! and the engine, to the final metadata record of each session.

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, SessionIdentity, adapter};
use sessionflow_core::{DeadLetterReason, Event, Output};

const FORMAT: InputFormat = InputFormat::AmazonConnect;
const FIXTURES: [&str; 4] = ["answered.jsonl", "abandoned.jsonl", "transferred.jsonl", "contained.jsonl"];

const ANSWERED: &str = "c1000000-0000-4000-8000-000000000001";
const ABANDONED: &str = "c2000000-0000-4000-8000-000000000002";
const TRANSFER_LEG_1: &str = "c3000000-0000-4000-8000-000000000031";
const TRANSFER_LEG_2: &str = "c3000000-0000-4000-8000-000000000032";
const CONTAINED: &str = "c4000000-0000-4000-8000-000000000004";

fn journey() -> AdapterOptions {
    AdapterOptions { session_identity: SessionIdentity::Journey }
}

fn legs() -> AdapterOptions {
    AdapterOptions { session_identity: SessionIdentity::Leg }
}

fn all_fixtures() -> Vec<String> {
    FIXTURES.iter().flat_map(|name| fixture_lines(FORMAT, name)).collect()
}

fn final_record(options: &AdapterOptions, records: &[String], session: &str) -> Value {
    let run = run(FORMAT, options, records);
    assert!(run.dead_letters().is_empty(), "{:?}", run.dead_letters());
    run.final_metadata().remove(session).unwrap_or_else(|| panic!("no record for {session}"))
}

fn events(options: &AdapterOptions, record: &Value) -> Vec<Event> {
    let adapter = adapter(FORMAT, options);
    adapter.adapt(record.to_string().as_bytes(), &mut MemoryState::default()).expect("adapts")
}

fn types(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// A fixture line as JSON, to vary one field.
fn line(name: &str, index: usize) -> Value {
    serde_json::from_str(&fixture_lines(FORMAT, name)[index]).unwrap()
}

#[test]
fn answered_call_with_holds_and_after_contact_work() {
    let m = final_record(&journey(), &fixture_lines(FORMAT, "answered.jsonl"), ANSWERED);
    assert_fields(
        &m,
        &[
            ("state", json!("ended")),
            ("outcome", json!("completed")),
            ("source", json!("connect")),
            ("tenant", json!("inst-0001")),
            ("channel", json!("voice")),
            ("direction", json!("inbound")),
            ("answer_type", json!("human")),
            ("ended_by", json!("end_user")),
            ("abandon_phase", Value::Null),
            ("created_at", json!("2026-03-02T10:00:00.000Z")),
            ("queued_at", json!("2026-03-02T10:00:30.000Z")),
            ("assigned_at", json!("2026-03-02T10:01:00.000Z")),
            ("connected_at", json!("2026-03-02T10:01:00.000Z")),
            ("ended_at", json!("2026-03-02T10:06:00.000Z")),
            ("wrapup_completed_at", json!("2026-03-02T10:07:00.000Z")),
            // The contact flow from 10:00:00 to the queue at 10:00:30.
            ("self_service_ms", json!(30_000)),
            ("queue_wait_ms", json!(30_000)),
            ("ring_ms", json!(0)),
            // Connected 10:01:00 to 10:06:00 less 50 s of hold.
            ("talk_ms", json!(250_000)),
            ("hold_ms", json!(50_000)),
            ("hold_count", json!(2)),
            ("longest_hold_ms", json!(30_000)),
            ("wrapup_ms", json!(60_000)),
            ("handle_ms", json!(360_000)),
            ("total_ms", json!(360_000)),
            ("queue", json!("q-support")),
            ("agent", json!("agent-ann")),
            ("transfer_count", json!(0)),
            ("anomaly_count", json!(0)),
        ],
    );
    assert_eq!(
        m["queues"],
        json!([{"queue": "q-support", "queue_id": "q-support", "priority": null, "entered_at": "2026-03-02T10:00:30.000Z",
                "left_at": "2026-03-02T10:01:00.000Z", "outcome": "answered"}])
    );
    assert_eq!(
        m["participants"],
        json!([{"id": "agent-ann", "role": "agent", "joined_at": "2026-03-02T10:01:00.000Z", "left_at": "2026-03-02T10:06:00.000Z", "by": null}])
    );
    assert_eq!(m["virtual_agent"]["started_at"], json!("2026-03-02T10:00:00.000Z"));
    assert_eq!(m["virtual_agent"]["ended_at"], json!("2026-03-02T10:00:30.000Z"));
    assert_eq!(m["virtual_agent"]["outcome"], json!("handoff"));
    // Both versions of the contact record: the later one's attributes win.
    assert_eq!(m["custom_data"], json!({"intent": "billing", "survey_offered": "yes", "connect_disconnect_reason": "CUSTOMER_DISCONNECT"}));
}

#[test]
fn call_abandoned_in_queue() {
    let m = final_record(&journey(), &fixture_lines(FORMAT, "abandoned.jsonl"), ABANDONED);
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
            ("created_at", json!("2026-03-02T11:00:00.000Z")),
            ("queued_at", json!("2026-03-02T11:00:20.000Z")),
            ("assigned_at", Value::Null),
            ("connected_at", Value::Null),
            ("ended_at", json!("2026-03-02T11:02:20.000Z")),
            ("self_service_ms", json!(20_000)),
            ("queue_wait_ms", json!(120_000)),
            ("talk_ms", json!(0)),
            ("handle_ms", Value::Null),
            ("total_ms", json!(140_000)),
            ("agent", Value::Null),
            ("participants", json!([])),
            ("anomaly_count", json!(0)),
        ],
    );
    assert_eq!(m["queues"][0]["outcome"], json!("abandoned"));
    assert_eq!(m["queues"][0]["left_at"], json!("2026-03-02T11:02:20.000Z"));
}

#[test]
fn transferred_call_is_one_journey() {
    let records = fixture_lines(FORMAT, "transferred.jsonl");
    let run = run(FORMAT, &journey(), &records);
    let finals = run.final_metadata();
    assert_eq!(finals.keys().collect::<Vec<_>>(), [TRANSFER_LEG_1], "the second leg joins the first leg's journey");
    let m = &finals[TRANSFER_LEG_1];
    assert_fields(
        m,
        &[
            ("state", json!("ended")),
            ("outcome", json!("completed")),
            ("ended_by", json!("agent")),
            ("answer_type", json!("human")),
            ("channel", json!("voice")),
            ("direction", json!("inbound")),
            ("created_at", json!("2026-03-02T12:00:00.000Z")),
            ("assigned_at", json!("2026-03-02T12:00:40.000Z")),
            ("ended_at", json!("2026-03-02T12:09:05.000Z")),
            ("wrapup_completed_at", json!("2026-03-02T12:09:35.000Z")),
            ("self_service_ms", json!(10_000)),
            // 30 s in Support, 60 s in Billing.
            ("queue_wait_ms", json!(90_000)),
            // Ann 12:00:40-12:03:05 less 20 s of hold, Bo 12:04:05-12:09:05.
            ("talk_ms", json!(425_000)),
            ("hold_ms", json!(20_000)),
            ("hold_count", json!(1)),
            ("longest_hold_ms", json!(20_000)),
            ("wrapup_ms", json!(30_000)),
            ("handle_ms", json!(535_000)),
            ("total_ms", json!(545_000)),
            ("queue", json!("q-billing")),
            ("agent", json!("agent-bo")),
            ("transfer_count", json!(1)),
            ("anomaly_count", json!(0)),
        ],
    );
    assert_eq!(
        m["transfers"],
        json!([{"from": {"queue": null, "agent": null}, "to": {"queue": null, "agent": null}, "kind": null,
                "started_at": "2026-03-02T12:03:00.000Z", "outcome": "completed", "reason": null}])
    );
    let visits: Vec<_> = m["queues"].as_array().unwrap().iter().map(|v| (v["queue"].clone(), v["entered_at"].clone(), v["outcome"].clone())).collect();
    assert_eq!(
        visits,
        [
            (json!("q-support"), json!("2026-03-02T12:00:10.000Z"), json!("answered")),
            (json!("q-billing"), json!("2026-03-02T12:03:05.000Z"), json!("answered")),
        ]
    );
    assert_eq!(
        m["participants"],
        json!([
            {"id": "agent-ann", "role": "agent", "joined_at": "2026-03-02T12:00:40.000Z", "left_at": "2026-03-02T12:03:05.000Z", "by": null},
            {"id": "agent-bo", "role": "agent", "joined_at": "2026-03-02T12:04:05.000Z", "left_at": "2026-03-02T12:09:05.000Z", "by": null},
        ])
    );
    assert_eq!(m["custom_data"]["refund_issued"], json!("yes"));
    let timeline = run.timeline_types(TRANSFER_LEG_1);
    assert_eq!(timeline.iter().filter(|t| t.starts_with("transfer.")).count(), 2, "{timeline:?}");
    assert_eq!(timeline.iter().filter(|t| *t == "session.started").count(), 1, "{timeline:?}");
    assert_eq!(timeline.iter().filter(|t| *t == "session.ended").count(), 1, "{timeline:?}");
}

#[test]
fn transferred_call_in_leg_identity_is_two_sessions() {
    let finals = run(FORMAT, &legs(), &fixture_lines(FORMAT, "transferred.jsonl")).final_metadata();
    assert_eq!(finals.keys().map(String::as_str).collect::<Vec<_>>(), [TRANSFER_LEG_1, TRANSFER_LEG_2]);
    let first = &finals[TRANSFER_LEG_1];
    assert_fields(
        first,
        &[
            ("state", json!("ended")),
            ("agent", json!("agent-ann")),
            ("ended_at", json!("2026-03-02T12:03:00.000Z")),
            ("wrapup_completed_at", json!("2026-03-02T12:03:30.000Z")),
            ("hold_ms", json!(20_000)),
            ("transfer_count", json!(0)),
            // The leg's end comes from both streams as one event that cannot say who ended it.
            ("ended_by", Value::Null),
            ("anomaly_count", json!(0)),
        ],
    );
    assert_eq!(first["custom_data"]["connect_disconnect_reason"], json!("AGENT_DISCONNECT"));
    let second = &finals[TRANSFER_LEG_2];
    assert_fields(
        second,
        &[
            ("state", json!("ended")),
            ("created_at", json!("2026-03-02T12:03:00.000Z")),
            ("direction", Value::Null),
            ("self_service_ms", json!(0)),
            ("queue_wait_ms", json!(60_000)),
            ("talk_ms", json!(300_000)),
            ("wrapup_ms", json!(30_000)),
            ("agent", json!("agent-bo")),
            ("anomaly_count", json!(0)),
        ],
    );
}

#[test]
fn chat_contained_by_the_flow() {
    let m = final_record(&journey(), &fixture_lines(FORMAT, "contained.jsonl"), CONTAINED);
    assert_fields(
        &m,
        &[
            ("state", json!("ended")),
            ("outcome", json!("completed")),
            ("answer_type", json!("virtual")),
            ("ended_by", json!("system")),
            ("channel", json!("chat")),
            ("direction", json!("inbound")),
            ("created_at", json!("2026-03-02T13:00:00.000Z")),
            ("ended_at", json!("2026-03-02T13:02:00.000Z")),
            ("self_service_ms", json!(120_000)),
            ("total_ms", json!(120_000)),
            ("queued_at", Value::Null),
            ("queues", json!([])),
            ("agent", Value::Null),
            ("anomaly_count", json!(0)),
            // CONNECTED_TO_SYSTEM, CONTACT_DATA_UPDATED, DISCONNECTED and COMPLETED (a leg's end in
            // journey identity), the contact record.
            ("unknown_event_count", json!(5)),
        ],
    );
    assert_eq!(m["virtual_agent"]["outcome"], json!("completed"));
    assert_eq!(m["virtual_agent"]["ended_at"], json!("2026-03-02T13:02:00.000Z"));
    assert_eq!(m["custom_data"]["lex_intent"], json!("OrderStatus"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn final_records_do_not_depend_on_arrival_order_or_duplicates(seed in any::<u64>(), leg_identity in any::<bool>()) {
        let options = if leg_identity { legs() } else { journey() };
        let records = all_fixtures();
        let expected = order_independent_finals(run(FORMAT, &options, &records).final_metadata());
        let shuffled = duplicated_and_shuffled(&records, seed);
        let got = order_independent_finals(run(FORMAT, &options, &shuffled).final_metadata());
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn every_fixture_session_is_compared() {
    // Guard against a vacuous property: the in-order run has every session, finished.
    let finals = run(FORMAT, &journey(), &all_fixtures()).final_metadata();
    assert_eq!(finals.len(), 4);
    assert!(finals.values().all(|m| m["is_final"] == json!(true) && m["outcome"] != Value::Null), "{finals:?}");
}

#[test]
fn redelivered_records_give_the_same_event_ids() {
    for options in [journey(), legs()] {
        for record in all_fixtures() {
            let record: Value = serde_json::from_str(&record).unwrap();
            let ids = |events: Vec<Event>| events.into_iter().map(|e| e.event_id).collect::<Vec<_>>();
            let first = ids(events(&options, &record));
            assert!(!first.is_empty());
            assert_eq!(first, ids(events(&options, &record)));
            let unique: std::collections::BTreeSet<_> = first.iter().collect();
            assert_eq!(unique.len(), first.len(), "one record's events have distinct ids");
        }
    }
}

#[test]
fn both_streams_report_a_leg_end_as_one_event() {
    // Leg identity: DISCONNECTED and the contact record end the leg with the same event;
    // COMPLETED and the record complete its wrap-up with the same event.
    let disconnected = events(&legs(), &line("answered.jsonl", 4));
    let completed = events(&legs(), &line("answered.jsonl", 5));
    let record = events(&legs(), &line("answered.jsonl", 6));
    assert_eq!(types(&disconnected), ["session.ended"]);
    assert_eq!(types(&completed), ["wrapup.completed"]);
    assert!(record.contains(&disconnected[0]), "{record:?}");
    assert!(record.contains(&completed[0]), "{record:?}");
    // Journey identity: only the last leg's record ends the journey, with who ended it.
    let journey_record = events(&journey(), &line("answered.jsonl", 6));
    let end = journey_record.iter().find(|e| e.event_type.as_str() == "session.ended").unwrap();
    assert_eq!(end.attributes.str("ended_by"), Some("end_user"));
    assert_eq!(end.attributes.str("reason"), Some("CUSTOMER_DISCONNECT"));
    assert_eq!(types(&events(&journey(), &line("answered.jsonl", 4))), ["vendor.DISCONNECTED"]);
    let handed_on = events(&journey(), &line("transferred.jsonl", 10));
    assert!(!types(&handed_on).contains(&"session.ended"), "a leg that was transferred does not end the journey: {:?}", types(&handed_on));
}

#[test]
fn late_and_repeated_contact_records_invent_no_transition() {
    let mut records = fixture_lines(FORMAT, "answered.jsonl");
    let (older, newer) = (records[6].clone(), records[7].clone());
    // The newer record first, then the older one late, then both again.
    records.swap(6, 7);
    records.extend([older, newer]);
    let run = run(FORMAT, &journey(), &records);
    let transitions: Vec<String> = run
        .outputs
        .iter()
        .filter_map(|o| if let Output::Timeline(t) = o { Some(t) } else { None })
        .filter(|t| t.transition)
        .map(|t| t.event_type.as_str().to_owned())
        .collect();
    assert_eq!(
        transitions,
        [
            "session.started",
            "virtual_agent.started",
            "queue.entered",
            "agent.assigned",
            "agent.connected",
            "hold.started",
            "hold.ended",
            "hold.started",
            "hold.ended",
            "session.ended",
            "wrapup.completed",
        ]
    );
    let m = &run.final_metadata()[ANSWERED];
    // Each version yields 8 events (2 holds, end, wrap-up, custom data, the record); a later
    // version repeats the first 6 of them, so after the 8 of the first arrival:
    // 6 (the other version) + 8 + 8 (both again) are duplicates.
    assert_eq!(m["duplicate_count"], json!(22), "the repeated records' events are duplicates");
    assert_eq!(m["hold_count"], json!(2));
}

#[test]
fn placeholder_times_read_as_absent() {
    let mut queued = line("answered.jsonl", 2);
    queued["detail"]["queueInfo"]["enqueueTimestamp"] = json!("1970-01-01T00:00:00.001Z");
    queued["time"] = json!("2026-03-02T10:00:31Z");
    let events = events(&journey(), &queued);
    assert_eq!(types(&events), ["virtual_agent.ended", "queue.entered"]);
    assert!(events.iter().all(|e| e.occurred_at.to_rfc3339() == "2026-03-02T10:00:31.000Z"), "the envelope time stands in: {events:?}");

    let mut record = line("answered.jsonl", 6);
    record["Agent"]["AfterContactWorkEndTimestamp"] = json!("1970-01-01T00:00:00.001Z");
    let events = self::events(&journey(), &record);
    let wrapup = events.iter().find(|e| e.event_type.as_str() == "wrapup.completed").unwrap();
    assert_eq!(wrapup.occurred_at.to_rfc3339(), "2026-03-02T10:06:00.000Z", "no after-contact work end: wrap-up ends at the disconnect");
}

#[test]
fn unknown_event_types_pass_through_with_their_fields() {
    let mut record = line("contained.jsonl", 1);
    record["detail"]["eventType"] = json!("AMD_DISABLED");
    record["detail"]["answeringMachineDetectionStatus"] = json!("HUMAN_ANSWERED");
    let events = events(&journey(), &record);
    assert_eq!(types(&events), ["vendor.AMD_DISABLED"]);
    let e = &events[0];
    assert_eq!(&*e.session_id, CONTAINED);
    assert_eq!(e.source.as_deref(), Some("connect"));
    assert_eq!(e.occurred_at.to_rfc3339(), "2026-03-02T13:00:00.000Z");
    let vendor = e.attributes.get("vendor").unwrap();
    assert_eq!(vendor["answeringMachineDetectionStatus"], json!("HUMAN_ANSWERED"));
    assert_eq!(vendor["initiationMethod"], json!("INBOUND"));
    assert_eq!(vendor["region"], json!("us-east-1"));
    assert!(vendor.get("contactId").is_none(), "fields the envelope carries are not repeated");
}

#[test]
fn one_record_yields_its_events_in_order() {
    let connected = events(&journey(), &line("answered.jsonl", 3));
    assert_eq!(types(&connected), ["agent.assigned", "agent.connected"]);
    assert_eq!(connected[0].attributes.str("agent"), Some("agent-ann"), "AgentInfo/AgentArn spelled either way");
    // Same moment: the ids sort in lifecycle order, as the engine folds them.
    assert!(connected[0].event_id < connected[1].event_id);
    let started = events(&journey(), &line("answered.jsonl", 0));
    assert_eq!(types(&started), ["session.started", "virtual_agent.started"]);
    assert!(started[0].event_id < started[1].event_id);
    let transfer = events(&journey(), &line("transferred.jsonl", 3));
    assert_eq!(types(&transfer), ["transfer.started", "transfer.completed"]);
    assert!(transfer.iter().all(|e| &*e.session_id == TRANSFER_LEG_1), "the transfer leg belongs to the journey");
    let leg_start = events(&legs(), &line("transferred.jsonl", 3));
    assert_eq!(types(&leg_start), ["session.started"]);
    assert_eq!(&*leg_start[0].session_id, TRANSFER_LEG_2);
}

#[test]
fn task_channel_and_directions() {
    let mut task = line("contained.jsonl", 0);
    task["detail"]["channel"] = json!("task");
    task["detail"]["initiationMethod"] = json!("API");
    let started = events(&journey(), &task);
    assert_eq!(started[0].channel.map(|c| c.as_str()), Some("messaging"));
    assert_eq!(started[0].direction, None);
    let mut outbound = line("contained.jsonl", 0);
    outbound["detail"]["initiationMethod"] = json!("OUTBOUND");
    let started = events(&journey(), &outbound);
    assert_eq!(types(&started), ["session.started"], "an outbound call does not start in a flow");
    assert_eq!(started[0].direction.map(|d| d.as_str()), Some("outbound"));
}

fn dead_letter(record: &[u8]) -> (DeadLetterReason, String) {
    let e = adapter(FORMAT, &journey()).adapt(record, &mut MemoryState::default()).expect_err("refused");
    (e.reason, e.detail)
}

#[test]
fn malformed_records_are_dead_letters_naming_vendor_and_field() {
    let mut missing_id = line("answered.jsonl", 0);
    missing_id.as_object_mut().unwrap().remove("id");
    let mut missing_contact = line("answered.jsonl", 0);
    missing_contact["detail"].as_object_mut().unwrap().remove("contactId");
    let mut bad_time = line("answered.jsonl", 0);
    bad_time["detail"]["initiationTimestamp"] = json!("yesterday");
    let mut wrong_type = line("answered.jsonl", 0);
    wrong_type["detail"]["contactId"] = json!({"id": 1});
    let mut not_an_object = line("answered.jsonl", 0);
    not_an_object["detail"]["queueInfo"] = json!("q-support");
    let mut other_detail_type = line("answered.jsonl", 0);
    other_detail_type["detail-type"] = json!("Amazon Connect Agent Event");
    let mut unknown_channel = line("answered.jsonl", 0);
    unknown_channel["detail"]["channel"] = json!("FAX");
    let mut no_time = line("answered.jsonl", 1);
    no_time.as_object_mut().unwrap().remove("time");
    let mut record_without_update = line("answered.jsonl", 6);
    record_without_update.as_object_mut().unwrap().remove("LastUpdateTimestamp");
    let mut record_bad_holds = line("answered.jsonl", 6);
    record_bad_holds["Agent"]["NumberOfHolds"] = json!("two");

    let cases: Vec<(Vec<u8>, DeadLetterReason, &str)> = vec![
        (b"not json".to_vec(), DeadLetterReason::DecodeError, "amazon-connect: (record): expected JSON"),
        (b"[1, 2]".to_vec(), DeadLetterReason::DecodeError, "amazon-connect: (record): expected a JSON object, found an array"),
        (br#"{"event": "call.started"}"#.to_vec(), DeadLetterReason::DecodeError, "amazon-connect: detail-type: expected \"Amazon Connect Contact Event\""),
        (other_detail_type.to_string().into_bytes(), DeadLetterReason::BadFieldType, "amazon-connect: detail-type: expected"),
        (missing_id.to_string().into_bytes(), DeadLetterReason::MissingField, "amazon-connect: id: expected a string, found nothing"),
        (missing_contact.to_string().into_bytes(), DeadLetterReason::MissingField, "amazon-connect: detail.contactId: expected a string"),
        (bad_time.to_string().into_bytes(), DeadLetterReason::BadTimestamp, "amazon-connect: detail.initiationTimestamp: expected an RFC 3339 time"),
        (wrong_type.to_string().into_bytes(), DeadLetterReason::BadFieldType, "amazon-connect: detail.contactId: expected a non-empty string, found an object"),
        (not_an_object.to_string().into_bytes(), DeadLetterReason::BadFieldType, "amazon-connect: detail.queueInfo: expected an object"),
        (unknown_channel.to_string().into_bytes(), DeadLetterReason::BadFieldType, "amazon-connect: detail.channel: expected VOICE, CHAT, TASK or EMAIL"),
        (no_time.to_string().into_bytes(), DeadLetterReason::MissingField, "amazon-connect: time: expected an RFC 3339 time, found nothing"),
        (record_without_update.to_string().into_bytes(), DeadLetterReason::MissingField, "amazon-connect: LastUpdateTimestamp: expected"),
        (record_bad_holds.to_string().into_bytes(), DeadLetterReason::BadFieldType, "amazon-connect: Agent.NumberOfHolds: expected a non-negative number"),
    ];
    for (record, reason, detail) in cases {
        let (got_reason, got_detail) = dead_letter(&record);
        assert_eq!(got_reason, reason, "{got_detail}");
        assert!(got_detail.starts_with(detail), "{got_detail:?} should start with {detail:?}");
    }

    // Through the engine they are dead letters, the good records of the fixture still count.
    let mut records = fixture_lines(FORMAT, "abandoned.jsonl");
    records.insert(2, "not json".to_owned());
    records.insert(3, missing_id.to_string());
    let run = run(FORMAT, &journey(), &records);
    let reasons: Vec<_> = run.dead_letters().iter().map(|d| d.reason).collect();
    assert_eq!(reasons, [DeadLetterReason::DecodeError, DeadLetterReason::MissingField]);
    assert_eq!(run.final_metadata()[ABANDONED]["state"], json!("abandoned"));
}

#[test]
fn queue_to_queue_transfer_by_a_flow() {
    // A QUEUE_TRANSFER contact: the customer queue flow moved the caller from Support to
    // Billing before any agent. The transfer pair is emitted as for an agent's transfer; the
    // engine only accepts transfers from an agent, so both are invalid transitions, while the
    // transfer is still recorded and counted and the second queue is a re-queue.
    // The first leg's INITIATED and QUEUED, then the second leg.
    let mut records = vec![line("transferred.jsonl", 0), line("transferred.jsonl", 1)];
    let mut moved = line("transferred.jsonl", 3);
    moved["detail"]["initiationMethod"] = json!("QUEUE_TRANSFER");
    moved["detail"]["initiationTimestamp"] = json!("2026-03-02T12:00:30Z");
    moved["time"] = json!("2026-03-02T12:00:30Z");
    let mut queued = line("transferred.jsonl", 5);
    queued["detail"]["initiationMethod"] = json!("QUEUE_TRANSFER");
    queued["detail"]["queueInfo"]["enqueueTimestamp"] = json!("2026-03-02T12:00:31Z");
    let mut record = line("transferred.jsonl", 11);
    record["InitiationMethod"] = json!("QUEUE_TRANSFER");
    record["DisconnectReason"] = json!("CUSTOMER_DISCONNECT");
    records.extend([moved, queued, line("transferred.jsonl", 7), record]);
    let records: Vec<String> = records.iter().map(Value::to_string).collect();
    let m = final_record(&journey(), &records, TRANSFER_LEG_1);
    assert_fields(
        &m,
        &[
            ("transfer_count", json!(1)),
            ("anomalies", json!({"invalid_transition": 2})),
            ("queued_at", json!("2026-03-02T12:00:10.000Z")),
            ("queue", json!("q-billing")),
            ("agent", json!("agent-bo")),
            ("ended_by", json!("end_user")),
            ("state", json!("ended")),
        ],
    );
    assert_eq!(m["queues"][0]["outcome"], json!("requeued"));
    assert_eq!(m["queues"][0]["left_at"], json!("2026-03-02T12:00:31.000Z"));
    assert_eq!(m["queues"][1]["outcome"], json!("answered"));
}
