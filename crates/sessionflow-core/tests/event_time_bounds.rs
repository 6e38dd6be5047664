//! Event times outside the trusted range (`engine.max_future_skew` ahead of
//! the wall clock, before `engine.min_event_time`) are dead letters that
//! move nothing: not the watermark, not their session.

mod common;
use common::*;
use serde_json::json;
use sessionflow_core::{DeadLetterReason, EngineConfig, Event, Millis, Output};

/// Three sessions over five minutes, and a clock tick half an hour on that
/// finalizes the two ended ones.
fn traffic() -> Vec<Event> {
    let mut events = Vec::new();
    for (s, base) in [("s1", 0.0), ("s2", 20.0), ("s3", 40.0)] {
        events.push(ev_in(s, &format!("{s}-a"), "session.started", base, json!({})));
        events.push(ev_in(s, &format!("{s}-b"), "queue.entered", base + 1.0, json!({"queue": "Q"})));
        events.push(ev_in(s, &format!("{s}-c"), "agent.connected", base + 9.0, json!({"agent": "Ann", "agent_id": "a-1"})));
    }
    events.push(ev_in("s1", "s1-d", "session.ended", 200.0, json!({"ended_by": "agent"})));
    events.push(ev_in("s2", "s2-d", "session.ended", 240.0, json!({"ended_by": "end_user"})));
    events.push(ev_in("tick", "tick-a", "session.started", 30.0 * 60.0, json!({})));
    events
}

/// Processing time: a few minutes after the tick.
fn wall() -> Millis {
    Millis(T0 + 40 * 60_000)
}

#[test]
fn a_far_future_event_is_a_dead_letter_and_changes_nothing_else() {
    let config = EngineConfig::default();
    let far = ev_in("s2", "s2-future", "hold.started", 100.0 * 365.25 * 86_400.0, json!({}));
    let at = far.occurred_at;
    let input = numbered(&traffic());
    // The bad record goes in the middle, at its own offset.
    let mut with: Vec<(i64, Event)> = input.iter().map(|(o, e)| (o * 2, e.clone())).collect();
    with.insert(5, (7, far));
    let without: Vec<(i64, Event)> = with.iter().filter(|(o, _)| *o != 7).cloned().collect();
    for batch_size in [1, 4, 100] {
        for finish in [false, true] {
            let a = drive(&config, &with, batch_size, Some(wall()), finish);
            let b = drive(&config, &without, batch_size, Some(wall()), finish);
            let dlq = a.dead_letters();
            assert_eq!(dlq.len(), 1, "batch size {batch_size}");
            assert_eq!((dlq[0].reason, dlq[0].input.offset), (DeadLetterReason::BadTimestamp, 7));
            assert!(dlq[0].detail.contains(&at.to_rfc3339()), "{}", dlq[0].detail);
            assert!(dlq[0].detail.contains("1h") && dlq[0].detail.contains("engine.max_future_skew"), "{}", dlq[0].detail);
            assert!(dlq[0].detail.contains(&wall().to_rfc3339()), "{}", dlq[0].detail);
            assert!(b.dead_letters().is_empty());
            assert!(a.records() == b.records(), "batch size {batch_size}: the other outputs are those of the run without the record");
            assert_eq!(a.state.meta.max_event_time, b.state.meta.max_event_time);
            assert_eq!(a.state.meta.watermark, b.state.meta.watermark);
            assert_eq!(a.state.sessions, b.state.sessions, "no session touched");
            assert_eq!(a.stats.dead_lettered.get(&DeadLetterReason::BadTimestamp), Some(&1));
            a.assert_accounting();
        }
    }
}

#[test]
fn the_future_bound_is_relative_to_the_wall_clock_and_configurable() {
    let mut config = EngineConfig::default();
    let wall = wall();
    let events = numbered(&[
        ev_in("s1", "a", "session.started", 0.0, json!({})),
        // 50 min ahead of the wall clock: inside the default hour.
        ev_in("s1", "b", "queue.entered", 90.0 * 60.0, json!({})),
    ]);
    let out = drive(&config, &events, 10, Some(wall), false);
    assert!(out.dead_letters().is_empty());
    config.max_future_skew_ms = 30 * 60_000;
    let out = drive(&config, &events, 10, Some(wall), false);
    let dlq = out.dead_letters();
    assert_eq!(dlq.len(), 1);
    assert!(dlq[0].detail.contains("30m") && dlq[0].detail.contains("engine.max_future_skew"), "{}", dlq[0].detail);
    out.assert_accounting();
}

#[test]
fn without_a_wall_clock_there_is_no_future_bound() {
    // The offline replay has no wall clock: its output must not depend on
    // when it runs, and stream time would reject ordinary traffic.
    let events = [ev_in("s1", "a", "session.started", 0.0, json!({})), ev_in("s2", "b", "session.started", 10.0 * 365.0 * 86_400.0, json!({}))];
    let out = drive(&EngineConfig::default(), &numbered(&events), 1, None, true);
    assert!(out.dead_letters().is_empty());
    assert_eq!(timeline(&out.outputs).len(), 2);
}

#[test]
fn an_event_before_the_floor_is_a_dead_letter() {
    let early = ev_at("s9", "early", "queue.entered", "1970-01-01T00:00:00.5Z", json!({}));
    let events = [ev("a", "session.started", 0.0, json!({})), early, ev("b", "queue.entered", 1.0, json!({}))];
    for wall_clock in [None, Some(wall())] {
        let out = drive(&EngineConfig::default(), &numbered(&events), 1, wall_clock, false);
        let dlq = out.dead_letters();
        assert_eq!(dlq.len(), 1);
        assert_eq!((dlq[0].reason, dlq[0].input.offset), (DeadLetterReason::BadTimestamp, 1));
        assert!(dlq[0].detail.contains("1970-01-01T00:00:00.500Z"), "{}", dlq[0].detail);
        assert!(dlq[0].detail.contains("1970-01-02T00:00:00.000Z") && dlq[0].detail.contains("engine.min_event_time"), "{}", dlq[0].detail);
        assert!(!out.state.sessions.contains_key("s9"), "no session opened");
        assert!(!timeline(&out.outputs).iter().any(|t| t.event_id == "early"));
        assert_eq!(out.state.meta.max_event_time, Some(Millis(T0 + 1000)));
        out.assert_accounting();
    }
    // The floor is configurable.
    let config = EngineConfig { min_event_time_ms: 0, ..EngineConfig::default() };
    let out = drive(&config, &numbered(&events), 1, None, false);
    assert!(out.dead_letters().is_empty());
}

#[test]
fn erasure_is_honoured_whatever_its_time_and_erased_sessions_leave_no_dead_letter() {
    let far = 100.0 * 365.25 * 86_400.0;
    let mut events = connected();
    // A far-future erasure: honoured, without moving the watermark.
    events.push(ev("x", "session.erased", far, json!({})));
    // A far-future event of the erased session: suppressed, not a dead
    // letter (which would keep its personal data).
    events.push(ev("late", "email.collected", far, json!({"email": "a@b.c"})));
    let out = drive(&EngineConfig::default(), &numbered(&events), 1, Some(wall()), false);
    assert!(out.dead_letters().is_empty());
    assert!(out.outputs.iter().any(|o| matches!(o, Output::Tombstone(id) if id == "s1")));
    assert!(!out.state.sessions.contains_key("s1"));
    assert_eq!(out.state.meta.max_event_time, Some(Millis(T0 + 6_000)));
    assert_eq!(out.stats.erased_suppressed, 2);
    out.assert_accounting();
}
