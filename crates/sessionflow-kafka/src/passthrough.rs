//! The ceiling the pipeline is measured against: the same consumer and
//! producer settings and the same batch and commit loop as the pipeline,
//! with no processing — each input record is copied to an output topic.

use crate::clients::{consumer_client_config, producer_client_config, send};
use crate::config::{DaemonConfig, Delivery};
use anyhow::{Context as _, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// The consumer's context: librdkafka's statistics are produced and parsed
/// as for the pipeline (the same settings, the same cost), then dropped
/// instead of being logged whole at info level every few seconds.
struct QuietStatistics;

impl rdkafka::ClientContext for QuietStatistics {
    fn stats(&self, _: rdkafka::Statistics) {}
}
impl rdkafka::consumer::ConsumerContext for QuietStatistics {}

/// What a passthrough run measured.
#[derive(Debug, Clone, Copy)]
pub struct PassthroughRun {
    pub records: u64,
    /// From the first record consumed to the last batch committed.
    pub seconds: f64,
}

/// Copies `records` records from the configured input topic to `output`,
/// in batches committed like the pipeline's (a transaction per batch in
/// exactly-once mode; flush, then offsets, in at-least-once mode).
pub fn run(config: &DaemonConfig, output: &str, records: u64, timeout: Duration) -> anyhow::Result<PassthroughRun> {
    let exactly_once = config.kafka.delivery == Delivery::ExactlyOnce;
    let consumer: BaseConsumer<QuietStatistics> = consumer_client_config(config).create_with_context(QuietStatistics).context("creating the consumer")?;
    consumer.subscribe(&config.topics.input.iter().map(String::as_str).collect::<Vec<_>>())?;
    let producer: BaseProducer = producer_client_config(config).create().context("creating the producer")?;
    if exactly_once {
        producer.init_transactions(TXN_TIMEOUT)?;
    }
    let commit_interval = Duration::from_millis(config.kafka.commit_interval_ms.max(1));
    let deadline = Instant::now() + timeout;
    let mut copied = 0u64;
    let mut first: Option<Instant> = None;
    let mut last_cut = Instant::now();
    while copied < records {
        if Instant::now() > deadline {
            bail!("passthrough copied {copied} of {records} records before the timeout");
        }
        // Cut like the pipeline's batches: one commit interval after the previous cut.
        let batch_deadline = last_cut + commit_interval;
        let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut in_batch = 0usize;
        let mut began = false;
        while in_batch < config.kafka.max_batch_records {
            match consumer.poll(batch_deadline.saturating_duration_since(Instant::now())) {
                Some(Ok(m)) => {
                    first.get_or_insert_with(Instant::now);
                    if exactly_once && !began {
                        producer.begin_transaction()?;
                        began = true;
                    }
                    let mut record = BaseRecord::<[u8], [u8]>::to(output).payload(m.payload().unwrap_or_default());
                    if let Some(k) = m.key() {
                        record = record.key(k);
                    }
                    send(&producer, record)?;
                    offsets.insert((m.topic().to_owned(), m.partition()), m.offset() + 1);
                    in_batch += 1;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                None => break,
            }
        }
        last_cut = Instant::now();
        if in_batch == 0 {
            continue;
        }
        let mut list = TopicPartitionList::new();
        for ((topic, partition), next) in &offsets {
            list.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
        }
        if exactly_once {
            producer.send_offsets_to_transaction(&list, &consumer.group_metadata().context("group metadata")?, TXN_TIMEOUT)?;
            crate::delivery::commit_transaction(&producer, TXN_TIMEOUT)?;
        } else {
            crate::delivery::wait_delivered(&producer, TXN_TIMEOUT)?;
            consumer.commit(&list, CommitMode::Sync)?;
        }
        copied += in_batch as u64;
    }
    let seconds = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    consumer.unsubscribe();
    Ok(PassthroughRun { records: copied, seconds })
}
