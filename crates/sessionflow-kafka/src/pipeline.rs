//! The consume → fold → produce loop, on one dedicated thread.
//!
//! Exactly-once: each batch is one Kafka transaction holding the timeline,
//! metadata, dead-letter and repartition records, the changelog records of
//! the state changes, and the consumed offsets. The changelog is the durable
//! truth; the local RocksDB store is written only after the transaction
//! committed, so it can lag Kafka but never lead it. When a partition is
//! assigned, its state is brought up to date from the changelog, starting at
//! the changelog position the local store recorded (a delta, not a rebuild).
//! A crash at any instant therefore leaves either an aborted transaction
//! (nothing visible, nothing stored) or a committed one the store catches up
//! with.
//!
//! Every rdkafka transaction call blocks; this thread is not an async
//! executor's worker.

use crate::config::{DaemonConfig, Delivery, TopicsSection};
use crate::input::{INPUT_TOPIC_HEADER, InputAdapters};
use crate::metrics::Metrics;
use anyhow::{Context as _, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sessionflow_codec::Codec;
use sessionflow_core::{Batch, BatchStats, DeadLetterPayload, EngineConfig, InputPosition, InputRecord, Millis, Output, SessionCache, State, StateRead, Write};
use sessionflow_store::changelog::{BatchLabel, DELETED_HEADER, OutgoingRecord, PRIOR_HEADER, PartitionRestore, RecordHeaders, at_least_once_records};
use sessionflow_store::{RawRecord, RawRecordBuf, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often one summary line is logged (records, batches, aborts, lag).
const SUMMARY_INTERVAL: Duration = Duration::from_secs(60);

/// When the last summary line was logged, and the counters then.
#[derive(Default)]
struct Summary {
    at: Option<Instant>,
    totals: crate::metrics::IntervalTotals,
}

/// How often the local store's memtables are flushed to disk.
const STATE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// The largest record the brokers take on the output topics when the
/// producer's `message.max.bytes` is not set: librdkafka's default.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// State shared with the HTTP server and the command line.
#[derive(Debug, Default)]
pub struct Shared {
    pub metrics: Metrics,
    /// Assigned partitions are restored and being processed.
    pub ready: AtomicBool,
    /// Set to stop after the current batch.
    pub shutdown: AtomicBool,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Wall-clock milliseconds of the loop's last progress: a batch
    /// committed, or a poll that found nothing to do.
    pub last_progress_ms: AtomicI64,
    /// Partitions assigned to this instance.
    pub assigned: AtomicUsize,
    /// `/healthz` fails once the loop made no progress this long while it
    /// holds partitions (`kafka.stall_timeout_ms`; 0 = never).
    pub stall_timeout_ms: AtomicU64,
    /// Set when another process claimed this instance id (instance.rs).
    fenced_by: Mutex<Option<String>>,
    /// Wall-clock milliseconds of the loop's last turn (0: not started),
    /// and what it is doing since: a call that never returns shows here
    /// (see [`Shared::stuck`]).
    loop_turned_ms: AtomicI64,
    doing: Mutex<&'static str>,
}

impl Shared {
    /// Another process took over this instance id: the loop stops before
    /// its next commit.
    pub fn fence(&self, why: String) {
        tracing::error!(%why, "fenced");
        *self.fenced_by.lock().expect("lock") = Some(why);
    }

    /// Stops with [`FatalError`] if another process took over.
    fn check_fence(&self) -> Result<(), FatalError> {
        match &*self.fenced_by.lock().expect("lock") {
            Some(why) => {
                Err(FatalError(format!("this daemon was fenced: {why}; it stops so that only one writes. Give every daemon its own kafka.instance_id")))
            }
            None => Ok(()),
        }
    }

    /// Notes that the processing loop moved on.
    pub fn progressed(&self) {
        self.last_progress_ms.store(wall_millis().0, Ordering::Relaxed);
    }

    /// Notes that the loop (or a restore) went around, and what it does next.
    fn doing(&self, what: &'static str) {
        *self.doing.lock().expect("lock") = what;
        self.loop_turned_ms.store(wall_millis().0, Ordering::Relaxed);
    }

    /// Why the daemon is unhealthy, if it is: partitions held and no
    /// progress for longer than the stall timeout, or the loop stuck.
    pub fn stalled(&self) -> Option<String> {
        if let Some(why) = self.stuck() {
            return Some(why);
        }
        let timeout = self.stall_timeout_ms.load(Ordering::Relaxed) as i64;
        let since = wall_millis().0 - self.last_progress_ms.load(Ordering::Relaxed);
        (timeout > 0 && self.assigned.load(Ordering::Relaxed) > 0 && since > timeout)
            .then(|| format!("no batch committed and no idle poll for {} s while holding partitions", since / 1000))
    }

    /// The loop has not gone around for longer than the stall timeout: one
    /// call has not returned (librdkafka's `send_offsets_to_transaction`
    /// can wait forever for a group coordinator that went away, ignoring
    /// its timeout). No retry gets out of that; `sessionflow run` exits.
    pub fn stuck(&self) -> Option<String> {
        let timeout = self.stall_timeout_ms.load(Ordering::Relaxed) as i64;
        let turned = self.loop_turned_ms.load(Ordering::Relaxed);
        let since = wall_millis().0 - turned;
        (timeout > 0 && turned > 0 && since > timeout).then(|| {
            let doing = *self.doing.lock().expect("lock");
            format!("the processing loop has been {doing} for {} s (kafka.stall_timeout_ms = {timeout}) without the call returning", since / 1000)
        })
    }
}

/// Outcome of the loop, for the summary.
#[derive(Debug, Default, Clone)]
pub struct RunTotals {
    pub stats: BatchStats,
    pub repartitioned: u64,
    pub aborted: u64,
}

pub(crate) fn wall_millis() -> Millis {
    Millis(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
}

/// Consumer context: restores assigned partitions inside the rebalance
/// callback (no record of a partition is returned before it is restored) and
/// notes revoked ones so the loop drops their uncommitted records.
struct PipelineContext {
    store: Arc<Store>,
    shared: Arc<Shared>,
    /// Reads changelog partitions on assignment.
    restore_consumer: BaseConsumer,
    changelog_topic: String,
    revoked: Mutex<BTreeSet<(String, i32)>>,
    /// Per task, sessions by state (for the gauges on revoke).
    sessions_by_task: Mutex<HashMap<i32, BTreeMap<State, i64>>>,
    restore_error: Mutex<Option<String>>,
    /// Per task, a batch cut short to supersede in the changelog first
    /// (see `sessionflow_store::changelog`).
    repairs: Mutex<BTreeMap<i32, Vec<RawRecord>>>,
    /// Records the restore's polls returned, for the loop to process.
    polled_while_restoring: Mutex<Vec<Received>>,
}

impl ClientContext for PipelineContext {
    /// Consumer lag per assigned partition, from librdkafka's statistics
    /// (`statistics.interval.ms`): no broker round trip on the pipeline thread.
    fn stats(&self, statistics: rdkafka::Statistics) {
        // Real brokers only (bootstrap and coordinator entries have node id -1).
        for b in statistics.brokers.values().filter(|b| b.nodeid >= 0) {
            self.shared.metrics.broker(b.nodeid, b.state == "UP", b.rtt.as_ref().map_or(0, |w| w.avg));
        }
        for (topic, t) in &statistics.topics {
            for p in t.partitions.values() {
                if p.partition >= 0 && p.app_offset >= 0 && p.ls_offset >= 0 && p.fetch_state == "active" {
                    self.shared.metrics.lag(topic, p.partition, (p.ls_offset - p.app_offset).max(0));
                }
            }
        }
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                fail::fail_point!(crate::failpoints::REVOKE, |_| crate::failpoints::park(crate::failpoints::REVOKE));
                let mut revoked = self.revoked.lock().expect("lock");
                for e in list.elements() {
                    let _ = self.shared.assigned.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
                    revoked.insert((e.topic().to_owned(), e.partition()));
                    self.shared.metrics.forget_partition(e.topic(), e.partition());
                }
                self.shared.metrics.rebalance("revoke", list.count());
                let tasks: BTreeSet<i32> = list.elements().iter().map(|e| e.partition()).collect();
                let mut by_task = self.sessions_by_task.lock().expect("lock");
                for task in tasks {
                    self.repairs.lock().expect("lock").remove(&task);
                    if let Some(counts) = by_task.remove(&task) {
                        self.shared.metrics.add_sessions(&counts.iter().map(|(s, n)| (*s, -n)).collect());
                    }
                }
                tracing::info!(partitions = list.count(), "partitions revoked; their state stays on disk for a later assignment");
            }
            Rebalance::Assign(list) => {
                // Restored before the assignment takes effect, so no record of
                // a partition arrives before its state.
                self.shared.metrics.rebalance("assign", list.count());
                self.shared.assigned.fetch_add(list.count(), Ordering::Relaxed);
                // A long restore is progress, not a stall.
                self.shared.progressed();
                self.shared.ready.store(false, Ordering::SeqCst);
                self.shared.metrics.ready(false);
                let tasks: BTreeSet<i32> = list.elements().iter().map(|e| e.partition()).collect();
                let owned = self.sessions_by_task.lock().expect("lock").keys().copied().collect::<BTreeSet<i32>>();
                let new_tasks: Vec<i32> = tasks.difference(&owned).copied().collect();
                if let Err(e) = self.restore(consumer, &new_tasks) {
                    tracing::error!(partitions = ?new_tasks, error = %e, "restoring state from the changelog failed");
                    *self.restore_error.lock().expect("lock") = Some(format!("partitions {new_tasks:?}: {e:#}"));
                }
                self.resume_from_state(list);
            }
            Rebalance::Error(_) => {}
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(_) = rebalance {
            self.shared.ready.store(true, Ordering::SeqCst);
            self.shared.metrics.ready(true);
            self.shared.progressed();
        }
    }
}

impl PipelineContext {
    /// Starts each assigned partition at the offset its restored state was
    /// committed with. That state and the group's offsets were committed in
    /// one transaction, so on Kafka both agree; the state is the one source
    /// that exists on every broker (the embedded one does not keep
    /// transactional offset commits) and, in at-least-once mode, it may be
    /// ahead of the group's offsets, which saves re-processing.
    fn resume_from_state(&self, list: &TopicPartitionList) {
        for mut element in list.elements() {
            let meta = match self.store.partition(element.partition() as u32).meta() {
                Ok(meta) => meta,
                Err(e) => {
                    *self.restore_error.lock().expect("lock") = Some(format!("partition {}: {e:#}", element.partition()));
                    continue;
                }
            };
            if let Some(next) = meta.next_offsets.get(element.topic()) {
                self.shared.metrics.committed(element.topic(), element.partition(), *next);
                if let Err(e) = element.set_offset(Offset::Offset(*next)) {
                    tracing::warn!(topic = element.topic(), partition = element.partition(), error = %e, "cannot set the start offset");
                }
                tracing::debug!(topic = element.topic(), partition = element.partition(), offset = next, "resuming from the state's offset");
            }
        }
    }

    /// Brings newly assigned tasks' local state up to date from their changelog partitions.
    ///
    /// rdkafka calls this callback after librdkafka's poll returned, so the
    /// restore's time would count against `max.poll.interval.ms` and a long
    /// one would take the instance out of the group. The restore therefore
    /// polls the group's consumer as it goes; records of the partitions
    /// already held that such a poll returns are kept for the loop.
    fn restore(&self, consumer: &BaseConsumer<Self>, tasks: &[i32]) -> anyhow::Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let mut keep_polling = || {
            // A restore goes on as long as it moves.
            self.shared.doing("restoring state from the changelog");
            while let Some(result) = consumer.poll(Duration::ZERO) {
                match result {
                    Ok(m) => self.polled_while_restoring.lock().expect("lock").push(Received { message: m.detach() }),
                    Err(KafkaError::PartitionEOF(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "consumer error while restoring"),
                }
            }
        };
        let restored = restore_partitions_polling(&self.restore_consumer, &self.changelog_topic, &self.store, tasks, &self.shared.metrics, &mut keep_polling)?;
        self.repairs.lock().expect("lock").extend(restored.repairs);
        let metrics = &self.shared.metrics;
        for &task in tasks {
            // Sessions by state, for the gauges.
            let mut counts: BTreeMap<State, i64> = BTreeMap::new();
            for (_, entry) in self.store.partition(task as u32).sessions()? {
                if let Some(state) = entry.public_state() {
                    *counts.entry(state).or_default() += 1;
                }
            }
            metrics.add_sessions(&counts);
            self.sessions_by_task.lock().expect("lock").insert(task, counts);
        }
        Ok(())
    }
}

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

/// One changelog partition being read by [`restore_partitions`].
struct Restoring {
    /// The changelog's rules: what is committed, what was cut short.
    records: PartitionRestore,
    /// Next offset to read.
    read: i64,
    /// End of the changelog when the restore began.
    high: i64,
    applied: u64,
}

/// Records buffered per partition before one store write. The partitions
/// are read interleaved, so a chunk fills at about the pace of the whole
/// restore divided by the partition count: a large one (5,000 records was
/// tried) fills only near the end, and the writer then starts when the
/// reader is done instead of working beside it.
const RESTORE_CHUNK: usize = 500;

/// How long a restore may go without reading a record while its partitions
/// are behind: there is no cap on a restore that makes progress.
const RESTORE_STALL: Duration = Duration::from_secs(120);

/// How often a restore in the rebalance callback polls the group's consumer.
const KEEP_POLLING: Duration = Duration::from_millis(500);

/// Polls the group's consumer every [`KEEP_POLLING`] while a restore runs,
/// also while it waits for the store writer.
struct KeepPolling<'f> {
    poll: &'f mut dyn FnMut(),
    last: Instant,
}

impl KeepPolling<'_> {
    fn tick(&mut self) {
        if self.last.elapsed() >= KEEP_POLLING {
            (self.poll)();
            self.last = Instant::now();
        }
    }

    /// Hands a chunk to the writer, polling while its queue is full; false
    /// once the writer has stopped (on an error, which the caller reports).
    fn send(&mut self, writes: &std::sync::mpsc::SyncSender<RestoreChunk>, chunk: RestoreChunk) -> bool {
        let mut chunk = chunk;
        loop {
            match writes.try_send(chunk) {
                Ok(()) => return true,
                Err(std::sync::mpsc::TrySendError::Full(back)) => {
                    chunk = back;
                    self.tick();
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return false,
            }
        }
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Records applied to the store (the undo of batches cut short included).
    pub records: u64,
    /// Per partition, the keys of a batch cut short with their committed
    /// values: written to the changelog again ahead of the partition's next
    /// batch, so the cut batch is superseded in the log.
    pub repairs: BTreeMap<i32, Vec<RawRecord>>,
}

/// Brings partitions of the local store up to date from their changelog
/// partitions, each from the position the store recorded. All are read
/// at once, so the client fetches them in parallel.
pub fn restore_partitions(consumer: &BaseConsumer, changelog_topic: &str, store: &Store, tasks: &[i32], metrics: &Metrics) -> anyhow::Result<Restored> {
    restore_partitions_polling(consumer, changelog_topic, store, tasks, metrics, &mut || {})
}

/// [`restore_partitions`], calling `keep_polling` at least every
/// [`KEEP_POLLING`] (the group consumer's poll, see `PipelineContext::restore`).
fn restore_partitions_polling(
    consumer: &BaseConsumer,
    changelog_topic: &str,
    store: &Store,
    tasks: &[i32],
    metrics: &Metrics,
    keep_polling: &mut dyn FnMut(),
) -> anyhow::Result<Restored> {
    let mut keep_polling = KeepPolling { poll: keep_polling, last: Instant::now() };
    // The store is written on its own thread, so reading the changelog never
    // waits for RocksDB; a few chunks in flight bound the memory. Written
    // chunks' buffers go back to the reader to be filled again.
    let (writes, chunks) = std::sync::mpsc::sync_channel::<RestoreChunk>(4);
    let (recycle, recycled) = std::sync::mpsc::channel::<RawRecordBuf>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> anyhow::Result<()> {
            for mut chunk in chunks {
                let n = chunk.records.len() as u64;
                if n > 0 {
                    let position = chunk.position.max(store.changelog_position(chunk.task as u32)?);
                    store.commit_raw_buf(chunk.task as u32, &chunk.records, Some(position))?;
                    metrics.restore_progress(chunk.task, n, chunk.behind);
                }
                if chunk.last {
                    metrics.restore_finished(chunk.task);
                }
                chunk.records.clear();
                // The reader may be done and gone: the buffer is then dropped.
                let _ = recycle.send(chunk.records);
            }
            Ok(())
        });
        let read = read_changelog(consumer, changelog_topic, store, tasks, metrics, &writes, &recycled, &mut keep_polling);
        drop(writes);
        // The writer may still have chunks to write.
        while !writer.is_finished() {
            keep_polling.tick();
            std::thread::sleep(Duration::from_millis(10));
        }
        let written = writer.join().map_err(|_| anyhow::anyhow!("the restore writer panicked"))?;
        written.context("writing restored state")?;
        read
    })
}

/// Changelog records of one partition, read and not yet written.
struct RestoreChunk {
    task: i32,
    records: RawRecordBuf,
    /// The changelog position the partition is at once these are written.
    position: i64,
    /// Records still to read when the chunk was cut (for the progress gauge).
    behind: i64,
    /// The partition's last chunk: its restore is complete once written.
    last: bool,
}

#[allow(clippy::too_many_arguments)]
fn read_changelog(
    consumer: &BaseConsumer,
    changelog_topic: &str,
    store: &Store,
    tasks: &[i32],
    metrics: &Metrics,
    writes: &std::sync::mpsc::SyncSender<RestoreChunk>,
    recycled: &std::sync::mpsc::Receiver<RawRecordBuf>,
    keep_polling: &mut KeepPolling<'_>,
) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let mut restoring: BTreeMap<i32, Restoring> = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    let mut restored = Restored::default();
    for &task in tasks {
        let (low, high) = consumer.fetch_watermarks(changelog_topic, task, Duration::from_secs(10))?;
        let mut position = store.changelog_position(task as u32)?;
        if position < low {
            tracing::warn!(partition = task, position, low, "local state is older than the changelog keeps: rebuilding the partition");
            store.drop_partition(task as u32)?;
            position = low;
        }
        if position < high {
            metrics.restore_started();
            tracing::info!(partition = task, from = position, to = high, "restoring state from the changelog");
            list.add_partition_offset(changelog_topic, task, Offset::Offset(position))?;
            restoring.insert(task, Restoring { records: PartitionRestore::new(position), read: position, high, applied: 0 });
        }
    }
    if restoring.is_empty() {
        return Ok(restored);
    }
    consumer.assign(&list)?;
    let mut last_read = Instant::now();
    while !restoring.is_empty() {
        keep_polling.tick();
        let mut touched: Option<i32> = None;
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                last_read = Instant::now();
                let task = m.partition();
                if let Some(r) = restoring.get_mut(&task) {
                    touched = Some(task);
                    r.read = m.offset() + 1;
                    if let Some(key) = m.key() {
                        let headers = RecordHeaders::from_pairs(m.headers().into_iter().flat_map(|h| h.iter()).map(|h| (h.key, h.value)));
                        r.records.push(m.offset(), key, m.payload(), &headers).with_context(|| format!("changelog partition {task}"))?;
                        fail::fail_point!(crate::failpoints::RESTORE_READ, |_| crate::failpoints::park(crate::failpoints::RESTORE_READ));
                    }
                }
            }
            // The end: on Kafka the last offsets may be transaction markers, never returned.
            Some(Err(KafkaError::PartitionEOF(task))) => {
                if let Some(r) = restoring.get_mut(&task) {
                    r.read = r.read.max(r.high);
                    touched = Some(task);
                }
            }
            Some(Err(e)) => {
                if let Some((code, reason)) = consumer.client().fatal_error() {
                    bail!("reading the changelog: fatal error {code:?}: {reason}");
                }
                // A broker connection lost is reported and then mended by
                // librdkafka itself; RESTORE_STALL bounds the wait.
                tracing::warn!(error = %e, "reading the changelog: retrying");
            }
            None => {
                for e in consumer.position()?.elements() {
                    if let (Some(r), Offset::Offset(o)) = (restoring.get_mut(&e.partition()), e.offset())
                        && o >= r.high
                    {
                        r.read = r.read.max(r.high);
                    }
                }
            }
        }
        // The partition a record came from, or all of them after a timeout.
        let (one, all): ([i32; 1], Vec<i32>);
        let candidates: &[i32] = match touched {
            Some(task) => {
                one = [task];
                &one
            }
            None => {
                all = restoring.keys().copied().collect();
                &all
            }
        };
        for &task in candidates {
            let Some(r) = restoring.get_mut(&task) else { continue };
            let done = r.read >= r.high;
            if done {
                let r = restoring.remove(&task).expect("present");
                let end = r.records.finish();
                let n = end.records.len() as u64;
                restored.records += n;
                let chunk = RestoreChunk { task, records: end.records, position: end.position, behind: 0, last: true };
                if !keep_polling.send(writes, chunk) {
                    // The writer stopped on an error, which the caller reports.
                    return Ok(restored);
                }
                let mut finished = TopicPartitionList::new();
                finished.add_partition(changelog_topic, task);
                consumer.pause(&finished)?;
                if end.cut_short > 0 || end.superseded > 0 {
                    tracing::warn!(
                        partition = task,
                        cut_short = end.cut_short,
                        superseded = end.superseded,
                        "changelog records of a batch cut short were not applied; its input is processed again from the last committed offsets"
                    );
                }
                if !end.repair.is_empty() {
                    restored.repairs.insert(task, end.repair);
                }
                let secs = started.elapsed().as_secs_f64();
                tracing::info!(
                    partition = task,
                    records = r.applied + n,
                    seconds = secs,
                    records_per_second = (r.applied + n) as f64 / secs.max(1e-9),
                    "restore finished"
                );
            } else if r.records.pending_len() == 0 && r.records.committed_len() >= RESTORE_CHUNK {
                // Only committed records are written: whole batches.
                let next = recycled.try_recv().unwrap_or_default();
                let records = r.records.take_committed(next);
                let n = records.len() as u64;
                r.applied += n;
                restored.records += n;
                let chunk = RestoreChunk { task, records, position: r.records.position(), behind: r.high - r.read, last: false };
                if !keep_polling.send(writes, chunk) {
                    return Ok(restored);
                }
            }
        }
        if !restoring.is_empty() && last_read.elapsed() > RESTORE_STALL {
            bail!(
                "restore of changelog partitions {:?} read nothing for {} s while behind: is the changelog topic readable?",
                restoring.keys().collect::<Vec<_>>(),
                RESTORE_STALL.as_secs()
            );
        }
    }
    consumer.unassign()?;
    Ok(restored)
}

/// Producer context: remembers the last changelog offset delivered per partition.
struct DeliveryTracker {
    changelog_topic: String,
    changelog_next: Mutex<HashMap<i32, i64>>,
    failures: AtomicU64,
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) if m.topic() == self.changelog_topic => {
                let mut next = self.changelog_next.lock().expect("lock");
                let slot = next.entry(m.partition()).or_insert(0);
                *slot = (*slot).max(m.offset() + 1);
            }
            Ok(_) => {}
            // Purged by an abort: the batch is retried.
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue | RDKafkaErrorCode::PurgeInflight), _)) => {}
            Err((e, _)) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "a record was not delivered");
            }
        }
    }
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

/// A consumed record, owned.
struct Received {
    message: OwnedMessage,
}

/// Runs the pipeline until `shared.shutdown` is set. Blocking.
/// How input records are read and outputs written: the codec, and the
/// adapters of vendor-format input topics.
struct Formats<'a> {
    codec: &'a Codec,
    adapters: InputAdapters,
}

pub fn run(config: &DaemonConfig, engine: &EngineConfig, codec: &Codec, store: &Arc<Store>, shared: &Arc<Shared>) -> anyhow::Result<RunTotals> {
    let formats = Formats { codec, adapters: InputAdapters::new(&config.topics) };
    let group = config.kafka.group_id.clone();
    let changelog_topic = TopicsSection::changelog(&group);
    let repartition_topic = TopicsSection::repartition(&group);
    let exactly_once = config.kafka.delivery == Delivery::ExactlyOnce;
    let instance = config.instance_id();

    // Before joining the group: a process already running with this id
    // stops on seeing the claim.
    let _watch = crate::instance::claim(config, shared).context("claiming kafka.instance_id on the instances topic (kafka.create_topics creates it)")?;
    let restore_consumer: BaseConsumer = restore_client_config(config).create().context("creating the restore consumer")?;
    let context = PipelineContext {
        store: store.clone(),
        shared: shared.clone(),
        restore_consumer,
        changelog_topic: changelog_topic.clone(),
        revoked: Mutex::new(BTreeSet::new()),
        sessions_by_task: Mutex::new(HashMap::new()),
        restore_error: Mutex::new(None),
        repairs: Mutex::new(BTreeMap::new()),
        polled_while_restoring: Mutex::new(Vec::new()),
    };
    let consumer: BaseConsumer<PipelineContext> = consumer_client_config(config).create_with_context(context).context("creating the consumer")?;
    let input_names = config.topics.input_names();
    let mut sources: Vec<&str> = input_names.iter().map(String::as_str).collect();
    sources.push(&repartition_topic);
    consumer.subscribe(&sources).context("subscribing")?;

    let producer_config = producer_client_config(config);
    let tracker = DeliveryTracker { changelog_topic: changelog_topic.clone(), changelog_next: Mutex::new(HashMap::new()), failures: AtomicU64::new(0) };
    let producer: BaseProducer<DeliveryTracker> = producer_config.create_with_context(tracker).context("creating the producer")?;
    if exactly_once {
        // A coordinator that is loading or moving answers retriably; the
        // call may then be retried (librdkafka's init_transactions docs).
        loop {
            match producer.init_transactions(config.kafka.call_timeout()) {
                Ok(()) => break,
                Err(KafkaError::Transaction(e)) if e.is_retriable() && !e.is_fatal() && !shared.shutdown.load(Ordering::SeqCst) => {
                    tracing::warn!(error = %e, "initialising transactions: retrying");
                }
                Err(e) => {
                    return Err(e).context("initialising transactions (does the broker support them? use kafka.delivery = \"at_least_once\" otherwise)");
                }
            }
        }
    }
    // Resolved once: with the setting unset it reads the CPU quota from /proc.
    let processing_threads = config.kafka.processing_threads();
    let limits = RecordLimits::of(config);
    shared.stall_timeout_ms.store(config.kafka.stall_timeout_ms, Ordering::Relaxed);
    shared.progressed();
    tracing::info!(group = %group, instance = %instance, delivery = ?config.kafka.delivery, inputs = ?input_names, processing_threads, "pipeline started");

    let mut totals = RunTotals::default();
    let commit_interval = Duration::from_millis(config.kafka.commit_interval_ms.max(1));
    let mut last_record_at: HashMap<i32, Instant> = HashMap::new();
    let mut pending: Vec<Received> = Vec::new();
    // Batch ids are unique across restarts of this instance.
    let run_id = wall_millis().0;
    let mut batch_seq = 0u64;
    let mut last_state_flush = Instant::now();
    // Per task: session entries kept decoded between batches.
    let mut caches: HashMap<i32, SessionCache> = HashMap::new();

    let mut last_cut = Instant::now();
    let mut summary = Summary::default();
    // A batch failed and its records are to be processed again.
    let mut retrying = false;
    let outcome = (|| -> anyhow::Result<()> {
        while !shared.shutdown.load(Ordering::SeqCst) {
            shared.doing("polling");
            shared.check_fence()?;
            // Collect a batch: batches are cut every commit interval, counted from
            // the previous cut (as Kafka Streams commits), so records that arrived
            // while the previous batch was processed wait one interval, not that
            // batch's processing time on top. Past the cut, take what is there.
            let deadline = last_cut + commit_interval;
            while pending.len() < config.kafka.max_batch_records {
                match consumer.poll(deadline.saturating_duration_since(Instant::now())) {
                    Some(Ok(m)) => pending.push(Received { message: m.detach() }),
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => {
                        if let Some((code, reason)) = consumer.client().fatal_error() {
                            bail!(fatal_client_error("consumer", code, &reason, &instance));
                        }
                        tracing::warn!(error = %e, "consumer error");
                    }
                    None => break,
                }
                if shared.shutdown.load(Ordering::SeqCst) {
                    break;
                }
            }
            last_cut = Instant::now();
            // Polled during a restore, inside the poll that ended the loop above
            // (a rebalance ends it): they follow everything polled before.
            pending.append(&mut consumer.context().polled_while_restoring.lock().expect("lock"));
            if let Some(e) = consumer.context().restore_error.lock().expect("lock").take() {
                bail!("state restore failed: {e}");
            }
            // Records of partitions revoked meanwhile belong to their next owner.
            let revoked = std::mem::take(&mut *consumer.context().revoked.lock().expect("lock"));
            if !revoked.is_empty() {
                pending.retain(|r| !revoked.contains(&(r.message.topic().to_owned(), r.message.partition())));
                for (_, partition) in &revoked {
                    caches.remove(partition);
                }
            }

            // Idle partitions advance their watermark with the wall clock.
            let now = Instant::now();
            let mut idle_advance: BTreeMap<i32, Millis> = BTreeMap::new();
            if config.idle_advance_after_ms > 0 {
                let assignment = consumer.assignment().unwrap_or_default();
                let tasks: BTreeSet<i32> = assignment.elements().iter().map(|e| e.partition()).collect();
                for task in tasks {
                    let since = *last_record_at.entry(task).or_insert(now);
                    let idle = now.duration_since(since).as_millis() as i64;
                    if idle >= config.idle_advance_after_ms && !pending.iter().any(|r| r.message.partition() == task) {
                        let meta = store.partition(task as u32).meta()?;
                        if let Some(max) = meta.max_event_time {
                            idle_advance.insert(task, max.plus(idle - engine.allowed_lateness_ms));
                        }
                    }
                }
            }
            if pending.is_empty() && idle_advance.is_empty() {
                // Nothing to do is progress too: the loop is alive and caught up
                // (not while a failed batch waits for its records to come back).
                if !retrying {
                    shared.progressed();
                }
                continue;
            }

            let batch_started = Instant::now();
            let records = std::mem::take(&mut pending);
            batch_seq += 1;
            let batch_id = format!("{instance}/{run_id}/{batch_seq}");
            match process_batch(
                config,
                engine,
                &formats,
                store,
                &consumer,
                &producer,
                &records,
                &idle_advance,
                &repartition_topic,
                &changelog_topic,
                &batch_id,
                processing_threads,
                &mut caches,
                shared,
                &limits,
            ) {
                Ok(outcome) => {
                    retrying = false;
                    shared.progressed();
                    for r in &records {
                        last_record_at.insert(r.message.partition(), now);
                    }
                    totals.stats.merge(&outcome.stats);
                    totals.repartitioned += outcome.repartitioned;
                    shared.metrics.batch(&outcome.stats);
                    shared.metrics.session_cache(caches.values().map(SessionCache::used_bytes).sum());
                    shared.metrics.batch_duration(batch_started.elapsed().as_secs_f64());
                    shared.batches.fetch_add(1, Ordering::Relaxed);
                    if last_state_flush.elapsed() >= STATE_FLUSH_INTERVAL {
                        // Without a write-ahead log, a crash takes the store back
                        // to its last flush; flushing bounds what the changelog
                        // must replay then.
                        store.flush_in_background()?;
                        last_state_flush = Instant::now();
                    }
                }
                Err(e) => {
                    retrying = true;
                    totals.aborted += 1;
                    shared.metrics.aborted();
                    if let Some((code, reason)) = producer.client().fatal_error() {
                        return Err(e).context(fatal_client_error("producer", code, &reason, &instance));
                    }
                    if is_fatal(&e) {
                        return Err(e);
                    }
                    tracing::warn!(error = %format!("{e:#}"), records = records.len(), "batch failed; rewinding to its first offsets");
                    // A transaction that cannot be aborted leaves the producer in
                    // a state no later batch gets out of: stop, and let the next
                    // start fence and abort it (init_transactions).
                    if exactly_once {
                        shared.doing("aborting the transaction");
                        abort_transaction(&producer, config.kafka.call_timeout(), shared)
                            .context("aborting the transaction failed; stopping (a restart aborts it for certain)")?;
                    }
                    rewind(&consumer, &records)?;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            shared.metrics.store(&store.stats());
            if summary.at.is_none_or(|at| at.elapsed() >= SUMMARY_INTERVAL) {
                shared.metrics.log_summary(&mut summary.totals, shared.batches.load(Ordering::Relaxed));
                summary.at = Some(Instant::now());
            }
        }
        Ok(())
    })();
    // Leave the group on an error too: a restart then joins at once instead
    // of waiting for this member's session to time out.
    consumer.unsubscribe();
    outcome?;
    tracing::info!("shutting down: last batch committed");
    store.flush()?;
    Ok(totals)
}

struct BatchOutcome {
    stats: BatchStats,
    repartitioned: u64,
}

fn rewind(consumer: &BaseConsumer<PipelineContext>, records: &[Received]) -> anyhow::Result<()> {
    let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in records {
        let slot = first.entry((r.message.topic().to_owned(), r.message.partition())).or_insert(i64::MAX);
        *slot = (*slot).min(r.message.offset());
    }
    for ((topic, partition), offset) in first {
        consumer.seek(&topic, partition, Offset::Offset(offset), Duration::from_secs(10))?;
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

#[allow(clippy::too_many_arguments)]
fn process_batch(
    config: &DaemonConfig,
    engine: &EngineConfig,
    formats: &Formats<'_>,
    store: &Store,
    consumer: &BaseConsumer<PipelineContext>,
    producer: &BaseProducer<DeliveryTracker>,
    records: &[Received],
    idle_advance: &BTreeMap<i32, Millis>,
    repartition_topic: &str,
    changelog_topic: &str,
    batch_id: &str,
    processing_threads: usize,
    caches: &mut HashMap<i32, SessionCache>,
    shared: &Shared,
    limits: &RecordLimits,
) -> anyhow::Result<BatchOutcome> {
    let exactly_once = config.kafka.delivery == Delivery::ExactlyOnce;
    let started = Instant::now();
    shared.doing("processing a batch");
    if exactly_once {
        producer.begin_transaction()?;
        shared.metrics.transaction_open(true);
    }
    let mut by_task: BTreeMap<i32, Vec<&Received>> = BTreeMap::new();
    for r in records {
        by_task.entry(r.message.partition()).or_default().push(r);
    }
    for task in idle_advance.keys() {
        by_task.entry(*task).or_default();
    }
    // One budget split over the tasks with a cache; a task's cache travels
    // with it to its thread and comes back with its writes.
    let task_budget = config.session_cache_bytes / caches.len().max(by_task.len()).max(1);
    let tasks: Vec<TaskInput<'_>> = by_task
        .into_iter()
        .map(|(task, records)| {
            let mut cache = caches.remove(&task).unwrap_or_else(|| SessionCache::new(task_budget));
            cache.set_budget(task_budget);
            TaskInput { task, records, cache: Mutex::new(Some(cache)) }
        })
        .collect();
    let now = wall_millis();
    // Exactly once, a task's changelog records go out with its outputs: the
    // transaction makes them visible together. At least once, they wait
    // until every output is delivered (below).
    let changelog = exactly_once.then_some(changelog_topic);
    // Cut-short batches to supersede, kept until this batch commits.
    let repairs = consumer.context().repairs.lock().expect("lock").clone();
    let run_task = |input: &TaskInput<'_>| {
        let cache = input.cache.lock().expect("lock").take().expect("each task runs once");
        let task = input.task;
        let mut output =
            process_task(config, engine, formats, store, task, &input.records, idle_advance.get(&task).copied(), repartition_topic, now, cache, shared)?;
        let repair = repairs.get(&task).map(Vec::as_slice).unwrap_or_default();
        label_changelog(store, &mut output, batch_id, repair, !exactly_once)?;
        send_task_records(producer, &mut output, changelog, limits)?;
        Ok(output)
    };
    // Tasks share nothing but the store, so they are computed in parallel,
    // and each thread hands its task's records to the producer as soon as
    // they are computed: sending takes about a third of the computing time
    // and would otherwise run on one thread after all of it. A session's
    // records come from one task, so they are sent in order.
    let computed: Vec<anyhow::Result<TaskOutput<'_>>> = in_parallel(&tasks, processing_threads, run_task);
    let computed_at = Instant::now();
    let mut stats = BatchStats::default();
    let mut repartitioned = 0u64;
    let mut commits: Vec<(u32, Vec<RawRecord>)> = Vec::with_capacity(computed.len());
    let mut labelled: Vec<(u32, BatchLabel, Option<Vec<OutgoingRecord>>)> = Vec::with_capacity(computed.len());
    let mut committed: Vec<(u32, Vec<Write>, SessionCache)> = Vec::with_capacity(computed.len());
    let mut produced: BTreeMap<&str, u64> = BTreeMap::new();
    let mut oversize: BTreeMap<&str, u64> = BTreeMap::new();
    let mut consumed: BTreeMap<Arc<str>, u64> = BTreeMap::new();
    for result in computed {
        let task = result?;
        stats.merge(&task.stats);
        repartitioned += task.repartitioned;
        for (topic, n) in task.produced {
            *produced.entry(topic).or_default() += n;
        }
        for (topic, n) in task.oversize {
            *oversize.entry(topic).or_default() += n;
        }
        for (topic, n) in task.consumed {
            *consumed.entry(topic).or_default() += n;
        }
        commits.push((task.task, task.raw));
        labelled.push((task.task, task.label, task.at_least_once));
        committed.push((task.task, task.writes, task.cache));
    }
    if !exactly_once {
        // At least once: the outputs are delivered before the state that
        // says they were, so a crash can repeat outputs but never lose one.
        flush_delivered(producer, config.kafka.call_timeout())?;
        for (task, label, records) in &labelled {
            let records = records.as_deref().unwrap_or_default();
            let records = records.iter().map(|r| (r.key.as_slice(), r.value.as_deref(), r.prior.as_deref(), r.deleted));
            send_changelog(producer, changelog_topic, label, *task, records, limits)?;
        }
    }

    // The consumed offsets: next to read = last + 1.
    let mut offsets: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for r in records {
        let slot = offsets.entry((r.message.topic().to_owned(), r.message.partition())).or_insert(0);
        *slot = (*slot).max(r.message.offset() + 1);
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), next) in &offsets {
        list.add_partition_offset(topic, *partition, Offset::Offset(*next))?;
    }
    let txn_started = Instant::now();
    let sent = txn_started.duration_since(computed_at);
    if exactly_once {
        if !offsets.is_empty() {
            let group = consumer.group_metadata().context("no consumer group metadata")?;
            shared.doing("sending the consumed offsets to the transaction");
            producer.send_offsets_to_transaction(&list, &group, config.kafka.call_timeout())?;
        }
        fail::fail_point!(crate::failpoints::COMMIT, |_| crate::failpoints::park(crate::failpoints::COMMIT));
        shared.check_fence()?;
        shared.doing("committing the transaction");
        commit_transaction(producer, config.kafka.call_timeout(), shared)?;
    } else {
        shared.doing("waiting for deliveries");
        flush_delivered(producer, config.kafka.call_timeout())?;
        fail::fail_point!(crate::failpoints::COMMIT, |_| crate::failpoints::park(crate::failpoints::COMMIT));
        shared.check_fence()?;
        if !offsets.is_empty() {
            shared.doing("committing the consumed offsets");
            consumer.commit(&list, CommitMode::Sync)?;
        }
    }
    // Both paths above waited for every delivery report, so the changelog
    // offsets they carry are all known.
    shared.metrics.transaction_duration(txn_started.elapsed().as_secs_f64());
    for (topic, n) in consumed {
        shared.metrics.consumed(&topic, n);
    }
    for (topic, n) in oversize {
        shared.metrics.oversize_outputs(topic, n);
    }
    for (topic, n) in produced {
        shared.metrics.produced(topic, n);
    }
    shared.metrics.repartitioned(repartitioned);

    let kafka_commit = txn_started.elapsed();
    shared.doing("writing the store");
    // Committed in Kafka: now the local store (it may lag, never lead).
    let store_started = Instant::now();
    let next = producer.context().changelog_next.lock().expect("lock").clone();
    // Each task's writes are one write batch in its own key range: they go
    // to RocksDB from as many threads as computed them, its memtable taking
    // concurrent inserts.
    let write_task = |(partition, raw): &(u32, Vec<RawRecord>)| -> anyhow::Result<()> {
        fail::fail_point!(crate::failpoints::STORE_WRITE, |_| crate::failpoints::park(crate::failpoints::STORE_WRITE));
        let position = match next.get(&(*partition as i32)) {
            Some(p) => Some((*p).max(store.changelog_position(*partition)?)),
            None => None,
        };
        store.commit_raw(*partition, raw, position)?;
        Ok(())
    };
    in_parallel(&commits, processing_threads, write_task).into_iter().collect::<anyhow::Result<()>>().context(
        "the batch is committed to Kafka but the local store could not be written; stopping so the batch is not produced again \
         (on restart the store catches up from the changelog)",
    )?;
    // The cut-short batches these tasks superseded are repaired.
    let mut pending_repairs = consumer.context().repairs.lock().expect("lock");
    for (task, _) in &commits {
        pending_repairs.remove(&(*task as i32));
    }
    drop(pending_repairs);
    // The store holds the batch: its entries may serve the next one.
    for (task, writes, mut cache) in committed {
        cache.committed(writes);
        caches.insert(task as i32, cache);
    }
    for ((topic, partition), next) in &offsets {
        shared.metrics.committed(topic, *partition, *next);
    }
    tracing::debug!(
        records = records.len(),
        compute_ms = computed_at.duration_since(started).as_secs_f64() * 1e3,
        send_ms = sent.as_secs_f64() * 1e3,
        kafka_commit_ms = kafka_commit.as_secs_f64() * 1e3,
        store_ms = store_started.elapsed().as_secs_f64() * 1e3,
        "batch stages"
    );
    Ok(BatchOutcome { stats, repartitioned })
}

/// `f` of each item, on up to `threads` threads (the calling one among
/// them), items taken in order as threads come free; results in item order.
fn in_parallel<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len()).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let result = f(item);
            *slots[i].lock().expect("lock") = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    slots.into_iter().map(|slot| slot.into_inner().expect("lock").expect("every item was done")).collect()
}

/// One task's records of a batch, with its session cache (taken by the
/// thread that computes the task).
struct TaskInput<'r> {
    task: i32,
    records: Vec<&'r Received>,
    cache: Mutex<Option<SessionCache>>,
}

/// One task's share of a batch: computed and encoded, then sent.
struct TaskOutput<'a> {
    task: u32,
    topics: &'a TopicsSection,
    /// Computed, not yet sent.
    out: Vec<OutRecord<'a>>,
    /// Records sent, per topic.
    produced: BTreeMap<&'a str, u64>,
    /// Records over message.max.bytes, per topic meant for.
    oversize: BTreeMap<&'a str, u64>,
    /// The store writes, as changelog records.
    raw: Vec<RawRecord>,
    /// The changelog headers of the batch.
    label: BatchLabel,
    /// At least once: the changelog records, with prior values and deletes
    /// as `sessionflow.deleted` records (exactly once, `raw` is sent as is).
    at_least_once: Option<Vec<OutgoingRecord>>,
    /// The same writes, for the session cache once they are committed.
    writes: Vec<Write>,
    cache: SessionCache,
    stats: BatchStats,
    repartitioned: u64,
    /// Records consumed, per topic: counted once the batch commits, with
    /// its outputs, so an aborted batch inflates neither side.
    consumed: Vec<(Arc<str>, u64)>,
}

/// Folds one task's records of a batch against its committed state and
/// encodes what they produce. Reads the store, writes nothing.
#[allow(clippy::too_many_arguments)]
fn process_task<'a>(
    config: &'a DaemonConfig,
    engine: &EngineConfig,
    formats: &Formats<'_>,
    store: &Store,
    task: i32,
    records: &[&Received],
    idle_advance: Option<Millis>,
    repartition_topic: &'a str,
    now: Millis,
    mut cache: SessionCache,
    shared: &Shared,
) -> anyhow::Result<TaskOutput<'a>> {
    let topics = &config.topics;
    let state = store.partition(task as u32);
    let mut batch = Batch::with_cache(engine, &state, now, &mut cache)?;
    // Events too far ahead of the wall clock are dead letters (engine.max_future_skew).
    batch.set_wall_clock(Some(now));
    let mut out: Vec<OutRecord<'a>> = Vec::new();
    let mut repartitioned = 0u64;
    // Consumed records per topic, reported once per task (a labelled
    // counter per record costs a lookup and a shared cache line).
    // The topic's name is shared by the positions of its records.
    let mut consumed: Vec<(Arc<str>, u64)> = Vec::new();
    for r in records {
        let m = &r.message;
        let topic = match consumed.iter_mut().find(|(topic, _)| **topic == *m.topic()) {
            Some((topic, n)) => {
                *n += 1;
                topic.clone()
            }
            None => {
                let topic = Arc::<str>::from(m.topic());
                consumed.push((topic.clone(), 1));
                topic
            }
        };
        let from_input = m.topic() != repartition_topic;
        let position = InputPosition { topic, partition: m.partition(), offset: m.offset() };
        let Some(adapter) = formats.adapters.for_record(m, !from_input) else {
            let event = formats.codec.decode_event(m.payload());
            if from_input
                && let Ok(e) = &event
                && m.key() != Some(e.session_id.as_bytes())
            {
                // Not keyed by session: re-key through the repartition topic,
                // with its own headers and timestamp.
                out.push(OutRecord {
                    topic: repartition_topic,
                    key: Some(e.session_id.as_bytes().to_vec()),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers: m.headers().cloned(),
                    timestamp: m.timestamp().to_millis(),
                });
                repartitioned += 1;
                continue;
            }
            batch.record(InputRecord { key: m.key(), value: m.payload(), position, event })?;
            continue;
        };
        // A vendor's native record: its adapter's canonical events.
        match formats.codec.check_size(m.payload()).and_then(|()| sessionflow_adapters::adapt_for_batch(adapter, &batch, m.payload())) {
            Ok(events) => {
                if from_input
                    && let Some(first) = events.first()
                    && m.key() != Some(first.session_id.as_bytes())
                {
                    // Re-keyed as it came, naming its topic for the adapter on the way back.
                    let headers = m.headers().cloned().unwrap_or_default();
                    let headers = headers.insert(Header { key: INPUT_TOPIC_HEADER, value: Some(m.topic().as_bytes()) });
                    out.push(OutRecord {
                        topic: repartition_topic,
                        key: Some(first.session_id.as_bytes().to_vec()),
                        value: m.payload().map(<[u8]>::to_vec),
                        headers: Some(headers),
                        timestamp: m.timestamp().to_millis(),
                    });
                    repartitioned += 1;
                    continue;
                }
                for event in events {
                    batch.record(InputRecord { key: m.key(), value: m.payload(), position: position.clone(), event: Ok(event) })?;
                }
            }
            Err(error) => batch.record(InputRecord { key: m.key(), value: m.payload(), position, event: Err(error) })?,
        }
    }
    if let Some(to) = idle_advance {
        batch.advance_watermark(to)?;
    }
    let result = batch.finish();
    shared.metrics.watermark(task, result.meta.watermark.0.max(0));
    out.reserve(result.outputs.len());
    // Input records by position, built at the first dead letter.
    let mut by_position: Option<HashMap<(&str, i64), &Received>> = None;
    for output in result.outputs {
        let key = output.key().map(<[u8]>::to_vec);
        out.push(match &output {
            Output::Timeline(t) => {
                OutRecord { topic: &topics.timeline, key, value: formats.codec.encode_output(&output)?, headers: None, timestamp: Some(t.occurred_at.0) }
            }
            Output::Metadata(m) => {
                OutRecord { topic: &topics.metadata, key, value: formats.codec.encode_output(&output)?, headers: None, timestamp: Some(m.updated_at.0) }
            }
            Output::Tombstone(_) => OutRecord { topic: &topics.metadata, key, value: None, headers: None, timestamp: None },
            Output::DeadLetter(d) => {
                let mut headers = OwnedHeaders::new();
                // The input record's own headers first (trace ids, provenance),
                // then ours. A redacted or dropped payload takes none of
                // them: headers can carry personal data as well.
                if d.payload == DeadLetterPayload::Kept {
                    let input = by_position.get_or_insert_with(|| records.iter().map(|r| ((r.message.topic(), r.message.offset()), *r)).collect());
                    if let Some(original) = input.get(&(&*d.input.topic, d.input.offset)).and_then(|r| r.message.headers()) {
                        for h in original.iter().filter(|h| !h.key.starts_with("dlq.")) {
                            headers = headers.insert(Header { key: h.key, value: h.value });
                        }
                    }
                }
                for (k, v) in d.headers() {
                    headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
                }
                let (k, v) = d.payload_header();
                headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
                OutRecord { topic: &topics.dead_letter, key: d.key.clone(), value: d.value.clone(), headers: Some(headers), timestamp: None }
            }
        });
    }
    let raw = Store::raw_writes(task as u32, &result.writes);
    let label = BatchLabel { batch_id: String::new(), base: 0 };
    Ok(TaskOutput {
        task: task as u32,
        topics,
        out,
        produced: BTreeMap::new(),
        oversize: BTreeMap::new(),
        raw,
        label,
        at_least_once: None,
        writes: result.writes,
        cache,
        stats: result.stats,
        repartitioned,
        consumed,
    })
}

/// Labels a task's changelog records: the batch id and base, a cut-short
/// batch's repair ahead of them, and at least once each key's prior value.
fn label_changelog(store: &Store, task: &mut TaskOutput<'_>, batch_id: &str, repair: &[RawRecord], with_priors: bool) -> anyhow::Result<()> {
    task.label = BatchLabel { batch_id: batch_id.to_owned(), base: store.changelog_position(task.task)? };
    if !repair.is_empty() {
        let mut raw = repair.to_vec();
        raw.append(&mut task.raw);
        task.raw = raw;
    }
    if with_priors {
        // The store holds the committed state the batch read (it never
        // leads the changelog, and a failed store write stops the daemon).
        let priors = task.raw.iter().map(|(key, _)| store.get_raw(key)).collect::<Result<Vec<_>, StoreError>>()?;
        task.at_least_once = Some(at_least_once_records(&task.raw, &priors));
    }
    Ok(())
}

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
fn record_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: Option<&OwnedHeaders>) -> usize {
    let headers = headers.map_or(0, |h| h.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum());
    key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + headers
}

/// An output the brokers would refuse as too large, made into one they
/// take: a dead letter without its payload, or, for a timeline or
/// metadata record (which the session bounds keep small), a dead letter
/// that names it. Never a record that fails the batch over and over.
/// Says whether it had to.
fn fit_output<'a>(record: OutRecord<'a>, limit: usize, topics: &'a TopicsSection) -> (OutRecord<'a>, bool) {
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

/// Hands a task's computed records to the producer, and its changelog
/// records when `changelog` (the topic) is given.
fn send_task_records<'a>(
    producer: &BaseProducer<DeliveryTracker>,
    task: &mut TaskOutput<'a>,
    changelog: Option<&'a str>,
    limits: &RecordLimits,
) -> anyhow::Result<()> {
    let topics = task.topics;
    for record in std::mem::take(&mut task.out) {
        let intended = record.topic;
        let (record, oversize) = fit_output(record, limits.output, topics);
        if oversize {
            *task.oversize.entry(intended).or_default() += 1;
        }
        let mut r = BaseRecord::<[u8], [u8]>::to(record.topic);
        if let Some(k) = record.key.as_deref() {
            r = r.key(k);
        }
        if let Some(v) = record.value.as_deref() {
            r = r.payload(v);
        }
        if let Some(h) = record.headers {
            r = r.headers(h);
        }
        if let Some(ts) = record.timestamp {
            r = r.timestamp(ts);
        }
        send(producer, r)?;
        *task.produced.entry(record.topic).or_default() += 1;
    }
    if let Some(topic) = changelog {
        let records = task.raw.iter().map(|(key, value)| (key.as_slice(), value.as_deref(), None, false));
        send_changelog(producer, topic, &task.label, task.task, records, limits)?;
    }
    Ok(())
}

/// Sends a task's changelog records (key, value, encoded prior, deleted)
/// to its changelog partition, labelled with the batch; they hold the
/// partition's progress record (see `sessionflow_store::changelog`).
fn send_changelog<'r>(
    producer: &BaseProducer<DeliveryTracker>,
    topic: &str,
    label: &BatchLabel,
    task: u32,
    records: impl Iterator<Item = (&'r [u8], Option<&'r [u8]>, Option<&'r [u8]>, bool)>,
    limits: &RecordLimits,
) -> anyhow::Result<()> {
    let label_headers = label.headers();
    for (key, value, prior, deleted) in records {
        let mut headers = OwnedHeaders::new_with_capacity(label_headers.len() + 2);
        for (name, bytes) in &label_headers {
            headers = headers.insert(Header { key: name, value: Some(bytes.as_slice()) });
        }
        if let Some(prior) = prior {
            headers = headers.insert(Header { key: PRIOR_HEADER, value: Some(prior) });
        }
        if deleted {
            headers = headers.insert(Header { key: DELETED_HEADER, value: Some(&[][..]) });
        }
        let size = record_size(Some(key), value, Some(&headers));
        if size > limits.changelog {
            // State cannot be dropped: stop with the cause rather than retry.
            return Err(FatalError(format!(
                "a changelog record of partition {task} is {size} bytes, over the changelog limit of {} bytes: \
                 raise the producer's message.max.bytes and the changelog topic's max.message.bytes, or lower engine.max_session_bytes",
                limits.changelog
            ))
            .into());
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).partition(task as i32).key(key).headers(headers);
        if let Some(v) = value {
            record = record.payload(v);
        }
        send(producer, record)?;
    }
    Ok(())
}

/// An error that stops the daemon instead of retrying the batch.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FatalError(pub String);

/// What a fatal client error means for the operator. Fencing has one cause
/// worth naming: a second live process with this instance's id.
fn fatal_client_error(client: &str, code: RDKafkaErrorCode, reason: &str, instance: &str) -> String {
    match code {
        RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch | RDKafkaErrorCode::FencedInstanceId => format!(
            "this daemon was fenced ({client}: {code:?}: {reason}): another process started with the same kafka.instance_id ({instance:?}) and took over; \
             this one stops so that only one writes. Give every daemon its own kafka.instance_id"
        ),
        _ => format!("the {client} hit a fatal error ({code:?}: {reason}); restart the daemon"),
    }
}

/// Whether an error ends the daemon rather than the batch: the store
/// failed (a batch already committed must not be produced again, and a
/// store that does not read will not read on retry), or the error says so.
fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<StoreError>() || cause.is::<FatalError>() || matches!(cause.downcast_ref::<KafkaError>(), Some(KafkaError::Transaction(t)) if t.is_fatal())
    })
}

/// Commits the transaction, retrying the commit while librdkafka says it is
/// retriable (a timeout leaves the commit in progress: a later abort or
/// begin would fail until it is resolved).
fn commit_transaction(producer: &BaseProducer<DeliveryTracker>, timeout: Duration, shared: &Shared) -> anyhow::Result<()> {
    loop {
        let error = match crate::delivery::commit_transaction(producer, timeout) {
            Ok(()) => {
                shared.metrics.transaction_open(false);
                return Ok(());
            }
            Err(e) => e,
        };
        let retriable = match &error {
            KafkaError::Transaction(t) => t.is_retriable() && !t.txn_requires_abort() && !t.is_fatal(),
            KafkaError::Flush(_) => true,
            _ => false,
        };
        if !retriable || shared.shutdown.load(Ordering::SeqCst) {
            return Err(error.into());
        }
        shared.metrics.commit_retried();
        tracing::warn!(error = %error, "committing the transaction timed out; retrying the commit");
    }
}

/// Aborts the transaction, retrying while librdkafka says the abort is
/// retriable (a timeout). The batch's records still queued are purged
/// first and their delivery reports served: the abort waits for them, and
/// with the event API only this thread's polls serve them.
fn abort_transaction(producer: &BaseProducer<DeliveryTracker>, timeout: Duration, shared: &Shared) -> Result<(), KafkaError> {
    producer.purge(PurgeConfig::default().queue().inflight());
    // A report still missing after the timeout is the abort's to wait for.
    let _ = crate::delivery::wait_delivered(producer, timeout);
    loop {
        match producer.abort_transaction(timeout) {
            Ok(()) => {
                shared.metrics.transaction_open(false);
                return Ok(());
            }
            Err(KafkaError::Transaction(t)) if t.is_retriable() && !t.is_fatal() && !shared.shutdown.load(Ordering::SeqCst) => {
                tracing::warn!(error = %t, "aborting the transaction timed out; retrying the abort");
            }
            Err(e) => return Err(e),
        }
    }
}

/// An output record computed, not yet handed to the producer.
struct OutRecord<'a> {
    topic: &'a str,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Option<OwnedHeaders>,
    /// The Kafka timestamp: event time for the timeline and metadata, the
    /// input's own for a re-keyed record; none (the producer's clock) else.
    timestamp: Option<i64>,
}

/// Waits until every record sent is delivered; an error if any was not.
fn flush_delivered(producer: &BaseProducer<DeliveryTracker>, timeout: Duration) -> anyhow::Result<()> {
    crate::delivery::wait_delivered(producer, timeout)?;
    let failures = producer.context().failures.swap(0, Ordering::Relaxed);
    if failures > 0 {
        bail!("{failures} records were not delivered");
    }
    Ok(())
}

/// Reads a borrowed message's key as UTF-8 (for logs).
pub fn key_text(m: &BorrowedMessage<'_>) -> String {
    m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default()
}
