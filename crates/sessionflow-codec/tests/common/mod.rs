//! Records for the tests: the repository's example sessions, replayed.

use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{EngineConfig, Event, InputError, Output};

/// The events of every example session in `examples/*.jsonl`, file by file
/// in name order (subfolders and other files are not sessions).
pub fn example_events() -> Vec<Result<Event, InputError>> {
    let dir = format!("{}/../../examples", std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{dir}: the example sessions");
    let mut events = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        events.extend(text.lines().filter(|l| !l.trim().is_empty()).map(|l| Event::from_json_slice(l.as_bytes())));
    }
    events
}

/// The outputs of replaying the example sessions.
pub fn example_outputs() -> Vec<Output> {
    replay_in_memory(&EngineConfig::default(), &example_events(), 7).0
}
