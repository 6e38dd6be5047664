//! `sessionflow run`, `demo`, `broker` and `simulate --brokers`.

use crate::config::Config;
use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sessionflow_adapters::InputFormat;
use sessionflow_codec::Codec;
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::{RunTotals, Shared};
use sessionflow_sim::{SimConfig, SimRecord, Simulator};
use sessionflow_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A small runtime for the HTTP server and signal handling; the pipeline
/// itself runs on its own thread.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?)
}

/// Sets `shutdown` on SIGINT or SIGTERM.
fn on_signal(runtime: &tokio::runtime::Runtime, shared: Arc<Shared>) {
    runtime.spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("signal received: finishing the current batch");
        shared.shutdown.store(true, Ordering::SeqCst);
    });
}

fn serve_metrics(runtime: &tokio::runtime::Runtime, settings: sessionflow_kafka::http::HttpSettings, shared: Arc<Shared>) -> anyhow::Result<()> {
    let addr = settings.addr;
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr} (metrics.addr / --metrics-addr)"))?;
    drop(listener);
    if let Some(tls) = &settings.tls {
        // Bad TLS files stop the start, not just the endpoint.
        sessionflow_kafka::http::tls_acceptor(tls).context("metrics.tls_cert_path / metrics.tls_key_path")?;
    }
    runtime.spawn(async move {
        if let Err(e) = sessionflow_kafka::http::serve(settings, shared).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}

/// The endpoint of `config`, at `addr`, with a warning when it is open to
/// other hosts without auth.
fn http_settings(config: &Config, addr: &str) -> anyhow::Result<sessionflow_kafka::http::HttpSettings> {
    let socket: SocketAddr = addr.parse().with_context(|| format!("metrics address {addr:?}"))?;
    if config.metrics_exposed_without_auth(addr) {
        tracing::warn!(%addr, "/metrics listens beyond this host without auth: set metrics.bearer_token (or basic auth), and TLS on an untrusted network");
    }
    Ok(config.metrics.http_settings(socket))
}

/// `sessionflow run`: the daemon.
pub fn run(config: &Config) -> anyhow::Result<()> {
    let daemon = config.daemon_config();
    if daemon.kafka.create_topics {
        sessionflow_kafka::clients::create_topics(&daemon).context("creating topics (set kafka.create_topics = false to manage them yourself)")?;
    }
    let store =
        Arc::new(Store::open(&config.store.path, &config.daemon_store_config()).with_context(|| format!("opening the state store at {}", config.store.path))?);
    let shared = Arc::new(Shared::default());
    let rt = runtime()?;
    serve_metrics(&rt, http_settings(config, &config.metrics.addr)?, shared.clone())?;
    on_signal(&rt, shared.clone());
    let (engine, codec) = (config.engine_config(), config.codec()?);
    let pipeline = std::thread::Builder::new().name("pipeline".into()).spawn({
        let shared = shared.clone();
        move || sessionflow_kafka::run(&daemon, &engine, &codec, &store, &shared)
    })?;
    exit_when_stuck(&pipeline, &shared);
    let totals = pipeline.join().map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))??;
    tracing::info!(consumed = totals.stats.consumed, timeline = totals.stats.timeline, aborted = totals.aborted, "stopped");
    Ok(())
}

/// Exit status of a daemon whose processing loop got stuck in a call.
pub const EXIT_STUCK: i32 = 3;

/// Waits for the pipeline thread to end; exits the process (status
/// [`EXIT_STUCK`]) if its loop gets stuck in a call that never returns
/// (`Shared::stuck`). Nothing is lost: the open transaction is aborted by
/// the restart's producer, the state is the last committed one.
fn exit_when_stuck<T>(pipeline: &std::thread::JoinHandle<T>, shared: &Shared) {
    while !pipeline.is_finished() {
        if let Some(why) = shared.stuck() {
            tracing::error!(%why, "stuck: exiting so that a restart recovers (the open transaction is aborted, the state is the last committed)");
            std::process::exit(EXIT_STUCK);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Options of `sessionflow demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub duration: Option<Duration>,
    pub metrics_addr: String,
    pub partitions: i32,
    /// Records per second produced by the simulator.
    pub rate: u64,
    pub sim: SimConfig,
    /// Share of records produced without a key (re-keyed by the daemon).
    pub keyless_rate: f64,
    /// Also one input topic per vendor format, fed with that vendor's
    /// native records.
    pub mixed_vendors: bool,
}

/// The vendor formats the mixed demo feeds, each on `demo.<format>`.
const VENDORS: [InputFormat; 5] =
    [InputFormat::AmazonConnect, InputFormat::GenesysCloud, InputFormat::TwilioTaskrouter, InputFormat::ZoomContactCenter, InputFormat::CcaiPlatform];

/// Produces a vendor's simulated native records, keyed as a bridge keys
/// them, at `rate` records/s until `stop` (or `limit` records).
#[allow(clippy::too_many_arguments)]
pub fn produce_vendor_traffic(
    brokers: &str,
    topic: &str,
    format: InputFormat,
    sim: SimConfig,
    rate: u64,
    limit: Option<u64>,
    stop: &Shared,
    produced: &AtomicU64,
) -> anyhow::Result<()> {
    let generator = sessionflow_sim::vendors::VendorSimulator::new(format, sim).map_err(|e| anyhow::anyhow!("{e}"))?;
    let producer: BaseProducer = ClientConfig::new().set("bootstrap.servers", brokers).set("enable.idempotence", "true").create()?;
    let started = Instant::now();
    for (n, record) in (0_u64..).zip(generator) {
        if stop.shutdown.load(Ordering::SeqCst) || limit.is_some_and(|l| n >= l) {
            break;
        }
        let due = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
        let mut r = BaseRecord::<[u8], [u8]>::to(topic).payload(record.value.as_bytes());
        if let Some(key) = &record.key {
            r = r.key(key.as_bytes());
        }
        sessionflow_kafka::clients::send(&producer, r)?;
        producer.poll(Duration::ZERO);
        produced.fetch_add(1, Ordering::Relaxed);
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Sessions per `source` in the metadata topic (JSON output).
fn sessions_per_source(brokers: &str, topic: &str, partitions: i32) -> std::collections::BTreeMap<String, usize> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let mut sources: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = Default::default();
    let Ok(consumer) = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "demo-summary")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create::<BaseConsumer>()
    else {
        return Default::default();
    };
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        let _ = list.add_partition_offset(topic, p, rdkafka::Offset::Beginning);
    }
    if consumer.assign(&list).is_err() {
        return Default::default();
    }
    let (mut at_end, deadline) = (0, Instant::now() + Duration::from_secs(20));
    while at_end < partitions && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                if let Some(r) = m.payload().and_then(|v| serde_json::from_slice::<serde_json::Value>(v).ok()) {
                    let source = r["source"].as_str().unwrap_or("(none)").to_owned();
                    sources.entry(source).or_default().insert(r["session_id"].as_str().unwrap_or_default().to_owned());
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => at_end += 1,
            _ => {}
        }
    }
    sources.into_iter().map(|(source, sessions)| (source, sessions.len())).collect()
}

/// Produces simulated traffic at `rate` records/s until `stop` (or the end of
/// `limit` records); returns how many were produced.
#[allow(clippy::too_many_arguments)]
fn produce_traffic(
    brokers: &str,
    topic: &str,
    sim: SimConfig,
    rate: u64,
    keyless_rate: f64,
    limit: Option<u64>,
    stop: &Shared,
    produced: &AtomicU64,
) -> anyhow::Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "10")
        .set("partitioner", "murmur2_random")
        .create()
        .context("creating the simulator's producer")?;
    let codec = Codec::json();
    let started = Instant::now();
    let mut n: u64 = 0;
    let keyless_every = if keyless_rate > 0.0 { (1.0 / keyless_rate).round().max(1.0) as u64 } else { 0 };
    for record in Simulator::new(sim) {
        if stop.shutdown.load(Ordering::SeqCst) || limit.is_some_and(|l| n >= l) {
            break;
        }
        // Pace: n records by n / rate seconds.
        let due = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait.min(Duration::from_millis(100)));
        }
        let (key, value) = match &record {
            SimRecord::Event(e) => (Some(e.session_id.as_bytes().to_vec()), codec.encode_event(e)?),
            SimRecord::Malformed { key, value, .. } => (key.clone(), value.clone()),
        };
        let keyless = keyless_every > 0 && n % keyless_every == keyless_every / 2;
        let mut r = BaseRecord::<[u8], [u8]>::to(topic).payload(&value);
        if let (Some(k), false) = (key.as_deref(), keyless) {
            r = r.key(k);
        }
        sessionflow_kafka::clients::send(&producer, r)?;
        producer.poll(Duration::ZERO);
        n += 1;
        produced.store(n, Ordering::Relaxed);
    }
    producer.flush(Duration::from_secs(30))?;
    Ok(())
}

/// `sessionflow demo`: embedded broker, simulator, pipeline, live progress.
pub fn demo(config: &Config, options: &DemoOptions) -> anyhow::Result<()> {
    let mut daemon = config.daemon_config();
    daemon.kafka.group_id = "sessionflow-demo".into();
    daemon.kafka.instance_id = Some("demo".into());
    daemon.kafka.create_topics = false;
    if options.mixed_vendors {
        daemon.topics.inputs = VENDORS
            .iter()
            .map(|&format| sessionflow_kafka::config::InputTopic { name: format!("demo.{format}"), format, session_identity: Default::default() })
            .collect();
    }
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&daemon, options.partitions))?;
    daemon.kafka.brokers = broker.bootstrap_servers().to_owned();
    let input = daemon.topics.input[0].clone();
    println!("sessionflow demo: embedded broker at {} ({} partitions per topic)", daemon.kafka.brokers, options.partitions);
    println!("  metrics: http://{}/metrics   health: /healthz /readyz", options.metrics_addr);
    println!(
        "  simulator: {} records/s into {input}; Ctrl-C to stop{}",
        options.rate,
        options.duration.map(|d| format!(" (or after {} s)", d.as_secs())).unwrap_or_default()
    );

    let state_dir = tempfile::Builder::new().prefix("sessionflow-demo-").tempdir()?;
    let store = Arc::new(Store::open(state_dir.path(), &config.daemon_store_config())?);
    let shared = Arc::new(Shared::default());
    let rt = runtime()?;
    serve_metrics(&rt, http_settings(config, &options.metrics_addr)?, shared.clone())?;
    on_signal(&rt, shared.clone());
    if let Some(d) = options.duration {
        let shared = shared.clone();
        rt.spawn(async move {
            tokio::time::sleep(d).await;
            shared.shutdown.store(true, Ordering::SeqCst);
        });
    }

    let produced = Arc::new(AtomicU64::new(0));
    let simulator = std::thread::Builder::new().name("simulator".into()).spawn({
        let (brokers, shared, produced, sim) = (daemon.kafka.brokers.clone(), shared.clone(), produced.clone(), options.sim.clone());
        let (rate, keyless) = (options.rate, options.keyless_rate);
        move || produce_traffic(&brokers, &input, sim, rate, keyless, None, &shared, &produced)
    })?;
    let mut vendor_simulators = Vec::new();
    for input in &daemon.topics.inputs {
        let (brokers, shared, produced, sim) = (daemon.kafka.brokers.clone(), shared.clone(), produced.clone(), options.sim.clone());
        let (topic, format, rate) = (input.name.clone(), input.format, options.rate);
        println!("  simulator: {rate} {format} records/s into {topic}");
        vendor_simulators.push(
            std::thread::Builder::new()
                .name(format!("simulator-{format}"))
                .spawn(move || produce_vendor_traffic(&brokers, &topic, format, sim, rate, None, &shared, &produced))?,
        );
    }
    let (engine, codec) = (config.engine_config(), config.codec()?);
    let pipeline = std::thread::Builder::new().name("pipeline".into()).spawn({
        let (daemon, store, shared) = (daemon.clone(), store.clone(), shared.clone());
        move || sessionflow_kafka::run(&daemon, &engine, &codec, &store, &shared)
    })?;

    let started = Instant::now();
    let m = &shared.metrics;
    while !pipeline.is_finished() {
        std::thread::sleep(Duration::from_millis(250));
        if started.elapsed().as_millis() % 2000 < 250 {
            let final_ = m.value("sessionflow_sessions_finalized_total", &[]);
            println!(
                "  {:>5.0}s produced {:>8}  consumed {:>8}  timeline {:>8}  metadata {:>7}  dead letters {:>5}  duplicates {:>5}  re-keyed {:>5}  finalized {:>6}",
                started.elapsed().as_secs_f64(),
                produced.load(Ordering::Relaxed),
                m.value("sessionflow_records_in_total", &[]),
                m.value("sessionflow_records_out_total", &[("topic", &daemon.topics.timeline)]),
                m.value("sessionflow_records_out_total", &[("topic", &daemon.topics.metadata)]),
                m.value("sessionflow_dead_letters_total", &[]),
                m.value("sessionflow_duplicates_dropped_total", &[]),
                m.value("sessionflow_repartitioned_total", &[]),
                final_,
            );
        }
    }
    let totals = pipeline.join().map_err(|_| anyhow::anyhow!("the pipeline thread panicked"))??;
    shared.shutdown.store(true, Ordering::SeqCst);
    simulator.join().map_err(|_| anyhow::anyhow!("the simulator thread panicked"))??;
    for vendor in vendor_simulators {
        vendor.join().map_err(|_| anyhow::anyhow!("a vendor simulator thread panicked"))??;
    }
    print!("{}", summary(&totals, &shared, produced.load(Ordering::Relaxed), started.elapsed()));
    if options.mixed_vendors {
        println!("  sessions per source (metadata topic):");
        for (source, sessions) in sessions_per_source(&daemon.kafka.brokers, &daemon.topics.metadata, options.partitions) {
            println!("    {source:<26}{sessions:>10}");
        }
    }
    drop(broker);
    Ok(())
}

fn summary(totals: &RunTotals, shared: &Shared, produced: u64, elapsed: Duration) -> String {
    use std::fmt::Write;
    let s = &totals.stats;
    let mut out = String::new();
    let _ = writeln!(out, "\nsummary after {:.0} s", elapsed.as_secs_f64());
    let _ = writeln!(out, "  {:<28}{:>10}", "records produced", produced);
    let _ = writeln!(out, "  {:<28}{:>10}", "records consumed", shared.metrics.value("sessionflow_records_in_total", &[]));
    let _ = writeln!(out, "  {:<28}{:>10}", "timeline records", s.timeline);
    let _ = writeln!(out, "  {:<28}{:>10}", "metadata records", s.metadata);
    let _ = writeln!(out, "  {:<28}{:>10}", "tombstones (erasures)", s.tombstones);
    let _ = writeln!(out, "  {:<28}{:>10}", "dead letters", s.dead_letter_total());
    for (reason, n) in &s.dead_lettered {
        let _ = writeln!(out, "    {:<26}{:>10}", reason.as_str(), n);
    }
    let _ = writeln!(out, "  {:<28}{:>10}", "duplicates dropped", s.duplicates);
    let _ = writeln!(out, "  {:<28}{:>10}", "re-keyed (repartitioned)", totals.repartitioned);
    let _ = writeln!(out, "  {:<28}{:>10}", "erased (suppressed)", s.erased_suppressed);
    let _ = writeln!(out, "  {:<28}{:>10}", "out of order", s.out_of_order);
    let mut outcomes: std::collections::BTreeMap<&str, u64> = Default::default();
    for f in &s.finalized {
        *outcomes.entry(f.outcome.as_str()).or_default() += 1;
    }
    let _ = writeln!(out, "  {:<28}{:>10}", "sessions finalized", s.finalized.len());
    for (outcome, n) in outcomes {
        let _ = writeln!(out, "    {:<26}{:>10}", outcome, n);
    }
    let _ = writeln!(out, "  {:<28}{:>10}", "anomalies", s.anomalies.values().sum::<u64>());
    let _ = writeln!(out, "  {:<28}{:>10}", "batches committed", shared.batches.load(Ordering::Relaxed));
    let _ = writeln!(out, "  {:<28}{:>10}", "transactions aborted", totals.aborted);
    let balanced = s.consumed == s.timeline + s.dead_letter_total() + s.duplicates + s.erased_suppressed;
    let _ = writeln!(
        out,
        "  accounting: consumed = timeline + dead letters + duplicates + erased + re-keyed: {}",
        if balanced { "balanced" } else { "UNBALANCED" }
    );
    out
}

/// `sessionflow broker`: the embedded broker alone, with the pipeline's topics.
pub fn broker(config: &Config, partitions: i32) -> anyhow::Result<()> {
    let daemon = config.daemon_config();
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&daemon, partitions))?;
    println!("embedded broker at {} ({partitions} partitions per topic); Ctrl-C to stop", broker.bootstrap_servers());
    println!("  e.g. sessionflow simulate --brokers {} --records 10000", broker.bootstrap_servers());
    let shared = Arc::new(Shared::default());
    let rt = runtime()?;
    on_signal(&rt, shared.clone());
    while !shared.shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// `sessionflow simulate --brokers`: produce simulated traffic to a cluster.
pub fn simulate_to_kafka(brokers: &str, topic: &str, sim: SimConfig, records: u64, rate: u64) -> anyhow::Result<()> {
    let shared = Shared::default();
    let produced = AtomicU64::new(0);
    produce_traffic(brokers, topic, sim, rate, 0.0, Some(records), &shared, &produced)?;
    println!("produced {} records to {topic}", produced.load(Ordering::Relaxed));
    Ok(())
}

/// `check-config --connect`: whether the brokers answer, and per topic the
/// daemon needs, whether it exists and may be described; then the group.
/// Lines of a problem say `MISSING` or `REFUSED`. Write and transaction
/// permissions cannot be checked without writing: the daemon's start
/// (`init_transactions`, the instance claim) checks them.
pub fn check_cluster(config: &sessionflow_kafka::DaemonConfig) -> anyhow::Result<String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use std::fmt::Write as _;
    let consumer: BaseConsumer = sessionflow_kafka::clients::consumer_client_config(config).create().context("creating a client")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer.fetch_metadata(None, timeout).with_context(|| format!("connecting to {}", config.kafka.brokers))?;
    let mut out = String::new();
    let _ = writeln!(out, "# cluster: {} broker(s) answer at {}", metadata.brokers().len(), config.kafka.brokers);
    for (topic, _) in pipeline_topics(config, 1) {
        let line = match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if let Some(error) = t.error() => format!("REFUSED: {error:?}"),
            Some(t) => format!("ok, {} partition(s)", t.partitions().len()),
            None if config.kafka.create_topics => "missing: created at start (kafka.create_topics = true)".to_owned(),
            None => "MISSING (create it, or set kafka.create_topics = true)".to_owned(),
        };
        let _ = writeln!(out, "topic {topic}: {line}");
    }
    let group = &config.kafka.group_id;
    let line = match consumer.fetch_group_list(Some(group), timeout) {
        Ok(_) => "ok (described)".to_owned(),
        // The embedded broker does not describe groups.
        Err(e) if e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::UnsupportedFeature) => {
            "not checked: the broker does not describe groups".to_owned()
        }
        Err(e) => format!("REFUSED: {e}"),
    };
    let _ = writeln!(out, "group {group}: {line}");
    Ok(out)
}
