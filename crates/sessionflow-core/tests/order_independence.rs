//! Any permutation of a session's events, with any duplicates added, yields
//! the same final metadata record, byte for byte, once the versioning and
//! arrival-quality fields are set aside (`lifecycle.md`).

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use sessionflow_core::{EngineConfig, Event};

/// The final record with the versioning and arrival-quality fields removed.
fn comparable(events: &[Event]) -> String {
    let out = run_with(&EngineConfig::default(), events);
    let finals: Vec<_> = metadata(&out).into_iter().filter(|m| m.is_final).collect();
    let mut v = serde_json::to_value(*finals.last().expect("final record")).unwrap();
    for field in ["version", "revision_reason", "finalized_at", "late_event_count", "duplicate_count", "is_final"] {
        v.as_object_mut().unwrap().shift_remove(field);
    }
    serde_json::to_string(&v).unwrap()
}

/// A realistic session from a small script language, at most a few hours long.
fn session() -> impl Strategy<Value = Vec<Event>> {
    let step = prop_oneof![
        Just(("virtual_agent.started", json!({"virtual_agent": "Bot"}))),
        Just(("virtual_agent.ended", json!({"outcome": "handoff"}))),
        Just(("queue.entered", json!({"queue": "Q1", "priority": 2}))),
        Just(("agent.offered", json!({"agent": "Ann", "agent_id": "a-1"}))),
        Just(("agent.declined", json!({"agent": "Ann", "reason": "timeout"}))),
        Just(("agent.assigned", json!({"agent": "Bo", "agent_id": "a-2"}))),
        Just(("agent.connected", json!({"agent": "Bo", "agent_id": "a-2"}))),
        Just(("hold.started", json!({}))),
        Just(("hold.ended", json!({}))),
        Just(("transfer.started", json!({"to_queue": "Q2", "kind": "blind"}))),
        Just(("transfer.completed", json!({"to_queue": "Q2"}))),
        Just(("transfer.failed", json!({"reason": "busy"}))),
        Just(("engagement.released", json!({"queue": "Q1"}))),
        Just(("session.ended", json!({"ended_by": "agent"}))),
        Just(("wrapup.completed", json!({}))),
        Just(("disposition.set", json!({"code": "ok"}))),
        Just(("post_session.started", json!({"opted_in": true}))),
        Just(("post_session.ended", json!({"outcome": "completed"}))),
        Just(("survey.response", json!({"answers": [{"question": "csat", "kind": "csat", "value": 4}]}))),
        Just(("sentiment.scored", json!({"score": 55}))),
        Just(("custom_data.received", json!({"k": "v"}))),
        Just(("masking.started", json!({}))),
        Just(("masking.ended", json!({}))),
        Just(("deflection.accepted", json!({"kind": "sms"}))),
        Just(("participant.added", json!({"participant": "p", "role": "third_party"}))),
        Just(("robot.danced", json!({}))),
    ];
    // Gaps of 0 produce equal timestamps: the event id breaks the tie.
    (any::<bool>(), prop::collection::vec((step, 0u32..120), 1..25)).prop_map(|(with_start, steps)| {
        let mut t = 0.0;
        let mut events = Vec::new();
        if with_start {
            events.push(ev("e000", "session.started", 0.0, json!({"lang": "en"})));
        }
        for (i, ((kind, attrs), gap)) in steps.into_iter().enumerate() {
            t += f64::from(gap);
            events.push(ev(&format!("e{:03}", i + 1), kind, t, attrs));
        }
        events
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn any_permutation_with_duplicates_gives_the_same_final_record(
        events in session(),
        seed in any::<u64>(),
        duplicates in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let expected = comparable(&events);
        let mut shuffled = events.clone();
        for d in &duplicates {
            shuffled.push(d.get(&events).clone());
        }
        // A seeded Fisher-Yates, so failures reproduce.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(comparable(&shuffled), expected);
    }
}

#[test]
fn the_comparison_would_catch_a_difference() {
    // Guard against a vacuous property: different event sets differ.
    let a = vec![ev("a", "session.started", 0.0, json!({})), ev("b", "queue.entered", 5.0, json!({}))];
    let mut b = a.clone();
    b.push(ev("c", "agent.connected", 9.0, json!({})));
    assert_ne!(comparable(&a), comparable(&b));
    let v: Value = serde_json::from_str(&comparable(&a)).unwrap();
    assert!(v.get("version").is_none() && v.get("queue_wait_ms").is_some());
}
