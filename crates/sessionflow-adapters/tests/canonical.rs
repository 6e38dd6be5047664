//! The canonical format through the adapter interface: one record, one
//! event, and the shared test helpers on the project's own example.

mod common;

use sessionflow_adapters::{AdapterOptions, InputFormat};

#[test]
fn canonical_records_pass_through_and_bad_ones_are_dead_letters() {
    let records = vec![
        r#"{"event_id":"e1","session_id":"s1","type":"session.started","occurred_at":"2026-03-01T10:00:00Z","channel":"chat"}"#.to_owned(),
        r#"{"event_id":"e2","session_id":"s1","type":"session.ended","occurred_at":"2026-03-01T10:05:00Z"}"#.to_owned(),
        "not json".to_owned(),
    ];
    let events = common::adapt_all(InputFormat::Canonical, &AdapterOptions::default(), &records);
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].as_ref().unwrap().event_id, "e1");
    assert!(events[2].is_err());
    let run = common::run(InputFormat::Canonical, &AdapterOptions::default(), &records);
    assert_eq!(run.timeline_types("s1"), ["session.started", "session.ended"]);
    assert_eq!(run.dead_letters().len(), 1);
    let last = &run.final_metadata()["s1"];
    assert_eq!(last["channel"], "chat");
    let shuffled = common::duplicated_and_shuffled(&records, 3);
    assert!(shuffled.len() >= records.len());
}
