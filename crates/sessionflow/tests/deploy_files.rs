//! What `deploy/` ships is checked by the tools that read it: the config by
//! `sessionflow check-config`, the alert rules by `promtool` (checked, and
//! unit-tested by `alerts.test.yml`), the topic
//! script by `bash -n`; and every metric the rules and the dashboard query
//! is one the daemon exports.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Metric names a text mentions, without histogram suffixes.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sessionflow_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        names.insert(name.to_owned());
        rest = &tail[end..];
    }
    names
}

/// The metric names the daemon registers (its metrics module is their one source).
fn exported() -> BTreeSet<String> {
    let source = read("crates/sessionflow-kafka/src/metrics.rs");
    source.split('"').filter(|s| s.starts_with("sessionflow_") && !s.contains(' ')).map(str::to_owned).collect()
}

#[test]
fn the_example_config_passes_check_config() {
    let config = repo().join("deploy/sessionflow.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .args(["--config", config.to_str().unwrap(), "check-config"])
        .env_remove("SESSIONFLOW_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("delivery = \"exactly_once\""), "{text}");
    assert!(text.contains("create_topics = false"), "{text}");
}

#[test]
fn alert_rules_pass_promtool_and_query_exported_metrics() {
    let path = repo().join("deploy/prometheus/alerts.yml");
    let out = Command::new("promtool").args(["check", "rules", path.to_str().unwrap()]).output().expect("promtool (CI installs the prometheus package)");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let used = metric_names(&read("deploy/prometheus/alerts.yml"));
    assert!(used.len() >= 6, "{used:?}");
    let exported = exported();
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(unknown.is_empty(), "alert rules query metrics the daemon does not export: {unknown:?}");
}

/// Every alert fires on the instance in trouble and stays quiet on a
/// healthy one (`deploy/prometheus/alerts.test.yml`), and every alert has
/// a test and a runbook entry.
#[test]
fn every_alert_has_a_passing_promtool_test_and_a_runbook_entry() {
    let tests = repo().join("deploy/prometheus/alerts.test.yml");
    let out = Command::new("promtool").args(["test", "rules", tests.to_str().unwrap()]).output().expect("promtool (CI installs the prometheus package)");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let rules = read("deploy/prometheus/alerts.yml");
    let (tested, runbook) = (read("deploy/prometheus/alerts.test.yml"), read("docs/runbook.md"));
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    assert!(alerts.len() >= 8, "{alerts:?}");
    for alert in alerts {
        assert!(tested.contains(&format!("alertname: {alert}")), "{alert} has no promtool test");
        assert!(rules.contains(&format!("docs/runbook.md#{}", alert.to_lowercase())), "{alert} has no runbook_url");
        assert!(runbook.contains(&format!("## {alert}")), "docs/runbook.md has no section for {alert}");
    }
}

#[test]
fn the_dashboard_queries_exported_metrics() {
    let dashboard: serde_json::Value = serde_json::from_str(&read("deploy/grafana/sessionflow.json")).expect("dashboard JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    let exprs: Vec<&str> = panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten()).filter_map(|t| t["expr"].as_str()).collect();
    assert!(exprs.len() >= panels.len(), "every panel has a query");
    let used = metric_names(&exprs.join("\n"));
    let exported = exported();
    let unknown: Vec<_> = used.difference(&exported).collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics the daemon does not export: {unknown:?}");
}

#[test]
fn the_topic_script_parses_and_names_the_daemons_topics() {
    let script_path = repo().join("deploy/create-topics.sh");
    let out = Command::new("bash").args(["-n", script_path.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let script = read("deploy/create-topics.sh");
    let topics = sessionflow_kafka::TopicsSection::default();
    for name in [&topics.timeline, &topics.metadata, &topics.dead_letter] {
        assert!(script.contains(&format!("create {name} ")), "{name} is not created");
    }
    for internal in [sessionflow_kafka::TopicsSection::changelog("$GROUP"), sessionflow_kafka::TopicsSection::repartition("$GROUP")] {
        assert!(script.contains(&format!("create \"{internal}\"")), "{internal} is not created");
    }
    assert!(script.contains("create cc.sessions.metadata --config cleanup.policy=compact"), "metadata is compacted");
    assert!(script.contains("sessionflow-changelog\" --config cleanup.policy=compact"), "the changelog is compacted");
}
