//! Per-session bounds: an event that would take its session past one is not
//! applied but dead-lettered as `oversize`, naming the bound; the session
//! counts it as a `session_bound_exceeded` anomaly, and the other sessions
//! flow as if it had never come.

mod common;
use common::*;
use serde_json::{Value, json};
use sessionflow_core::{DeadLetterReason, EngineConfig, Event, Output};

/// Runs `events` with and without the records at `rejected` (offsets kept)
/// and checks that those, and only those, are dead letters naming `key`,
/// that every other output is the same in both runs (the bounded session's
/// final record but for its anomaly count), and that the accounting holds.
/// Returns the run with them.
fn check_bound(config: &EngineConfig, events: &[Event], bounded: &str, rejected: &[i64], key: &str) -> Driven {
    let with = numbered(events);
    let without: Vec<(i64, Event)> = with.iter().filter(|(o, _)| !rejected.contains(o)).cloned().collect();
    let mut last = None;
    for batch_size in [1, 3, 1000] {
        let a = drive(config, &with, batch_size, None, true);
        let b = drive(config, &without, batch_size, None, true);
        let dlq = a.dead_letters();
        let offsets: Vec<i64> = dlq.iter().map(|d| d.input.offset).collect();
        assert_eq!(offsets, rejected, "batch size {batch_size}");
        for d in &dlq {
            assert_eq!(d.reason, DeadLetterReason::Oversize);
            assert!(d.detail.contains(key) && d.detail.contains(bounded), "{}", d.detail);
            assert!(d.value.is_some(), "the original value, for a replay once fixed");
        }
        assert!(b.dead_letters().is_empty());
        assert!(timeline(&a.outputs) == timeline(&b.outputs), "batch size {batch_size}: the same timeline");
        let others = |d: &Driven| -> Vec<Output> {
            d.records().into_iter().filter(|o| !matches!(o, Output::Metadata(m) if &*m.session_id == bounded)).cloned().collect()
        };
        assert!(others(&a) == others(&b), "batch size {batch_size}: the other sessions flow unchanged");
        // The bounded session's records: the same, but for the anomaly.
        let bounded_records = |d: &Driven| -> Vec<Value> {
            metadata(&d.outputs)
                .into_iter()
                .filter(|m| &*m.session_id == bounded)
                .map(|m| {
                    let mut v = serde_json::to_value(m).unwrap();
                    v.as_object_mut().unwrap().shift_remove("anomalies");
                    v.as_object_mut().unwrap().shift_remove("anomaly_count");
                    v
                })
                .collect()
        };
        assert_eq!(bounded_records(&a), bounded_records(&b));
        let final_a = metadata(&a.outputs).into_iter().rfind(|m| &*m.session_id == bounded).expect("a final record");
        let final_b = metadata(&b.outputs).into_iter().rfind(|m| &*m.session_id == bounded).expect("a final record");
        let counted = serde_json::to_value(&final_a.anomalies).unwrap()["session_bound_exceeded"].as_u64();
        assert_eq!(counted, Some(rejected.len() as u64), "the session records the anomaly");
        assert_eq!(final_a.anomaly_count, final_b.anomaly_count + rejected.len() as u32);
        let stats_anomalies: u64 = a.stats.anomalies.iter().filter(|(k, _)| k.as_str() == "session_bound_exceeded").map(|(_, n)| *n).sum();
        assert_eq!(stats_anomalies, rejected.len() as u64);
        assert_eq!(a.stats.dead_lettered.get(&DeadLetterReason::Oversize).copied(), Some(rejected.len() as u64));
        a.assert_accounting();
        b.assert_accounting();
        last = Some(a);
    }
    last.expect("ran")
}

/// A session `s2` alongside, well within every bound: its two events come
/// after the first and the second of `events` (so those of `events` from
/// the third on are at offsets `index + 2`).
fn with_neighbour(events: Vec<Event>) -> Vec<Event> {
    let mut out = events;
    out.insert(1, ev_in("s2", "n0", "session.started", 0.5, json!({})));
    out.insert(3, ev_in("s2", "n1", "note.received", 1.5, json!({"text": "x"})));
    out
}

#[test]
fn events_per_session() {
    let config = EngineConfig { max_events_per_session: 5, ..EngineConfig::default() };
    let mut events = vec![ev("a", "session.started", 0.0, json!({}))];
    for i in 1..7 {
        events.push(ev(&format!("n{i}"), "note.received", f64::from(i), json!({"text": "x"})));
    }
    // A duplicate of an accepted event stays a duplicate, bound or not.
    events.push(ev("n2", "note.received", 2.0, json!({"text": "x"})));
    let events = with_neighbour(events);
    // s1's 6th and 7th events.
    let out = check_bound(&config, &events, "s1", &[7, 8], "engine.max_events_per_session");
    assert!(out.dead_letters()[0].detail.contains("5 events"), "{}", out.dead_letters()[0].detail);
    assert_eq!(out.stats.duplicates, 1);
}

#[test]
fn bytes_per_session() {
    let small = |id: &str, t: f64| ev(id, "note.received", t, json!({"text": "x"}));
    let size = |e: &Event| serde_json::to_vec(e).unwrap().len() as u64;
    let first = [ev("a", "session.started", 0.0, json!({})), small("b", 1.0), small("c", 2.0)];
    let big = ev("d", "note.received", 3.0, json!({"text": "y".repeat(300)}));
    let fits = small("e", 4.0);
    let bound = first.iter().map(size).sum::<u64>() + size(&fits);
    let config = EngineConfig { max_session_bytes: bound, ..EngineConfig::default() };
    let mut events = first.to_vec();
    events.push(big);
    events.push(fits);
    // Full now: the next one does not fit.
    events.push(small("f", 5.0));
    let events = with_neighbour(events);
    let out = check_bound(&config, &events, "s1", &[5, 7], "engine.max_session_bytes");
    assert!(out.dead_letters()[0].detail.contains(&format!("{bound} bytes")), "{}", out.dead_letters()[0].detail);
}

#[test]
fn an_event_larger_than_the_session_bound_opens_no_session() {
    let config = EngineConfig { max_session_bytes: 400, ..EngineConfig::default() };
    let events = [ev_in("big", "a", "session.started", 0.0, json!({"menu_path": "z".repeat(500)})), ev_in("s2", "b", "session.started", 1.0, json!({}))];
    let out = drive(&config, &numbered(&events), 1, None, false);
    assert_eq!(out.dead_letters().len(), 1);
    assert!(!out.state.sessions.contains_key("big"), "no entry without a timer to retire it");
    assert!(!out.state.timers.iter().any(|t| &*t.session_id == "big"));
    assert!(out.state.sessions.contains_key("s2"));
    out.assert_accounting();
}

#[test]
fn entries_per_list() {
    let config = EngineConfig { max_list_entries: 3, ..EngineConfig::default() };
    let pay = |id: &str, t: f64| ev(id, "payment.processed", t, json!({"amount": "1.00", "currency": "EUR"}));
    let events = vec![ev("a", "session.started", 0.0, json!({})), pay("p1", 1.0), pay("p2", 2.0), pay("p3", 3.0), pay("p4", 4.0)];
    let out = check_bound(&config, &with_neighbour(events), "s1", &[6], "engine.max_list_entries");
    assert!(out.dead_letters()[0].detail.contains("3 payments"), "{}", out.dead_letters()[0].detail);

    // Survey answers: one event can add several.
    let answers = |n: usize| json!({"answers": (0..n).map(|i| json!({"question": format!("q{i}"), "kind": "stars", "value": 3})).collect::<Vec<_>>()});
    let events = vec![
        ev("a", "session.started", 0.0, json!({})),
        ev("s1", "survey.response", 1.0, answers(2)),
        ev("s2", "survey.response", 2.0, answers(2)),
        ev("s3", "survey.response", 3.0, answers(1)),
    ];
    let out = check_bound(&config, &with_neighbour(events), "s1", &[4], "engine.max_list_entries");
    assert!(out.dead_letters()[0].detail.contains("survey"), "{}", out.dead_letters()[0].detail);

    // Queue visits, with the last arriving out of order (a refold).
    let events = vec![
        ev("a", "session.started", 0.0, json!({})),
        ev("q1", "queue.entered", 10.0, json!({"queue": "Q1"})),
        ev("q2", "queue.entered", 20.0, json!({"queue": "Q2"})),
        ev("q3", "queue.entered", 30.0, json!({"queue": "Q3"})),
        ev("q0", "queue.entered", 5.0, json!({"queue": "Q0"})),
    ];
    let out = check_bound(&config, &with_neighbour(events), "s1", &[6], "engine.max_list_entries");
    assert!(out.dead_letters()[0].detail.contains("queues"), "{}", out.dead_letters()[0].detail);
}

#[test]
fn custom_data_bytes() {
    let config = EngineConfig { max_custom_data_bytes: 64, ..EngineConfig::default() };
    let events = vec![
        ev("a", "session.started", 0.0, json!({})),
        // {"a":"xxxxxxxxxxxxxxxxxxxx"}: 28 bytes.
        ev("c1", "custom_data.received", 1.0, json!({"a": "x".repeat(20)})),
        // Merged: 28 + 1 + 46 = 75 bytes, past 64.
        ev("c2", "custom_data.received", 2.0, json!({"b": "y".repeat(40)})),
        // Replaces `a`: smaller, fits.
        ev("c3", "custom_data.received", 3.0, json!({"a": "z"})),
    ];
    let out = check_bound(&config, &with_neighbour(events), "s1", &[4], "engine.max_custom_data_bytes");
    assert!(out.dead_letters()[0].detail.contains("custom_data"), "{}", out.dead_letters()[0].detail);

    // The virtual agent's variables are merged the same way.
    let events = vec![
        ev("a", "session.started", 0.0, json!({})),
        ev("v1", "virtual_agent.variables_captured", 1.0, json!({"variables": {"a": "x".repeat(20)}})),
        ev("v2", "virtual_agent.variables_captured", 2.0, json!({"variables": {"b": "y".repeat(40)}})),
    ];
    check_bound(&config, &with_neighbour(events), "s1", &[4], "engine.max_custom_data_bytes");
}

#[test]
fn the_defaults_are_documented_ones() {
    let c = EngineConfig::default();
    assert_eq!(
        (c.max_future_skew_ms, c.min_event_time_ms, c.max_events_per_session, c.max_session_bytes, c.max_list_entries, c.max_custom_data_bytes),
        (3_600_000, 86_400_000, 10_000, 524_288, 1_000, 65_536)
    );
}
