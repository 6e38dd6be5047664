//! The sessionflow daemon: Kafka consumer group, exactly-once batches with
//! a changelog, state restore on assignment, timers, metrics, health.

pub mod clients;
pub mod config;
pub mod delivery;
pub mod embedded;
pub mod failpoints;
pub mod health;
pub mod http;
pub mod input;
pub mod instance;
pub mod metrics;
pub mod oversize;
pub mod passthrough;
pub mod pipeline;
pub mod rebalance;
pub mod restore;
pub mod testkit;

pub use config::{DaemonConfig, Delivery, KafkaSection, TopicsSection};
pub use health::Shared;
pub use metrics::Metrics;
pub use pipeline::{RunTotals, run};
