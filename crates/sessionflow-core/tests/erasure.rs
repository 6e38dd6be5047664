//! Erasure lasts: an erased session's marker is never forgotten, so its late
//! events stay suppressed however far event time moves on. Retired markers
//! are still forgotten after `marker_retention`.

mod common;
use common::*;
use serde_json::json;
use sessionflow_core::memstore::MemState;
use sessionflow_core::{EngineConfig, Event, Marker, Millis, Output, Timer, TimerKind};

const DAY: f64 = 86_400.0;

/// An event of another session that moves the watermark to `secs`.
fn tick(id: &str, secs: f64) -> Event {
    ev_in(&format!("clock-{id}"), id, "session.started", secs, json!({}))
}

#[test]
fn a_late_event_30_days_after_an_erasure_is_still_suppressed() {
    let mut events = connected();
    events.push(ev("x", "session.erased", 20.0, json!({"reason": "gdpr"})));
    for (i, day) in [1.0, 8.0, 15.0, 30.0].into_iter().enumerate() {
        events.push(tick(&format!("t{i}"), day * DAY));
    }
    events.push(ev("late", "email.collected", 7.0, json!({"email": "a@b.c"})));
    events.push(ev("later", "session.started", 30.0 * DAY + 5.0, json!({})));
    for batch_size in [1, 3, 100] {
        let out = drive(&EngineConfig::default(), &numbered(&events), batch_size, None, false);
        let tombstone = out.outputs.iter().position(|o| matches!(o, Output::Tombstone(id) if id == "s1")).expect("tombstone");
        assert!(out.outputs[tombstone + 1..].iter().all(|o| o.key() != Some(b"s1".as_slice())), "batch size {batch_size}: nothing of s1 after the erasure");
        assert!(!timeline(&out.outputs).iter().any(|t| t.event_id == "late" || t.event_id == "later"));
        assert_eq!(out.stats.erased_suppressed, 3, "the erasure and both late events");
        assert_eq!(out.state.markers.get("s1"), Some(&Marker::Erased));
        assert!(!out.state.timers.iter().any(|t| &*t.session_id == "s1"), "no timer would forget it");
        assert!(!out.state.sessions.contains_key("s1"));
        out.assert_accounting();
    }
}

#[test]
fn a_forget_timer_stored_for_an_erased_marker_does_not_forget_it() {
    // State written before erased markers became permanent: a forget timer
    // is armed for one.
    let mut state = MemState::default();
    state.markers.insert("s1".into(), Marker::Erased);
    state.timers.insert(Timer { due: Millis(T0 + 1_000), session_id: "s1".into(), kind: TimerKind::ForgetMarker });
    let events = [tick("t0", 3600.0), ev("late", "session.started", 3601.0, json!({}))];
    let out = drive_over(state, &EngineConfig::default(), &numbered(&events), 1, None, false);
    assert_eq!(out.state.markers.get("s1"), Some(&Marker::Erased));
    assert!(out.state.timers.iter().all(|t| &*t.session_id != "s1"), "the old timer fired and is gone");
    assert!(!timeline(&out.outputs).iter().any(|t| t.event_id == "late"));
    assert_eq!(out.stats.erased_suppressed, 1);
    out.assert_accounting();
}

#[test]
fn retired_markers_are_still_forgotten_after_marker_retention() {
    let events = vec![
        ev("a", "session.started", 0.0, json!({})),
        ev("b", "session.ended", 10.0, json!({"ended_by": "end_user"})),
        // Finalized at 15 min, retired a day later: marker until 8 days on.
        tick("t0", 2.0 * DAY),
        ev("late", "rating.received", 20.0, json!({"rating": 1})),
        tick("t1", 9.0 * DAY),
        ev("new", "session.started", 9.0 * DAY + 1.0, json!({})),
    ];
    let out = drive(&EngineConfig::default(), &numbered(&events), 1, None, false);
    assert_eq!(out.dead_letters().len(), 1, "late while retired");
    assert!(timeline(&out.outputs).iter().any(|t| t.event_id == "new"), "a new session once the marker is gone");
    assert!(!out.state.markers.contains_key("s1"));
    out.assert_accounting();
}
