//! The daemon killed with SIGKILL at random moments, at least ten times,
//! restarted each time (same state directory, same transactional id): the
//! final read_committed outputs equal the engine's run over the input, so
//! no timeline record is lost or doubled and metadata versions are gap-free.
//! The broker (the embedded one) runs in a process of its own and outlives
//! every daemon.

use sessionflow_codec::avro::RecordKind;
use sessionflow_core::EngineConfig;
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PARTITIONS: i32 = 3;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    Some(r)
}

fn ready(addr: &str) -> bool {
    get(addr, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
}

/// The daemon's committed input offsets per partition, from its /metrics.
fn committed_offsets(addr: &str) -> Vec<i64> {
    let mut offsets = vec![0; PARTITIONS as usize];
    let text = get(addr, "/metrics").unwrap_or_default();
    for line in text.lines().filter(|l| l.starts_with("sessionflow_input_committed_offset{") && l.contains("topic=\"cc.events.raw\"")) {
        let partition: usize = line.split("partition=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|p| p.parse().ok()).expect("partition label");
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value");
        offsets[partition] = value as i64;
    }
    offsets
}

/// A child process killed when dropped (with its stdout kept open, so it
/// never writes to a closed pipe).
struct Killed {
    child: Child,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker(config: &std::path::Path) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .arg("--config")
        .arg(config)
        .args(["broker", "--partitions", &PARTITIONS.to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(config.with_file_name("broker.log")).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let bootstrap = line.split_whitespace().nth(3).expect("embedded broker at HOST:PORT").to_owned();
    (Killed { child, _stdout: stdout }, bootstrap)
}

fn start_daemon(config: &std::path::Path, brokers: &str, metrics: &str) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(config.with_file_name("daemon.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .arg("--config")
        .arg(config)
        .args(["run", "--brokers", brokers, "--metrics-addr", metrics])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn log_tail(config: &std::path::Path) -> String {
    let tail = |name: &str| {
        let text = std::fs::read_to_string(config.with_file_name(name)).unwrap_or_default();
        text.lines().rev().take(8).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    };
    format!("daemon:\n{}\nbroker:\n{}", tail("daemon.log"), tail("broker.log"))
}

fn engine() -> EngineConfig {
    EngineConfig { finalize_after_ms: 60_000, session_timeout_ms: 3_600_000, retain_after_final_ms: 600_000, ..EngineConfig::default() }
}

#[test]
fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessionflow.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[engine]
finalize_after = "1m"
session_timeout = "1h"
retain_after_final = "10m"
idle_advance_after = "0s"

[store]
path = "{}"

[kafka]
group_id = "crash"
instance_id = "crash-1"
commit_interval_ms = 50
max_batch_records = 100
create_topics = false

[kafka.consumer_properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#,
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let (_broker, brokers) = start_broker(&config);
    let sent = testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 5, malformed_rate: 0.01, ..SimConfig::default() }, 4_500, 0);

    let metrics = format!("127.0.0.1:{}", free_port());
    // Kill delays after the daemon is ready, varied so kills land in and between transactions.
    let delays_ms = [40u64, 310, 95, 520, 180, 5, 640, 260, 130, 410, 75, 350];
    let mut kills = 0;
    for delay in delays_ms {
        let mut daemon = start_daemon(&config, &brokers, &metrics);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(&metrics) {
            assert!(Instant::now() < deadline, "daemon not ready within 60 s:\n{}", log_tail(&config));
            assert!(daemon.try_wait().unwrap().is_none(), "daemon exited:\n{}", log_tail(&config));
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(delay));
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();
        kills += 1;
    }

    // A last run to the end of the input, stopped with SIGTERM.
    let input = testkit::read_all(&brokers, "cc.events.raw", PARTITIONS);
    assert_eq!(input.len(), sent);
    let mut end = vec![0i64; PARTITIONS as usize];
    for m in &input {
        use rdkafka::Message;
        end[m.partition() as usize] = end[m.partition() as usize].max(m.offset() + 1);
    }
    let mut daemon = start_daemon(&config, &brokers, &metrics);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(&metrics) {
        assert!(Instant::now() < deadline, "daemon not ready within 60 s:\n{}", log_tail(&config));
        std::thread::sleep(Duration::from_millis(50));
    }
    // Where the restored state resumes: the progress the killed runs committed.
    let progress_after_kills: i64 = committed_offsets(&metrics).iter().sum();
    let deadline = Instant::now() + Duration::from_secs(180);
    while committed_offsets(&metrics) != end {
        assert!(
            Instant::now() < deadline,
            "the daemon did not finish the input: committed {:?} of {end:?}\n{}",
            committed_offsets(&metrics),
            log_tail(&config)
        );
        assert!(daemon.try_wait().unwrap().is_none(), "daemon exited:\n{}", log_tail(&config));
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status();
    assert!(daemon.wait().unwrap().success(), "graceful shutdown on SIGTERM");

    assert!(kills >= 10);
    assert!(progress_after_kills > 0 && progress_after_kills < sent as i64, "kills landed mid-stream: {progress_after_kills} of {sent} committed");

    let expected = testkit::reference_run(&input, PARTITIONS, &engine());
    let timeline = testkit::topic_by_session(&testkit::read_all(&brokers, "cc.sessions.timeline", PARTITIONS), RecordKind::Timeline);
    let metadata = testkit::topic_by_session(&testkit::read_all(&brokers, "cc.sessions.metadata", PARTITIONS), RecordKind::Metadata);
    let exp_timeline = testkit::outputs_by_session(&expected, true);
    let exp_metadata = testkit::outputs_by_session(&expected, false);
    assert!(exp_timeline.len() > 100);
    if let Some(diff) = testkit::first_difference(&exp_timeline, &timeline) {
        panic!("timeline: {diff}");
    }
    if let Some(diff) = testkit::first_difference(&exp_metadata, &metadata) {
        panic!("metadata: {diff}");
    }
    // Dead letters: each malformed record once, with its reason.
    let dead = testkit::dead_letter_reasons(&testkit::read_all(&brokers, "cc.events.dlq", PARTITIONS));
    assert_eq!(dead, testkit::expected_dead_letter_reasons(&expected));
    assert!(dead.len() >= 4, "dead-letter classes: {dead:?}");
}
