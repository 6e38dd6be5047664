//! The Genesys Cloud adapter: fixtures through the adapter and the engine to
//! hand-checked final metadata records; order and duplication independence;
//! dead letters; stable ids; placeholders.

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sessionflow_adapters::{AdapterOptions, InputFormat, MemoryState, SessionIdentity, adapter};
use sessionflow_core::{DeadLetterReason, Millis};

const GENESYS: InputFormat = InputFormat::GenesysCloud;
const FIXTURES: [&str; 4] = ["voice-answered.jsonl", "chat-abandoned-in-queue.jsonl", "voice-transferred.jsonl", "callback-scheduled.jsonl"];
/// 2026-03-02T09:00:00Z, the start of every fixture.
const T0: i64 = 1_772_442_000_000;

/// The fixture's time `seconds` after T0, as the metadata record writes it.
fn at(seconds: i64) -> Value {
    json!(Millis(T0 + seconds * 1000).to_rfc3339())
}

fn options() -> AdapterOptions {
    AdapterOptions::default()
}

/// The one session of a fixture, run in order.
fn final_record(name: &str) -> Value {
    let run = run(GENESYS, &options(), &fixture_lines(GENESYS, name));
    assert!(run.dead_letters().is_empty(), "{name}: {:?}", run.dead_letters());
    let mut finals = run.final_metadata();
    assert_eq!(finals.len(), 1, "{name}");
    finals.pop_first().unwrap().1
}

fn session_of(name: &str) -> String {
    let line = &fixture_lines(GENESYS, name)[0];
    let v: Value = serde_json::from_str(line).unwrap();
    let body = v.get("detail").unwrap_or(&v)["eventBody"].clone();
    body["conversationId"].as_str().unwrap().to_owned()
}

#[test]
fn answered_voice_call() {
    let m = final_record("voice-answered.jsonl");
    assert_eq!(m["session_id"], json!("a1f0c3e2-0001-4c5e-9a11-000000000001"));
    assert_eq!(m["source"], json!("genesys"));
    assert_eq!((&m["state"], &m["outcome"], &m["is_final"]), (&json!("ended"), &json!("completed"), &json!(true)));
    assert_eq!((&m["channel"], &m["direction"]), (&json!("voice"), &json!("inbound")));
    assert_eq!((&m["answer_type"], &m["ended_by"], &m["abandon_phase"]), (&json!("human"), &json!("end_user"), &Value::Null));
    assert_eq!(m["support_number"], json!("tel:+18005550199"));
    // IVR 1 s → 31 s, then transferred on to the queue.
    assert_eq!(m["virtual_agent"]["name"], json!("f-main-menu"));
    assert_eq!((&m["virtual_agent"]["started_at"], &m["virtual_agent"]["ended_at"]), (&at(1), &at(31)));
    assert_eq!(m["virtual_agent"]["outcome"], json!("handoff"));
    assert_eq!(m["self_service_ms"], json!(30_000));
    // Queued 31 s, alerting Ann 61 s, answered 65 s.
    assert_eq!(
        m["queues"],
        json!([{"queue": "q-billing", "queue_id": "q-billing", "priority": 3, "entered_at": at(31), "left_at": at(65), "outcome": "answered"}])
    );
    assert_eq!((&m["queued_at"], &m["assigned_at"], &m["connected_at"]), (&at(31), &Value::Null, &at(65)));
    assert_eq!((&m["queue_wait_ms"], &m["ring_ms"], &m["offers"], &m["declines"]), (&json!(34_000), &json!(4_000), &json!(1), &json!(0)));
    // Talk 65 s → 365 s; the customer hung up; wrap-up until 395 s.
    assert_eq!(m["talk_ms"], json!(300_000));
    assert_eq!((&m["ended_at"], &m["wrapup_completed_at"]), (&at(365), &at(395)));
    assert_eq!((&m["wrapup_ms"], &m["handle_ms"], &m["total_ms"]), (&json!(30_000), &json!(330_000), &json!(365_000)));
    // Genesys gives hold only as heldDurationMs on user.end (kept as a vendor
    // field): no hold events, so no hold in the record.
    assert_eq!((&m["hold_ms"], &m["hold_count"]), (&json!(0), &json!(0)));
    assert_eq!(m["agent"], json!("u-ann"));
    assert_eq!(m["participants"], json!([{"id": "u-ann", "role": "agent", "joined_at": at(65), "left_at": at(365), "by": null}]));
    assert_eq!((&m["transfer_count"], &m["transfers"]), (&json!(0), &json!([])));
    assert_eq!(
        m["disposition"],
        json!({"code": "wc-resolved", "notes": "card payment taken", "list": null, "custom_code_id": null, "agent": "u-ann", "list_id": null, "code_id": null})
    );
    assert_eq!(m["custom_data"], json!({"accountTier": "gold"}));
    // flow.outcome passes through as vendor.flow.outcome.
    assert_eq!((&m["unknown_event_count"], &m["anomaly_count"]), (&json!(1), &json!(0)));
    // Eleven records; acw yields two events.
    assert_eq!(m["event_count"], json!(12));
}

#[test]
fn chat_abandoned_in_queue() {
    let m = final_record("chat-abandoned-in-queue.jsonl");
    assert_eq!((&m["state"], &m["outcome"], &m["abandon_phase"]), (&json!("abandoned"), &json!("abandoned"), &json!("queued")));
    assert_eq!((&m["channel"], &m["direction"], &m["answer_type"]), (&json!("chat"), &json!("inbound"), &json!("none")));
    assert_eq!((&m["ended_by"], &m["short_abandon"]), (&json!("end_user"), &json!(false)));
    assert_eq!(m["card"]["color"], json!("white"));
    // Bob was alerted 40 s → 55 s and did not answer: back in the queue.
    assert_eq!((&m["offers"], &m["declines"], &m["ring_ms"]), (&json!(1), &json!(1), &json!(15_000)));
    assert_eq!(m["queue_wait_ms"], json!(88_000));
    assert_eq!(
        m["queues"],
        json!([{"queue": "q-support", "queue_id": "q-support", "priority": null, "entered_at": at(2), "left_at": at(90), "outcome": "abandoned"}])
    );
    assert_eq!((&m["connected_at"], &m["agent"], &m["participants"]), (&Value::Null, &Value::Null, &json!([])));
    assert_eq!((&m["ended_at"], &m["total_ms"], &m["talk_ms"], &m["handle_ms"]), (&at(90), &json!(90_000), &json!(0), &Value::Null));
    assert_eq!((&m["disposition"], &m["transfer_count"]), (&Value::Null, &json!(0)));
    // acd.end ABANDON reaches the timeline as vendor.acd.end.
    assert_eq!((&m["unknown_event_count"], &m["anomaly_count"]), (&json!(1), &json!(0)));
}

#[test]
fn voice_transferred_between_queues() {
    let m = final_record("voice-transferred.jsonl");
    assert_eq!((&m["state"], &m["outcome"], &m["answer_type"]), (&json!("ended"), &json!("completed"), &json!("human")));
    // Cara hung up (customer's disconnectType PEER).
    assert_eq!(m["ended_by"], json!("agent"));
    assert_eq!(m["transfer_count"], json!(1));
    assert_eq!(
        m["transfers"],
        json!([{"from": {"queue": "q-sales", "agent": "u-ann"}, "to": {"queue": null, "agent": null}, "kind": "blind",
                "started_at": at(125), "outcome": "completed", "reason": null}])
    );
    assert_eq!(
        m["queues"],
        json!([
            {"queue": "q-sales", "queue_id": "q-sales", "priority": 2, "entered_at": at(5), "left_at": at(25), "outcome": "answered"},
            {"queue": "q-support", "queue_id": "q-support", "priority": null, "entered_at": at(125), "left_at": at(178), "outcome": "answered"}
        ])
    );
    assert_eq!(m["queue"], json!("q-support"));
    // Waits 5→25 s and 125→178 s; rings 20→25 s and 170→178 s; talks 25→125 s and 178→478 s.
    assert_eq!((&m["queue_wait_ms"], &m["ring_ms"], &m["talk_ms"]), (&json!(73_000), &json!(13_000), &json!(400_000)));
    assert_eq!(
        m["participants"],
        json!([
            {"id": "u-ann", "role": "agent", "joined_at": at(25), "left_at": at(125), "by": null},
            {"id": "u-cara", "role": "agent", "joined_at": at(178), "left_at": at(478), "by": null}
        ])
    );
    assert_eq!((&m["agent"], &m["offers"]), (&json!("u-cara"), &json!(2)));
    assert_eq!((&m["connected_at"], &m["ended_at"], &m["wrapup_completed_at"]), (&at(25), &at(478), &at(508)));
    assert_eq!((&m["wrapup_ms"], &m["handle_ms"], &m["total_ms"]), (&json!(30_000), &json!(483_000), &json!(478_000)));
    // The last wrap-up code wins.
    assert_eq!(m["disposition"]["code"], json!("wc-resolved"));
    assert_eq!(m["disposition"]["agent"], json!("u-cara"));
    // Ann's own wrap-up (140 s, customer waiting in q-support) is a
    // session-wide wrapup.completed in the canonical model: an invalid
    // transition the engine records and ignores (see the docs).
    assert_eq!((&m["anomaly_count"], &m["anomalies"]), (&json!(1), &json!({"invalid_transition": 1})));
}

#[test]
fn scheduled_callback() {
    let m = final_record("callback-scheduled.jsonl");
    assert_eq!((&m["state"], &m["outcome"], &m["channel"], &m["direction"]), (&json!("ended"), &json!("completed"), &json!("voice"), &json!("inbound")));
    assert_eq!(m["scheduled_for"], at(3600));
    assert_eq!(m["phone_numbers"], json!({"inbound": null, "callback": "tel:+15550123"}));
    assert_eq!((&m["queued_at"], &m["connected_at"], &m["ended_at"]), (&at(3600), &at(3640), &at(3820)));
    assert_eq!((&m["queue_wait_ms"], &m["ring_ms"], &m["talk_ms"]), (&json!(40_000), &json!(10_000), &json!(180_000)));
    assert_eq!((&m["wrapup_ms"], &m["handle_ms"], &m["total_ms"]), (&json!(30_000), &json!(210_000), &json!(3_820_000)));
    assert_eq!((&m["ended_by"], &m["agent"]), (&json!("end_user"), &json!("u-dev")));
    assert_eq!(m["disposition"]["code"], json!("wc-callback-done"));
    assert_eq!((&m["anomaly_count"], &m["unknown_event_count"]), (&json!(0), &json!(0)));
}

#[test]
fn timelines_follow_the_segments() {
    let records = fixture_lines(GENESYS, "voice-transferred.jsonl");
    let run = run(GENESYS, &options(), &records);
    let types = run.timeline_types(&session_of("voice-transferred.jsonl"));
    assert_eq!(
        types,
        [
            "session.started",
            "queue.entered",
            "agent.offered",
            "agent.connected",
            "transfer.started",
            "transfer.completed",
            "queue.entered",
            "disposition.set",
            "wrapup.completed",
            "agent.offered",
            "agent.connected",
            "participant.left",
            "session.ended",
            "disposition.set",
            "wrapup.completed"
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arrival_order_and_duplicates_do_not_change_the_final_record(seed in any::<u64>(), which in 0..FIXTURES.len()) {
        let records = fixture_lines(GENESYS, FIXTURES[which]);
        let expected = order_independent(final_record(FIXTURES[which]));
        let shuffled = duplicated_and_shuffled(&records, seed);
        let finals = run(GENESYS, &options(), &shuffled).final_metadata();
        prop_assert_eq!(finals.len(), 1);
        let got = order_independent(finals.into_values().next().unwrap());
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn all_fixtures_together_shuffled_give_each_sessions_record() {
    let all: Vec<String> = FIXTURES.iter().flat_map(|f| fixture_lines(GENESYS, f)).collect();
    for seed in [1, 7, 42, 1234] {
        let finals = run(GENESYS, &options(), &duplicated_and_shuffled(&all, seed)).final_metadata();
        assert_eq!(finals.len(), FIXTURES.len());
        for name in FIXTURES {
            assert_eq!(order_independent(finals[&session_of(name)].clone()), order_independent(final_record(name)), "{name} seed {seed}");
        }
    }
}

#[test]
fn redelivery_gives_the_same_event_ids() {
    let records = fixture_lines(GENESYS, "callback-scheduled.jsonl");
    let first: Vec<_> = adapt_all(GENESYS, &options(), &records).into_iter().map(|e| e.unwrap().event_id).collect();
    let again: Vec<_> = adapt_all(GENESYS, &options(), &records).into_iter().map(|e| e.unwrap().event_id).collect();
    assert_eq!(first, again);
    // customer.start yields three events, each with its own id.
    assert!(first[0].starts_with("genesys-10-") && first[0].ends_with(".0"), "{}", first[0]);
    assert_eq!(first[..3].iter().map(|id| id.rsplit('.').next().unwrap()).collect::<Vec<_>>(), ["0", "1", "2"]);
    let mut unique = first.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), first.len());
    // Redelivered twice into the engine: duplicates, dropped.
    let doubled: Vec<String> = records.iter().chain(records.iter()).cloned().collect();
    let m = &run(GENESYS, &options(), &doubled).final_metadata()[&session_of("callback-scheduled.jsonl")];
    // customer.start 3 events, acw 2, five other records 1 each.
    assert_eq!((&m["event_count"], &m["duplicate_count"]), (&json!(10), &json!(10)));
}

#[test]
fn events_carry_source_time_and_the_unused_vendor_fields() {
    let records = fixture_lines(GENESYS, "voice-answered.jsonl");
    let events: Vec<_> = adapt_all(GENESYS, &options(), &records).into_iter().map(Result::unwrap).collect();
    let started = &events[0];
    assert_eq!(started.event_type.as_str(), "session.started");
    assert_eq!((started.source.as_deref(), started.occurred_at), (Some("genesys"), Millis(T0)));
    assert_eq!(started.attributes.get("ani"), Some(&json!("tel:+15550100")));
    let vendor = started.attributes.get("vendor").unwrap();
    assert_eq!((&vendor["provider"], &vendor["participantId"]), (&json!("Edge"), &json!("p-cust")));
    assert!(vendor.get("ani").is_none() && vendor.get("conversationId").is_none());
    let user_end = events.iter().find(|e| e.event_type.as_str() == "participant.left").unwrap();
    assert_eq!(user_end.attributes.get("vendor").unwrap()["heldDurationMs"], json!(20_000));
    assert_eq!(user_end.attributes.get("reason"), Some(&json!("peer")));
    let outcome = events.iter().find(|e| e.event_type.as_str() == "vendor.flow.outcome").unwrap();
    assert_eq!(outcome.attributes.get("vendor").unwrap()["flowOutcomeValue"], json!("SUCCESS"));
}

fn adapt_one(record: &Value) -> Result<Vec<sessionflow_core::Event>, sessionflow_core::InputError> {
    adapter(GENESYS, &options()).adapt(record.to_string().as_bytes(), &mut MemoryState::default())
}

fn bare(suffix: &str, body: &Value) -> Value {
    json!({"topicName": format!("v2.detail.events.conversation.c-9.{suffix}"), "version": "2", "eventBody": body})
}

#[test]
fn unknown_detail_events_pass_through_as_vendor_types() {
    let events = adapt_one(&bare("voicemail.start", &json!({"conversationId": "c-9", "eventTime": T0, "voicemailId": "vm-1"}))).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type.as_str(), "vendor.voicemail.start");
    assert_eq!(events[0].attributes.get("vendor").unwrap()["voicemailId"], json!("vm-1"));
    // In-queue flows run while the customer waits: not self-service.
    let in_queue = adapt_one(&bare("flow.start", &json!({"conversationId": "c-9", "eventTime": T0, "flowType": "INQUEUECALL"}))).unwrap();
    assert_eq!(in_queue[0].event_type.as_str(), "vendor.flow.start");
}

#[test]
fn placeholder_times_read_as_absent() {
    // A callback with scheduled time 0 is "call back now": no scheduling.
    let start = json!({"conversationId": "c-9", "eventTime": T0, "mediaType": "CALLBACK", "callbackScheduledTime": 0});
    let events = adapt_one(&bare("customer.start", &start)).unwrap();
    assert_eq!(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["session.started"]);
    // A placeholder event time falls back to the EventBridge envelope's time.
    let body = json!({"conversationId": "c-9", "eventTime": "1970-01-01T00:00:00.001Z", "mediaType": "VOICE"});
    let wrapped = json!({"detail-type": "x", "time": "2026-03-02T09:00:05Z", "detail": bare("customer.start", &body)});
    assert_eq!(adapt_one(&wrapped).unwrap()[0].occurred_at, Millis(T0 + 5000));
    // Without an envelope there is no time at all: a dead letter.
    let e = adapt_one(&bare("customer.start", &body)).unwrap_err();
    assert_eq!(e.reason, DeadLetterReason::MissingField);
    assert_eq!(e.detail, "genesys-cloud: eventBody.eventTime: expected epoch milliseconds, found nothing or a placeholder");
}

#[test]
fn session_identity_is_the_conversation_either_way() {
    let records = fixture_lines(GENESYS, "voice-transferred.jsonl");
    let leg = AdapterOptions { session_identity: SessionIdentity::Leg };
    for (journey, leg) in adapt_all(GENESYS, &options(), &records).into_iter().zip(adapt_all(GENESYS, &leg, &records)) {
        let (journey, leg) = (journey.unwrap(), leg.unwrap());
        assert_eq!(&*journey.session_id, "a1f0c3e2-0003-4c5e-9a11-000000000003");
        assert_eq!(journey, leg);
    }
}

#[test]
fn malformed_records_become_dead_letters_naming_vendor_and_field() {
    let topic = "v2.detail.events.conversation.c-9.customer.start";
    let good_body = json!({"conversationId": "c-9", "eventTime": T0, "mediaType": "VOICE"});
    let cases: Vec<(String, DeadLetterReason, &str)> = vec![
        ("{not json".into(), DeadLetterReason::DecodeError, "genesys-cloud: (record): expected JSON"),
        ("[1,2]".into(), DeadLetterReason::DecodeError, "genesys-cloud: (record): expected a JSON object, found an array"),
        // Another vendor's record (an Amazon Connect contact event).
        (
            json!({"source": "aws.connect", "detail-type": "Amazon Connect Contact Event", "detail": {"contactId": "x"}}).to_string(),
            DeadLetterReason::MissingField,
            "genesys-cloud: detail.topicName: expected a string, found nothing",
        ),
        (
            json!({"topicName": "v2.users.u-1.activity", "eventBody": good_body}).to_string(),
            DeadLetterReason::BadFieldType,
            "genesys-cloud: topicName: expected v2.detail.events.conversation.{id}.<suffix>, found \"v2.users.u-1.activity\"",
        ),
        (json!({"topicName": topic}).to_string(), DeadLetterReason::MissingField, "genesys-cloud: eventBody: expected an object, found nothing"),
        (
            json!({"topicName": topic, "eventBody": {"eventTime": T0, "mediaType": "VOICE"}}).to_string(),
            DeadLetterReason::MissingField,
            "genesys-cloud: eventBody.conversationId: expected a string, found nothing",
        ),
        (
            json!({"topicName": topic, "eventBody": {"conversationId": "c-8", "eventTime": T0, "mediaType": "VOICE"}}).to_string(),
            DeadLetterReason::BadFieldType,
            "genesys-cloud: eventBody.conversationId: expected the conversation id of topicName (\"c-9\"), found \"c-8\"",
        ),
        (
            json!({"topicName": topic, "eventBody": {"conversationId": "c-9", "eventTime": "yesterday", "mediaType": "VOICE"}}).to_string(),
            DeadLetterReason::BadTimestamp,
            "genesys-cloud: eventBody.eventTime: expected an RFC 3339 time or epoch milliseconds, found \"yesterday\"",
        ),
        (
            json!({"topicName": topic, "eventBody": {"conversationId": "c-9", "eventTime": T0, "mediaType": ["VOICE"]}}).to_string(),
            DeadLetterReason::BadFieldType,
            "genesys-cloud: eventBody.mediaType: expected a string, found an array",
        ),
        (
            json!({"topicName": topic, "eventBody": {"conversationId": "c-9", "eventTime": T0, "mediaType": "COBROWSE"}}).to_string(),
            DeadLetterReason::MissingField,
            "genesys-cloud: eventBody.mediaType: expected VOICE, CALLBACK, CHAT, EMAIL, VIDEO or MESSAGE on customer.start, found \"COBROWSE\"",
        ),
        (
            json!({"detail": {"topicName": topic, "eventBody": "text"}}).to_string(),
            DeadLetterReason::BadFieldType,
            "genesys-cloud: detail.eventBody: expected an object, found a string",
        ),
    ];
    let records: Vec<String> = cases.iter().map(|(r, _, _)| r.clone()).collect();
    let run = run(GENESYS, &options(), &records);
    let letters = run.dead_letters();
    assert_eq!(letters.len(), cases.len());
    for ((record, reason, detail), letter) in cases.iter().zip(letters) {
        assert_eq!(letter.reason, *reason, "{record}");
        assert!(letter.detail.starts_with(detail), "{record}: {}", letter.detail);
    }
}
