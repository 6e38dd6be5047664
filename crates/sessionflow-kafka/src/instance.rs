//! One live process per `kafka.instance_id`. At start the daemon claims its
//! id on the group's instances topic and then watches that topic: a later
//! claim of the same id means another process took over (a copied config, a
//! host name shared by two containers, a stuck host coming back), and this
//! one stops before its next commit, saying so. Kafka itself fences the
//! older process's transactions and, through static membership, its group
//! member; the claim makes the same happen at least once, on brokers
//! without transactions, and names the other process in the message.

use crate::clients::client_config;
use crate::config::{DaemonConfig, TopicsSection};
use crate::health::Shared;
use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a claim says about the process that made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    /// The host it runs on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Random: two claims are never equal (same host name, pid and
    /// millisecond in two containers).
    #[serde(default)]
    pub nonce: u64,
}

impl Claim {
    fn of_this_process() -> Claim {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        use std::hash::{BuildHasher, Hasher};
        // The standard library's per-process random hash keys: no RNG crate needed.
        let nonce = std::collections::hash_map::RandomState::new().build_hasher().finish();
        Claim { host, pid: std::process::id(), started_at: crate::health::wall_millis().to_rfc3339(), nonce }
    }
}

/// The claim's delivery report: its offset, or why it failed.
#[derive(Default)]
struct Delivered(Mutex<Option<Result<i64, String>>>);

impl ClientContext for Delivered {}

impl ProducerContext for Delivered {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        *self.0.lock().expect("lock") = Some(result.as_ref().map(|m| m.offset()).map_err(|(e, _)| e.to_string()));
    }
}

/// The watch on later claims; stops with the daemon.
#[derive(Debug)]
pub struct InstanceWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for InstanceWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Claims `config`'s instance id and watches for a later claim, which
/// sets `shared`'s fence.
pub fn claim(config: &DaemonConfig, shared: &Arc<Shared>) -> anyhow::Result<InstanceWatch> {
    let topic = TopicsSection::instances(&config.kafka.group_id);
    let instance = config.instance_id();
    let timeout = config.kafka.call_timeout();
    // One record: no idempotence (and no producer id to ask for).
    let producer: BaseProducer<Delivered> = client_config(config, &config.kafka.producer_properties).create_with_context(Delivered::default())?;
    let value = serde_json::to_vec(&Claim::of_this_process())?;
    producer.send(BaseRecord::<str, [u8]>::to(&topic).key(&instance).payload(&value).partition(0)).map_err(|(e, _)| e)?;
    let deadline = Instant::now() + timeout;
    let offset = loop {
        producer.poll(Duration::from_millis(100));
        if let Some(result) = producer.context().0.lock().expect("lock").take() {
            break result.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        anyhow::ensure!(Instant::now() < deadline, "no answer within kafka.call_timeout_ms");
    };
    drop(producer);
    let mut watch_properties = BTreeMap::new();
    watch_properties.extend(config.kafka.consumer_properties.clone());
    let consumer: BaseConsumer = client_config(config, &watch_properties)
        .set("group.id", format!("{}-instance-watch", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the instance watch consumer")?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(&topic, 0, Offset::Offset(offset + 1))?;
    consumer.assign(&list)?;
    tracing::info!(instance = %instance, topic = %topic, offset, "instance id claimed");
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (stop, shared, value) = (stop.clone(), shared.clone(), value.clone());
        std::thread::Builder::new().name("instance-watch".into()).spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match consumer.poll(Duration::from_millis(200)) {
                    // A retried send can write this process's own claim twice.
                    Some(Ok(m)) if m.key() == Some(instance.as_bytes()) && m.payload() != Some(value.as_slice()) => {
                        let by = m.payload().and_then(|v| serde_json::from_slice::<Claim>(v).ok());
                        let who =
                            by.map_or_else(|| "an unknown process".to_owned(), |c| format!("pid {} on host {:?}, started {}", c.pid, c.host, c.started_at));
                        shared.fence(format!("another process ({who}) claimed kafka.instance_id {instance:?}"));
                        return;
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "watching the instances topic"),
                    _ => {}
                }
            }
        })?
    };
    Ok(InstanceWatch { stop, thread: Some(thread) })
}
