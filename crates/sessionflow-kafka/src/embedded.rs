//! The embedded broker: librdkafka's mock cluster, which speaks the real
//! Kafka protocol (consumer groups, transactions) on loopback ports. It
//! keeps only the newest 5 MiB of each partition and never compacts: for the
//! demo, local development and tests, not for production.
//!
//! The mock cluster is not `Send`, so it lives on a thread of its own.

use rdkafka::mocking::MockCluster;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A running embedded broker; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap: String,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts `brokers` brokers and creates `topics` (name, partitions).
    pub fn start(brokers: i32, topics: &[(String, i32)]) -> anyhow::Result<EmbeddedBroker> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let topics = topics.to_vec();
        let thread = std::thread::Builder::new().name("embedded-broker".into()).spawn(move || {
            let cluster = match MockCluster::new(brokers) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            for (name, partitions) in &topics {
                if let Err(e) = cluster.create_topic(name, *partitions, 1) {
                    let _ = ready_tx.send(Err(format!("creating {name}: {e}")));
                    return;
                }
            }
            let _ = ready_tx.send(Ok(cluster.bootstrap_servers()));
            // Blocks until told to stop or the handle is dropped.
            let _ = stop_rx.recv();
            drop(cluster);
        })?;
        let bootstrap = ready_rx.recv()?.map_err(|e| anyhow::anyhow!("embedded broker: {e}"))?;
        Ok(EmbeddedBroker { bootstrap, stop: Some(stop_tx), thread: Some(thread) })
    }

    /// `bootstrap.servers` of the cluster (loopback).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The topics a pipeline with `config` uses, each with `partitions`.
pub fn pipeline_topics(config: &crate::DaemonConfig, partitions: i32) -> Vec<(String, i32)> {
    let group = &config.kafka.group_id;
    let mut topics: Vec<(String, i32)> = config.topics.input.iter().map(|t| (t.clone(), partitions)).collect();
    for t in [&config.topics.timeline, &config.topics.metadata, &config.topics.dead_letter] {
        topics.push((t.clone(), partitions));
    }
    topics.push((crate::TopicsSection::changelog(group), partitions));
    topics.push((crate::TopicsSection::repartition(group), partitions));
    topics
}
