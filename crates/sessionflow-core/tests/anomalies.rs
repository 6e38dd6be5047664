//! Every anomaly code of the closed list, with the rule that applies it.

mod common;
use common::*;
use serde_json::json;
use sessionflow_core::{Anomaly, State};

/// The anomaly of the event `id`, and the states around it.
fn anomaly_of(events: &[sessionflow_core::Event], id: &str) -> (Option<Anomaly>, Option<State>, State) {
    let out = run(events);
    let t = timeline(&out).into_iter().find(|t| t.event_id == id).expect("timeline record");
    (t.anomaly, t.state_before, t.state_after)
}

#[test]
fn missing_start_opens_the_session_implicitly() {
    let events = [ev("q", "queue.entered", 3.0, json!({"queue": "Q"})), ev("x", "session.ended", 9.0, json!({"ended_by": "end_user"}))];
    let (a, before, after) = anomaly_of(&events, "q");
    assert_eq!((a, before, after), (Some(Anomaly::MissingStart), None, State::Queued));
    let m = last(&run(&events));
    assert_eq!(m["created_at"], sessionflow_core::Millis(T0 + 3000).to_rfc3339());
    assert_eq!(m["anomalies"]["missing_start"], 1);
}

#[test]
fn duplicate_start() {
    let events = [ev("a", "session.started", 0.0, json!({})), ev("b", "session.started", 1.0, json!({}))];
    assert_eq!(anomaly_of(&events, "b").0, Some(Anomaly::DuplicateStart));
}

#[test]
fn missing_queue_for_an_inbound_assignment_but_not_outbound() {
    let events = [ev("a", "session.started", 0.0, json!({})), ev("b", "agent.assigned", 1.0, json!({"agent": "Ann"}))];
    assert_eq!(anomaly_of(&events, "b"), (Some(Anomaly::MissingQueue), Some(State::Initiated), State::Assigned));
    let mut outbound = events.to_vec();
    outbound[0].direction = Some(sessionflow_core::Direction::Outbound);
    assert_eq!(anomaly_of(&outbound, "b"), (None, Some(State::Initiated), State::Assigned));
}

#[test]
fn missing_assignment_when_connected_straight_from_queued() {
    let events =
        [ev("a", "session.started", 0.0, json!({})), ev("b", "queue.entered", 1.0, json!({})), ev("c", "agent.connected", 2.0, json!({"agent": "Ann"}))];
    assert_eq!(anomaly_of(&events, "c"), (Some(Anomaly::MissingAssignment), Some(State::Queued), State::Connected));
}

#[test]
fn missing_offer_for_a_decline_without_offer() {
    let events =
        [ev("a", "session.started", 0.0, json!({})), ev("b", "queue.entered", 1.0, json!({})), ev("c", "agent.declined", 2.0, json!({"reason": "timeout"}))];
    assert_eq!(anomaly_of(&events, "c"), (Some(Anomaly::MissingOffer), Some(State::Queued), State::Queued));
}

#[test]
fn missing_connect_for_hold_while_only_assigned() {
    let mut events = connected();
    events.truncate(3);
    events.push(ev("h", "hold.started", 7.0, json!({})));
    assert_eq!(anomaly_of(&events, "h"), (Some(Anomaly::MissingConnect), Some(State::Assigned), State::OnHold));
}

#[test]
fn missing_hold_for_an_unmatched_hold_end() {
    let mut events = connected();
    events.push(ev("h", "hold.ended", 7.0, json!({})));
    assert_eq!(anomaly_of(&events, "h"), (Some(Anomaly::MissingHold), Some(State::Connected), State::Connected));
}

#[test]
fn missing_transfer_for_a_completion_without_start() {
    let mut events = connected();
    events.push(ev("t", "transfer.completed", 9.0, json!({"to_queue": "Q2"})));
    assert_eq!(anomaly_of(&events, "t"), (Some(Anomaly::MissingTransfer), Some(State::Connected), State::Queued));
    let m = last(&run(&events));
    assert_eq!(m["transfer_count"], 1);
    assert_eq!(m["transfers"][0]["outcome"], "completed");
}

#[test]
fn missing_end_for_wrapup_without_session_end() {
    let mut events = connected();
    events.push(ev("w", "wrapup.completed", 30.0, json!({})));
    assert_eq!(anomaly_of(&events, "w"), (Some(Anomaly::MissingEnd), Some(State::Connected), State::Ended));
}

#[test]
fn missing_post_session_for_an_unmatched_end() {
    let mut events = connected();
    events.push(ev("p", "post_session.ended", 30.0, json!({})));
    assert_eq!(anomaly_of(&events, "p").0, Some(Anomaly::MissingPostSession));
}

#[test]
fn duplicate_end_keeps_the_first_end() {
    let mut events = connected();
    events.push(ev("e1", "session.ended", 20.0, json!({"ended_by": "agent"})));
    events.push(ev("e2", "session.ended", 25.0, json!({"ended_by": "end_user"})));
    assert_eq!(anomaly_of(&events, "e2").0, Some(Anomaly::DuplicateEnd));
    let m = last(&run(&events));
    assert_eq!(m["ended_by"], "agent");
    assert_eq!(m["ended_at"], sessionflow_core::Millis(T0 + 20_000).to_rfc3339());
}

#[test]
fn after_terminal_keeps_the_terminal_state() {
    let events = [
        ev("a", "session.started", 0.0, json!({})),
        ev("b", "queue.entered", 1.0, json!({})),
        ev("c", "session.ended", 5.0, json!({"ended_by": "end_user"})),
        ev("d", "agent.connected", 9.0, json!({"agent": "Ann"})),
    ];
    assert_eq!(anomaly_of(&events, "d"), (Some(Anomaly::AfterTerminal), Some(State::Abandoned), State::Abandoned));
    assert_eq!(last(&run(&events))["outcome"], "abandoned");
}

#[test]
fn invalid_transition_for_anything_else() {
    let mut events = connected();
    events.push(ev("s", "session.scheduled", 9.0, json!({})));
    assert_eq!(anomaly_of(&events, "s"), (Some(Anomaly::InvalidTransition), Some(State::Connected), State::Connected));
}

#[test]
fn session_bound_exceeded_counts_the_events_a_session_bound_turned_away() {
    // The event is a dead letter (no timeline record to carry the code): the
    // session's next metadata record counts it.
    let config = sessionflow_core::EngineConfig { max_events_per_session: 2, ..sessionflow_core::EngineConfig::default() };
    let events = [ev("a", "session.started", 0.0, json!({})), ev("b", "queue.entered", 1.0, json!({})), ev("c", "note.received", 2.0, json!({}))];
    let out = run_with(&config, &events);
    assert!(!timeline(&out).iter().any(|t| t.event_id == "c"));
    let m = last(&out);
    assert_eq!(m["anomalies"]["session_bound_exceeded"], 1);
    assert_eq!(m["anomaly_count"], 1);
}

#[test]
fn every_code_is_covered_by_a_test_above() {
    // Keeps this file in step with the closed list.
    assert_eq!(Anomaly::ALL.len(), 14);
}
