//! The dashboard and the alert rules against a real Prometheus server
//! (Debian's `prometheus`, installed by CI): it scrapes `sessionflow demo`
//! every second with `deploy/prometheus/alerts.yml` loaded; then every
//! query of every panel of `deploy/grafana/sessionflow.json` runs through
//! Prometheus' HTTP API, and the test fails on a query that errors or
//! returns no series, or on a rule Prometheus could not evaluate. Every
//! panel is described and scoped to the dashboard's `$job` and `$instance`.

mod common;

use common::free_port;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())).join("../..")
}

/// Prometheus' answer to a GET of its HTTP API (HTTP/1.0: the body comes
/// whole, not chunked).
fn api(prometheus: &str, path_and_query: &str) -> Value {
    let Ok(mut stream) = std::net::TcpStream::connect(prometheus) else { return Value::Null };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = write!(stream, "GET {path_and_query} HTTP/1.0\r\nHost: {prometheus}\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

fn encode(query: &str) -> String {
    query.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The dashboard's queries with its variables given the values of this
/// run (job `sessionflow`, every instance).
fn panel_queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(repo().join("deploy/grafana/sessionflow.json")).unwrap()).unwrap();
    let variables: Vec<&str> = dashboard["templating"]["list"].as_array().unwrap().iter().filter_map(|v| v["name"].as_str()).collect();
    assert!(variables.contains(&"job") && variables.contains(&"instance"), "dashboard variables: {variables:?}");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] != "row" {
            assert!(panel["description"].as_str().is_some_and(|d| d.len() > 20), "panel {} has no description", panel["title"]);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                assert!(expr.contains("job=\"$job\"") && expr.contains("instance=~\"$instance\""), "{expr}: not scoped to $job and $instance");
                let expr = expr.replace("$job", "sessionflow").replace("$instance", ".*");
                queries.push((panel["title"].as_str().unwrap_or("?").to_owned(), expr));
            }
        }
    }
    queries
}

#[test]
fn every_panel_query_returns_series_from_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let demo_addr = format!("127.0.0.1:{}", free_port());
    let prometheus_addr = format!("127.0.0.1:{}", free_port());
    // Short timers so that sessions finalize and retire within the run.
    let config = dir.path().join("sessionflow.toml");
    std::fs::write(
        &config,
        format!("[engine]\nfinalize_after = \"10s\"\nretain_after_final = \"1m\"\n[store]\npath = {:?}\n", dir.path().join("state").display().to_string()),
    )
    .unwrap();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .arg("--config")
        .arg(&config)
        .args(["demo", "--duration", "90s", "--rate", "1000", "--metrics-addr", &demo_addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let prometheus_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus_config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {:?}\nscrape_configs:\n  - job_name: sessionflow\n    static_configs:\n      - targets: [{demo_addr:?}]\n",
            repo().join("deploy/prometheus/alerts.yml").display().to_string()
        ),
    )
    .unwrap();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", prometheus_config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
        .arg(format!("--web.listen-address={prometheus_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (CI installs Debian's prometheus package)");

    // Scrapes for most of the demo's run: rates over [1m] and [5m] windows
    // need samples, finals need sessions that ended a while ago.
    let deadline = Instant::now() + Duration::from_secs(60);
    while api(&prometheus_addr, "/api/v1/query?query=up")["data"]["result"][0]["value"][1] != "1" {
        assert!(Instant::now() < deadline, "Prometheus never scraped the demo");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(60));

    let mut failures = Vec::new();
    let queries = panel_queries();
    assert!(queries.len() >= 15, "{} panel queries", queries.len());
    for (title, expr) in &queries {
        let answer = api(&prometheus_addr, &format!("/api/v1/query?query={}", encode(expr)));
        if answer["status"] != "success" {
            failures.push(format!("{title}: `{expr}` failed: {answer}"));
        } else if answer["data"]["result"].as_array().is_none_or(Vec::is_empty) {
            failures.push(format!("{title}: `{expr}` returned no series"));
        }
    }
    let rules = api(&prometheus_addr, "/api/v1/rules");
    let loaded: Vec<&Value> = rules["data"]["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array().into_iter().flatten()).collect();
    assert!(loaded.len() >= 8, "alert rules not loaded: {rules}");
    for rule in loaded {
        if rule["health"] != "ok" {
            failures.push(format!("rule {} is {}: {}", rule["name"], rule["health"], rule["lastError"]));
        }
    }
    let _ = prometheus.kill();
    let _ = demo.kill();
    let _ = (prometheus.wait(), demo.wait());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
