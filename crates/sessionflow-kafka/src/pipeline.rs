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
//!
//! Beside it: `rebalance` (assignment and revocation), `restore` (state
//! from the changelog), `delivery` (transactions and fatal errors),
//! `oversize` (records over the brokers' limit), `clients` (settings and
//! topics), `health` (what `/healthz` and the command line see).

use crate::clients::{consumer_client_config, producer_client_config, restore_client_config, send};
use crate::config::{DaemonConfig, Delivery, TopicsSection};
use crate::delivery::{DeliveryTracker, FatalError, abort_transaction_retrying, commit_transaction_retrying, fatal_client_error, flush_delivered, is_fatal};
use crate::health::{Shared, wall_millis};
use crate::input::{INPUT_TOPIC_HEADER, InputAdapters};
use crate::oversize::{RecordLimits, fit_output, record_size};
use crate::rebalance::{PipelineContext, Received};
use anyhow::{Context as _, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use sessionflow_codec::Codec;
use sessionflow_core::{Batch, BatchStats, DeadLetterPayload, EngineConfig, InputPosition, InputRecord, Millis, Output, SessionCache, StateRead, Write};
use sessionflow_store::changelog::{BatchLabel, DELETED_HEADER, OutgoingRecord, PRIOR_HEADER, at_least_once_records, is_progress};
use sessionflow_store::{RawRecord, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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

/// Outcome of the loop, for the summary.
#[derive(Debug, Default, Clone)]
pub struct RunTotals {
    pub stats: BatchStats,
    pub repartitioned: u64,
    pub aborted: u64,
}

/// How often the local store's memtables are flushed to disk.
const STATE_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// How input records are read and outputs written: the codec, and the
/// adapters of vendor-format input topics.
struct Formats<'a> {
    codec: &'a Codec,
    adapters: InputAdapters,
}

/// Runs the pipeline until `shared.shutdown` is set. Blocking.
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
                        abort_transaction_retrying(&producer, config.kafka.call_timeout(), shared)
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
    if exactly_once {
        // Each task's progress record, which makes its batch's changelog
        // records count on restore, goes out once every other record of the
        // transaction is delivered. On Kafka an aborted transaction shows
        // nothing either way; a broker that shows aborted records (the
        // embedded one) then shows, at worst, a batch without its progress
        // record, which a restore leaves out, never state whose outputs
        // were lost with a kill in the middle of the burst.
        shared.doing("waiting for deliveries");
        flush_delivered(producer, config.kafka.call_timeout())?;
        for ((task, raw), (_, label, _)) in commits.iter().zip(&labelled) {
            let progress = raw.iter().filter(|(key, _)| is_progress(key)).map(|(key, value)| (key.as_slice(), value.as_deref(), None, false));
            send_changelog(producer, changelog_topic, label, *task, progress, limits)?;
        }
    } else {
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
        commit_transaction_retrying(producer, config.kafka.call_timeout(), shared)?;
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
        // The progress record follows once the rest is delivered (see process_batch).
        let records = task.raw.iter().filter(|(key, _)| !is_progress(key)).map(|(key, value)| (key.as_slice(), value.as_deref(), None, false));
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

/// An output record computed, not yet handed to the producer.
pub(crate) struct OutRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Option<OwnedHeaders>,
    /// The Kafka timestamp: event time for the timeline and metadata, the
    /// input's own for a re-keyed record; none (the producer's clock) else.
    pub(crate) timestamp: Option<i64>,
}

/// Reads a borrowed message's key as UTF-8 (for logs).
pub fn key_text(m: &BorrowedMessage<'_>) -> String {
    m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default()
}
