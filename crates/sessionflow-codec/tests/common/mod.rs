//! Records for the tests: the spec's example sessions, replayed.

use sessionflow_core::memstore::replay_in_memory;
use sessionflow_core::{EngineConfig, Event, InputError, Output};

/// The events of every example session under `shared/spec/examples`.
pub fn example_events() -> Vec<Result<Event, InputError>> {
    let dir = format!("{}/../../../shared/spec/examples", env!("CARGO_MANIFEST_DIR"));
    let mut events = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        events.extend(text.lines().map(|l| Event::from_json_slice(l.as_bytes())));
    }
    events
}

/// The outputs of replaying the example sessions.
pub fn example_outputs() -> Vec<Output> {
    replay_in_memory(&EngineConfig::default(), &example_events(), 7).0
}
