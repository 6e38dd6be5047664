//! `sessionflow demo`: runs from the command line, serves metrics that pass
//! `promtool check metrics`, and ends with a balanced summary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[test]
fn demo_serves_valid_metrics_and_balances() {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .args(["demo", "--duration", "20s", "--rate", "1500", "--metrics-addr", &addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(14));
    let (status, metrics) = http_get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(http_get(&addr, "/healthz").0, 200);
    assert_eq!(http_get(&addr, "/readyz").0, 200);
    for name in [
        "sessionflow_records_in_total",
        "sessionflow_records_out_total",
        "sessionflow_dead_letters_total",
        "sessionflow_sessions{",
        "sessionflow_batch_duration_seconds_bucket",
        "sessionflow_transaction_duration_seconds",
        "sessionflow_consumer_lag_records",
        "sessionflow_rocksdb_memory_bytes",
        "sessionflow_build_info{version=",
        "sessionflow_ready 1",
        "sessionflow_kafka_broker_up{broker=\"1\"} 1",
        "sessionflow_kafka_broker_rtt_seconds{",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(!metrics.contains("session_id="), "a session id in a label");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (CI installs the prometheus package)");
    promtool.stdin.take().unwrap().write_all(metrics.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(checked.status.success(), "promtool: {}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));

    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("embedded broker at 127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("accounting: consumed = timeline + dead letters + duplicates + erased + re-keyed: balanced"), "{stdout}");
    assert!(stdout.contains("transactions aborted                 0"), "{stdout}");
}

/// `demo --mixed-vendors`: one input topic per vendor besides the canonical
/// one; the summary balances and counts sessions of every source.
#[test]
fn the_mixed_vendor_demo_reads_every_platform() {
    let addr = format!("127.0.0.1:{}", free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .args(["demo", "--duration", "15s", "--rate", "200", "--mixed-vendors", "--metrics-addr", &addr])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("balanced") && !stdout.contains("UNBALANCED"), "{stdout}");
    let per_source = stdout.split("sessions per source").nth(1).unwrap_or_default();
    for source in ["connect", "genesys", "twilio", "zoom", "ccaip"] {
        let sessions: u64 = per_source
            .lines()
            .find(|l| l.split_whitespace().next() == Some(source))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(sessions > 0, "no {source} sessions in the summary:\n{stdout}");
    }
}
