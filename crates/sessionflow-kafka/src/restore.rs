//! Restoring a task's local state from its changelog partition: all
//! partitions read at once, written to RocksDB on a thread of its own,
//! whole batches only (see `sessionflow_store::changelog`).

use crate::metrics::Metrics;
use anyhow::{Context as _, bail};
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use sessionflow_store::changelog::{PartitionRestore, RecordHeaders};
use sessionflow_store::{RawRecord, RawRecordBuf, Store};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
pub(crate) fn restore_partitions_polling(
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
