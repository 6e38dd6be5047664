//! `sessionflow bench`: the engine against its targets and the pipeline
//! against its own ceiling (a passthrough with the same clients), on the
//! brokers this machine has, in one invocation. Prints a table, writes
//! `results.json` and `chart.svg`.
// Progress lines go to stderr, the results table to stdout.
#![allow(clippy::print_stderr)]

mod chart;
mod engine;
mod kafka;

use anyhow::Context as _;
use engine::{Engine, Workload};
use kafka::{Latency, Restore, Target};
use serde::{Deserialize, Serialize};
use sessionflow_codec::Codec;
use sessionflow_core::EngineConfig;
use sessionflow_kafka::Delivery;
use sessionflow_kafka::embedded::EmbeddedBroker;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Options of `sessionflow bench`.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub out: PathBuf,
    /// A cluster to run the broker phases against, besides the embedded broker.
    pub brokers: Option<String>,
    pub replication_factor: i32,
    /// Smaller workloads (a smoke run, not figures to quote).
    pub quick: bool,
    /// Only the engine phase (for profiling).
    pub engine_only: bool,
    /// Only the embedded broker's phases (for profiling).
    pub embedded_only: bool,
    /// The configuration's engine settings, its privacy policy among them:
    /// the engine phases run with them (the broker phases and the
    /// live-sessions subprocess with the defaults).
    pub engine: EngineConfig,
}

#[derive(Debug, Serialize)]
struct Machine {
    cpu: String,
    cores: usize,
    memory_gib: f64,
    kernel: String,
    engine_pinned_to_core: Option<usize>,
}

fn machine(pinned: Option<usize>) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("unknown").trim().to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = meminfo.lines().find(|l| l.starts_with("MemTotal")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_gib: (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        kernel,
        engine_pinned_to_core: pinned,
    }
}

/// Throughput at one point of a scaling series.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    /// Events per session, or live sessions.
    pub x: u64,
    pub events_per_second: f64,
    pub ns_per_event: f64,
}

impl Point {
    fn new(x: u64, events_per_second: f64) -> Point {
        Point { x, events_per_second, ns_per_event: 1e9 / events_per_second }
    }
}

#[derive(Debug, Serialize)]
struct EngineFigures {
    json_events_per_second: f64,
    avro_events_per_second: f64,
    events: usize,
    events_per_session: f64,
}

/// One broker's figures.
#[derive(Debug, Serialize)]
struct BrokerFigures {
    broker: &'static str,
    events: u64,
    partitions: i32,
    modes: Vec<ModeFigures>,
}

#[derive(Debug, Serialize)]
struct ModeFigures {
    delivery: &'static str,
    passthrough_records_per_second: f64,
    pipeline_events_per_second: f64,
    ratio: f64,
    target_ratio: f64,
    latency: Option<Latency>,
}

/// What the live-sessions subprocess reports.
#[derive(Debug, Serialize, Deserialize)]
struct LiveSessions {
    points: Vec<Point>,
    memory_budget_mib: u64,
    live_sessions_loaded: u64,
    peak_rss_mib: f64,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    target: String,
    measured: String,
    met: bool,
}

#[derive(Debug, Serialize)]
struct Results {
    sessionflow_version: &'static str,
    machine: Machine,
    /// The privacy policy of the engine phases.
    privacy: String,
    seconds: f64,
    engine: EngineFigures,
    brokers: Vec<BrokerFigures>,
    restore: Option<Restore>,
    session_length: Vec<Point>,
    live_sessions: LiveSessions,
    adapters: Vec<AdapterFigures>,
    checks: Vec<Check>,
}

/// One vendor's input against the same canonical events as JSON, on the
/// same engine (decode or adapt, fold, RocksDB, encode).
#[derive(Debug, Serialize)]
struct AdapterFigures {
    format: String,
    native_records: usize,
    canonical_events: usize,
    /// Canonical events a second, from the canonical JSON.
    canonical_events_per_second: f64,
    /// Canonical events a second, from the native records.
    vendor_events_per_second: f64,
    /// The vendor input's cost per canonical event over canonical JSON's.
    cost_ratio: f64,
}

/// Each vendor's native input against canonical JSON of the same events,
/// the faster of two alternating runs of each.
fn adapter_phase(records: usize, engine: &EngineConfig) -> anyhow::Result<Vec<AdapterFigures>> {
    use sessionflow_adapters::{AdapterOptions, InputFormat};
    let mut figures = Vec::new();
    for format in InputFormat::ALL.into_iter().filter(|f| *f != InputFormat::Canonical) {
        let workload = engine::vendor(format, records)?;
        let (mut canonical_seconds, mut vendor_seconds) = (f64::MAX, f64::MAX);
        for _ in 0..2 {
            canonical_seconds = canonical_seconds.min(engine::Engine::new(Codec::json(), None, engine)?.process(&workload.canonical)?);
            let mut vendor = engine::Engine::new(Codec::json(), None, engine)?;
            vendor.adapter = Some(sessionflow_adapters::adapter(format, &AdapterOptions::default()));
            vendor_seconds = vendor_seconds.min(vendor.process(&workload.native)?);
        }
        let events = workload.canonical.len();
        let figure = AdapterFigures {
            format: format.as_str().to_owned(),
            native_records: workload.native.len(),
            canonical_events: events,
            canonical_events_per_second: events as f64 / canonical_seconds,
            vendor_events_per_second: events as f64 / vendor_seconds,
            cost_ratio: vendor_seconds / canonical_seconds,
        };
        eprintln!(
            "   {:<20} {:>9.0} events/s from native records, {:>9.0} from canonical JSON: cost ratio {:.2}",
            figure.format, figure.vendor_events_per_second, figure.canonical_events_per_second, figure.cost_ratio
        );
        figures.push(figure);
    }
    Ok(figures)
}

/// Runs `f` on a thread pinned to one core (the last, away from the
/// broker threads that start on core 0).
fn pinned<T: Send + 'static>(f: impl FnOnce() -> anyhow::Result<T> + Send + 'static) -> anyhow::Result<(T, Option<usize>)> {
    std::thread::spawn(move || {
        let core = core_affinity::get_core_ids().and_then(|ids| ids.last().copied());
        let pinned = core.filter(|c| core_affinity::set_for_current(*c)).map(|c| c.id);
        f().map(|v| (v, pinned))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("bench thread panicked"))?
}

/// The privacy policy in words, for the results: what each class does.
fn privacy_in_effect(policy: &sessionflow_core::privacy::PrivacyPolicy) -> String {
    use sessionflow_core::privacy::FieldClass;
    if policy.is_keep_all() {
        return "every class kept (the default)".into();
    }
    let classes: Vec<String> = FieldClass::ALL.iter().map(|c| format!("{} {:?}", c.as_str(), policy.action(*c)).to_lowercase()).collect();
    let rules = policy.settings().rules.len();
    format!("{}; unknown attributes {:?}; {rules} rules", classes.join(", "), policy.settings().unknown_attributes).to_lowercase()
}

fn step(name: &str) {
    eprintln!("== {name}");
}

/// `sessionflow bench-engine`: JSON simulator traffic through the engine.
pub fn engine_phase(events: usize, engine: &EngineConfig) -> anyhow::Result<()> {
    let workload = engine::realistic(events, &Codec::json())?;
    let eps = engine::throughput(&workload, Codec::json(), engine)?;
    println!("{} events ({:.1} per session): {eps:.0} events/s", workload.records.len(), workload.events_per_session());
    Ok(())
}

/// `sessionflow bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let scale = if args.quick { 10 } else { 1 };
    // The input records of every broker phase.
    let broker_input = || engine::realistic(120_000 / scale, &Codec::json());
    if args.embedded_only {
        return embedded_phases(&broker_input()?).map(drop);
    }

    step("engine: decode → fold → RocksDB → encode, one core, JSON and Avro input");
    let privacy = privacy_in_effect(&args.engine.privacy);
    eprintln!("   privacy policy: {privacy}");
    let engine_events = 300_000 / scale;
    let config = args.engine.clone();
    let ((engine_figures, session_length), pinned_core) = pinned(move || {
        let json = engine::realistic(engine_events, &Codec::json())?;
        let json_eps = engine::throughput(&json, Codec::json(), &config)?;
        let avro = engine::realistic(engine_events, &Codec::avro())?;
        let avro_eps = engine::throughput(&avro, Codec::json(), &config)?;
        let figures = EngineFigures {
            json_events_per_second: json_eps,
            avro_events_per_second: avro_eps,
            events: json.records.len(),
            events_per_session: json.events_per_session(),
        };
        eprintln!("   JSON {json_eps:.0} events/s, Avro {avro_eps:.0} events/s ({:.1} events per session)", json.events_per_session());
        step("scaling: session length 10, 100, 1000 events");
        let mut points = Vec::new();
        for length in [10usize, 100, 1000] {
            let workload = engine::by_length(length, 1_000, 200_000 / scale, &Codec::json())?;
            let eps = engine::throughput(&workload, Codec::json(), &config)?;
            eprintln!("   {length} events per session: {eps:.0} events/s");
            points.push(Point::new(length as u64, eps));
        }
        Ok((figures, points))
    })?;

    step("adapters: each vendor's native records against the same canonical events as JSON, one core");
    let config = args.engine.clone();
    let (adapters, _) = pinned(move || adapter_phase(100_000 / scale, &config))?;
    if args.engine_only {
        return Ok(());
    }
    step("scaling: live sessions 10k, 100k, 1M, each in its own process; peak RSS after the 1M load");
    let live: Vec<u64> = if args.quick { vec![1_000, 10_000, 100_000] } else { vec![10_000, 100_000, 1_000_000] };
    let live_sessions = live_sessions_subprocess(&live, 200_000 / scale)?;

    let input = broker_input()?;
    let (embedded, restore) = embedded_phases(&input)?;
    let restore = Some(restore);
    let mut brokers = vec![embedded];
    match &args.brokers {
        Some(cluster) => {
            step("your cluster: passthrough and pipeline, exactly-once and at-least-once");
            let target = Target {
                name: "cluster",
                brokers: cluster.clone(),
                create_topics: true,
                partitions: 8,
                replication_factor: args.replication_factor,
                producer_properties: vec![],
                consumer_properties: vec![],
            };
            brokers.push(broker_phases(&target, &input.records, true)?);
        }
        None => match tansu() {
            Some(mut tansu) => {
                step("tansu (standalone broker): passthrough and pipeline, at-least-once");
                // tansu misreads multi-record batches (docs/daemon.md#brokers): one record per batch.
                let target = Target {
                    name: "tansu",
                    brokers: tansu.1.clone(),
                    create_topics: true,
                    partitions: 4,
                    replication_factor: 1,
                    producer_properties: vec![("batch.num.messages".into(), "1".into())],
                    consumer_properties: vec![],
                };
                let n = input.records.len().min(30_000 / scale);
                let result = broker_phases(&target, &input.records[..n], false);
                let _ = tansu.0.kill();
                let _ = tansu.0.wait();
                brokers.push(result?);
            }
            None => eprintln!("   tansu is not installed (cargo install tansu --locked --features dynostore): skipped"),
        },
    }

    let mut checks = checks(&engine_figures, &brokers, restore.as_ref(), &session_length, &live_sessions);
    for a in &adapters {
        checks.push(Check {
            name: format!("{} input, cost per canonical event over canonical JSON", a.format),
            target: "≤ 1.50".into(),
            measured: format!("{:.2}", a.cost_ratio),
            met: a.cost_ratio <= 1.5,
        });
    }
    let results = Results {
        sessionflow_version: env!("CARGO_PKG_VERSION"),
        machine: machine(pinned_core),
        privacy,
        seconds: started.elapsed().as_secs_f64(),
        engine: engine_figures,
        brokers,
        restore,
        session_length,
        live_sessions,
        adapters,
        checks,
    };
    print_table(&results);
    let json_path = args.out.join("results.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)?)?;
    let chart_path = args.out.join("chart.svg");
    std::fs::write(&chart_path, chart::render(&chart_data(&results)))?;
    println!("\nwrote {} and {} in {:.0} s", json_path.display(), chart_path.display(), results.seconds);
    Ok(())
}

/// Passthrough, pipeline (both deliveries) and restore on the embedded broker.
fn embedded_phases(input: &engine::Workload) -> anyhow::Result<(BrokerFigures, kafka::Restore)> {
    step("embedded broker: passthrough and pipeline, exactly-once and at-least-once");
    let partitions = 8;
    // The embedded broker keeps 5 MiB per partition: stay under it.
    let fits = (4 << 20) * partitions as usize / (input.bytes() / input.records.len()).max(1);
    let records = &input.records[..input.records.len().min(fits)];
    // The embedded broker holds a fetch that finds no data for the whole
    // fetch.wait.max.ms (Kafka answers when data arrives): keep it short
    // for every consumer, or latency measures that wait.
    let target = Target {
        name: "embedded",
        brokers: String::new(),
        create_topics: false,
        partitions,
        replication_factor: 1,
        producer_properties: vec![],
        consumer_properties: vec![("fetch.wait.max.ms".into(), "10".into())],
    };
    let runs = ["pt-eos", "pl-eos", "pt-alo", "pl-alo", "lat-eos", "lat-alo"];
    let mut topics = Vec::new();
    for run in runs {
        topics.extend(kafka::run_topics(&kafka::run_config(&target, run, Delivery::ExactlyOnce), partitions));
    }
    let broker = EmbeddedBroker::start(1, &topics)?;
    let target = Target { brokers: broker.bootstrap_servers().to_owned(), ..target };
    let figures = broker_phases(&target, records, true)?;
    step("restore: the exactly-once run's changelog into a fresh store");
    let r = kafka::restore(&kafka::run_config(&target, "pl-eos", Delivery::ExactlyOnce), partitions, records.len() as u64)?;
    eprintln!(
        "   {} records in {:.2} s (median of {}): {:.0} records/s, the state of {:.0} input events/s; runs {}",
        r.records,
        r.seconds,
        kafka::RESTORE_RUNS,
        r.records_per_second,
        r.input_events_per_second,
        r.runs_records_per_second.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ")
    );
    Ok((figures, r))
}

/// Passthrough, pipeline and latency on one broker.
fn broker_phases(target: &Target, records: &[engine::Raw], exactly_once: bool) -> anyhow::Result<BrokerFigures> {
    let n = records.len() as u64;
    let mut modes = Vec::new();
    let deliveries: &[(Delivery, &str, &str, f64)] = if exactly_once {
        &[(Delivery::ExactlyOnce, "exactly_once", "eos", 0.5), (Delivery::AtLeastOnce, "at_least_once", "alo", 0.75)]
    } else {
        &[(Delivery::AtLeastOnce, "at_least_once", "alo", 0.75)]
    };
    for (delivery, label, short, target_ratio) in deliveries {
        let pt = kafka::run_config(target, &format!("pt-{short}"), *delivery);
        kafka::load_input(target, &pt, records)?;
        let passthrough = kafka::passthrough(&pt, n)?;
        let pl = kafka::run_config(target, &format!("pl-{short}"), *delivery);
        kafka::load_input(target, &pl, records)?;
        let pipeline = kafka::pipeline(&pl, n)?;
        eprintln!("   {label}: passthrough {passthrough:.0} records/s, pipeline {pipeline:.0} events/s ({:.2}×)", pipeline / passthrough);
        let lat = kafka::run_config(target, &format!("lat-{short}"), *delivery);
        let rate = ((pipeline * 0.25) as u64).clamp(100, 10_000);
        let latency = kafka::latency(target, &lat, records, rate, 6.0)?;
        eprintln!("   {label}: latency at {rate}/s: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms", latency.p50_ms, latency.p99_ms, latency.max_ms);
        modes.push(ModeFigures {
            delivery: label,
            passthrough_records_per_second: passthrough,
            pipeline_events_per_second: pipeline,
            ratio: pipeline / passthrough,
            target_ratio: *target_ratio,
            latency: Some(latency),
        });
    }
    Ok(BrokerFigures { broker: target.name, events: n, partitions: target.partitions, modes })
}

/// Starts tansu on a loopback port when it is installed.
fn tansu() -> Option<(std::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let url = format!("tcp://127.0.0.1:{port}");
    // `$TANSU` names the binary where it is not on PATH (.ci/run sets it).
    let child = Command::new(std::env::var("TANSU").unwrap_or_else(|_| "tansu".into()))
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "memory://tansu/"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some((child, addr))
}

/// Runs the live-sessions phase in child processes, one per count: the peak
/// RSS read after the largest load is then that load's own, not the
/// high-water mark of a smaller count's timed events (their input and
/// output buffers) before it.
fn live_sessions_subprocess(live: &[u64], events: usize) -> anyhow::Result<LiveSessions> {
    let exe = std::env::current_exe()?;
    let mut points = Vec::new();
    let mut last: Option<LiveSessions> = None;
    for count in live {
        let output = Command::new(&exe).args(["bench-live-sessions", "--live", &count.to_string(), "--events", &events.to_string()]).output()?;
        if !output.status.success() {
            anyhow::bail!("live-sessions phase failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        let mut result: LiveSessions = serde_json::from_slice(&output.stdout).context("live-sessions phase output")?;
        points.append(&mut result.points);
        last = Some(result);
    }
    Ok(LiveSessions { points, ..last.context("no live-session counts")? })
}

/// The live-sessions phase (in its own process): for each count, a fresh
/// store under the default memory budget, that many sessions started, the
/// store's background compactions of that load awaited, then `events`
/// transcript segments spread over them, timed. Peak RSS is read right
/// after the largest load.
pub fn live_sessions_phase(live: &[u64], events: usize) -> anyhow::Result<()> {
    let (result, _) = pinned({
        let live = live.to_vec();
        move || {
            let budget = sessionflow_store::StoreConfig::default().memory_budget_bytes;
            let mut points = Vec::new();
            let mut peak = 0.0;
            for &count in &live {
                let mut engine = Engine::new(Codec::json(), None, &EngineConfig::default())?;
                let codec = Codec::json();
                let mut starts = engine::session_starts(count as usize, 0, &codec);
                // In chunks, so the generated records never all sit in memory.
                loop {
                    let chunk = starts.by_ref().take(50_000).collect::<anyhow::Result<Vec<_>>>()?;
                    if chunk.is_empty() {
                        break;
                    }
                    engine.process(chunk)?;
                }
                peak = engine::rss().1 as f64 / f64::from(1 << 20);
                let workload: Workload = engine::segments_over(count as usize, events, &codec)?;
                // The load's flushes and compactions run on this core too;
                // the timed events pay for their own, not for the load's.
                engine.store.settle(Duration::from_secs(120))?;
                let seconds = engine.process(&workload.records)?;
                let eps = workload.records.len() as f64 / seconds;
                eprintln!("   {count} live sessions: {eps:.0} events/s (peak RSS after the load {peak:.0} MiB)");
                points.push(Point::new(count, eps));
            }
            Ok(LiveSessions { points, memory_budget_mib: (budget >> 20) as u64, live_sessions_loaded: live.last().copied().unwrap_or(0), peak_rss_mib: peak })
        }
    })?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

fn checks(engine: &EngineFigures, brokers: &[BrokerFigures], restore: Option<&Restore>, length: &[Point], live: &LiveSessions) -> Vec<Check> {
    let mut checks = vec![Check {
        name: "engine, JSON input, one core".into(),
        target: "≥ 250,000 events/s".into(),
        measured: format!("{:.0} events/s", engine.json_events_per_second),
        met: engine.json_events_per_second >= 250_000.0,
    }];
    for b in brokers {
        for m in &b.modes {
            checks.push(Check {
                name: format!("pipeline / passthrough, {}, {}", m.delivery, b.broker),
                target: format!("≥ {:.2}", m.target_ratio),
                measured: format!("{:.2}", m.ratio),
                met: m.ratio >= m.target_ratio,
            });
            if let Some(l) = &m.latency {
                let bound = sessionflow_kafka::KafkaSection::default().commit_interval_ms as f64 + 50.0;
                checks.push(Check {
                    name: format!("p99 end-to-end latency, {}, {}", m.delivery, b.broker),
                    target: format!("≤ {bound:.0} ms (commit interval + 50 ms)"),
                    measured: format!("{:.0} ms", l.p99_ms),
                    met: l.p99_ms <= bound,
                });
            }
        }
    }
    let costs: Vec<f64> = length.iter().map(|p| p.ns_per_event).collect();
    if let (Some(first), Some(max)) = (costs.first(), costs.iter().copied().reduce(f64::max)) {
        checks.push(Check {
            name: "per-event cost, 10 → 1000 events per session".into(),
            target: "flat within 20 %".into(),
            measured: format!("{:+.0} % (worst vs 10)", (max / first - 1.0) * 100.0),
            met: max <= first * 1.2,
        });
    }
    let bound = live.memory_budget_mib as f64 + 150.0;
    checks.push(Check {
        name: format!("peak RSS, {} live sessions", live.live_sessions_loaded),
        target: format!("≤ {bound:.0} MiB (budget {} + 150)", live.memory_budget_mib),
        measured: format!("{:.0} MiB", live.peak_rss_mib),
        met: live.peak_rss_mib <= bound,
    });
    if let Some(r) = restore {
        checks.push(Check {
            name: "restore from the changelog".into(),
            target: "≥ 500,000 records/s".into(),
            measured: format!("{:.0} records/s (the state of {:.0} input events/s)", r.records_per_second, r.input_events_per_second),
            met: r.records_per_second >= 500_000.0,
        });
    }
    checks
}

fn print_table(r: &Results) {
    let m = &r.machine;
    println!("\nsessionflow {} on {} ({} cores, {} GiB), kernel {}", r.sessionflow_version, m.cpu, m.cores, m.memory_gib, m.kernel);
    println!("\n{:<52} {:>16}", "engine (one core)", "events/s");
    println!("{:<52} {:>16.0}", format!("JSON input ({:.1} events/session)", r.engine.events_per_session), r.engine.json_events_per_second);
    println!("{:<52} {:>16.0}", "Avro input", r.engine.avro_events_per_second);
    for p in &r.session_length {
        println!("{:<52} {:>16.0}   {:>6.0} ns/event", format!("{} events per session", p.x), p.events_per_second, p.ns_per_event);
    }
    for p in &r.live_sessions.points {
        println!("{:<52} {:>16.0}   {:>6.0} ns/event", format!("{} live sessions", p.x), p.events_per_second, p.ns_per_event);
    }
    println!("\n{:<30} {:>14} {:>14} {:>7} {:>8} {:>8} {:>8}", "broker, delivery", "passthrough/s", "pipeline/s", "ratio", "p50 ms", "p99 ms", "max ms");
    for b in &r.brokers {
        for mode in &b.modes {
            let (p50, p99, max) = mode.latency.as_ref().map_or((f64::NAN, f64::NAN, f64::NAN), |l| (l.p50_ms, l.p99_ms, l.max_ms));
            println!(
                "{:<30} {:>14.0} {:>14.0} {:>7.2} {:>8.0} {:>8.0} {:>8.0}",
                format!("{}, {}", b.broker, mode.delivery),
                mode.passthrough_records_per_second,
                mode.pipeline_events_per_second,
                mode.ratio,
                p50,
                p99,
                max
            );
        }
    }
    if let Some(restore) = &r.restore {
        println!(
            "\nrestore: {} changelog records at {:.0} records/s, median of {} (the state of {} input events, {:.0} events/s)",
            restore.records,
            restore.records_per_second,
            restore.runs_records_per_second.len(),
            restore.input_events,
            restore.input_events_per_second
        );
    }
    println!(
        "memory: peak RSS {:.0} MiB with {} live sessions (budget {} MiB)",
        r.live_sessions.peak_rss_mib, r.live_sessions.live_sessions_loaded, r.live_sessions.memory_budget_mib
    );
    println!("\n{:<52} {:<34} {:<24} ", "target", "wanted", "measured");
    for c in &r.checks {
        println!("{:<52} {:<34} {:<24} {}", c.name, c.target, c.measured, if c.met { "met" } else { "NOT MET" });
    }
}

fn chart_data(r: &Results) -> chart::Chart {
    let mut throughput = vec![("engine JSON".to_owned(), r.engine.json_events_per_second), ("engine Avro".to_owned(), r.engine.avro_events_per_second)];
    for b in &r.brokers {
        for m in &b.modes {
            let short = if m.delivery == "exactly_once" { "EOS" } else { "ALO" };
            throughput.push((format!("{} passthrough {short}", b.broker), m.passthrough_records_per_second));
            throughput.push((format!("{} pipeline {short}", b.broker), m.pipeline_events_per_second));
        }
    }
    chart::Chart {
        title: format!("sessionflow {} — {} ({} cores)", r.sessionflow_version, r.machine.cpu, r.machine.cores),
        panels: vec![
            chart::Panel { title: "throughput (records or events per second)".into(), bars: throughput },
            chart::Panel {
                title: "engine cost by session length (µs per event)".into(),
                bars: r.session_length.iter().map(|p| (format!("{} events/session", p.x), p.ns_per_event / 1e3)).collect(),
            },
            chart::Panel {
                title: "engine cost by live sessions (µs per event)".into(),
                bars: r.live_sessions.points.iter().map(|p| (format!("{} live sessions", p.x), p.ns_per_event / 1e3)).collect(),
            },
        ],
    }
}
