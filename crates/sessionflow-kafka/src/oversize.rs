//! Outputs over the brokers' message size: every record is measured as
//! librdkafka measures it before it is sent, and one that would be refused
//! becomes a dead letter the brokers take, so it cannot fail its batch over
//! and over.

use crate::config::{DaemonConfig, TopicsSection};
use crate::pipeline::OutRecord;
use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The largest record the brokers take on the output topics when the
/// producer's `message.max.bytes` is not set: librdkafka's default.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Size limits of produced records (librdkafka refuses a record whose key,
/// value and headers exceed the producer's `message.max.bytes`).
#[derive(Debug, Clone, Copy)]
pub struct RecordLimits {
    /// Timeline, metadata, dead-letter and repartition records: the
    /// producer's `message.max.bytes` as configured (default 1,000,000).
    pub output: usize,
    /// Changelog records ([`CHANGELOG_MAX_BYTES`] unless configured lower).
    pub changelog: usize,
}

/// The producer's `message.max.bytes` and the changelog topic's
/// `max.message.bytes` when the daemon sets them: a changelog record holds a
/// session's entry and, at least once, its prior value, so it may be larger
/// than any output.
pub const CHANGELOG_MAX_BYTES: usize = 8 << 20;

impl RecordLimits {
    /// From the producer settings.
    pub fn of(config: &DaemonConfig) -> RecordLimits {
        let configured = config
            .kafka
            .producer_properties
            .get("message.max.bytes")
            .or_else(|| config.kafka.properties.get("message.max.bytes"))
            .and_then(|v| v.parse::<usize>().ok());
        RecordLimits { output: configured.unwrap_or(DEFAULT_MESSAGE_MAX_BYTES), changelog: configured.unwrap_or(CHANGELOG_MAX_BYTES) }
    }
}

/// Bytes librdkafka counts against `message.max.bytes`.
pub(crate) fn record_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: Option<&OwnedHeaders>) -> usize {
    let headers = headers.map_or(0, |h| h.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum());
    key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + headers
}

/// An output the brokers would refuse as too large, made into one they
/// take: a dead letter without its payload, or, for a timeline or
/// metadata record (which the session bounds keep small), a dead letter
/// that names it. Never a record that fails the batch over and over.
/// Says whether it had to.
pub(crate) fn fit_output<'a>(record: OutRecord<'a>, limit: usize, topics: &'a TopicsSection) -> (OutRecord<'a>, bool) {
    let size = record_size(record.key.as_deref(), record.value.as_deref(), record.headers.as_ref());
    if size <= limit {
        return (record, false);
    }
    let detail = format!("a {size}-byte record for {} is over message.max.bytes ({limit}); its value is not produced", record.topic);
    tracing::warn!(topic = record.topic, size, limit, "an output record is over message.max.bytes: dead-lettered without its value");
    let mut headers = OwnedHeaders::new();
    if record.topic == topics.dead_letter.as_str()
        && let Some(original) = &record.headers
    {
        for h in original.iter() {
            headers = headers.insert(Header { key: h.key, value: h.value });
        }
        headers = headers.insert(Header { key: "dlq.payload_omitted", value: Some(detail.as_bytes()) });
    } else {
        for (k, v) in [("dlq.reason", "oversize"), ("dlq.detail", detail.as_str()), ("dlq.topic", record.topic)] {
            headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
        }
    }
    // A key over the limit on its own is dropped too.
    let key = record.key.filter(|k| k.len() + record_size(None, None, Some(&headers)) <= limit);
    (OutRecord { topic: &topics.dead_letter, key, value: None, headers: Some(headers), timestamp: None }, true)
}
