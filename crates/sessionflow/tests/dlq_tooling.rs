//! `sessionflow dlq` on the embedded broker, after a daemon dead-lettered
//! part of its input: `inspect` counts what is on the topic by reason and
//! shows the newest with their details (values only when asked); `replay
//! --dry-run` produces nothing; `replay` puts the chosen records back on
//! their input topic, key, value and the input's own headers as they came,
//! with `sessionflow.replayed_from`. Dead letters keep the input record's
//! own headers.

mod common;

use common::{INPUT, start_embedded_broker};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PARTITIONS: i32 = 2;

fn dlq(config: &Path, brokers: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sessionflow")).arg("--config").arg(config).args(["dlq", "--brokers", brokers]).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "dlq {args:?}: {text}");
    text
}

fn header<'a>(m: &'a rdkafka::message::OwnedMessage, name: &str) -> Option<&'a [u8]> {
    m.headers()?.iter().find(|h| h.key == name)?.value
}

#[test]
fn inspect_counts_and_replay_puts_dead_letters_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sessionflow.toml");
    common::write_daemon_config(&config, &dir.path().join("state"), "group_id = \"dlqtool\"\ninstance_id = \"dlqtool-1\"\ncreate_topics = false\n", "");
    let (_broker, brokers) = start_embedded_broker(&config, PARTITIONS);
    testkit::produce(&brokers, INPUT, SimConfig { seed: 41, malformed_rate: 0.05, ..SimConfig::default() }, 2_000, 0);
    // One record that is not JSON, with a header of its own.
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let traced = OwnedHeaders::new().insert(Header { key: "trace-id", value: Some("t-42") });
    producer.send(BaseRecord::to(INPUT).key("traced-session").payload("not json at all").headers(traced).partition(0)).map_err(|(e, _)| e).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();

    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    common::run_to_the_end(&config, &brokers, PARTITIONS);

    let dead = testkit::read_all(&brokers, "cc.events.dlq", PARTITIONS);
    let reasons = testkit::dead_letter_reasons(&dead);
    let decode_errors = reasons.get("decode_error").copied().unwrap_or(0);
    assert!(reasons.len() >= 3 && decode_errors >= 2, "{reasons:?}");
    let traced = dead.iter().find(|m| m.key() == Some(b"traced-session")).expect("the traced record is a dead letter");
    assert_eq!(header(traced, "trace-id"), Some(&b"t-42"[..]), "the input's own header kept");

    // inspect: the counts the broker holds, details without values unless asked.
    let report = dlq(&config, &brokers, &["inspect", "--reason", "decode_error", "--newest", "3"]);
    assert!(report.contains(&format!("{} dead letters on cc.events.dlq", dead.len())), "{report}");
    for (reason, n) in &reasons {
        assert!(report.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == [reason.as_str(), &n.to_string()]), "{reason} {n} not in:\n{report}");
    }
    assert_eq!(report.matches("  detail: ").count(), 3, "{report}");
    assert!(!report.contains("not json at all") && !report.contains("  value: "), "values printed unasked:\n{report}");
    let with_values = dlq(&config, &brokers, &["inspect", "--reason", "decode_error", "--newest", &decode_errors.to_string(), "--show-values"]);
    assert!(with_values.contains("  value: not json at all"), "{with_values}");

    // replay --dry-run: a report, nothing produced.
    let dry = dlq(&config, &brokers, &["replay", "--reason", "decode_error", "--dry-run"]);
    assert!(dry.contains(&format!("would replay {decode_errors} dead letter(s)")), "{dry}");
    assert_eq!(testkit::read_all(&brokers, INPUT, PARTITIONS).len(), input.len(), "a dry run produced");

    // replay: each decode error back on the input topic, as it came.
    let done = dlq(&config, &brokers, &["replay", "--reason", "decode_error"]);
    assert!(done.contains(&format!("replayed {decode_errors} dead letter(s)")), "{done}");
    let after = testkit::read_all(&brokers, INPUT, PARTITIONS);
    let replayed: Vec<_> = after.iter().filter(|m| header(m, "sessionflow.replayed_from").is_some()).collect();
    assert_eq!(replayed.len(), decode_errors);
    assert_eq!(after.len(), input.len() + decode_errors);
    let again = replayed.iter().find(|m| m.key() == Some(b"traced-session")).expect("the traced record replayed");
    assert_eq!(again.payload(), Some(&b"not json at all"[..]));
    assert_eq!(header(again, "trace-id"), Some(&b"t-42"[..]));
    let from = String::from_utf8(header(again, "sessionflow.replayed_from").unwrap().to_vec()).unwrap();
    assert_eq!(from, format!("cc.events.dlq/{}/{}", traced.partition(), traced.offset()));

    // One chosen by position.
    let one = dlq(&config, &brokers, &["replay", "--dry-run", "--offsets", &format!("{}:{}", traced.partition(), traced.offset())]);
    assert!(one.contains("would replay 1 dead letter(s)"), "{one}");
}
