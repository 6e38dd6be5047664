//! The embedded broker: librdkafka's mock cluster, which speaks the real
//! Kafka protocol (consumer groups, transactions) on loopback ports. It
//! keeps only the newest 5 MiB of each partition and never compacts: for the
//! demo, local development and tests, not for production.
//!
//! The mock cluster is not `Send`, so it lives on a thread of its own.

use rdkafka::mocking::{MockCluster, MockCoordinator};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A fault the embedded broker can be told to show (librdkafka's mock
/// cluster fault injection), for tests.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The next requests of an API fail with these errors, one each.
    RequestErrors(RDKafkaApiKey, Vec<RDKafkaRespErr>),
    /// Forget the errors still queued for an API.
    ClearRequestErrors(RDKafkaApiKey),
    /// A broker stops answering.
    BrokerDown(i32),
    /// A broker answers again.
    BrokerUp(i32),
    /// A broker's responses are delayed this long.
    RoundTripTime(i32, Duration),
    /// The coordinator of a transactional id moves to a broker.
    TransactionCoordinator(String, i32),
    /// The coordinator of a consumer group moves to a broker.
    GroupCoordinator(String, i32),
}

enum Command {
    Inject(Fault, mpsc::Sender<Result<(), String>>),
}

/// A running embedded broker; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap: String,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts `brokers` brokers and creates `topics` (name, partitions).
    pub fn start(brokers: i32, topics: &[(String, i32)]) -> anyhow::Result<EmbeddedBroker> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
        let (commands_tx, commands_rx) = mpsc::channel::<Command>();
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
            // Serves faults until the handle is dropped.
            for Command::Inject(fault, reply) in commands_rx {
                let result = match fault {
                    Fault::RequestErrors(api, errors) => {
                        cluster.request_errors(api, &errors);
                        Ok(())
                    }
                    Fault::ClearRequestErrors(api) => {
                        cluster.clear_request_errors(api);
                        Ok(())
                    }
                    Fault::BrokerDown(id) => cluster.broker_down(id),
                    Fault::BrokerUp(id) => cluster.broker_up(id),
                    Fault::RoundTripTime(id, delay) => cluster.broker_round_trip_time(id, delay),
                    Fault::TransactionCoordinator(key, id) => cluster.coordinator(MockCoordinator::Transaction(key), id),
                    Fault::GroupCoordinator(key, id) => cluster.coordinator(MockCoordinator::Group(key), id),
                };
                let _ = reply.send(result.map_err(|e| e.to_string()));
            }
            drop(cluster);
        })?;
        let bootstrap = ready_rx.recv()?.map_err(|e| anyhow::anyhow!("embedded broker: {e}"))?;
        Ok(EmbeddedBroker { bootstrap, commands: Some(commands_tx), thread: Some(thread) })
    }

    /// `bootstrap.servers` of the cluster (loopback).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Makes the cluster show `fault` from now on.
    pub fn inject(&self, fault: Fault) -> anyhow::Result<()> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.commands.as_ref().expect("running").send(Command::Inject(fault, reply_tx))?;
        reply_rx.recv()?.map_err(|e| anyhow::anyhow!("embedded broker: {e}"))
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        drop(self.commands.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The topics a pipeline with `config` uses, each with `partitions`.
pub fn pipeline_topics(config: &crate::DaemonConfig, partitions: i32) -> Vec<(String, i32)> {
    let group = &config.kafka.group_id;
    let mut topics: Vec<(String, i32)> = config.topics.input_names().into_iter().map(|t| (t, partitions)).collect();
    for t in [&config.topics.timeline, &config.topics.metadata, &config.topics.dead_letter] {
        topics.push((t.clone(), partitions));
    }
    topics.push((crate::TopicsSection::changelog(group), partitions));
    topics.push((crate::TopicsSection::repartition(group), partitions));
    topics.push((crate::TopicsSection::instances(group), 1));
    topics
}
