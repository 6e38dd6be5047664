//! `docs/analytics.md` runs as written, and its schemas fit real records:
//!
//! - every timeline and metadata record a daemon wrote to the embedded
//!   broker, and every record of the replays of the example sessions
//!   (canonical and the five vendors), passes `check-jsonschema` with
//!   `schemas/json/`, and a record missing a field fails it;
//! - the page's Python consumer, run against that broker, prints exactly
//!   the latest final record of every session not erased;
//! - the page's DuckDB queries, run over replay files, give the figures
//!   computed here from the same records.
//!
//! Needs Python with `confluent-kafka` and `duckdb` in `$PYTHON` and
//! `check-jsonschema` (`.ci/run` installs them).

mod common;

use common::{INPUT, start_embedded_broker};
use rdkafka::Message;
use serde_json::{Value, json};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const TIMELINE: &str = "cc.sessions.timeline";
const METADATA: &str = "cc.sessions.metadata";

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())).join("../..")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `check-jsonschema` from the tools' virtual environment (where `.ci/run`
/// puts it), else from `PATH`.
fn check_jsonschema() -> PathBuf {
    let venv = std::env::var_os("SESSIONFLOW_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sessionflow-venv"));
    let tool = venv.join("bin/check-jsonschema");
    if tool.exists() { tool } else { PathBuf::from("check-jsonschema") }
}

/// Writes each record to a file of its own (the validator reads JSON
/// documents, not lines) and validates them all against `schema`.
fn validate(records: &[Value], schema: &str, dir: &Path) -> (bool, String) {
    std::fs::create_dir_all(dir).unwrap();
    let mut files = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let file = dir.join(format!("{i:06}.json"));
        std::fs::write(&file, serde_json::to_vec(record).unwrap()).unwrap();
        files.push(file);
    }
    assert!(!files.is_empty(), "no record to validate against {schema}");
    let out = Command::new(check_jsonschema())
        .arg("--schemafile")
        .arg(repo().join("schemas/json").join(schema))
        .args(&files)
        .output()
        .expect("check-jsonschema runs (.ci/run installs it into ~/.cache/sessionflow-venv)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn assert_valid(records: &[Value], schema: &str, dir: &Path) {
    let (valid, report) = validate(records, schema, dir);
    assert!(valid, "{} records against {schema}:\n{report}", records.len());
}

fn values(messages: &[rdkafka::message::OwnedMessage]) -> Vec<Value> {
    messages.iter().filter_map(|m| m.payload()).map(|p| serde_json::from_slice(p).expect("JSON output")).collect()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

fn replay(input: &Path, input_format: &str, out: &Path) {
    let run = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .arg("replay")
        .arg(input)
        .args(["--input-format", input_format, "--no-progress", "--out-dir"])
        .arg(out)
        .output()
        .unwrap();
    assert!(run.status.success(), "replay of {}: {}", input.display(), String::from_utf8_lossy(&run.stderr));
}

/// The latest final metadata record of every session that was not erased,
/// from records in topic order (a tombstone is `None`).
fn latest_final(records: impl IntoIterator<Item = (String, Option<Value>)>) -> BTreeMap<String, Value> {
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    for (session, record) in records {
        match record {
            None => {
                latest.remove(&session);
            }
            Some(r) if r["is_final"] == json!(true) && latest.get(&session).is_none_or(|kept| kept["version"].as_u64() < r["version"].as_u64()) => {
                latest.insert(session, r);
            }
            Some(_) => {}
        }
    }
    latest
}

#[test]
fn real_outputs_fit_the_json_schemas_and_the_python_consumer_keeps_the_latest_final_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessionflow.toml");
    common::write_daemon_config(
        &config,
        &dir.path().join("state"),
        "group_id = \"analytics\"\ninstance_id = \"analytics-1\"\ncommit_interval_ms = 50\ncreate_topics = false",
        "",
    );
    let (_broker, brokers) = start_embedded_broker(&config, 1);
    let sim = SimConfig { seed: 97, malformed_rate: 0.01, erasure_rate: 0.03, ..SimConfig::default() };
    testkit::produce(&brokers, INPUT, sim, 2_500, 0);
    common::run_to_the_end(&config, &brokers, 1);

    let timeline = testkit::read_all(&brokers, TIMELINE, 1);
    let metadata = testkit::read_all(&brokers, METADATA, 1);
    let tombstones = metadata.iter().filter(|m| m.payload().is_none()).count();
    assert!(tombstones > 0, "the input erases sessions, so the metadata topic holds tombstones");
    assert_valid(&values(&timeline), "timeline.schema.json", &dir.path().join("kafka-timeline"));
    let metadata_values = values(&metadata);
    assert_valid(&metadata_values, "metadata.schema.json", &dir.path().join("kafka-metadata"));

    // The validator can fail: a record without one of its fields.
    let mut broken = metadata_values[0].clone();
    broken.as_object_mut().unwrap().remove("handle_ms");
    let (valid, report) = validate(&[broken], "metadata.schema.json", &dir.path().join("broken"));
    assert!(!valid && report.contains("handle_ms"), "a record without `handle_ms` passed:\n{report}");

    // The page's consumer against the same topic.
    let out = Command::new(python())
        .arg(repo().join("tests/python/doc_examples.py"))
        .args(["python"])
        .arg(repo().join("docs/analytics.md"))
        .args(["latest_final.py", &brokers, METADATA])
        .output()
        .expect("python runs (CI installs confluent-kafka)");
    assert!(out.status.success(), "latest_final.py: {}", String::from_utf8_lossy(&out.stderr));
    let printed: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let expected =
        latest_final(metadata.iter().map(|m| (String::from_utf8(m.key().unwrap().to_vec()).unwrap(), m.payload().map(|p| serde_json::from_slice(p).unwrap()))));
    assert!(expected.len() > 20, "too few final sessions to show anything: {}", expected.len());
    let printed: BTreeMap<String, Value> = printed.into_iter().map(|r| (r["session_id"].as_str().unwrap().to_owned(), r)).collect();
    assert_eq!(printed.len(), expected.len(), "sessions printed by latest_final.py");
    assert!(printed == expected, "latest_final.py printed other records than the latest final ones");
}

#[test]
fn replays_of_the_examples_fit_the_json_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut timeline = Vec::new();
    let mut metadata = Vec::new();
    let mut inputs: Vec<(PathBuf, &str)> = Vec::new();
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            inputs.push((path, "canonical"));
        }
    }
    for vendor in ["amazon-connect", "genesys-cloud", "twilio-taskrouter", "zoom-contact-center", "ccai-platform"] {
        for entry in std::fs::read_dir(repo().join("examples/vendors").join(vendor)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                inputs.push((path, vendor));
            }
        }
    }
    let formats: BTreeSet<&str> = inputs.iter().map(|(_, f)| *f).collect();
    assert_eq!(formats.len(), 6, "examples of every input format: {formats:?}");
    for (i, (input, format)) in inputs.iter().enumerate() {
        let out = dir.path().join(format!("replay-{i}"));
        replay(input, format, &out);
        timeline.extend(jsonl(&out.join("timeline.jsonl")));
        metadata.extend(jsonl(&out.join("metadata.jsonl")).into_iter().filter(|r| r.get("tombstone").is_none()));
    }
    assert_valid(&timeline, "timeline.schema.json", &dir.path().join("timeline"));
    assert_valid(&metadata, "metadata.schema.json", &dir.path().join("metadata"));
}

#[test]
fn the_duckdb_queries_give_the_figures_of_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.jsonl");
    let simulate =
        Command::new(env!("CARGO_BIN_EXE_sessionflow")).args(["simulate", "--records", "6000", "--seed", "11", "--out"]).arg(&input).output().unwrap();
    assert!(simulate.status.success(), "{}", String::from_utf8_lossy(&simulate.stderr));
    // Two sessions erased at the end, so the queries must leave them out.
    let text = std::fs::read_to_string(&input).unwrap();
    let mut erased = Vec::new();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        if event["type"] == json!("session.started") && erased.len() < 2 {
            erased.push(event["session_id"].as_str().unwrap().to_owned());
        }
    }
    let mut text = text;
    for (i, session) in erased.iter().enumerate() {
        text.push_str(&format!(
            "{{\"event_id\":\"erase-{i}\",\"session_id\":\"{session}\",\"type\":\"session.erased\",\"occurred_at\":\"2030-01-01T00:00:00Z\"}}\n"
        ));
    }
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    replay(&input, "canonical", &out);

    let run = Command::new(python())
        .arg(repo().join("tests/python/doc_examples.py"))
        .arg("sql")
        .arg(repo().join("docs/analytics.md"))
        .arg(&out)
        .output()
        .expect("python runs (CI installs duckdb)");
    assert!(run.status.success(), "the DuckDB examples: {}", String::from_utf8_lossy(&run.stderr));
    let results: Value = serde_json::from_slice(&run.stdout).unwrap();
    let rows = |name: &str| results[name]["rows"].as_array().unwrap_or_else(|| panic!("no result for `{name}`: {results}")).clone();

    // The same figures from the records.
    let lines = jsonl(&out.join("metadata.jsonl"));
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    for record in &lines {
        let session = record["session_id"].as_str().unwrap().to_owned();
        if record.get("tombstone").is_some() {
            latest.remove(&session);
        } else if latest.get(&session).is_none_or(|kept| kept["version"].as_u64() < record["version"].as_u64()) {
            latest.insert(session, record.clone());
        }
    }
    for session in &erased {
        assert!(!latest.contains_key(session), "{session} was erased");
    }
    let finals: Vec<&Value> = latest.values().filter(|r| r["is_final"] == json!(true)).collect();
    assert_eq!(rows("session_count"), vec![json!([latest.len(), finals.len()])], "session_count");

    let mut handled: BTreeMap<String, u64> = BTreeMap::new();
    let mut abandoned: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut attempts = 0;
    for r in &finals {
        if r["handle_ms"].is_i64() && r["queue"].is_string() {
            *handled.entry(r["queue"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        if r["queued_at"].is_string() {
            let entry = abandoned.entry(r["channel"].as_str().unwrap_or_default().to_owned()).or_default();
            entry.0 += 1;
            entry.1 += u64::from(r["outcome"] == json!("abandoned") && r["short_abandon"] == json!(false));
        }
    }
    for r in latest.values() {
        attempts += r["transfers"].as_array().map_or(0, Vec::len) as u64;
    }
    let by_queue: BTreeMap<String, u64> = rows("handle_time_by_queue").iter().map(|r| (r[0].as_str().unwrap().to_owned(), r[1].as_u64().unwrap())).collect();
    assert!(!by_queue.is_empty(), "no handled session");
    assert_eq!(by_queue, handled, "handle_time_by_queue counts");
    let by_channel: BTreeMap<String, (u64, u64)> =
        rows("abandon_rate").iter().map(|r| (r[0].as_str().unwrap_or_default().to_owned(), (r[1].as_u64().unwrap(), r[2].as_u64().unwrap()))).collect();
    assert!(by_channel.values().any(|(_, a)| *a > 0), "no abandon to count: {by_channel:?}");
    assert_eq!(by_channel, abandoned, "abandon_rate (queued, abandoned) per channel");
    let transfer_rows: u64 = rows("transfers").iter().map(|r| r[4].as_u64().unwrap()).sum();
    assert!(attempts > 0, "no transfer to count");
    assert_eq!(transfer_rows, attempts, "transfer attempts");

    let transitions = jsonl(&out.join("timeline.jsonl")).iter().filter(|r| r["transition"] == json!(true)).count() as u64;
    let counted: u64 = rows("transitions").iter().map(|r| r[2].as_u64().unwrap()).sum();
    assert_eq!(counted, transitions, "transitions");
}
