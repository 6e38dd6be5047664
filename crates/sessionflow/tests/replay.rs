//! `sessionflow replay`, end to end through the binary.

use serde_json::Value;
use sessionflow_codec::Codec;
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sessionflow"))
}

fn repo() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())).join("../..")
}

fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

fn replay(input: &Path, out: &Path, extra: &[&str]) -> String {
    let output = bin().arg("replay").arg(input).arg("--out-dir").arg(out).args(extra).output().unwrap();
    assert!(output.status.success(), "replay failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Simulated traffic (late, duplicate, out-of-order, malformed records
/// included) as a JSONL file.
fn sim_file(dir: &Path, records: usize, seed: u64) -> PathBuf {
    let codec = Codec::json();
    let mut text = Vec::new();
    let config = SimConfig { seed, erasure_rate: 0.01, malformed_rate: 0.003, ..SimConfig::default() };
    for record in Simulator::new(config).take(records) {
        match record {
            SimRecord::Event(e) => text.extend(codec.encode_event(&e).unwrap()),
            SimRecord::Malformed { value, .. } if value.len() < 100_000 => text.extend(value.iter().map(|b| if *b == b'\n' { b' ' } else { *b })),
            SimRecord::Malformed { .. } => continue,
        }
        text.push(b'\n');
    }
    let path = dir.join("sim.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn voice_example_final_record_has_the_hand_worked_figures() {
    // The figures are worked out in crates/sessionflow-core/tests/examples.rs.
    let out = tempfile::tempdir().unwrap();
    let summary = replay(&example("voice-transfer-with-survey.jsonl"), out.path(), &[]);
    assert!(summary.contains("21 records"), "{summary}");
    assert!(summary.contains("balanced"), "{summary}");
    let metadata = lines(&out.path().join("metadata.jsonl"));
    let finals: Vec<&Value> = metadata.iter().filter(|m| m["is_final"] == true).collect();
    assert_eq!(finals.len(), 1);
    let m = finals[0];
    for (k, v) in [
        ("handle_ms", 574_000),
        ("queue_wait_ms", 110_000),
        ("ring_ms", 16_000),
        ("talk_ms", 414_000),
        ("hold_ms", 40_000),
        ("hold_count", 1),
        ("wrapup_ms", 60_000),
        ("self_service_ms", 31_000),
        ("total_ms", 600_000),
        ("transfer_count", 1),
        ("offers", 2),
        ("declines", 1),
    ] {
        assert_eq!(m[k], v, "{k}");
    }
    assert_eq!((m["outcome"].as_str(), m["state"].as_str(), m["answer_type"].as_str()), (Some("completed"), Some("ended"), Some("human")));
    assert_eq!(m["csat"]["rating"], 5);
    assert_eq!(lines(&out.path().join("timeline.jsonl")).len(), 21);
    assert_eq!(std::fs::read_to_string(out.path().join("dead_letter.jsonl")).unwrap(), "");
}

#[test]
fn the_other_examples() {
    let out = tempfile::tempdir().unwrap();
    let last = |name: &str| {
        replay(&example(name), out.path(), &[]);
        lines(&out.path().join("metadata.jsonl")).pop().unwrap()
    };
    let chat = last("chat-abandoned-in-queue.jsonl");
    assert_eq!((chat["outcome"].as_str(), chat["abandon_phase"].as_str()), (Some("abandoned"), Some("queued")));
    assert_eq!(last("email-released-and-reassigned.jsonl")["duplicate_count"], 1);
    assert_eq!(last("voice-deflected-to-sms.jsonl")["state"], "deflected");
}

#[test]
fn same_input_gives_byte_identical_output_and_gap_free_versions() {
    let dir = tempfile::tempdir().unwrap();
    let input = sim_file(dir.path(), 30_000, 21);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let summary = replay(&input, &a, &[]);
    replay(&input, &b, &["--batch-size", "37"]);
    for file in ["timeline.jsonl", "metadata.jsonl", "dead_letter.jsonl"] {
        let (x, y) = (std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap());
        assert!(x == y, "{file} differs between runs");
        assert!(!x.is_empty(), "{file} is empty");
    }
    assert!(summary.contains("balanced"), "{summary}");

    // Every metadata version is written, in order, per session; all sessions end final.
    let mut versions: std::collections::HashMap<String, (u64, bool)> = Default::default();
    let mut tombstoned = std::collections::HashSet::new();
    for m in lines(&a.join("metadata.jsonl")) {
        let id = m["session_id"].as_str().unwrap().to_owned();
        if m["tombstone"] == true {
            tombstoned.insert(id);
            continue;
        }
        assert!(!tombstoned.contains(&id), "{id}: a record after its tombstone");
        let v = m["version"].as_u64().unwrap();
        let entry = versions.entry(id.clone()).or_insert((0, false));
        assert_eq!(v, entry.0 + 1, "{id}: version {v} after {}", entry.0);
        *entry = (v, m["is_final"] == true);
    }
    assert!(!tombstoned.is_empty(), "the input erased some sessions");
    let open: Vec<_> = versions.iter().filter(|(id, (_, fin))| !fin && !tombstoned.contains(*id)).collect();
    assert!(open.is_empty(), "sessions not finalized at the end of the replay: {:?}", &open[..open.len().min(5)]);

    // Accounting from the files: every input line is in exactly one place.
    let input_lines = std::fs::read_to_string(&input).unwrap().lines().count();
    let timeline = lines(&a.join("timeline.jsonl")).len();
    let dlq = lines(&a.join("dead_letter.jsonl"));
    let reasons: std::collections::BTreeSet<&str> = dlq.iter().map(|d| d["headers"]["dlq.reason"].as_str().unwrap()).collect();
    assert!(reasons.is_superset(&["bad_field_type", "bad_timestamp", "decode_error", "missing_field"].into()), "{reasons:?}");
    let number = |label: &str| -> usize {
        let line = summary.lines().find(|l| l.trim_start().starts_with(label)).unwrap();
        line.split_whitespace().find_map(|w| w.parse().ok()).unwrap()
    };
    assert_eq!(input_lines, timeline + dlq.len() + number("duplicates dropped") + number("erased (suppressed)"));
}

#[test]
fn stdin_and_avro_container_input_give_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = example("voice-transfer-with-survey.jsonl");
    let from_file = dir.path().join("file");
    replay(&jsonl, &from_file, &[]);

    let from_stdin = dir.path().join("stdin");
    let mut child = bin().args(["replay", "-", "--out-dir"]).arg(&from_stdin).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &std::fs::read(&jsonl).unwrap()).unwrap();
    assert!(child.wait().unwrap().success());

    // The same events as an Avro object container file.
    let codec = Codec::avro();
    let schema = codec.schemas.schema(sessionflow_codec::avro::RecordKind::Event);
    let mut writer = apache_avro::Writer::new(schema, Vec::new());
    for line in std::fs::read_to_string(&jsonl).unwrap().lines() {
        let event = sessionflow_core::Event::from_json_slice(line.as_bytes()).unwrap();
        writer.append(sessionflow_codec::avro::json_to_avro(&event.to_json(), schema, false, "").unwrap()).unwrap();
    }
    let ocf = dir.path().join("events.avro");
    std::fs::write(&ocf, writer.into_inner().unwrap()).unwrap();
    let from_avro = dir.path().join("avro");
    replay(&ocf, &from_avro, &[]);

    let metadata = |d: &Path| std::fs::read(d.join("metadata.jsonl")).unwrap();
    assert_eq!(metadata(&from_file), metadata(&from_stdin));
    assert_eq!(metadata(&from_file), metadata(&from_avro));
    // Provenance differs (file name, stdin, container), the records do not.
    let strip = |d: &Path| -> Vec<Value> {
        lines(&d.join("timeline.jsonl"))
            .into_iter()
            .map(|mut t| {
                t.as_object_mut().unwrap().shift_remove("input");
                t
            })
            .collect()
    };
    assert_eq!(strip(&from_file), strip(&from_stdin));
    assert_eq!(strip(&from_file), strip(&from_avro));
}

#[test]
fn avro_output_files_are_read_by_fastavro_with_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let input = sim_file(dir.path(), 4_000, 8);
    let (json_dir, avro_dir) = (dir.path().join("json"), dir.path().join("avro"));
    replay(&input, &json_dir, &[]);
    replay(&input, &avro_dir, &["--format", "avro"]);
    assert!(avro_dir.join("timeline.avro").exists() && avro_dir.join("metadata.avro").exists());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(python)
        .arg(repo().join("tests/python/check_avro.py"))
        .arg(repo().join("schemas"))
        .arg(&avro_dir)
        .arg(&json_dir)
        .output()
        .expect("python3 runs (CI installs fastavro)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "fastavro check failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("3 schemas parsed"), "{stdout}");
    assert!(stdout.contains("'timeline': ") && stdout.contains("'metadata': "), "{stdout}");
}

#[test]
fn config_errors_stop_with_the_key_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[privacy]\ncontact = \"hash\"\n").unwrap();
    let output = bin().arg("--config").arg(&config).arg("check-config").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("privacy.hmac_key") && stderr.contains("SESSIONFLOW_PRIVACY_HMAC_KEY"), "{stderr}");
    let ok = bin().arg("check-config").env("SESSIONFLOW_ENGINE_FINALIZE_AFTER", "5m").output().unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("finalize_after = \"5m\""));
}

#[test]
fn privacy_policy_applies_to_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("pii.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"event_id":"1","session_id":"p","type":"session.started","occurred_at":"2024-01-01T00:00:00Z","channel":"voice","attributes":{"ani":"+15550001"}}"#, "\n",
            r#"{"event_id":"2","session_id":"p","type":"email.collected","occurred_at":"2024-01-01T00:00:01Z","attributes":{"email":"ann@example.com"}}"#, "\n",
            r#"{"event_id":"3","session_id":"p","type":"rating.received","occurred_at":"2024-01-01T00:00:02Z","attributes":{"rating":2,"comment":"rude"}}"#, "\n",
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let status = bin()
        .args(["replay"])
        .arg(&input)
        .arg("--out-dir")
        .arg(&out)
        .env("SESSIONFLOW_PRIVACY_CONTACT", "hash")
        .env("SESSIONFLOW_PRIVACY_TEXT", "drop")
        .env("SESSIONFLOW_PRIVACY_HMAC_KEY", "test-key")
        .status()
        .unwrap();
    assert!(status.success());
    let all = format!("{}{}", std::fs::read_to_string(out.join("timeline.jsonl")).unwrap(), std::fs::read_to_string(out.join("metadata.jsonl")).unwrap());
    for secret in ["+15550001", "ann@example.com", "rude"] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    let m = lines(&out.join("metadata.jsonl")).pop().unwrap();
    assert_eq!(m["email"].as_str().unwrap().len(), 64, "hashed email is hex HMAC-SHA-256");
    assert_eq!(m["csat"]["comment"], Value::Null);
}

/// A vendor's native record over `encoding.max_event_bytes` is an
/// `oversize` dead letter before its adapter reads it, as a canonical one
/// is (before, only canonical records were measured).
#[test]
fn a_vendor_record_over_max_event_bytes_is_oversize() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("zoom.jsonl");
    let fixture = std::fs::read_to_string(example("vendors/zoom-contact-center/answered.jsonl")).unwrap();
    let mut records: Vec<Value> = fixture.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    records[1]["payload"]["padding"] = Value::String("x".repeat(4_000));
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    replay(&input, &out, &["--input-format", "zoom-contact-center", "--set", "encoding.max_event_bytes=2048", "--no-progress"]);
    let dead = lines(&out.join("dead_letter.jsonl"));
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["headers"]["dlq.reason"], "oversize");
    assert!(dead[0]["headers"]["dlq.detail"].as_str().unwrap().contains("max_event_bytes = 2048"), "{dead:?}");
}
