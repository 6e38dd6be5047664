//! Finalization, expiry, retention, revisions, erasure and dead letters.

mod common;
use common::*;
use serde_json::json;
use sessionflow_core::memstore::{MemState, replay_in_memory};
use sessionflow_core::{Batch, DeadLetterReason, EngineConfig, Event, EventsKey, InputError, InputPosition, InputRecord, Millis, Output, RevisionReason};

fn abandoned_at(secs: f64) -> Vec<Event> {
    vec![ev("a", "session.started", 0.0, json!({})), ev("b", "queue.entered", 1.0, json!({})), ev("c", "session.ended", secs, json!({"ended_by": "end_user"}))]
}

/// An event of another session that moves the watermark to `secs`.
fn tick(id: &str, secs: f64) -> Event {
    ev_in(&format!("clock-{id}"), id, "session.started", secs, json!({}))
}

#[test]
fn final_record_when_the_watermark_passes_terminal_plus_finalize_after() {
    let mut events = abandoned_at(10.0);
    events.push(tick("t1", 10.0 + 14.0 * 60.0));
    let out = run_with(&EngineConfig::default(), &events[..]);
    // Only the end of the replay finalized it; before that, with the clock at 14 min, nothing.
    let before_end: Vec<_> = metadata(&out).into_iter().filter(|m| &*m.session_id == "s1").collect();
    assert!(before_end.iter().filter(|m| m.is_final).count() == 1);

    // With the clock past 15 min, the final record comes before the next event.
    let mut events = abandoned_at(10.0);
    events.push(tick("t1", 10.0 + 15.0 * 60.0));
    events.push(ev("late", "survey.response", 10.0 + 16.0 * 60.0, json!({"answers": [{"question": "CSAT", "kind": "csat", "value": 2}]})));
    let out = run(&events);
    let s1: Vec<_> = metadata(&out).into_iter().filter(|m| &*m.session_id == "s1").collect();
    let versions: Vec<u64> = s1.iter().map(|m| m.version).collect();
    // initiated, queued, abandoned (provisional), final, revision.
    assert_eq!(versions, vec![1, 2, 3, 4, 5], "gap-free versions");
    assert!(!s1[2].is_final && s1[3].is_final && s1[4].is_final);
    assert_eq!(s1[3].finalized_at.unwrap().0, T0 + 10_000 + 15 * 60_000);
    assert_eq!(s1[3].revision_reason, None);
    assert_eq!(s1[4].revision_reason, Some(RevisionReason::LateEvent));
    assert_eq!(s1[4].csat.as_ref().unwrap().rating.unwrap().0, 2.0);
    assert_eq!(s1[4].late_event_count, 1);
}

#[test]
fn expiry_after_session_timeout_of_event_time() {
    let mut events = connected();
    events.push(ev("h", "hold.started", 100.0, json!({})));
    events.push(tick("t1", 100.0 + 24.0 * 3600.0));
    let out = run(&events);
    let s1: Vec<_> = metadata(&out).into_iter().filter(|m| &*m.session_id == "s1").collect();
    let last = s1.last().unwrap();
    assert!(last.is_final);
    assert_eq!(last.state.as_str(), "expired");
    assert_eq!(last.outcome.map(|o| o.as_str()), Some("expired"));
    assert_eq!(last.open_intervals_closed, vec!["hold".to_owned()]);
    assert_eq!(last.hold_ms, 0, "hold closed at the last event, which started it");
    assert_eq!(last.finalized_at.unwrap().0, T0 + 100_000 + 24 * 3_600_000);
    assert_eq!(last.total_ms, Some(100_000));
}

#[test]
fn late_after_retention_goes_to_the_dead_letter_topic() {
    let mut events = abandoned_at(10.0);
    // Past finalize (15 min) + retain_after_final (24 h).
    events.push(tick("t1", 10.0 + 15.0 * 60.0 + 24.0 * 3600.0 + 1.0));
    events.push(ev("late", "rating.received", 20.0, json!({"rating": 1})));
    let out = run(&events);
    let dlq: Vec<_> = out.iter().filter_map(|o| if let Output::DeadLetter(d) = o { Some(d) } else { None }).collect();
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].reason, DeadLetterReason::LateAfterRetention);
    assert!(dlq[0].detail.contains("s1"));
    assert!(!timeline(&out).iter().any(|t| t.event_id == "late"));
}

#[test]
fn duplicates_are_dropped_and_counted_while_retained() {
    let mut events = abandoned_at(10.0);
    events.push(events[1].clone());
    let out = run(&events);
    assert_eq!(timeline(&out).len(), 3);
    assert_eq!(last(&out)["duplicate_count"], 1);
}

#[test]
fn erasure_deletes_state_writes_a_tombstone_and_suppresses_late_events() {
    let mut events = connected();
    events.push(ev("x", "session.erased", 20.0, json!({"reason": "gdpr"})));
    events.push(ev("late", "email.collected", 7.0, json!({"email": "a@b.c"})));
    events.push(events[0].clone());
    let (out, state) = replay_in_memory(&EngineConfig::default(), &events.iter().cloned().map(Ok).collect::<Vec<_>>(), 1);
    let after_erase = out.iter().position(|o| matches!(o, Output::Tombstone(id) if id == "s1")).expect("tombstone");
    assert!(out[after_erase + 1..].iter().all(|o| o.key() != Some(b"s1".as_slice())), "nothing of s1 after the erasure");
    assert!(!timeline(&out).iter().any(|t| t.event_id == "x" || t.event_id == "late"));
    assert!(!state.sessions.contains_key("s1") && state.events.keys().all(|(s, _)| s != "s1"));
}

#[test]
fn undecodable_records_become_dead_letters_with_their_reason_and_position() {
    let bad = InputError { reason: DeadLetterReason::BadFieldType, detail: "`session_id` must be a string".into() };
    let input = vec![Ok(ev("a", "session.started", 0.0, json!({}))), Err(bad.clone())];
    let (out, _) = replay_in_memory(&EngineConfig::default(), &input, 10);
    let dlq: Vec<_> = out.iter().filter_map(|o| if let Output::DeadLetter(d) = o { Some(d) } else { None }).collect();
    assert_eq!(dlq.len(), 1);
    assert_eq!((dlq[0].reason, dlq[0].detail.as_str(), dlq[0].input.offset), (bad.reason, bad.detail.as_str(), 1));
    let headers: Vec<&str> = dlq[0].headers().iter().map(|(k, _)| *k).collect();
    assert_eq!(headers, ["dlq.reason", "dlq.detail", "dlq.topic", "dlq.partition", "dlq.offset", "dlq.at"]);
}

#[test]
fn out_of_order_arrival_is_flagged_and_refolded() {
    let events = [
        ev("a", "session.started", 0.0, json!({})),
        ev("c", "agent.connected", 6.0, json!({"agent": "Ann"})),
        ev("b", "queue.entered", 1.0, json!({"queue": "Q"})),
    ];
    let out = run(&events);
    let t = timeline(&out);
    assert!(!t[1].out_of_order && t[2].out_of_order);
    assert_eq!(t[1].anomaly.map(|a| a.as_str()), Some("missing_assignment"));
    let m = last(&out);
    assert_eq!(m["queue_wait_ms"], 5000, "refolded with the queue visit in place");
    assert_eq!(m["late_event_count"], 1);
}

#[test]
fn short_abandon_in_self_service() {
    let events = [
        ev("a", "session.started", 0.0, json!({})),
        ev("b", "virtual_agent.started", 0.5, json!({})),
        ev("c", "session.ended", 3.0, json!({"ended_by": "end_user"})),
    ];
    let m = last(&run(&events));
    assert_eq!((m["state"].as_str(), m["abandon_phase"].as_str(), m["short_abandon"].as_bool()), (Some("abandoned"), Some("self_service"), Some(true)));
    let events = [events[0].clone(), events[1].clone(), ev("c", "session.ended", 6.0, json!({"ended_by": "end_user"}))];
    assert_eq!(last(&run(&events))["short_abandon"], false);
}

#[test]
fn provisional_records_follow_state_changes_only() {
    let mut events = connected();
    events.push(ev("n", "note.received", 7.0, json!({"text": "x"})));
    let out = run(&events);
    let states: Vec<&str> = metadata(&out).iter().map(|m| m.state.as_str()).collect();
    // initiated, queued, assigned, connected, then the final (expired at the end of the replay).
    assert_eq!(states, ["initiated", "queued", "assigned", "connected", "expired"]);
}

#[test]
fn outputs_do_not_depend_on_batch_size() {
    let input: Vec<Result<Event, InputError>> = sessionflow_core_test_input();
    let (one, _) = replay_in_memory(&EngineConfig::default(), &input, 1);
    for size in [2, 7, 1000] {
        let (other, _) = replay_in_memory(&EngineConfig::default(), &input, size);
        assert!(one == other, "batch size {size} changed the outputs");
    }
}

/// Hundreds of timers pending at once, many firing on one record: the
/// processor reads stored timers a page at a time, and what fires must not
/// depend on where batches (and so pages) start.
#[test]
fn many_pending_timers_fire_in_order_whatever_the_batch_size() {
    let sessions = 300;
    let mut input: Vec<Result<Event, InputError>> = Vec::new();
    for s in 0..sessions {
        let sid = format!("m{s:03}");
        // Starts and ends spread over 300 s: 300 finalization timers, 1 s apart.
        input.push(Ok(ev_in(&sid, "a", "session.started", f64::from(s), json!({}))));
        input.push(Ok(ev_in(&sid, "b", "session.ended", f64::from(s) + 0.5, json!({"ended_by": "end_user"}))));
    }
    // Clock events: the first fires about a third of them at once, the
    // second the rest; the last retires them all.
    for (i, at) in [1_000.0, 1_300.0, 200_000.0].into_iter().enumerate() {
        input.push(Ok(tick(&format!("t{i}"), at)));
    }
    let (one, _) = replay_in_memory(&EngineConfig::default(), &input, 1);
    let finals = metadata(&one).iter().filter(|m| m.is_final && m.session_id.starts_with('m')).count();
    assert_eq!(finals, sessions as usize, "every session finalized once");
    let order: Vec<&str> = metadata(&one).iter().filter(|m| m.is_final && m.session_id.starts_with('m')).map(|m| m.session_id.as_ref()).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted, "finalized in timer order");
    for size in [2, 64, 65, 5_000] {
        let (other, _) = replay_in_memory(&EngineConfig::default(), &input, size);
        assert!(one == other, "batch size {size} changed the outputs");
    }
}

fn sessionflow_core_test_input() -> Vec<Result<Event, InputError>> {
    let mut events = Vec::new();
    for s in 0..20 {
        let sid = format!("s{s}");
        let base = f64::from(s) * 400.0;
        events.push(Ok(ev_in(&sid, "a", "session.started", base, json!({}))));
        events.push(Ok(ev_in(&sid, "b", "queue.entered", base + 1.0, json!({}))));
        events.push(Ok(ev_in(&sid, "c", "session.ended", base + 30.0, json!({"ended_by": "end_user"}))));
        if s % 3 == 0 {
            events.push(Ok(ev_in(&sid, "d", "rating.received", base + 2000.0, json!({"rating": 3}))));
        }
    }
    events
}

/// Runs events in batches of `batch_size` over an in-memory state, without
/// the end-of-replay watermark (which would retire every session).
fn stored_after(events: &[Event], batch_size: usize) -> (Vec<Output>, MemState) {
    let config = EngineConfig::default();
    let mut state = MemState::default();
    let mut outputs = Vec::new();
    for (i, chunk) in events.chunks(batch_size).enumerate() {
        let Ok(mut batch) = Batch::new(&config, &state, Millis(0));
        for (j, event) in chunk.iter().enumerate() {
            let position = InputPosition { topic: "t".into(), partition: 0, offset: (i * batch_size + j) as i64 };
            let Ok(()) = batch.record(InputRecord { key: None, value: None, position, event: Ok(event.clone()) });
        }
        let result = batch.finish();
        outputs.extend(result.outputs);
        state.apply(result.writes);
    }
    (outputs, state)
}

#[test]
fn a_batch_stores_each_sessions_new_events_under_one_key_named_by_its_seq() {
    let mut events = connected();
    let n = events.len();
    events.push(ev_in("t", "t-a", "session.started", 1.0, json!({})));
    events.push(events[1].clone());

    // One batch: one chunk per session, the duplicate not in it.
    let (_, state) = stored_after(&events, 100);
    let keys: Vec<_> = state.events.iter().map(|((s, k), events)| (s.as_str(), k.clone(), events.len())).collect();
    assert_eq!(keys, vec![("s1", EventsKey::Chunk(n as u64), n), ("t", EventsKey::Chunk(1), 1)]);

    // One event per batch: a chunk per event, the duplicate found in the
    // chunks of earlier batches.
    let (out, state) = stored_after(&events, 1);
    let s1: Vec<_> = state.events.keys().filter(|(s, _)| s == "s1").map(|(_, k)| k.clone()).collect();
    assert_eq!(s1, (1..=n as u64).map(EventsKey::Chunk).collect::<Vec<_>>());
    assert_eq!(timeline(&out).len(), n + 1);
    assert_eq!(state.sessions["s1"].duplicate_count, 1);
}
