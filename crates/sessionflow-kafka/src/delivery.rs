//! Waiting for the producer's outstanding records.

use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};
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
