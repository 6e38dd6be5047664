//! What the daemon writes to Kafka, read by an independent client: Python
//! `confluent-kafka` consumes the output topics (read_committed) and
//! `fastavro` decodes the Avro values with the schemas in `schemas/`. The
//! decoded records equal the engine's run over the input.

mod common;

use common::{INPUT, committed_offsets, end_offsets, engine, start_daemon, start_embedded_broker, wait_ready};
use sessionflow_kafka::testkit::{self, BySession};
use sessionflow_sim::SimConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())).join("../..")
}

#[derive(serde::Deserialize)]
struct ReadByPython {
    timeline: BySession,
    metadata: BySession,
    tombstones: usize,
    dead_letters: BTreeMap<String, usize>,
}

#[test]
fn confluent_kafka_and_fastavro_read_the_avro_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessionflow.toml");
    common::write_daemon_config(
        &config,
        &dir.path().join("state"),
        r#"
group_id = "independent"
commit_interval_ms = 50
create_topics = false
"#,
        r#"
[encoding]
output = "avro"
schema_ids = { event = 1, timeline = 41, metadata = 42 }
"#,
    );
    let (_broker, brokers) = start_embedded_broker(&config, PARTITIONS);
    let sent = testkit::produce(&brokers, INPUT, SimConfig { seed: 31, malformed_rate: 0.01, erasure_rate: 0.05, ..SimConfig::default() }, 2_500, 0);
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent);
    let end = end_offsets(&input, PARTITIONS);

    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut daemon = start_daemon(&config, "daemon", &brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_offsets(&metrics, PARTITIONS) != end {
        assert!(Instant::now() < deadline && !daemon.exited(), "did not finish: {:?} of {end:?}\n{}", committed_offsets(&metrics, PARTITIONS), daemon.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());

    let out = dir.path().join("read.json");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let run = Command::new(python)
        .arg(repo().join("tests/python/read_outputs.py"))
        .args([brokers.as_str(), repo().join("schemas").to_str().unwrap(), "41", "42", out.to_str().unwrap()])
        .output()
        .expect("python3 runs (CI installs confluent-kafka and fastavro)");
    assert!(run.status.success(), "read_outputs.py failed:\n{}\n{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let read: ReadByPython = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();

    let expected = testkit::reference_run(&input, PARTITIONS, &engine());
    let exp_timeline = testkit::outputs_by_session(&expected, true);
    assert!(exp_timeline.len() > 50);
    if let Some(diff) = testkit::first_difference(&exp_timeline, &read.timeline) {
        panic!("timeline as Python reads it: {diff}");
    }
    if let Some(diff) = testkit::first_difference(&testkit::outputs_by_session(&expected, false), &read.metadata) {
        panic!("metadata as Python reads it: {diff}");
    }
    let tombstones = expected.iter().filter(|o| matches!(o, sessionflow_core::Output::Tombstone(_))).count();
    assert!(tombstones > 0, "the input erases sessions");
    assert_eq!(read.tombstones, tombstones);
    assert_eq!(read.dead_letters, testkit::expected_dead_letter_reasons(&expected));
}
