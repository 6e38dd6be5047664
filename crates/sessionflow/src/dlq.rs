//! `sessionflow dlq`: the dead-letter topic for operators. `inspect`
//! counts dead letters by reason and shows the newest of a reason with
//! their details; `replay` re-produces chosen dead letters to their input
//! topic once the cause is fixed, with headers saying where they come from.
//!
//! Both read the topic read_committed with a client of their own (no
//! consumer group, no transactional id): they never disturb a running
//! daemon. Values are personal data: `inspect` shows them only when asked.

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sessionflow_kafka::DaemonConfig;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Header a replayed record carries: `<dead-letter topic>/<partition>/<offset>`.
pub const REPLAYED_FROM: &str = "sessionflow.replayed_from";

/// Which dead letters `replay` re-produces.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this `dlq.reason`.
    pub reason: Option<String>,
    /// Only these dead letters, as `PARTITION:OFFSET` of the dead-letter topic.
    pub positions: Vec<(i32, i64)>,
    /// At most this many.
    pub limit: Option<usize>,
    /// Replay dead letters whose value was redacted
    /// (`dead_letter.payload = "redact"`): what reaches the input is the
    /// redacted record, not what the source sent.
    pub force_redacted: bool,
}

/// A dead letter as read back.
struct DeadLetter {
    message: OwnedMessage,
    headers: BTreeMap<String, String>,
}

impl DeadLetter {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// Every committed record of the dead-letter topic, in partition order.
fn read_dead_letters(config: &DaemonConfig) -> anyhow::Result<Vec<DeadLetter>> {
    let topic = &config.topics.dead_letter;
    let extra: BTreeMap<String, String> =
        [("group.id", "sessionflow-dlq-tool"), ("isolation.level", "read_committed"), ("enable.partition.eof", "true"), ("enable.auto.commit", "false")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain(config.kafka.consumer_properties.clone())
            .collect();
    let consumer: BaseConsumer = sessionflow_kafka::clients::client_config(config, &extra).create().context("creating a client")?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).with_context(|| format!("reading the metadata of {topic}"))?;
    let partitions = metadata.topics().first().map(|t| t.partitions().len()).unwrap_or(0) as i32;
    anyhow::ensure!(partitions > 0, "the dead-letter topic {topic} does not exist (topics.dead_letter)");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let (mut out, mut at_end, mut last_read) = (Vec::new(), 0, Instant::now());
    while at_end < partitions {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_read = Instant::now();
                let headers = m
                    .headers()
                    .map(|h| h.iter().map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())).collect())
                    .unwrap_or_default();
                out.push(DeadLetter { message: m.detach(), headers });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end += 1,
            Some(Err(e)) => tracing::warn!(error = %e, "reading the dead-letter topic"),
            None => anyhow::ensure!(last_read.elapsed() < Duration::from_secs(30), "the dead-letter topic {topic} did not answer for 30 s"),
        }
    }
    out.sort_by_key(|d| (d.message.partition(), d.message.offset()));
    Ok(out)
}

/// What the dead-letter topic kept of the value (`dlq.payload`): `kept`,
/// `redacted` or `dropped`; dead letters written before the setting have
/// no header and kept it.
fn payload(headers: &BTreeMap<String, String>) -> &str {
    headers.get("dlq.payload").map_or("kept", String::as_str)
}

/// Whether a dead letter can be replayed to `target`, or why not: its
/// value must be there as the source sent it (`dlq.payload` kept), or
/// redacted with `force_redacted`.
fn replayable(headers: &BTreeMap<String, String>, has_value: bool, target: &str, force_redacted: bool) -> Result<(), &'static str> {
    match payload(headers) {
        "dropped" => return Err("its value was dropped (dead_letter.payload = \"drop\"): replay it from the source"),
        "redacted" if !force_redacted => return Err("its value is redacted (dead_letter.payload = \"redact\"): --force-redacted replays it as it is"),
        _ => {}
    }
    if headers.contains_key("dlq.payload_omitted") || !has_value {
        return Err("its value was not kept (over message.max.bytes)");
    }
    if target.is_empty() {
        return Err("it names no input topic (use --to)");
    }
    Ok(())
}

/// `dlq inspect`: counts by reason; then, for `reason` (or every reason),
/// the `newest` dead letters with their details (values with `show_values`).
pub fn inspect(config: &DaemonConfig, reason: Option<&str>, newest: usize, show_values: bool) -> anyhow::Result<String> {
    let letters = read_dead_letters(config)?;
    let mut out = String::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &letters {
        *counts.entry(d.header("dlq.reason")).or_default() += 1;
    }
    let _ = writeln!(out, "{} dead letters on {}", letters.len(), config.topics.dead_letter);
    for (r, n) in &counts {
        let _ = writeln!(out, "  {r:<24}{n:>10}");
    }
    let mut chosen: Vec<&DeadLetter> = letters.iter().filter(|d| reason.is_none_or(|r| d.header("dlq.reason") == r)).collect();
    chosen.sort_by(|a, b| b.header("dlq.at").cmp(a.header("dlq.at")));
    for d in chosen.into_iter().take(newest) {
        let m = &d.message;
        let _ = writeln!(
            out,
            "\n{}/{}/{}  reason {}  at {}\n  input: {}/{}/{}\n  detail: {}",
            m.topic(),
            m.partition(),
            m.offset(),
            d.header("dlq.reason"),
            d.header("dlq.at"),
            d.header("dlq.topic"),
            d.header("dlq.partition"),
            d.header("dlq.offset"),
            d.header("dlq.detail")
        );
        if d.headers.contains_key("dlq.payload_omitted") {
            let _ = writeln!(out, "  value: omitted ({})", d.header("dlq.payload_omitted"));
        } else if payload(&d.headers) == "dropped" {
            let _ = writeln!(out, "  value: dropped (dead_letter.payload = \"drop\")");
        } else if show_values {
            if payload(&d.headers) == "redacted" {
                let _ = writeln!(out, "  value (redacted: dead_letter.payload = \"redact\"):");
            }
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
            let shown: String = value.chars().take(2_000).collect();
            let _ = writeln!(out, "  value: {shown}{}", if shown.len() < value.len() { " …" } else { "" });
        }
    }
    Ok(out)
}

/// `dlq replay`: the chosen dead letters re-produced, key and value as they
/// came, to their input topic (`dlq.topic`, or `to`), with the input's own
/// headers and [`REPLAYED_FROM`]. With `dry_run`, only the report.
pub fn replay(config: &DaemonConfig, selection: &Selection, to: Option<&str>, dry_run: bool) -> anyhow::Result<String> {
    let letters = read_dead_letters(config)?;
    let chosen: Vec<&DeadLetter> = letters
        .iter()
        .filter(|d| selection.reason.as_deref().is_none_or(|r| d.header("dlq.reason") == r))
        .filter(|d| selection.positions.is_empty() || selection.positions.contains(&(d.message.partition(), d.message.offset())))
        .take(selection.limit.unwrap_or(usize::MAX))
        .collect();
    let mut out = String::new();
    let producer: Option<BaseProducer> = if dry_run {
        None
    } else {
        let extra: BTreeMap<String, String> =
            [("enable.idempotence".to_owned(), "true".to_owned())].into_iter().chain(config.kafka.producer_properties.clone()).collect();
        Some(sessionflow_kafka::clients::client_config(config, &extra).create().context("creating a producer")?)
    };
    let (mut sent, mut skipped) = (0usize, 0usize);
    for d in chosen {
        let m = &d.message;
        let from = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
        let target = to.unwrap_or(d.header("dlq.topic"));
        if let Err(why) = replayable(&d.headers, m.payload().is_some(), target, selection.force_redacted) {
            let _ = writeln!(out, "skip {from}: {why}");
            skipped += 1;
            continue;
        }
        let _ = writeln!(out, "{} {from} ({}) -> {target}", if dry_run { "would replay" } else { "replay" }, d.header("dlq.reason"));
        let Some(producer) = &producer else {
            sent += 1;
            continue;
        };
        // The input's own headers, without ours, then where it comes from.
        let mut headers = OwnedHeaders::new();
        for h in m.headers().into_iter().flat_map(|h| h.iter()).filter(|h| !h.key.starts_with("dlq.")) {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
        headers = headers.insert(Header { key: REPLAYED_FROM, value: Some(from.as_bytes()) });
        let mut record = BaseRecord::<[u8], [u8]>::to(target).payload(m.payload().unwrap_or_default()).headers(headers);
        if let Some(key) = m.key() {
            record = record.key(key);
        }
        sessionflow_kafka::clients::send(producer, record)?;
        sent += 1;
    }
    if let Some(producer) = &producer {
        producer.flush(Duration::from_secs(30)).context("delivering the replayed records")?;
    }
    let _ = writeln!(out, "{} {sent} dead letter(s), skipped {skipped}", if dry_run { "would replay" } else { "replayed" });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(payload: Option<&str>) -> BTreeMap<String, String> {
        payload.map(|p| ("dlq.payload".to_owned(), p.to_owned())).into_iter().collect()
    }

    #[test]
    fn replay_takes_kept_values_and_redacted_ones_only_when_forced() {
        // Dead letters from before the setting carry no header: kept.
        assert_eq!(replayable(&headers(None), true, "in", false), Ok(()));
        assert_eq!(replayable(&headers(Some("kept")), true, "in", false), Ok(()));
        assert!(replayable(&headers(Some("redacted")), true, "in", false).unwrap_err().contains("--force-redacted"));
        assert_eq!(replayable(&headers(Some("redacted")), true, "in", true), Ok(()));
        assert!(replayable(&headers(Some("dropped")), false, "in", true).unwrap_err().contains("dropped"));
        assert!(replayable(&headers(Some("dropped")), true, "in", true).unwrap_err().contains("dropped"));
        assert!(replayable(&headers(None), true, "", false).unwrap_err().contains("--to"));
        let omitted: BTreeMap<String, String> = [("dlq.payload_omitted".to_owned(), "1200000 bytes".to_owned())].into();
        assert!(replayable(&omitted, false, "in", true).is_err());
    }
}
