//! The example sessions of `examples/`, replayed: every figure of their
//! final records worked out by hand from `docs/lifecycle.md` (the comments
//! show the arithmetic).

use serde_json::{Value, json};
use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{EngineConfig, Event, MetadataRecord, Output};

fn load(name: &str) -> Vec<Result<Event, sessionflow_core::InputError>> {
    let path = format!("{}/../../examples/{name}", std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| Event::from_json_slice(l.as_bytes())).collect()
}

/// The replay's outputs: (timeline records, metadata records in emission order).
fn replay(name: &str) -> (usize, Vec<Value>) {
    let events = load(name);
    assert!(events.iter().all(Result::is_ok), "{name}: every line is a valid event");
    let (outputs, _) = replay_in_memory(&EngineConfig::default(), &events, 1000);
    let timeline = outputs.iter().filter(|o| matches!(o, Output::Timeline(_))).count();
    let metadata: Vec<Value> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Metadata(m) => Some(serde_json::to_value(m.as_ref() as &MetadataRecord).unwrap()),
            _ => None,
        })
        .collect();
    assert!(outputs.iter().all(|o| matches!(o, Output::Timeline(_) | Output::Metadata(_))), "{name}: no dead letters");
    (timeline, metadata)
}

/// The one final record, which is also the last version.
fn final_record(metadata: &[Value]) -> &Value {
    let finals: Vec<&Value> = metadata.iter().filter(|m| m["is_final"] == true).collect();
    assert_eq!(finals.len(), 1, "exactly one final record");
    assert_eq!(Some(finals[0]), metadata.last(), "the final record is the last one");
    finals[0]
}

/// Compares every (JSON pointer, value) pair; reports all mismatches at once.
fn expect(m: &Value, fields: &[(&str, Value)]) {
    let wrong: Vec<String> = fields
        .iter()
        .filter(|(at, want)| m.pointer(at) != Some(want))
        .map(|(at, want)| format!("{at}: expected {want}, got {}", m.pointer(at).map_or("(absent)".to_owned(), Value::to_string)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Versions 1, 2, 3 … in emission order, and the state of each.
fn states(metadata: &[Value]) -> Vec<&str> {
    for (i, m) in metadata.iter().enumerate() {
        assert_eq!(m["version"], i + 1, "versions are gap-free");
    }
    metadata.iter().map(|m| m["state"].as_str().unwrap()).collect()
}

#[test]
fn voice_transfer_with_survey() {
    let (timeline, metadata) = replay("voice-transfer-with-survey.jsonl");
    assert_eq!(timeline, 21, "one timeline record per event");
    // A provisional record per change of state; the final record repeats the last state.
    assert_eq!(
        states(&metadata),
        [
            "initiated",
            "self_service",
            "queued",
            "offered",
            "queued",
            "offered",
            "assigned",
            "connected",
            "on_hold",
            "connected", // v01–v11
            "queued",
            "assigned",
            "connected",
            "wrap_up",
            "ended",
            "post_session",
            "ended",
            "ended", // v13–v21, final
        ]
    );
    // Times are +01:00 in the input, UTC in the outputs.
    expect(
        final_record(&metadata),
        &[
            ("/session_id", json!("voice-20250311-0042")),
            ("/tenant", json!("northwind")),
            ("/source", json!("genesys")),
            ("/channel", json!("voice")),
            ("/direction", json!("inbound")),
            ("/lang", json!("de-DE")),
            ("/menu_path", json!("Billing/Refunds")),
            ("/menu_path_id", json!("mp-4")),
            ("/support_number", json!("+493012345600")),
            ("/state", json!("ended")),
            ("/outcome", json!("completed")),
            ("/abandon_phase", Value::Null),
            ("/ended_by", json!("end_user")),
            ("/answer_type", json!("human")),
            ("/card", json!({"color": "grey", "icon": "phone", "status_or_wrapup": "REFUND_ISSUED"})),
            ("/version", json!(18)),
            ("/revision_reason", Value::Null),
            ("/created_at", json!("2025-03-11T09:00:00.000Z")),
            ("/queued_at", json!("2025-03-11T09:00:33.000Z")),
            ("/assigned_at", json!("2025-03-11T09:01:26.000Z")),
            ("/connected_at", json!("2025-03-11T09:01:27.000Z")),
            ("/ended_at", json!("2025-03-11T09:10:00.000Z")),
            ("/wrapup_completed_at", json!("2025-03-11T09:11:00.000Z")),
            ("/updated_at", json!("2025-03-11T09:11:50.000Z")),
            // Back in `ended` at 09:11:50 (post-session over), + 15 min.
            ("/finalized_at", json!("2025-03-11T09:26:50.000Z")),
            // 10:00:02 virtual agent → 10:00:33 queue (the hand-off at 10:00:32 moves nothing).
            ("/self_service_ms", json!(31_000)),
            // BILLING 10:00:33 → 10:01:26 (53 s) + REFUNDS 10:05:03 → 10:06:00 (57 s).
            ("/queue_wait_ms", json!(110_000)),
            // Mira K 10:01:03 → 10:01:13 (10 s) + Tomas R 10:01:20 → 10:01:26 (6 s).
            ("/ring_ms", json!(16_000)),
            // 10:01:27 → 10:03:00 (93 s) + 10:03:40 → 10:05:03 (83 s, the pending
            // transfer counts as talk) + 10:06:02 → 10:10:00 (238 s).
            ("/talk_ms", json!(414_000)),
            ("/hold_ms", json!(40_000)),
            ("/hold_count", json!(1)),
            ("/longest_hold_ms", json!(40_000)),
            // 10:10:00 end → 10:11:00 wrap-up completed.
            ("/wrapup_ms", json!(60_000)),
            // 10:01:26 first assignment → 10:11:00 wrap-up completed.
            ("/handle_ms", json!(574_000)),
            // 10:00:00 → 10:10:00.
            ("/total_ms", json!(600_000)),
            ("/masked_ms", json!(0)),
            ("/queue", json!("REFUNDS")),
            (
                "/queues",
                json!([{"queue": "BILLING", "queue_id": "q-b1", "priority": 3, "entered_at": "2025-03-11T09:00:33.000Z", "left_at": "2025-03-11T09:01:26.000Z", "outcome": "answered"},
                {"queue": "REFUNDS", "queue_id": null, "priority": null, "entered_at": "2025-03-11T09:05:03.000Z", "left_at": "2025-03-11T09:06:00.000Z", "outcome": "answered"}]),
            ),
            ("/agent", json!("Ines W")),
            // Tomas R leaves when the transfer puts the call in a queue, Ines W at the end.
            (
                "/participants",
                json!([
                    {"id": "ag-7", "role": "agent", "joined_at": "2025-03-11T09:01:27.000Z", "left_at": "2025-03-11T09:05:03.000Z", "by": null},
                    {"id": "ag-3", "role": "agent", "joined_at": "2025-03-11T09:06:02.000Z", "left_at": "2025-03-11T09:10:00.000Z", "by": null},
                ]),
            ),
            ("/offers", json!(2)),
            ("/declines", json!(1)),
            ("/transfer_count", json!(1)),
            (
                "/transfers",
                json!([{
                    "from": {"queue": "BILLING", "agent": "Tomas R"},
                    "to": {"queue": "REFUNDS", "agent": null},
                    "kind": "blind",
                    "started_at": "2025-03-11T09:05:00.000Z",
                    "outcome": "completed",
                    "reason": null,
                }]),
            ),
            (
                "/disposition",
                json!({"code": "REFUND_ISSUED", "notes": "Refund of a double charge approved.", "list": "Billing", "custom_code_id": "77", "agent": "Ines W", "list_id": null, "code_id": null}),
            ),
            // The survey's CSAT answer.
            ("/csat", json!({"rating": 5, "comment": null})),
            ("/virtual_agent/name", json!("Billing IVR")),
            ("/virtual_agent/started_at", json!("2025-03-11T09:00:02.000Z")),
            ("/virtual_agent/ended_at", json!("2025-03-11T09:00:32.000Z")),
            ("/virtual_agent/outcome", json!("handoff")),
            (
                "/post_session",
                json!({"virtual_agent": "Survey bot", "opted_in": true, "started_at": "2025-03-11T09:11:01.000Z", "ended_at": "2025-03-11T09:11:50.000Z", "outcome": "completed", "params": {"survey": "billing-q1", "attempt": 1}}),
            ),
            ("/event_count", json!(21)),
            ("/duplicate_count", json!(0)),
            ("/anomaly_count", json!(0)),
            ("/late_event_count", json!(0)),
            ("/unknown_event_count", json!(0)),
        ],
    );
    let survey = final_record(&metadata)["survey"].to_string();
    assert!(survey.contains("How likely are you to recommend us?") && survey.contains("How satisfied are you with this call?"), "{survey}");
}

#[test]
fn chat_abandoned_in_queue() {
    let (timeline, metadata) = replay("chat-abandoned-in-queue.jsonl");
    assert_eq!(timeline, 5);
    // The custom data and the sentiment score change no state.
    assert_eq!(states(&metadata), ["initiated", "queued", "abandoned", "abandoned"]);
    // Times are −05:00 in the input.
    expect(
        final_record(&metadata),
        &[
            ("/session_id", json!("chat-7c1f")),
            ("/channel", json!("chat")),
            ("/source", json!("zoom")),
            ("/lang", json!("es-MX")),
            ("/menu_path", json!("Support/Delivery")),
            ("/state", json!("abandoned")),
            ("/outcome", json!("abandoned")),
            ("/abandon_phase", json!("queued")),
            // Over 8 minutes, in a queue: not a short abandon.
            ("/short_abandon", json!(false)),
            ("/ended_by", json!("end_user")),
            ("/answer_type", json!("none")),
            ("/card", json!({"color": "white", "icon": "chat", "status_or_wrapup": "abandoned"})),
            ("/created_at", json!("2025-02-18T13:41:05.000Z")),
            ("/queued_at", json!("2025-02-18T13:41:07.000Z")),
            ("/assigned_at", Value::Null),
            ("/connected_at", Value::Null),
            ("/ended_at", json!("2025-02-18T13:49:47.000Z")),
            ("/finalized_at", json!("2025-02-18T14:04:47.000Z")),
            // 08:41:07 → 08:49:47.
            ("/queue_wait_ms", json!(520_000)),
            ("/ring_ms", json!(0)),
            ("/talk_ms", json!(0)),
            // No agent was ever assigned or connected.
            ("/handle_ms", Value::Null),
            ("/wrapup_ms", json!(0)),
            ("/open_intervals_closed", json!([])),
            // 08:41:05 → 08:49:47.
            ("/total_ms", json!(522_000)),
            ("/queue", json!("DELIVERY_CHAT")),
            (
                "/queues",
                json!([{"queue": "DELIVERY_CHAT", "queue_id": "q-dc", "priority": 4, "entered_at": "2025-02-18T13:41:07.000Z", "left_at": "2025-02-18T13:49:47.000Z", "outcome": "abandoned"}]),
            ),
            ("/agent", Value::Null),
            ("/participants", json!([])),
            ("/custom_data", json!({"orderNumber": "SO-55120", "loyaltyTier": "gold"})),
            ("/sentiment", json!({"last": 35, "mean": 35})),
            ("/event_count", json!(5)),
            ("/anomaly_count", json!(0)),
        ],
    );
}

#[test]
fn email_released_and_reassigned() {
    let (timeline, metadata) = replay("email-released-and-reassigned.jsonl");
    assert_eq!(timeline, 10, "the repeated r09 is dropped from the timeline");
    assert_eq!(states(&metadata), ["initiated", "queued", "assigned", "connected", "queued", "assigned", "connected", "wrap_up", "ended", "ended"]);
    expect(
        final_record(&metadata),
        &[
            ("/session_id", json!("mail-2291")),
            ("/tenant", json!("globex")),
            ("/source", json!("connect")),
            ("/channel", json!("email")),
            ("/state", json!("ended")),
            ("/outcome", json!("completed")),
            ("/ended_by", json!("agent")),
            ("/answer_type", json!("human")),
            ("/card", json!({"color": "grey", "icon": "email", "status_or_wrapup": "ended"})),
            ("/created_at", json!("2025-01-27T13:00:00.000Z")),
            ("/queued_at", json!("2025-01-27T13:00:02.000Z")),
            ("/assigned_at", json!("2025-01-27T13:12:00.000Z")),
            ("/connected_at", json!("2025-01-27T13:12:30.000Z")),
            ("/ended_at", json!("2025-01-27T14:05:00.000Z")),
            ("/wrapup_completed_at", json!("2025-01-27T14:08:00.000Z")),
            ("/finalized_at", json!("2025-01-27T14:23:00.000Z")),
            // 13:00:02 → 13:12:00 (718 s) + 13:30:00 → 13:45:00 (900 s).
            ("/queue_wait_ms", json!(1_618_000)),
            // 13:12:30 → 13:30:00 (1050 s) + 13:46:00 → 14:05:00 (1140 s).
            ("/talk_ms", json!(2_190_000)),
            ("/hold_ms", json!(0)),
            ("/wrapup_ms", json!(180_000)),
            // 13:12:00 first assignment → 14:08:00 wrap-up completed.
            ("/handle_ms", json!(3_360_000)),
            ("/total_ms", json!(3_900_000)),
            // The release opens a second visit of the same queue.
            (
                "/queues",
                json!([
                    {"queue": "ACCOUNTS_EMAIL", "queue_id": null, "priority": null, "entered_at": "2025-01-27T13:00:02.000Z", "left_at": "2025-01-27T13:12:00.000Z", "outcome": "answered"},
                    {"queue": "ACCOUNTS_EMAIL", "queue_id": null, "priority": null, "entered_at": "2025-01-27T13:30:00.000Z", "left_at": "2025-01-27T13:45:00.000Z", "outcome": "answered"},
                ]),
            ),
            ("/agent", json!("Jonas F")),
            (
                "/participants",
                json!([
                    {"id": "ag-21", "role": "agent", "joined_at": "2025-01-27T13:12:30.000Z", "left_at": "2025-01-27T13:30:00.000Z", "by": null},
                    {"id": "ag-30", "role": "agent", "joined_at": "2025-01-27T13:46:00.000Z", "left_at": "2025-01-27T14:05:00.000Z", "by": null},
                ]),
            ),
            ("/transfer_count", json!(0)),
            ("/notes_count", json!(1)),
            ("/event_count", json!(10)),
            ("/duplicate_count", json!(1)),
            ("/anomaly_count", json!(0)),
        ],
    );
}

#[test]
fn voice_deflected_to_sms() {
    let (timeline, metadata) = replay("voice-deflected-to-sms.jsonl");
    assert_eq!(timeline, 6);
    // The offer changes no state; the end after the deflection changes none either.
    assert_eq!(states(&metadata), ["initiated", "queued", "deflected", "deflected"]);
    // Times are +09:00 in the input.
    expect(
        final_record(&metadata),
        &[
            ("/session_id", json!("call-ab12")),
            ("/source", json!("twilio")),
            ("/lang", json!("ja-JP")),
            ("/state", json!("deflected")),
            ("/outcome", json!("deflected")),
            ("/abandon_phase", Value::Null),
            ("/ended_by", json!("system")),
            ("/answer_type", json!("none")),
            ("/card", json!({"color": "grey", "icon": "phone", "status_or_wrapup": "deflected"})),
            ("/deflection", json!({"kind": "sms", "offered_at": "2025-04-02T09:32:05.000Z", "accepted": true, "queue": "GENERAL"})),
            ("/created_at", json!("2025-04-02T09:30:00.000Z")),
            ("/ended_at", json!("2025-04-02T09:32:20.000Z")),
            // 18:30:05 → 18:32:17 (the acceptance ends the visit).
            ("/queue_wait_ms", json!(132_000)),
            // 18:30:00 → 18:32:20, the end event.
            ("/total_ms", json!(140_000)),
            (
                "/queues",
                json!([{"queue": "GENERAL", "queue_id": null, "priority": 5, "entered_at": "2025-04-02T09:30:05.000Z", "left_at": "2025-04-02T09:32:17.000Z", "outcome": "deflected"}]),
            ),
            ("/phone_numbers/callback", json!("+81355550123")),
            ("/event_count", json!(6)),
            ("/anomaly_count", json!(0)),
        ],
    );
}
