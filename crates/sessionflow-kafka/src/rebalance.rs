//! The consumer's rebalance callbacks: newly assigned partitions are
//! restored from the changelog before any of their records is returned,
//! revoked ones are noted so the loop drops their uncommitted records.

use crate::health::Shared;
use crate::restore::restore_partitions_polling;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sessionflow_core::State;
use sessionflow_core::StateRead;
use sessionflow_store::{RawRecord, Store};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Consumer context: restores assigned partitions inside the rebalance
/// callback (no record of a partition is returned before it is restored) and
/// notes revoked ones so the loop drops their uncommitted records.
pub(crate) struct PipelineContext {
    pub(crate) store: Arc<Store>,
    pub(crate) shared: Arc<Shared>,
    /// Reads changelog partitions on assignment.
    pub(crate) restore_consumer: BaseConsumer,
    pub(crate) changelog_topic: String,
    pub(crate) revoked: Mutex<BTreeSet<(String, i32)>>,
    /// Per task, sessions by state (for the gauges on revoke).
    pub(crate) sessions_by_task: Mutex<HashMap<i32, BTreeMap<State, i64>>>,
    pub(crate) restore_error: Mutex<Option<String>>,
    /// Per task, a batch cut short to supersede in the changelog first
    /// (see `sessionflow_store::changelog`).
    pub(crate) repairs: Mutex<BTreeMap<i32, Vec<RawRecord>>>,
    /// Records the restore's polls returned, for the loop to process.
    pub(crate) polled_while_restoring: Mutex<Vec<Received>>,
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

/// A consumed record, owned.
pub(crate) struct Received {
    pub(crate) message: OwnedMessage,
}
