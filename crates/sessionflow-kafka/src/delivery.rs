//! The producer's side of a batch: delivery reports, transactions committed
//! and aborted with librdkafka's retry rules, and the errors that stop the
//! daemon instead of the batch.

use crate::health::Shared;
use anyhow::bail;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext, PurgeConfig};
use sessionflow_store::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Waits until every record handed to `producer` is acknowledged (or
/// failed) and its delivery report served. rdkafka's `flush` polls in
/// steps of up to 100 ms and its last step often waits the whole step after
/// the final report was served; that step was a fixed 100 ms on every
/// transaction commit and every at-least-once batch. Short polls return as
/// soon as each report arrives.
pub fn wait_delivered<C: ProducerContext + 'static>(producer: &BaseProducer<C>, timeout: Duration) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    while producer.in_flight_count() > 0 {
        if Instant::now() >= deadline {
            return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
        }
        producer.poll(Duration::from_millis(2));
    }
    Ok(())
}

/// Commits the producer's transaction. rdkafka's `commit_transaction`
/// flushes first; with nothing left in flight that flush returns at once.
pub fn commit_transaction<C: ProducerContext + 'static>(producer: &BaseProducer<C>, timeout: Duration) -> KafkaResult<()> {
    wait_delivered(producer, timeout)?;
    producer.commit_transaction(timeout)
}

/// Producer context: remembers the last changelog offset delivered per partition.
pub(crate) struct DeliveryTracker {
    pub(crate) changelog_topic: String,
    pub(crate) changelog_next: Mutex<HashMap<i32, i64>>,
    pub(crate) failures: AtomicU64,
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

/// An error that stops the daemon instead of retrying the batch.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FatalError(pub String);

/// What a fatal client error means for the operator. Fencing has one cause
/// worth naming: a second live process with this instance's id.
pub(crate) fn fatal_client_error(client: &str, code: RDKafkaErrorCode, reason: &str, instance: &str) -> String {
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
pub(crate) fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<StoreError>() || cause.is::<FatalError>() || matches!(cause.downcast_ref::<KafkaError>(), Some(KafkaError::Transaction(t)) if t.is_fatal())
    })
}

/// Commits the transaction, retrying the commit while librdkafka says it is
/// retriable (a timeout leaves the commit in progress: a later abort or
/// begin would fail until it is resolved).
pub(crate) fn commit_transaction_retrying(producer: &BaseProducer<DeliveryTracker>, timeout: Duration, shared: &Shared) -> anyhow::Result<()> {
    loop {
        let error = match commit_transaction(producer, timeout) {
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
pub(crate) fn abort_transaction_retrying(producer: &BaseProducer<DeliveryTracker>, timeout: Duration, shared: &Shared) -> Result<(), KafkaError> {
    producer.purge(PurgeConfig::default().queue().inflight());
    // A report still missing after the timeout is the abort's to wait for.
    let _ = wait_delivered(producer, timeout);
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

/// Waits until every record sent is delivered; an error if any was not.
pub(crate) fn flush_delivered(producer: &BaseProducer<DeliveryTracker>, timeout: Duration) -> anyhow::Result<()> {
    wait_delivered(producer, timeout)?;
    let failures = producer.context().failures.swap(0, Ordering::Relaxed);
    if failures > 0 {
        bail!("{failures} records were not delivered");
    }
    Ok(())
}
