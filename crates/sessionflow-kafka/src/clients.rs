//! The Kafka clients' settings, the topics the daemon creates, and sending
//! with back-pressure.

use crate::config::{DaemonConfig, Delivery, TopicsSection};
use crate::oversize::CHANGELOG_MAX_BYTES;
use anyhow::{Context as _, bail};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The consumer group's assignor: the one that keeps tasks whole.
pub const ASSIGNOR: &str = "range";

/// The client settings of the pipeline's consumer (user properties last).
pub fn consumer_client_config(config: &DaemonConfig) -> ClientConfig {
    let mut consumer_config = client_config(config, &config.kafka.consumer_properties);
    consumer_config
        .set("group.id", &config.kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // A task is partition p of every input topic and of the repartition
        // topic, and must have one owner. The range assignor gives each
        // member the same partition numbers of every topic (they all have
        // the same count); sticky assignors balance topics independently
        // and split tasks between instances.
        .set("partition.assignment.strategy", ASSIGNOR)
        .set("statistics.interval.ms", "5000")
        // librdkafka postpones a partition's next fetch by 1 s when its
        // queue is full; a fast consumer drains it long before that and
        // then waits idle (seen as 1 s gaps in catch-up and restore).
        .set("fetch.queue.backoff.ms", "10");
    if config.kafka.static_membership {
        // A restart within `session.timeout.ms` gets its partitions back
        // without a rebalance, and a second live process with the same id
        // fences the first (Kafka's FENCED_INSTANCE_ID).
        consumer_config.set("group.instance.id", config.instance_id());
    }
    for (k, v) in &config.kafka.consumer_properties {
        consumer_config.set(k, v);
    }
    consumer_config
}

/// The client settings of the pipeline's producer: idempotent, and
/// transactional in exactly-once mode (user properties last).
pub fn producer_client_config(config: &DaemonConfig) -> ClientConfig {
    let mut producer_config = client_config(config, &config.kafka.producer_properties);
    producer_config
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("partitioner", &config.kafka.partitioner)
        // Changelog records may be larger than outputs (RecordLimits); outputs
        // are checked against the broker's default before they are sent.
        .set("message.max.bytes", CHANGELOG_MAX_BYTES.to_string());
    if config.kafka.delivery == Delivery::ExactlyOnce {
        producer_config.set("transactional.id", format!("{}-{}", config.kafka.group_id, config.instance_id())).set("transaction.timeout.ms", "60000");
    }
    for (k, v) in &config.kafka.producer_properties {
        producer_config.set(k, v);
    }
    producer_config
}

/// The client settings of the consumer that reads changelogs.
pub fn restore_client_config(config: &DaemonConfig) -> ClientConfig {
    let mut restore_config = client_config(config, &config.kafka.consumer_properties);
    restore_config
        .set("group.id", format!("{}-restore", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        // A restore reads whole partitions: larger fetches, fewer round trips.
        .set("max.partition.fetch.bytes", "8388608")
        // As for the pipeline's consumer: no 1 s pause when the queue fills.
        .set("fetch.queue.backoff.ms", "10");
    restore_config
}

/// A client of the configured brokers with `kafka.properties` (security
/// settings) and `extra`, for tools beside the pipeline.
pub fn client_config(config: &DaemonConfig, extra: &BTreeMap<String, String>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.kafka.brokers);
    for (k, v) in config.kafka.properties.iter().chain(extra) {
        c.set(k, v);
    }
    c
}

/// Creates missing topics with an admin client (real Kafka, tansu).
pub fn create_topics(config: &DaemonConfig) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = client_config(config, &BTreeMap::new()).create()?;
    let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(10))?;
    let inputs = config.topics.input_names();
    let input = inputs.first().context("no input topic (topics.input, topics.inputs)")?;
    let partitions = match config.kafka.partitions {
        Some(p) => p,
        None => metadata
            .topics()
            .iter()
            .find(|t| t.name() == input)
            .map(|t| t.partitions().len() as i32)
            .filter(|n| *n > 0)
            .context("the input topic does not exist: create it, or set kafka.partitions so the daemon can")?,
    };
    let existing: BTreeSet<&str> = metadata.topics().iter().filter(|t| !t.partitions().is_empty()).map(|t| t.name()).collect();
    let group = &config.kafka.group_id;
    let changelog = TopicsSection::changelog(group);
    let repartition = TopicsSection::repartition(group);
    let instances = TopicsSection::instances(group);
    let mut wanted: Vec<(String, Vec<(&str, &str)>)> = inputs.iter().map(|t| (t.clone(), vec![])).collect();
    wanted.push((config.topics.timeline.clone(), vec![]));
    wanted.push((config.topics.metadata.clone(), vec![("cleanup.policy", "compact")]));
    wanted.push((config.topics.dead_letter.clone(), vec![]));
    let changelog_max = CHANGELOG_MAX_BYTES.to_string();
    wanted.push((changelog, vec![("cleanup.policy", "compact"), ("max.message.bytes", changelog_max.as_str())]));
    wanted.push((repartition, vec![]));
    wanted.push((instances, vec![("cleanup.policy", "compact")]));
    let missing: Vec<&(String, Vec<(&str, &str)>)> = wanted.iter().filter(|(name, _)| !existing.contains(name.as_str())).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let topics: Vec<NewTopic<'_>> = missing
        .iter()
        .map(|(name, cfg)| {
            let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(config.kafka.replication_factor));
            for (k, v) in cfg {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let results = runtime.block_on(admin.create_topics(&topics, &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))))?;
    for result in results {
        match result {
            Ok(name) => tracing::info!(topic = %name, partitions, "created topic"),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                tracing::debug!(topic = %name, "topic exists")
            }
            Err((name, code)) => bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Sends a record, waiting (polling delivery reports) while the producer's
/// queue is full.
pub fn send<C: ProducerContext>(producer: &BaseProducer<C>, record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>) -> anyhow::Result<()> {
    let mut record = record;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                producer.poll(Duration::from_millis(50));
                record = r;
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}
