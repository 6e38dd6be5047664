//! Process-level helpers shared by the daemon tests: brokers and daemons as
//! child processes (killed when dropped, so a failing test leaves none
//! behind), their HTTP endpoints, and their logs.
#![allow(dead_code)] // each test file uses its own subset

use sessionflow_core::EngineConfig;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const INPUT: &str = "cc.events.raw";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The engine settings every daemon test config uses (see `engine_toml`).
pub fn engine() -> EngineConfig {
    sessionflow_kafka::testkit::test_engine()
}

/// The `[engine]` section matching `engine()`, with no wall-clock watermark
/// so outputs are deterministic.
pub const ENGINE_TOML: &str = r#"
[engine]
finalize_after = "1m"
session_timeout = "1h"
async_session_timeout = "1h"
retain_after_final = "10m"
idle_advance_after = "0s"
"#;

/// Consumer settings that let a killed member leave the group in seconds.
pub const FAST_REBALANCE: &str = r#"
[kafka.consumer_properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#;

/// Writes a daemon config file: the tests' `[engine]`, the store at
/// `state`, the given `[kafka]` keys, then `sections` (whole TOML tables).
pub fn write_daemon_config(path: &Path, state: &Path, kafka: &str, sections: &str) {
    let text = format!("{ENGINE_TOML}\n[store]\npath = {:?}\n\n[kafka]\n{}\n{sections}", state.display().to_string(), kafka.trim());
    std::fs::write(path, text).expect("writing the daemon config");
}

/// A child process, SIGKILLed when dropped. Its stdout, when piped, stays
/// open so it never writes to a closed pipe.
pub struct Proc {
    pub child: Child,
    _stdout: Option<BufReader<ChildStdout>>,
    pub log: PathBuf,
}

impl Proc {
    /// A child whose output goes to `log`.
    pub fn new(child: Child, log: PathBuf) -> Proc {
        Proc { child, _stdout: None, log }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        self.child.wait().unwrap()
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// The last lines of its log.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!("{}:\n{}", self.log.display(), lines[lines.len().saturating_sub(12)..].join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `path` opened for appending (created if missing): a child's log.
pub fn append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap()
}

/// `sessionflow broker` (the embedded broker) in a process of its own, with
/// the topics of the pipeline `config` describes.
pub fn start_embedded_broker(config: &Path, partitions: i32) -> (Proc, String) {
    let log = config.with_file_name("broker.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .arg("--config")
        .arg(config)
        .args(["broker", "--partitions", &partitions.to_string()])
        .stdout(Stdio::piped())
        .stderr(append(&log))
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let bootstrap = line.split_whitespace().nth(3).expect("embedded broker at HOST:PORT").to_owned();
    (Proc { child, _stdout: Some(stdout), log }, bootstrap)
}

/// The standalone Kafka-compatible broker `tansu` (installed by `.ci/run`),
/// in memory, on a loopback port.
pub fn start_tansu(dir: &Path) -> (Proc, String) {
    let port = free_port();
    (start_tansu_with(dir, port, port, "memory://tansu/", &[]), format!("127.0.0.1:{port}"))
}

/// tansu listening on `port`, telling clients to connect to `advertised`
/// (a TLS proxy's port, say), storing in `storage` (relative to `dir`), with
/// `extra` arguments; logging to `<dir>/tansu.log`.
pub fn start_tansu_with(dir: &Path, port: u16, advertised: u16, storage: &str, extra: &[&str]) -> Proc {
    let log = dir.join("tansu.log");
    let binary = std::env::var("TANSU").unwrap_or_else(|_| "tansu".into());
    let listener = format!("tcp://127.0.0.1:{port}");
    let advertised = format!("tcp://127.0.0.1:{advertised}");
    let child = Command::new(&binary)
        .args(["broker", "--listener-url", &listener, "--advertised-listener-url", &advertised, "--storage-engine", storage])
        .args(extra)
        .current_dir(dir)
        .stdout(append(&log))
        .stderr(append(&log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{binary}` ({e}): install it with `cargo install tansu --locked --features dynostore,libsql` (.ci/run does)"));
    let mut proc = Proc::new(child, log);
    wait_listening(&format!("127.0.0.1:{port}"), &mut proc);
    proc
}

/// Waits until `addr` accepts connections, failing with the process's log
/// if it exits first or 30 s pass.
pub fn wait_listening(addr: &str, process: &mut Proc) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline && !process.exited(), "{addr} never listened\n{}", process.tail());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sessionflow run` with a config file, logging to `<dir>/<name>.log`.
pub fn start_daemon(config: &Path, name: &str, brokers: &str, metrics: &str) -> Proc {
    start_daemon_with_env(config, name, brokers, metrics, &[])
}

/// `start_daemon` with environment variables (e.g. `FAILPOINTS`).
pub fn start_daemon_with_env(config: &Path, name: &str, brokers: &str, metrics: &str, env: &[(&str, &str)]) -> Proc {
    let log = config.with_file_name(format!("{name}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
        .envs(env.iter().copied())
        .arg("--config")
        .arg(config)
        .args(["run", "--brokers", brokers, "--metrics-addr", metrics])
        .stdout(Stdio::null())
        .stderr(append(&log))
        .spawn()
        .unwrap();
    Proc { child, _stdout: None, log }
}

/// Waits until the process's log holds `needle`, failing with the log if
/// the process exits first or the time runs out.
pub fn wait_for_log(process: &mut Proc, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !std::fs::read_to_string(&process.log).unwrap_or_default().contains(needle) {
        assert!(!process.exited(), "exited before logging {needle:?}\n{}", process.tail());
        assert!(Instant::now() < deadline, "no {needle:?} in the log within {within:?}\n{}", process.tail());
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    Some(r)
}

pub fn ready(addr: &str) -> bool {
    get(addr, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
}

/// Waits for `/readyz`, failing with the daemon's log if it exits or stalls.
pub fn wait_ready(daemon: &mut Proc, metrics: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !ready(metrics) {
        assert!(!daemon.exited(), "daemon exited\n{}", daemon.tail());
        assert!(Instant::now() < deadline, "daemon not ready within {within:?}\n{}", daemon.tail());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sum of a metric's samples whose label text contains `labels`.
pub fn metric(addr: &str, name: &str, labels: &str) -> f64 {
    let text = get(addr, "/metrics").unwrap_or_default();
    text.lines()
        .filter(|l| (l.starts_with(&format!("{name}{{")) && l.contains(labels)) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A daemon's committed offsets of the input topic, per partition (0 for
/// partitions it does not own).
pub fn committed_offsets(addr: &str, partitions: i32) -> Vec<i64> {
    let mut offsets = vec![0; partitions as usize];
    let text = get(addr, "/metrics").unwrap_or_default();
    for line in text.lines().filter(|l| l.starts_with("sessionflow_input_committed_offset{") && l.contains(&format!("topic=\"{INPUT}\""))) {
        let partition: usize = line.split("partition=\"").nth(1).and_then(|r| r.split('"').next()).and_then(|p| p.parse().ok()).expect("partition label");
        let value: f64 = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("value");
        offsets[partition] = value as i64;
    }
    offsets
}

/// The end offset of each input partition.
pub fn end_offsets(input: &[rdkafka::message::OwnedMessage], partitions: i32) -> Vec<i64> {
    use rdkafka::Message;
    let mut end = vec![0i64; partitions as usize];
    for m in input {
        end[m.partition() as usize] = end[m.partition() as usize].max(m.offset() + 1);
    }
    end
}

/// Removes records equal to one already seen in the same session, keeping
/// the first copy's place; returns how many were removed. Used where a
/// broker may show a batch twice: at-least-once delivery, and the embedded
/// broker, which does not hide aborted transactions (docs/daemon.md#brokers).
pub fn without_repeats(by_session: &sessionflow_kafka::testkit::BySession) -> (sessionflow_kafka::testkit::BySession, usize) {
    let mut repeats = 0;
    let deduped = by_session
        .iter()
        .map(|(id, records)| {
            let mut seen: Vec<&serde_json::Value> = Vec::new();
            for r in records {
                if seen.contains(&r) {
                    repeats += 1;
                } else {
                    seen.push(r);
                }
            }
            (id.clone(), seen.into_iter().cloned().collect())
        })
        .collect();
    (deduped, repeats)
}

/// Compares the output topics with the engine's run over `input`, after
/// removing exact repeats (see `without_repeats`): every expected timeline
/// and metadata record present, in order, nothing else; every expected dead
/// letter present with its reason. `more_than` sessions must be expected.
/// Returns the timeline repeats removed and the dead letters per reason.
pub fn assert_outputs_match(
    brokers: &str,
    input: &[rdkafka::message::OwnedMessage],
    partitions: i32,
    more_than: usize,
) -> (usize, std::collections::BTreeMap<String, usize>) {
    use sessionflow_codec::avro::RecordKind;
    use sessionflow_kafka::testkit;
    let expected = testkit::reference_run(input, partitions, &engine());
    let read = |topic: &str, kind| without_repeats(&testkit::topic_by_session(&testkit::read_all(brokers, topic, partitions), kind));
    let (timeline, timeline_repeats) = read("cc.sessions.timeline", RecordKind::Timeline);
    let (metadata, _) = read("cc.sessions.metadata", RecordKind::Metadata);
    let exp_timeline = testkit::outputs_by_session(&expected, true);
    assert!(exp_timeline.len() > more_than, "{} sessions expected", exp_timeline.len());
    if let Some(diff) = testkit::first_difference(&exp_timeline, &timeline) {
        panic!("timeline: {diff}");
    }
    if let Some(diff) = testkit::first_difference(&testkit::outputs_by_session(&expected, false), &metadata) {
        panic!("metadata: {diff}");
    }
    let dead = testkit::dead_letter_reasons(&testkit::read_all(brokers, "cc.events.dlq", partitions));
    for (reason, n) in testkit::expected_dead_letter_reasons(&expected) {
        assert!(dead.get(&reason).is_some_and(|got| *got >= n), "{reason}: {n} expected, got {dead:?}");
    }
    (timeline_repeats, dead)
}

/// The offline replay's metadata of the input topic, as a JSONL file next
/// to `config`: one `sessionflow replay` per input partition (a partition
/// is the daemon's unit of state and stream time), concatenated.
pub fn replay_metadata(config: &Path, brokers: &str, partitions: i32) -> PathBuf {
    use rdkafka::Message;
    let dir = config.parent().expect("config in a directory");
    let input = sessionflow_kafka::testkit::read_all(brokers, INPUT, partitions);
    let mut metadata = Vec::new();
    for partition in 0..partitions {
        let mut lines = Vec::new();
        for m in input.iter().filter(|m| m.partition() == partition) {
            // One record per line, as the replay reads them.
            lines.extend(m.payload().unwrap_or_default().iter().map(|&b| if b == b'\n' { b' ' } else { b }));
            lines.push(b'\n');
        }
        let file = dir.join(format!("input-{partition}.jsonl"));
        std::fs::write(&file, lines).expect("writing the replay input");
        let out = dir.join(format!("replay-{partition}"));
        let run = Command::new(env!("CARGO_BIN_EXE_sessionflow"))
            .arg("--config")
            .arg(config)
            .arg("replay")
            .arg(&file)
            .arg("--out-dir")
            .arg(&out)
            .arg("--no-progress")
            .output()
            .expect("sessionflow replay runs");
        assert!(run.status.success(), "replay: {}", String::from_utf8_lossy(&run.stderr));
        metadata.extend(std::fs::read(out.join("metadata.jsonl")).expect("replay metadata"));
    }
    let path = dir.join("replay-metadata.jsonl");
    std::fs::write(&path, metadata).expect("writing the replay metadata");
    path
}

/// Runs the independent checker (`tests/python/check_outputs.py`, Python
/// `confluent-kafka`) over the broker's topics against `replay` (see
/// `replay_metadata`). Returns whether it passed, and its report.
pub fn check_outputs(brokers: &str, replay: &Path, allow_exact_repeats: bool) -> (bool, String) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()))
        .join("../../tests/python/check_outputs.py");
    let mut command = Command::new(python);
    command.arg(script).args([brokers, INPUT]).arg(replay);
    if allow_exact_repeats {
        command.arg("--allow-exact-repeats");
    }
    let out = command.output().expect("python3 runs (CI installs confluent-kafka)");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Runs a daemon (`sessionflow run` with `config`) until it has committed
/// every input partition to its end, then stops it with SIGTERM, which
/// must end it cleanly.
pub fn run_to_the_end(config: &Path, brokers: &str, partitions: i32) {
    let input = sessionflow_kafka::testkit::read_all(brokers, INPUT, partitions);
    let end = end_offsets(&input, partitions);
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut daemon = start_daemon(config, "daemon", brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_offsets(&metrics, partitions) != end {
        assert!(Instant::now() < deadline && !daemon.exited(), "not finished: {:?} of {end:?}\n{}", committed_offsets(&metrics, partitions), daemon.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());
}
