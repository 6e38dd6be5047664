//! Every event type of the contract, with its effect on the records.

mod common;
use common::*;
use serde_json::{Value, json};
use sessionflow_core::{EventType, State};
use std::collections::BTreeSet;

struct Case {
    kind: &'static str,
    attrs: Value,
    /// Events before it (all before t = 10 s; the event under test is at 10 s).
    before: fn() -> Vec<sessionflow_core::Event>,
    /// The state after it, on its timeline record.
    state_after: State,
    /// A check on the last metadata record.
    check: fn(&Value),
}

fn started() -> Vec<sessionflow_core::Event> {
    vec![ev("a", "session.started", 0.0, json!({}))]
}
fn queued() -> Vec<sessionflow_core::Event> {
    vec![ev("a", "session.started", 0.0, json!({})), ev("b", "queue.entered", 1.0, json!({"queue": "Q"}))]
}
fn offered() -> Vec<sessionflow_core::Event> {
    let mut e = queued();
    e.push(ev("o", "agent.offered", 2.0, json!({"agent": "Ann"})));
    e
}
fn self_service() -> Vec<sessionflow_core::Event> {
    vec![ev("a", "session.started", 0.0, json!({})), ev("v", "virtual_agent.started", 1.0, json!({"virtual_agent": "Bot"}))]
}
fn on_hold() -> Vec<sessionflow_core::Event> {
    let mut e = connected();
    e.push(ev("h", "hold.started", 8.0, json!({})));
    e
}
fn transferring() -> Vec<sessionflow_core::Event> {
    let mut e = connected();
    e.push(ev("t", "transfer.started", 8.0, json!({"to_queue": "Q2", "kind": "blind"})));
    e
}
fn wrap_up() -> Vec<sessionflow_core::Event> {
    let mut e = connected();
    e.push(ev("x", "session.ended", 8.0, json!({"ended_by": "agent"})));
    e
}
fn ended() -> Vec<sessionflow_core::Event> {
    let mut e = wrap_up();
    e.push(ev("w", "wrapup.completed", 9.0, json!({})));
    e
}
fn post_session() -> Vec<sessionflow_core::Event> {
    let mut e = ended();
    e.push(ev("p", "post_session.started", 9.5, json!({"virtual_agent": "Survey"})));
    e
}
fn masking() -> Vec<sessionflow_core::Event> {
    let mut e = connected();
    e.push(ev("m", "masking.started", 7.0, json!({})));
    e
}
fn cobrowsing() -> Vec<sessionflow_core::Event> {
    let mut e = connected();
    e.push(ev("cb", "cobrowse.started", 7.0, json!({"level": "remote"})));
    e
}
fn with_participant() -> Vec<sessionflow_core::Event> {
    let mut e = connected();
    e.push(ev("pa", "participant.added", 7.0, json!({"participant": "p-1", "role": "third_party"})));
    e
}

fn cases() -> Vec<Case> {
    use State::*;
    vec![
        Case {
            kind: "session.started",
            attrs: json!({"lang": "fr-FR", "menu_path": "M", "support_number": "+1"}),
            before: Vec::new,
            state_after: Initiated,
            check: |m| {
                assert_eq!(m["lang"], "fr-FR");
                assert_eq!(m["menu_path"], "M");
                assert_eq!(m["channel"], "voice");
            },
        },
        Case {
            kind: "session.scheduled",
            attrs: json!({"scheduled_for": "2030-01-01T00:00:00+01:00"}),
            before: started,
            state_after: Scheduled,
            check: |m| assert_eq!(m["scheduled_for"], "2029-12-31T23:00:00.000Z"),
        },
        Case {
            kind: "virtual_agent.started",
            attrs: json!({"virtual_agent": "Bot"}),
            before: started,
            state_after: SelfService,
            check: |m| {
                assert_eq!(m["virtual_agent"]["name"], "Bot");
                assert_eq!(m["self_service_ms"], 0);
            },
        },
        Case {
            kind: "virtual_agent.connected",
            attrs: json!({"virtual_agent": "Bot", "params": {"order": 7}}),
            before: self_service,
            state_after: SelfService,
            check: |m| {
                assert_eq!(m["virtual_agent"]["name"], "Bot");
                assert!(m["virtual_agent"]["connected_at"].is_string());
                assert_eq!(m["virtual_agent"]["params"], json!({"order": 7}));
            },
        },
        Case {
            kind: "virtual_agent.ended",
            attrs: json!({"outcome": "completed"}),
            before: self_service,
            state_after: Ended,
            check: |m| {
                assert_eq!(m["answer_type"], "virtual");
                assert_eq!(m["self_service_ms"], 9000);
                assert_eq!(m["virtual_agent"]["outcome"], "completed");
            },
        },
        Case {
            kind: "queue.entered",
            attrs: json!({"queue": "Q9", "queue_id": "q-9", "priority": 3}),
            before: started,
            state_after: Queued,
            check: |m| {
                assert_eq!(m["queue"], "Q9");
                assert_eq!(m["queues"][0]["priority"], 3);
                assert_eq!(m["queued_at"], m["updated_at"]);
            },
        },
        Case { kind: "agent.offered", attrs: json!({"agent": "Ann"}), before: queued, state_after: Offered, check: |m| assert_eq!(m["offers"], 1) },
        Case {
            kind: "agent.declined",
            attrs: json!({"agent": "Ann", "reason": "timeout"}),
            before: offered,
            state_after: Queued,
            check: |m| {
                assert_eq!(m["declines"], 1);
                assert_eq!(m["ring_ms"], 8000);
            },
        },
        Case {
            kind: "agent.assigned",
            attrs: json!({"agent": "Ann", "agent_id": "a-1"}),
            before: queued,
            state_after: Assigned,
            check: |m| {
                assert_eq!(m["queue_wait_ms"], 9000);
                assert_eq!(m["queues"][0]["outcome"], "answered");
            },
        },
        Case {
            kind: "agent.connected",
            attrs: json!({"agent": "Bo", "agent_id": "a-2"}),
            before: offered,
            state_after: Connected,
            check: |m| {
                assert_eq!(m["agent"], "Bo");
                assert_eq!(m["answer_type"], "human");
                assert_eq!(m["participants"][0]["id"], "a-2");
            },
        },
        Case {
            kind: "hold.started",
            attrs: json!({}),
            before: connected,
            state_after: OnHold,
            check: |m| {
                assert_eq!(m["hold_count"], 1);
                assert_eq!(m["talk_ms"], 4000);
            },
        },
        Case { kind: "hold.ended", attrs: json!({}), before: on_hold, state_after: Connected, check: |m| assert_eq!(m["hold_ms"], 2000) },
        Case {
            kind: "transfer.started",
            attrs: json!({"from_agent": "Ann", "to_queue": "Q2", "kind": "consult"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["transfers"][0]["outcome"], "pending"),
        },
        Case {
            kind: "transfer.completed",
            attrs: json!({"to_queue": "Q2"}),
            before: transferring,
            state_after: Queued,
            check: |m| {
                assert_eq!(m["transfer_count"], 1);
                assert_eq!(m["queue"], "Q2");
                assert_eq!(m["queues"].as_array().unwrap().len(), 2);
            },
        },
        Case {
            kind: "transfer.failed",
            attrs: json!({"reason": "busy"}),
            before: transferring,
            state_after: Connected,
            check: |m| {
                assert_eq!(m["transfers"][0]["outcome"], "failed");
                assert_eq!(m["transfers"][0]["reason"], "busy");
                assert_eq!(m["transfer_count"], 0);
            },
        },
        Case {
            kind: "engagement.released",
            attrs: json!({"queue": "Q"}),
            before: connected,
            state_after: Queued,
            check: |m| assert_eq!(m["queues"].as_array().unwrap().len(), 2),
        },
        Case {
            kind: "session.ended",
            attrs: json!({"ended_by": "agent"}),
            before: connected,
            state_after: WrapUp,
            check: |m| {
                // Wrap-up never completed: the end of the replay expires it and closes wrap-up at the last event.
                assert_eq!(m["ended_by"], "agent");
                assert_eq!(m["state"], "expired");
                assert_eq!(m["total_ms"], 10_000);
                assert_eq!(m["open_intervals_closed"], json!(["wrap_up"]));
                assert_eq!(m["wrapup_ms"], 0);
            },
        },
        Case {
            kind: "wrapup.completed",
            attrs: json!({}),
            before: wrap_up,
            state_after: Ended,
            check: |m| {
                assert_eq!(m["wrapup_ms"], 2000);
                assert_eq!(m["outcome"], "completed");
                assert_eq!(m["handle_ms"], 5000);
            },
        },
        Case {
            kind: "disposition.set",
            attrs: json!({"code": "c1", "notes": "n", "list": "L"}),
            before: wrap_up,
            state_after: WrapUp,
            check: |m| {
                assert_eq!(m["disposition"]["code"], "c1");
                assert_eq!(m["card"]["status_or_wrapup"], "c1");
            },
        },
        Case {
            kind: "deflection.offered",
            attrs: json!({"kind": "sms"}),
            before: queued,
            state_after: Queued,
            check: |m| {
                assert_eq!(m["deflection"]["kind"], "sms");
                assert_eq!(m["deflection"]["accepted"], Value::Null);
            },
        },
        Case {
            kind: "deflection.accepted",
            attrs: json!({"kind": "callback"}),
            before: queued,
            state_after: Deflected,
            check: |m| {
                assert_eq!(m["outcome"], "deflected");
                assert_eq!(m["queues"][0]["outcome"], "deflected");
            },
        },
        Case {
            kind: "deflection.declined",
            attrs: json!({"kind": "sms"}),
            before: queued,
            state_after: Queued,
            check: |m| assert_eq!(m["deflection"]["accepted"], false),
        },
        Case {
            kind: "post_session.started",
            attrs: json!({"virtual_agent": "Survey", "opted_in": true, "params": {"x": 1}}),
            before: ended,
            state_after: PostSession,
            check: |m| {
                assert_eq!(m["post_session"]["opted_in"], true);
                assert_eq!(m["post_session"]["params"]["x"], 1);
                // Never ended: it expires at the end of the replay, the post-session interval closed.
                assert_eq!(m["outcome"], "expired");
                assert_eq!(m["open_intervals_closed"], json!(["post_session"]));
            },
        },
        Case {
            kind: "post_session.ended",
            attrs: json!({"outcome": "completed"}),
            before: post_session,
            state_after: Ended,
            check: |m| {
                assert_eq!(m["post_session"]["outcome"], "completed");
                assert_eq!(m["outcome"], "completed");
            },
        },
        Case {
            kind: "participant.add_started",
            attrs: json!({"participant": "p-1", "role": "third_party"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["participants"].as_array().unwrap().len(), 1),
        },
        Case {
            kind: "participant.added",
            attrs: json!({"participant": "p-1", "role": "third_party"}),
            before: connected,
            state_after: Connected,
            check: |m| {
                assert_eq!(m["participants"][1]["id"], "p-1");
                assert_eq!(m["participants"][1]["joined_at"], m["updated_at"]);
            },
        },
        Case {
            kind: "participant.add_failed",
            attrs: json!({"participant": "p-1", "reason": "busy"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["participants"].as_array().unwrap().len(), 1),
        },
        Case {
            kind: "participant.left",
            attrs: json!({"participant": "p-1"}),
            before: with_participant,
            state_after: Connected,
            check: |m| assert_eq!(m["participants"][1]["left_at"], m["updated_at"]),
        },
        Case {
            kind: "custom_data.received",
            attrs: json!({"k": "v", "n": 2}),
            before: started,
            state_after: Initiated,
            check: |m| assert_eq!(m["custom_data"], json!({"k": "v", "n": 2})),
        },
        Case {
            kind: "phone_number.collected",
            attrs: json!({"inbound": "+1", "callback": "+2"}),
            before: started,
            state_after: Initiated,
            check: |m| assert_eq!(m["phone_numbers"], json!({"inbound": "+1", "callback": "+2"})),
        },
        Case { kind: "email.collected", attrs: json!({"email": "a@b.c"}), before: started, state_after: Initiated, check: |m| assert_eq!(m["email"], "a@b.c") },
        Case {
            kind: "verification.completed",
            attrs: json!({"by": "Ann", "method": "dob"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["smart_actions"]["verified"], true),
        },
        Case {
            kind: "media.uploaded",
            attrs: json!({"kind": "photo", "url": "u"}),
            before: connected,
            state_after: Connected,
            check: |m| {
                assert_eq!(m["smart_actions"]["photos"], 1);
                assert_eq!(m["attachments"][0]["url"], "u");
            },
        },
        Case {
            kind: "payment.processed",
            attrs: json!({"product": "p", "amount": 10.5, "currency": "USD", "status": "succeeded"}),
            before: connected,
            state_after: Connected,
            check: |m| {
                assert_eq!(m["payments"][0]["amount"], "10.5");
                assert_eq!(m["payments"][0]["currency"], "USD");
            },
        },
        Case {
            kind: "rating.received",
            attrs: json!({"rating": 5, "comment": "great"}),
            before: ended,
            state_after: Ended,
            check: |m| assert_eq!(m["csat"], json!({"rating": 5, "comment": "great"})),
        },
        Case {
            kind: "survey.response",
            attrs: json!({"answers": [{"question": "CSAT question", "kind": "csat", "value": 3}]}),
            before: ended,
            state_after: Ended,
            check: |m| {
                assert_eq!(m["csat"]["rating"], 3);
                assert_eq!(m["survey"][0]["value"], 3);
            },
        },
        Case {
            kind: "note.received",
            attrs: json!({"text": "call back"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["notes_count"], 1),
        },
        Case {
            kind: "sentiment.scored",
            attrs: json!({"score": 40}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["sentiment"], json!({"last": 40, "mean": 40})),
        },
        Case {
            kind: "agent_assist.summary",
            attrs: json!({"summary": "S"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["summary"], "S"),
        },
        Case {
            kind: "recording.available",
            attrs: json!({"url": "r", "permission": "agent"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["recording"], json!({"url": "r", "permission": "agent", "urls": ["r"]})),
        },
        Case {
            kind: "masking.started",
            attrs: json!({}),
            before: connected,
            state_after: Connected,
            check: |m| {
                assert_eq!(m["masked_ms"], 0);
                assert_eq!(m["open_intervals_closed"], json!(["talk", "masking"]));
            },
        },
        Case { kind: "masking.ended", attrs: json!({}), before: masking, state_after: Connected, check: |m| assert_eq!(m["masked_ms"], 3000) },
        Case {
            kind: "crm.ticket_linked",
            attrs: json!({"ticket_id": "T-1", "url": "u"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["crm_ticket"]["ticket_id"], "T-1"),
        },
        Case { kind: "api.request", attrs: json!({"path": "/x"}), before: connected, state_after: Connected, check: |m| assert_eq!(m["event_count"], 5) },
        Case { kind: "api.response", attrs: json!({"status": 200}), before: connected, state_after: Connected, check: |m| assert_eq!(m["event_count"], 5) },
        Case {
            kind: "virtual_agent.variables_captured",
            attrs: json!({"intent": "i", "variables": {"order": "A"}}),
            before: self_service,
            state_after: SelfService,
            check: |m| {
                assert_eq!(m["virtual_agent"]["intent"], "i");
                assert_eq!(m["virtual_agent"]["variables"]["order"], "A");
            },
        },
        Case {
            kind: "cobrowse.started",
            attrs: json!({"level": "remote"}),
            before: connected,
            state_after: Connected,
            check: |m| {
                assert_eq!(m["cobrowse"]["sessions"], 1);
                assert_eq!(m["cobrowse"]["level"], "remote");
            },
        },
        Case { kind: "cobrowse.ended", attrs: json!({}), before: cobrowsing, state_after: Connected, check: |m| assert_eq!(m["cobrowse"]["active_ms"], 3000) },
        Case {
            kind: "cobrowse.control_requested",
            attrs: json!({"level": "full_device"}),
            before: cobrowsing,
            state_after: Connected,
            check: |m| assert_eq!(m["cobrowse"]["control_requested"], 1),
        },
        Case {
            kind: "cobrowse.control_accepted",
            attrs: json!({}),
            before: cobrowsing,
            state_after: Connected,
            check: |m| assert_eq!(m["cobrowse"]["control_accepted"], 1),
        },
        Case {
            kind: "cobrowse.control_declined",
            attrs: json!({}),
            before: cobrowsing,
            state_after: Connected,
            check: |m| assert_eq!(m["cobrowse"]["control_declined"], 1),
        },
        Case {
            kind: "transcript.segment",
            attrs: json!({"speaker": "agent", "text": "hi"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["event_count"], 5),
        },
        Case {
            kind: "translation.used",
            attrs: json!({"languages": ["en", "fr"]}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["event_count"], 5),
        },
        Case {
            kind: "sip.redirected",
            attrs: json!({"destination": "sip:x"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["event_count"], 5),
        },
        Case {
            kind: "sip.headers",
            attrs: json!({"headers": {"X": "1"}}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["event_count"], 5),
        },
        Case {
            kind: "content_card.selected",
            attrs: json!({"card": "c", "button": "b"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["event_count"], 5),
        },
        Case {
            kind: "emergency.requested",
            attrs: json!({"by": "Ann"}),
            before: connected,
            state_after: Connected,
            check: |m| assert_eq!(m["flags"]["emergency"], true),
        },
    ]
}

#[test]
fn every_type_has_its_effect() {
    let mut covered = BTreeSet::new();
    for case in cases() {
        let mut events = (case.before)();
        events.push(ev("under-test", case.kind, 10.0, case.attrs.clone()));
        let out = run(&events);
        let t = timeline(&out).into_iter().find(|t| t.event_id == "under-test").expect(case.kind);
        assert_eq!(t.state_after, case.state_after, "{}: state after", case.kind);
        assert_eq!(t.anomaly, None, "{}: no anomaly on the normal path", case.kind);
        assert_eq!(t.attributes.0, case.attrs, "{}: attributes pass through", case.kind);
        let m = last(&out);
        (case.check)(&m);
        covered.insert(case.kind);
    }
    // session.erased has its own tests (privacy.rs): it writes no timeline record.
    covered.insert("session.erased");
    let missing: Vec<&str> = EventType::KNOWN.iter().map(EventType::as_str).filter(|k| !covered.contains(k)).collect();
    assert!(missing.is_empty(), "types without a case: {missing:?}");
}

#[test]
fn unknown_types_pass_through_without_changing_state() {
    let mut events = connected();
    events.push(ev("u", "robot.danced", 10.0, json!({"style": "waltz"})));
    let out = run(&events);
    let t = timeline(&out).into_iter().find(|t| t.event_id == "u").unwrap();
    assert_eq!(t.event_type, EventType::Other("robot.danced".into()));
    assert_eq!((t.state_before, t.state_after, t.transition), (Some(State::Connected), State::Connected, false));
    assert_eq!(t.attributes.0, json!({"style": "waltz"}));
    assert_eq!(last(&out)["unknown_event_count"], 1);
}
