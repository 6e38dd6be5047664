//! Prometheus metrics. Every occurrence is recorded through one method
//! here, so a metric and its meaning live in one place. Labels are bounded:
//! topic names from configuration, partitions, closed lists (reasons,
//! anomaly codes, states, outcomes, channels), never a session id.

use prometheus::{Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
use sessionflow_core::{BatchStats, State};
use sessionflow_store::StoreStats;
use std::collections::BTreeMap;

/// All metrics of one daemon.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    broker_rtt: GaugeVec,
    broker_up: IntGaugeVec,
    records_in: IntCounterVec,
    records_out: IntCounterVec,
    dead_letters: IntCounterVec,
    oversize_outputs: IntCounterVec,
    commit_retries: IntCounter,
    duplicates: IntCounter,
    erased_suppressed: IntCounter,
    repartitioned: IntCounter,
    anomalies: IntCounterVec,
    unknown_types: IntCounter,
    batch_seconds: Histogram,
    transaction_seconds: Histogram,
    aborts: IntCounter,
    transaction_open: IntGauge,
    consumer_lag: IntGaugeVec,
    committed_offset: IntGaugeVec,
    rebalances: IntCounterVec,
    restored_records: IntCounter,
    restoring_partitions: IntGauge,
    ready: IntGauge,
    session_cache_bytes: IntGauge,
    restore_remaining: IntGaugeVec,
    rocksdb_bytes: IntGaugeVec,
    rocksdb_keys: IntGauge,
    sessions_active: IntGaugeVec,
    finalized: IntCounterVec,
    queue_wait: HistogramVec,
    handle_time: HistogramVec,
    watermark: GaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("unique metric");
    h
}

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The counters at the last summary line (`Metrics::log_summary`).
#[derive(Debug, Default)]
pub struct IntervalTotals {
    consumed: f64,
    produced: f64,
    aborts: f64,
    batches: u64,
    at: Option<std::time::Instant>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let latency = vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
        let contact = vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0];
        Metrics {
            records_in: counter_vec(&r, "sessionflow_records_in_total", "Records consumed, by topic.", &["topic"]),
            records_out: counter_vec(&r, "sessionflow_records_out_total", "Records produced, by topic.", &["topic"]),
            dead_letters: counter_vec(&r, "sessionflow_dead_letters_total", "Records sent to the dead-letter topic, by reason.", &["reason"]),
            commit_retries: counter(
                &r,
                "sessionflow_transaction_commit_retries_total",
                "Transaction commits retried after a retriable error (a timeout): the commit is resumed, not aborted.",
            ),
            oversize_outputs: counter_vec(
                &r,
                "sessionflow_oversize_outputs_total",
                "Output records over the producer's message.max.bytes, sent to the dead-letter topic without their value, by the topic they were for.",
                &["topic"],
            ),
            duplicates: counter(&r, "sessionflow_duplicates_dropped_total", "Duplicate events dropped."),
            erased_suppressed: counter(&r, "sessionflow_erased_suppressed_total", "Events of erased sessions, recorded nowhere (erasure requests included)."),
            repartitioned: counter(&r, "sessionflow_repartitioned_total", "Input records re-keyed by session_id through the repartition topic."),
            anomalies: counter_vec(&r, "sessionflow_anomalies_total", "Events marked with an anomaly, by code.", &["code"]),
            unknown_types: counter(&r, "sessionflow_unknown_event_types_total", "Events of types the contract does not name."),
            batch_seconds: histogram(&r, "sessionflow_batch_duration_seconds", "Time to process and commit one batch.", latency.clone()),
            transaction_seconds: histogram(
                &r,
                "sessionflow_transaction_duration_seconds",
                "Time to commit a batch's transaction (or flush and commit offsets).",
                latency,
            ),
            aborts: counter(&r, "sessionflow_transaction_aborts_total", "Transactions aborted (the batch is retried)."),
            transaction_open: {
                let g = IntGauge::new("sessionflow_transaction_open", "1 while a transaction is open (begun, not yet committed or aborted).")
                    .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            consumer_lag: gauge_vec(
                &r,
                "sessionflow_consumer_lag_records",
                "Records behind the end of each assigned input partition.",
                &["topic", "partition"],
            ),
            committed_offset: gauge_vec(
                &r,
                "sessionflow_input_committed_offset",
                "Next offset to process of each assigned input partition, as committed with the state (a restart resumes here).",
                &["topic", "partition"],
            ),
            rebalances: counter_vec(&r, "sessionflow_rebalances_total", "Partitions assigned or revoked.", &["kind"]),
            restored_records: counter(&r, "sessionflow_restore_records_total", "Changelog records applied while restoring state."),
            restoring_partitions: {
                let g = IntGauge::new("sessionflow_restoring_partitions", "Partitions whose state is being restored.").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            session_cache_bytes: {
                let g = IntGauge::new(
                    "sessionflow_session_cache_bytes",
                    "Estimated bytes of the session entries kept decoded between batches (within store.session_cache_mib).",
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            ready: {
                let g = IntGauge::new("sessionflow_ready", "1 when the assigned partitions are restored and processed (as /readyz).").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            restore_remaining: gauge_vec(&r, "sessionflow_restore_remaining_records", "Changelog records left to restore, by partition.", &["partition"]),
            rocksdb_bytes: gauge_vec(&r, "sessionflow_rocksdb_memory_bytes", "RocksDB memory: block cache (memtables included) and memtables.", &["kind"]),
            rocksdb_keys: {
                let g = IntGauge::new("sessionflow_rocksdb_estimated_keys", "RocksDB's estimate of the number of keys.").expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            sessions_active: gauge_vec(&r, "sessionflow_sessions", "Sessions held in state, by state.", &["state"]),
            finalized: counter_vec(&r, "sessionflow_sessions_finalized_total", "Sessions finalized, by outcome and channel.", &["outcome", "channel"]),
            queue_wait: histogram_vec(&r, "sessionflow_queue_wait_seconds", "Queue wait of finalized sessions, by channel.", &["channel"], contact.clone()),
            handle_time: histogram_vec(&r, "sessionflow_handle_time_seconds", "Handle time of finalized sessions, by channel.", &["channel"], contact),
            watermark: {
                let g =
                    GaugeVec::new(Opts::new("sessionflow_watermark_timestamp_seconds", "Event-time watermark of each partition (Unix time)."), &["partition"])
                        .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            broker_rtt: {
                let g = GaugeVec::new(
                    Opts::new("sessionflow_kafka_broker_rtt_seconds", "Average request round trip to each broker, from librdkafka's statistics (consumer)."),
                    &["broker"],
                )
                .expect("valid metric");
                r.register(Box::new(g.clone())).expect("unique metric");
                g
            },
            broker_up: gauge_vec(
                &r,
                "sessionflow_kafka_broker_up",
                "1 when the consumer's connection to the broker is up, from librdkafka's statistics.",
                &["broker"],
            ),
            registry: {
                let build = IntGauge::with_opts(
                    Opts::new("sessionflow_build_info", "The running build: 1, labelled with its version.").const_label("version", env!("CARGO_PKG_VERSION")),
                )
                .expect("valid metric");
                build.set(1);
                r.register(Box::new(build)).expect("unique metric");
                // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, …
                r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self())).expect("unique metric");
                r
            },
        }
    }

    /// Logs one line of what the loop did since `last` (records in and
    /// out, batches, aborts, lag), as Kafka Streams logs its summary.
    pub fn log_summary(&self, last: &mut IntervalTotals, batches: u64) {
        let now = IntervalTotals {
            consumed: self.value("sessionflow_records_in_total", &[]),
            produced: self.value("sessionflow_records_out_total", &[]),
            aborts: self.value("sessionflow_transaction_aborts_total", &[]),
            batches,
            at: Some(std::time::Instant::now()),
        };
        let seconds = last.at.map_or(0, |at| at.elapsed().as_secs());
        tracing::info!(
            seconds,
            records_in = now.consumed - last.consumed,
            records_out = now.produced - last.produced,
            batches = now.batches - last.batches,
            aborts = now.aborts - last.aborts,
            lag = self.value("sessionflow_consumer_lag_records", &[]),
            "summary"
        );
        *last = now;
    }

    /// A broker's state and round trip, from librdkafka's statistics
    /// (labelled by node id: as many series as brokers).
    pub fn broker(&self, node_id: i32, up: bool, rtt_avg_micros: i64) {
        let broker = node_id.to_string();
        self.broker_up.with_label_values(&[&broker]).set(i64::from(up));
        self.broker_rtt.with_label_values(&[&broker]).set(rtt_avg_micros as f64 / 1e6);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    pub fn consumed(&self, topic: &str, n: u64) {
        self.records_in.with_label_values(&[topic]).inc_by(n);
    }

    pub fn produced(&self, topic: &str, n: u64) {
        self.records_out.with_label_values(&[topic]).inc_by(n);
    }

    pub fn repartitioned(&self, n: u64) {
        self.repartitioned.inc_by(n);
    }

    /// A committed batch's figures.
    pub fn batch(&self, stats: &BatchStats) {
        for (reason, n) in &stats.dead_lettered {
            self.dead_letters.with_label_values(&[reason.as_str()]).inc_by(*n);
        }
        self.duplicates.inc_by(stats.duplicates);
        self.erased_suppressed.inc_by(stats.erased_suppressed);
        for (code, n) in &stats.anomalies {
            self.anomalies.with_label_values(&[code.as_str()]).inc_by(*n);
        }
        self.unknown_types.inc_by(stats.unknown_types);
        for f in &stats.finalized {
            let channel = f.channel.map_or("unknown", |c| c.as_str());
            self.finalized.with_label_values(&[f.outcome.as_str(), channel]).inc();
            self.queue_wait.with_label_values(&[channel]).observe(f.queue_wait_ms as f64 / 1000.0);
            if let Some(h) = f.handle_ms {
                self.handle_time.with_label_values(&[channel]).observe(h as f64 / 1000.0);
            }
        }
        self.add_sessions(&stats.state_deltas);
    }

    /// Changes the per-state session gauges.
    pub fn add_sessions(&self, deltas: &BTreeMap<State, i64>) {
        for (state, n) in deltas {
            self.sessions_active.with_label_values(&[state.as_str()]).add(*n);
        }
    }

    pub fn batch_duration(&self, seconds: f64) {
        self.batch_seconds.observe(seconds);
    }

    pub fn transaction_duration(&self, seconds: f64) {
        self.transaction_seconds.observe(seconds);
    }

    /// An output over `message.max.bytes`, dead-lettered without its value.
    pub fn oversize_outputs(&self, topic: &str, n: u64) {
        self.oversize_outputs.with_label_values(&[topic]).inc_by(n);
    }

    /// A transaction commit retried.
    pub fn commit_retried(&self) {
        self.commit_retries.inc();
    }

    pub fn aborted(&self) {
        self.aborts.inc();
    }

    /// The session cache's estimated size.
    pub fn session_cache(&self, bytes: usize) {
        self.session_cache_bytes.set(bytes as i64);
    }

    /// Ready (`/readyz`) or not.
    pub fn ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// A transaction begun (`true`), or committed or aborted (`false`).
    pub fn transaction_open(&self, open: bool) {
        self.transaction_open.set(i64::from(open));
    }

    pub fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag.with_label_values(&[topic, &partition.to_string()]).set(lag);
    }

    pub fn committed(&self, topic: &str, partition: i32, next_offset: i64) {
        self.committed_offset.with_label_values(&[topic, &partition.to_string()]).set(next_offset);
    }

    pub fn forget_partition(&self, topic: &str, partition: i32) {
        let _ = self.consumer_lag.remove_label_values(&[topic, &partition.to_string()]);
        let _ = self.committed_offset.remove_label_values(&[topic, &partition.to_string()]);
        let _ = self.watermark.remove_label_values(&[&partition.to_string()]);
    }

    pub fn rebalance(&self, kind: &str, partitions: usize) {
        self.rebalances.with_label_values(&[kind]).inc_by(partitions as u64);
    }

    pub fn restore_started(&self) {
        self.restoring_partitions.inc();
    }

    pub fn restore_progress(&self, partition: i32, applied: u64, remaining: i64) {
        self.restored_records.inc_by(applied);
        self.restore_remaining.with_label_values(&[&partition.to_string()]).set(remaining.max(0));
    }

    pub fn restore_finished(&self, partition: i32) {
        self.restoring_partitions.dec();
        let _ = self.restore_remaining.remove_label_values(&[&partition.to_string()]);
    }

    pub fn watermark(&self, partition: i32, millis: i64) {
        self.watermark.with_label_values(&[&partition.to_string()]).set(millis as f64 / 1000.0);
    }

    pub fn store(&self, stats: &StoreStats) {
        self.rocksdb_bytes.with_label_values(&["block_cache"]).set(stats.block_cache_usage as i64);
        self.rocksdb_bytes.with_label_values(&["memtables"]).set(stats.memtable_usage as i64);
        self.rocksdb_keys.set(stats.estimated_keys as i64);
    }

    /// A counter's value, for tests and the demo's summary.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let families = self.registry.gather();
        let Some(family) = families.iter().find(|f| f.name() == name) else {
            return 0.0;
        };
        let is_counter = family.get_field_type() == prometheus::proto::MetricType::COUNTER;
        family
            .get_metric()
            .iter()
            .filter(|m| labels.iter().all(|(k, v)| m.get_label().iter().any(|l| l.name() == *k && l.value() == *v)))
            .map(|m| if is_counter { m.get_counter().get_value() } else { m.get_gauge().get_value() })
            .sum()
    }
}
