//! The sessionflow daemon: Kafka consumer group, exactly-once batches with
//! a changelog, state restore on assignment, timers, metrics, health.

pub mod config;
pub mod delivery;
pub mod embedded;
pub mod failpoints;
pub mod http;
pub mod input;
pub mod instance;
pub mod metrics;
pub mod passthrough;
pub mod pipeline;
pub mod testkit;

pub use config::{DaemonConfig, Delivery, KafkaSection, TopicsSection};
pub use metrics::Metrics;
pub use pipeline::{RunTotals, Shared, run};
