//! `sessionflow bench --quick` runs every phase and writes what the README
//! promises: results.json with each figure and target check, and the chart.
//! (The figures themselves are measured by the bench, not asserted here.)

use serde_json::Value;
use std::process::Command;

#[test]
fn quick_bench_writes_every_figure_and_the_chart() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sessionflow")).args(["bench", "--quick", "--out"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "bench failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("passthrough/s") && table.contains("restore:"), "{table}");

    let results: Value = serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    let positive = |v: &Value| v.as_f64().is_some_and(|x| x > 0.0 && x.is_finite());
    assert!(positive(&results["engine"]["json_events_per_second"]) && positive(&results["engine"]["avro_events_per_second"]));
    assert!(results["machine"]["cpu"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(results["session_length"].as_array().unwrap().len(), 3);
    assert_eq!(results["live_sessions"]["points"].as_array().unwrap().len(), 3);
    assert!(positive(&results["live_sessions"]["peak_rss_mib"]));
    assert!(positive(&results["restore"]["records_per_second"]));
    let brokers = results["brokers"].as_array().unwrap();
    let embedded = brokers.iter().find(|b| b["broker"] == "embedded").expect("embedded broker figures");
    let modes: Vec<&str> = embedded["modes"].as_array().unwrap().iter().map(|m| m["delivery"].as_str().unwrap()).collect();
    assert_eq!(modes, ["exactly_once", "at_least_once"]);
    assert!(brokers.iter().any(|b| b["broker"] == "tansu"), "tansu figures (CI installs tansu)");
    for b in brokers {
        for m in b["modes"].as_array().unwrap() {
            assert!(positive(&m["passthrough_records_per_second"]) && positive(&m["pipeline_events_per_second"]) && positive(&m["ratio"]), "{m}");
            assert!(positive(&m["latency"]["p99_ms"]), "{m}");
        }
    }
    // One check per target, each with a verdict.
    let checks = results["checks"].as_array().unwrap();
    assert!(checks.len() >= 8);
    assert!(checks.iter().all(|c| c["met"].is_boolean()));
    let svg = std::fs::read_to_string(dir.path().join("chart.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>") && svg.contains("pipeline"));
}
