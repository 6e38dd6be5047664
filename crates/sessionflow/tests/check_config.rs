//! `sessionflow check-config` as an operator runs it: the effective
//! configuration from the file, the environment and `--set`, with no
//! secret printed (set in the file, the environment, or a file); and with
//! `--connect`, the topics and group checked on a broker (the embedded
//! one): ready, then a topic missing.

mod common;

use common::start_embedded_broker;
use std::path::Path;
use std::process::{Command, Output};

fn check_config(config: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .env_remove("SESSIONFLOW_KAFKA_BROKERS")
        .envs(env.iter().copied())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("sessionflow runs")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn secrets_from_anywhere_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("sasl-password");
    std::fs::write(&secret_file, "from-a-file-secret\n").unwrap();
    let config = dir.path().join("sessionflow.toml");
    std::fs::write(
        &config,
        format!(
            "[privacy]\ncontact = \"hash\"\n[kafka]\nbrokers = \"${{BROKERS}}\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\
             \"sasl.password_file\" = {:?}\n\"ssl.key.password\" = \"in-the-file-secret\"\n",
            secret_file.display().to_string()
        ),
    )
    .unwrap();
    let out = check_config(
        &config,
        &[("SESSIONFLOW_PRIVACY_HMAC_KEY", "from-the-environment-secret"), ("BROKERS", "kafka-1:9092"), ("SESSIONFLOW_KAFKA_GROUP_ID", "from-env")],
        &["--set", "kafka.commit_interval_ms=250", "check-config"],
    );
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    for secret in ["from-a-file-secret", "in-the-file-secret", "from-the-environment-secret"] {
        assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
    }
    for shown in
        ["brokers = \"kafka-1:9092\"", "group_id = \"from-env\"", "commit_interval_ms = 250", "\"sasl.password\" = \"<redacted>\"", "hmac_key = \"<redacted>\""]
    {
        assert!(printed.contains(shown), "{shown} not in:\n{printed}");
    }

    // A typo in a variable name is said, not ignored.
    let out = check_config(&config, &[("SESSIONFLOW_PRIVACY_HMAC_KEY", "k"), ("BROKERS", "b:9092"), ("SESSIONFLOW_KAFKA_GRUOP_ID", "x")], &["check-config"]);
    assert!(out.status.success() && text(&out).contains("unknown environment variable SESSIONFLOW_KAFKA_GRUOP_ID"), "{}", text(&out));
    // A variable the file needs and nobody set stops start-up naming both.
    let out = check_config(&config, &[("SESSIONFLOW_PRIVACY_HMAC_KEY", "k")], &["check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("kafka.brokers") && text(&out).contains("BROKERS"), "{}", text(&out));
}

#[test]
fn connect_checks_the_topics_and_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessionflow.toml");
    common::write_daemon_config(&config, &dir.path().join("state"), "group_id = \"checked\"\ncreate_topics = false\n", "");
    let (_broker, brokers) = start_embedded_broker(&config, 2);
    let out = check_config(&config, &[("SESSIONFLOW_KAFKA_BROKERS", &brokers)], &["check-config", "--connect"]);
    assert!(out.status.success(), "{}", text(&out));
    // The embedded broker does not describe groups: the group line says so.
    for line in ["topic cc.events.raw: ok, 2 partition(s)", "topic checked-sessionflow-changelog: ok", "group checked: not checked"] {
        assert!(text(&out).contains(line), "{line} not in:\n{}", text(&out));
    }
    // Another group's internal topics do not exist on this broker.
    let out = check_config(&config, &[("SESSIONFLOW_KAFKA_BROKERS", &brokers)], &["--set", "kafka.group_id=other", "check-config", "--connect"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("topic other-sessionflow-changelog: MISSING"), "{}", text(&out));
}
