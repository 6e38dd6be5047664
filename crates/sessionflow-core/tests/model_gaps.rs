//! The gaps of the canonical model the vendor adapters need (issue 24,
//! item 3): each test failed before the model had the field or rule.

mod common;

use common::*;
use serde_json::{Value, json};
use sessionflow_core::{Millis, Output};

fn at(secs: i64) -> Value {
    json!(Millis(T0 + secs * 1000).to_rfc3339())
}

/// An `email` session: started, queued and connected, in order.
fn email_connected(session: &str) -> Vec<sessionflow_core::Event> {
    let mut start = json!({"event_id": "a", "session_id": session, "type": "session.started", "occurred_at": Millis(T0).to_rfc3339(),
                           "channel": "email", "direction": "inbound"});
    start["attributes"] = json!({});
    vec![
        sessionflow_core::Event::from_json(start).unwrap(),
        ev_in(session, "b", "queue.entered", 1.0, json!({"queue": "Mail"})),
        ev_in(session, "c", "agent.connected", 2.0, json!({"agent": "Ann"})),
    ]
}

#[test]
fn a_post_session_the_end_user_opted_out_of_does_not_run() {
    let mut events = connected();
    events.push(ev("e", "session.ended", 10.0, json!({"ended_by": "agent"})));
    events.push(ev("f", "wrapup.completed", 20.0, json!({"agent": "Ann"})));
    events.push(ev("g", "post_session.started", 21.0, json!({"virtual_agent": "Survey", "opted_in": false})));
    let outputs = run(&events);
    assert!(metadata(&outputs).iter().all(|m| m.state.as_str() != "post_session"), "never in post_session");
    let m = last(&outputs);
    assert_eq!(m["state"], "ended");
    assert_eq!(m["outcome"], "completed");
    assert_eq!(m["post_session"]["opted_in"], false);
    assert_eq!(m["post_session"]["virtual_agent"], "Survey");
    assert_eq!(m["anomaly_count"], 0);
    // Opted in, it runs as before.
    events[6] = ev("g", "post_session.started", 21.0, json!({"virtual_agent": "Survey", "opted_in": true}));
    let outputs = run(&events);
    assert!(metadata(&outputs).iter().any(|m| m.state.as_str() == "post_session"));
}

#[test]
fn every_disposition_is_kept_and_the_last_is_the_disposition() {
    let mut events = connected();
    events.push(ev("e", "session.ended", 10.0, json!({"ended_by": "agent"})));
    events.push(ev("f", "disposition.set", 11.0, json!({"code": "Refund", "list": "Billing", "list_id": "l-1", "code_id": 41, "agent": "Ann"})));
    events.push(ev("g", "disposition.set", 12.0, json!({"code": "Upsell", "list": "Sales", "list_id": "l-2", "code_id": "c-9", "agent": "Ann"})));
    let m = last(&run(&events));
    let first = json!({"code": "Refund", "notes": null, "list": "Billing", "custom_code_id": null, "agent": "Ann", "list_id": "l-1", "code_id": "41"});
    let second = json!({"code": "Upsell", "notes": null, "list": "Sales", "custom_code_id": null, "agent": "Ann", "list_id": "l-2", "code_id": "c-9"});
    assert_eq!(m["dispositions"], json!([first, second.clone()]));
    assert_eq!(m["disposition"], second);
    assert_eq!(m["card"]["status_or_wrapup"], "Upsell");
}

#[test]
fn parameters_passed_to_a_virtual_agent_during_the_session_are_kept() {
    let events = vec![
        ev("a", "session.started", 0.0, json!({})),
        ev("b", "virtual_agent.started", 1.0, json!({"virtual_agent": "Bot", "params": {"account": "A-1", "tier": 2}})),
        ev("c", "virtual_agent.ended", 9.0, json!({"outcome": "completed"})),
    ];
    let m = last(&run(&events));
    assert_eq!(m["virtual_agent"]["params"], json!({"account": "A-1", "tier": 2}));
    assert_eq!(m["answer_type"], "virtual");
}

#[test]
fn the_virtual_agents_connection_is_apart_from_its_assignment() {
    let events = vec![
        ev("a", "session.started", 0.0, json!({})),
        ev("b", "virtual_agent.started", 1.0, json!({"virtual_agent": "Bot"})),
        ev("c", "virtual_agent.connected", 4.0, json!({"virtual_agent": "Bot", "params": {"order": "o-7"}})),
        ev("d", "queue.entered", 30.0, json!({"queue": "Q"})),
    ];
    let outputs = run(&events);
    let m = last(&outputs);
    assert_eq!(m["virtual_agent"]["started_at"], at(1));
    assert_eq!(m["virtual_agent"]["connected_at"], at(4));
    assert_eq!(m["virtual_agent"]["params"], json!({"order": "o-7"}));
    assert_eq!(m["self_service_ms"], 29_000);
    assert_eq!(m["unknown_event_count"], 0);
    assert_eq!(m["anomaly_count"], 0);
    // A connection with no assignment seen opens self-service itself.
    let events = vec![ev("a", "session.started", 0.0, json!({})), ev("c", "virtual_agent.connected", 4.0, json!({"virtual_agent": "Bot"}))];
    let m = last(&run(&events));
    assert_eq!(m["state"], "expired");
    assert_eq!(m["virtual_agent"]["connected_at"], at(4));
    assert_eq!(m["virtual_agent"]["started_at"], at(4));
}

#[test]
fn seed_attributes_reach_the_metadata_record() {
    let events = vec![
        ev("a", "session.started", 0.0, json!({"device": "ios"})),
        ev("b", "queue.entered", 1.0, json!({"queue": "Q"})),
        ev("c", "deflection.offered", 2.0, json!({"kind": "sms", "queue": "Q"})),
        ev("d", "deflection.declined", 3.0, json!({"kind": "sms"})),
        ev("e", "agent.connected", 5.0, json!({"agent": "Ann", "agent_id": "a-1"})),
        ev("f", "cobrowse.started", 6.0, json!({"level": "remote"})),
        ev("g", "cobrowse.control_requested", 7.0, json!({"level": "full_device"})),
        ev("h", "cobrowse.control_accepted", 8.0, json!({"level": "full_device"})),
        ev("i", "participant.added", 9.0, json!({"participant": "sup-1", "role": "agent", "by": "a-1"})),
        ev("j", "participant.add_failed", 10.0, json!({"participant": "ext-9", "role": "third_party", "by": "a-1", "reason": "busy"})),
        ev("k", "recording.available", 11.0, json!({"url": "https://rec/1", "permission": "agent"})),
        ev("l", "recording.available", 12.0, json!({"url": "https://rec/2", "urls": ["https://rec/1", "https://rec/screen"]})),
    ];
    let m = last(&run(&events));
    assert_eq!(m["device"], "ios");
    assert_eq!(m["deflection"], json!({"kind": "sms", "offered_at": at(2), "accepted": false, "queue": "Q"}));
    assert_eq!(m["cobrowse"]["level"], "remote");
    assert_eq!(m["cobrowse"]["control_level"], "full_device");
    assert_eq!(m["participants"][1], json!({"id": "sup-1", "role": "agent", "joined_at": at(9), "left_at": at(12), "by": "a-1"}));
    assert_eq!(m["participant_failures"], json!([{"id": "ext-9", "role": "third_party", "by": "a-1", "reason": "busy", "failed_at": at(10)}]));
    assert_eq!(m["recording"]["url"], "https://rec/2");
    assert_eq!(m["recording"]["urls"], json!(["https://rec/1", "https://rec/2", "https://rec/screen"]));
}

#[test]
fn async_engagements_have_their_own_session_timeout() {
    const HOUR: i64 = 3_600_000;
    // Silent after the connection: email waits 7 days (the default of
    // `engine.async_session_timeout`), voice 24 hours.
    let m = last(&run(&email_connected("mail")));
    assert_eq!(m["state"], "expired");
    assert_eq!(m["finalized_at"], json!(Millis(T0 + 2_000 + 7 * 24 * HOUR).to_rfc3339()));
    let m = last(&run(&connected()));
    assert_eq!(m["state"], "expired");
    assert_eq!(m["finalized_at"], json!(Millis(T0 + 6_000 + 24 * HOUR).to_rfc3339()));
    // A customer answering an email two days later continues the session.
    let mut events = email_connected("mail");
    events.push(ev_in("mail", "d", "note.received", 172_800.0, json!({"text": "thanks"})));
    events.push(ev_in("mail", "e", "session.ended", 172_860.0, json!({"ended_by": "agent"})));
    events.push(ev_in("mail", "f", "wrapup.completed", 172_920.0, json!({})));
    let outputs = run(&events);
    let m = last(&outputs);
    assert_eq!(m["state"], "ended");
    assert!(metadata(&outputs).iter().all(|m| m.state.as_str() != "expired"));
}

#[test]
fn a_wrap_up_from_an_earlier_agent_does_not_end_the_session() {
    let mut events = connected();
    events.push(ev("e", "transfer.started", 10.0, json!({"from_agent": "Ann", "to_agent": "Bo", "kind": "consult"})));
    events.push(ev("f", "transfer.completed", 20.0, json!({"from_agent": "Ann", "to_agent": "Bo"})));
    events.push(ev("g", "agent.connected", 21.0, json!({"agent": "Bo", "agent_id": "b-2"})));
    // Ann's after-contact work ends while Bo talks (Genesys, Connect: per agent).
    events.push(ev("h", "wrapup.completed", 40.0, json!({"agent": "Ann"})));
    events.push(ev("i", "session.ended", 100.0, json!({"ended_by": "end_user"})));
    events.push(ev("j", "wrapup.completed", 130.0, json!({"agent": "Bo"})));
    let outputs = run(&events);
    let states: Vec<&str> = metadata(&outputs).iter().map(|m| m.state.as_str()).collect();
    assert!(!states[..states.len() - 2].contains(&"ended"), "not ended before its end: {states:?}");
    let m = last(&outputs);
    assert_eq!(m["state"], "ended");
    assert_eq!(m["ended_at"], at(100));
    assert_eq!(m["wrapup_completed_at"], at(130));
    assert_eq!(m["wrapup_ms"], 30_000);
    // 6 s to 20 s and 21 s to 100 s: assigned to Bo in between.
    assert_eq!(m["talk_ms"], 93_000);
    assert_eq!(m["anomaly_count"], 0);
}

/// The new fields depend on the set of events, not their arrival order.
#[test]
fn the_new_fields_do_not_depend_on_arrival_order() {
    let events = vec![
        ev("a", "session.started", 0.0, json!({"device": "web"})),
        ev("b", "virtual_agent.started", 1.0, json!({"virtual_agent": "Bot", "params": {"x": 1}})),
        ev("c", "virtual_agent.connected", 2.0, json!({"params": {"x": 2}})),
        ev("d", "queue.entered", 3.0, json!({"queue": "Q"})),
        ev("e", "agent.connected", 5.0, json!({"agent": "Ann", "agent_id": "a-1"})),
        ev("f", "participant.add_failed", 6.0, json!({"participant": "p", "reason": "busy"})),
        ev("g", "cobrowse.control_requested", 7.0, json!({"level": "remote"})),
        ev("h", "recording.available", 8.0, json!({"url": "u1"})),
        ev("i", "recording.available", 9.0, json!({"url": "u2"})),
        ev("j", "session.ended", 10.0, json!({"ended_by": "agent"})),
        ev("k", "disposition.set", 11.0, json!({"code": "A"})),
        ev("l", "disposition.set", 12.0, json!({"code": "B"})),
        ev("m", "wrapup.completed", 13.0, json!({"agent": "Ann"})),
        ev("n", "post_session.started", 14.0, json!({"opted_in": false})),
    ];
    let strip = |outputs: &[Output]| {
        let mut m = last(outputs);
        for key in ["version", "revision_reason", "finalized_at", "late_event_count", "duplicate_count"] {
            m.as_object_mut().unwrap().remove(key);
        }
        m
    };
    let reference = strip(&run(&events));
    assert_eq!(reference["state"], "ended");
    let n = events.len();
    for shift in 0..n {
        for reverse in [false, true] {
            let mut shuffled: Vec<_> = (0..n).map(|i| events[(i * 5 + shift) % n].clone()).collect();
            if reverse {
                shuffled.reverse();
            }
            assert_eq!(strip(&run(&shuffled)), reference, "shift {shift}, reversed {reverse}");
        }
    }
}
