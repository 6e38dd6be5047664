//! The soak: one `sessionflow run` process at a steady input rate on a
//! three-broker embedded cluster, with a broker fault every few seconds
//! (request errors on the APIs the daemon uses, slow round trips, a broker
//! down), for `SESSIONFLOW_SOAK_SECS` seconds (60 by default so that every
//! CI run has it; 600 for the documented run). After the warm-up (a third
//! of the run, at least 30 s) the daemon's resident memory outside its two
//! caches ends within 10 % of where it settled, with no transient over 25 %
//! (RocksDB's block cache and the
//! session cache fill towards their budgets, `store.memory_budget_mib` and
//! `store.session_cache_mib`, and must stay within them),
//! its file handles and threads do not grow, its lag stays bounded; once the
//! input stops it catches up with no transaction left open, its counters
//! balance, and the outputs pass the independent checker and equal the
//! engine's run.

mod common;

use common::{INPUT, committed_offsets, end_offsets, metric, start_daemon, wait_ready};
use rdkafka::types::{RDKafkaApiKey as Api, RDKafkaRespErr as Err};
use sessionflow_kafka::embedded::{EmbeddedBroker, Fault, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use std::time::{Duration, Instant};

/// Input records a second, over this many partitions: few enough per
/// partition that a 10-minute run's input and outputs stay inside the
/// embedded broker's 5 MiB per partition (it drops older records).
const PARTITIONS: i32 = 12;
const RATE: usize = 40;
const FAULT_EVERY: Duration = Duration::from_secs(4);
const FAULT_LASTS: Duration = Duration::from_millis(1_500);

/// The faults shown in turn: each is injected, then cleared after `FAULT_LASTS`.
fn faults() -> Vec<(&'static str, Vec<Fault>, Vec<Fault>)> {
    let errors = |api, err| vec![Fault::RequestErrors(api, vec![err; 3])];
    vec![
        ("produce: not leader", errors(Api::Produce, Err::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION), vec![]),
        ("fetch: not leader", errors(Api::Fetch, Err::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION), vec![]),
        ("end txn: not coordinator", errors(Api::EndTxn, Err::RD_KAFKA_RESP_ERR_NOT_COORDINATOR), vec![]),
        ("txn offset commit: loading", errors(Api::TxnOffsetCommit, Err::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS), vec![]),
        ("add partitions: concurrent", errors(Api::AddPartitionsToTxn, Err::RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS), vec![]),
        ("heartbeat: not coordinator", errors(Api::Heartbeat, Err::RD_KAFKA_RESP_ERR_NOT_COORDINATOR), vec![]),
        (
            "round trips of 800 ms",
            (1..=3).map(|b| Fault::RoundTripTime(b, Duration::from_millis(800))).collect(),
            (1..=3).map(|b| Fault::RoundTripTime(b, Duration::ZERO)).collect(),
        ),
        // Not the coordinators' broker: librdkafka can wait forever for a
        // group coordinator that went away (stuck_call.rs shows the daemon
        // exit for a restart then); the soak is about one long-lived process.
        ("broker 3 down", vec![Fault::BrokerDown(3)], vec![Fault::BrokerUp(3)]),
    ]
}

/// What the soak watches of the daemon process, once a second.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rss_bytes: u64,
    open_files: usize,
    threads: u64,
    lag: i64,
    /// RocksDB's block cache and memtables, and the sessions held: where
    /// memory growth would come from.
    rocksdb_bytes: f64,
    /// The session cache's estimate of itself.
    session_cache_bytes: f64,
    sessions: f64,
}

fn sample(pid: u32, brokers: &str, metrics: &str) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok()).unwrap_or(0);
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd")).map(Iterator::count).unwrap_or(0);
    let ends = testkit::high_watermarks(brokers, INPUT, PARTITIONS);
    let committed = committed_offsets(metrics, PARTITIONS);
    let lag = ends.iter().map(|(p, end)| end - committed[*p as usize]).sum();
    Sample {
        rss_bytes: field("VmRSS:") * 1024,
        open_files,
        threads: field("Threads:"),
        lag,
        rocksdb_bytes: metric(metrics, "sessionflow_rocksdb_memory_bytes", "kind=\"block_cache\""),
        session_cache_bytes: metric(metrics, "sessionflow_session_cache_bytes", ""),
        sessions: metric(metrics, "sessionflow_sessions", ""),
    }
}

#[test]
#[allow(clippy::print_stderr)] // the soak's figures, in the test log
fn a_steady_run_through_faults_stays_flat_and_exact() {
    let seconds: u64 = std::env::var("SESSIONFLOW_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("soak.toml");
    let kafka = "group_id = \"soak\"\ninstance_id = \"soak-1\"\ncommit_interval_ms = 100\nmax_batch_records = 200\ncreate_topics = false\n";
    common::write_daemon_config(&config_path, &dir.path().join("state"), kafka, common::FAST_REBALANCE);
    // Small memory budgets, reached within the warm-up: past it, memory is flat.
    let text = std::fs::read_to_string(&config_path).unwrap().replace("[store]\n", "[store]\nmemory_budget_mib = 16\nsession_cache_mib = 4\n");
    std::fs::write(&config_path, text).unwrap();
    let broker = EmbeddedBroker::start(3, &pipeline_topics(&testkit::test_config("", "soak", 200), PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    broker.inject(Fault::GroupCoordinator("soak".into(), 1)).expect("group coordinator");
    broker.inject(Fault::TransactionCoordinator("soak-soak-1".into(), 1)).expect("transaction coordinator");
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut daemon = start_daemon(&config_path, "daemon", &brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    let pid = daemon.child.id();

    let producer = {
        let brokers = brokers.clone();
        let records = RATE * seconds as usize;
        std::thread::spawn(move || {
            // Few sessions per second of event time, so that event time runs
            // about 50 times faster than the wall clock: sessions end, are
            // finalized and retired within the warm-up, and the state held
            // is steady after it.
            let sim = SimConfig { seed: 77, sessions_per_second: 0.03, malformed_rate: 0.01, erasure_rate: 0.01, ..SimConfig::default() };
            testkit::produce_paced(&brokers, INPUT, sim, records, 0, &[], Some((RATE / 4, Duration::from_millis(250))))
        })
    };
    let started = Instant::now();
    let warm_up = Duration::from_secs((seconds / 3).max(30));
    let mut after_warm_up: Vec<Sample> = Vec::new();
    let mut next_fault = started + FAULT_EVERY;
    let (mut faults_shown, mut fault_cycle) = (0, faults().into_iter().cycle());
    while !producer.is_finished() {
        assert!(!daemon.exited(), "the daemon exited\n{}", daemon.tail());
        if Instant::now() >= next_fault {
            let (name, inject, clear) = fault_cycle.next().expect("cycle");
            for fault in inject {
                broker.inject(fault).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            std::thread::sleep(FAULT_LASTS);
            for fault in clear {
                broker.inject(fault).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            faults_shown += 1;
            next_fault = Instant::now() + FAULT_EVERY;
        }
        let s = sample(pid, &brokers, &metrics);
        if started.elapsed() >= warm_up {
            after_warm_up.push(s);
        }
        std::thread::sleep(Duration::from_secs(1));
    }

    let sent = producer.join().expect("producer thread");
    let input = testkit::read_all(&brokers, INPUT, PARTITIONS);
    assert_eq!(input.len(), sent, "the embedded broker dropped input (over 5 MiB a partition): lower RATE");
    let end = end_offsets(&input, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_offsets(&metrics, PARTITIONS) != end {
        assert!(Instant::now() < deadline && !daemon.exited(), "not caught up: {:?} of {end:?}\n{}", committed_offsets(&metrics, PARTITIONS), daemon.tail());
        std::thread::sleep(Duration::from_millis(300));
    }
    let idle = Instant::now() + Duration::from_secs(10);
    while metric(&metrics, "sessionflow_transaction_open", "") != 0.0 {
        assert!(Instant::now() < idle, "a transaction stayed open with no input left\n{}", daemon.tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    let consumed = metric(&metrics, "sessionflow_records_in_total", "");
    let accounted = metric(&metrics, "sessionflow_records_out_total", "topic=\"cc.sessions.timeline\"")
        + metric(&metrics, "sessionflow_dead_letters_total", "")
        + metric(&metrics, "sessionflow_duplicates_dropped_total", "")
        + metric(&metrics, "sessionflow_erased_suppressed_total", "")
        + metric(&metrics, "sessionflow_repartitioned_total", "");
    assert_eq!(consumed, accounted, "the daemon's counters do not balance");
    assert_eq!(consumed as usize, sent, "records_in_total counted a record twice or missed one");
    let aborts = metric(&metrics, "sessionflow_transaction_aborts_total", "");
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());

    let first = *after_warm_up.first().expect("samples after the warm-up");
    let peak = |f: fn(&Sample) -> u64| after_warm_up.iter().map(f).max().unwrap_or(0);
    // RocksDB's block cache (memtables included) and the session cache fill
    // towards their budgets as the state grows, slowly at this rate: memory
    // outside them must stay flat, and each within its budget. The level
    // settled at is the highest of the first samples past the warm-up (one
    // sample alone is allocator noise).
    let outside_cache = |s: &Sample| s.rss_bytes.saturating_sub((s.rocksdb_bytes + s.session_cache_bytes) as u64);
    let settled = after_warm_up.iter().take(after_warm_up.len().div_ceil(4).max(5)).map(outside_cache).max().unwrap_or(0);
    let outside_peak = after_warm_up.iter().map(outside_cache).max().unwrap_or(0);
    // Where it ended: the median of the last quarter (a compaction's
    // buffers, outside the caches, come and go; a leak stays).
    let mut last_quarter: Vec<u64> = after_warm_up[after_warm_up.len() - after_warm_up.len().div_ceil(4)..].iter().map(outside_cache).collect();
    last_quarter.sort_unstable();
    let ended = last_quarter[last_quarter.len() / 2];
    let (rss, files, threads) = (peak(|s| s.rss_bytes), peak(|s| s.open_files as u64), peak(|s| s.threads));
    let cache_peak = peak(|s| s.rocksdb_bytes as u64);
    let session_cache_peak = peak(|s| s.session_cache_bytes as u64);
    let max_lag = after_warm_up.iter().map(|s| s.lag).max().unwrap_or(0);
    eprintln!(
        "soak: {seconds} s, {sent} records at {RATE}/s, {faults_shown} faults, {aborts} aborted transactions; after the warm-up: \
         RSS {:.1} -> peak {:.1} MiB, of which outside the caches settled at {:.1}, ended at {:.1}, peak {:.1} MiB (RocksDB's peak {:.1} MiB, the session cache's {:.1} MiB), \
         open files {} -> {files}, threads {} -> {threads}, lag at most {max_lag} records",
        first.rss_bytes as f64 / 1048576.0,
        rss as f64 / 1048576.0,
        settled as f64 / 1048576.0,
        ended as f64 / 1048576.0,
        outside_peak as f64 / 1048576.0,
        cache_peak as f64 / 1048576.0,
        session_cache_peak as f64 / 1048576.0,
        first.open_files,
        first.threads
    );
    for s in after_warm_up.iter().step_by(10) {
        eprintln!(
            "  RSS {:>4} MiB, RocksDB {:>4} MiB, session cache {:>4} MiB, {:>5} sessions, lag {:>4}",
            s.rss_bytes >> 20,
            s.rocksdb_bytes as u64 >> 20,
            s.session_cache_bytes as u64 >> 20,
            s.sessions,
            s.lag
        );
    }
    assert!(faults_shown >= seconds as usize / 8, "only {faults_shown} faults shown");
    assert!(ended as f64 <= settled as f64 * 1.10, "memory outside the caches grew more than 10 % after the warm-up: {settled} -> {ended} bytes");
    assert!(outside_peak as f64 <= settled as f64 * 1.25, "memory outside the caches peaked 25 % over its level: {settled} -> {outside_peak} bytes");
    assert!(cache_peak <= 16 << 20, "RocksDB's cache went past its 16 MiB budget: {cache_peak} bytes");
    assert!(session_cache_peak <= 4 << 20, "the session cache went past its 4 MiB budget: {session_cache_peak} bytes");
    assert!(files <= first.open_files as u64 + 8, "open files grew: {} -> {files}", first.open_files);
    assert!(threads <= first.threads + 2, "threads grew: {} -> {threads}", first.threads);
    // A fault holds the daemon up for a few seconds at most: the lag stays
    // within 15 seconds of input.
    assert!(max_lag <= 15 * RATE as i64, "lag reached {max_lag} records");

    let (repeats, _) = common::assert_outputs_match(&brokers, &input, PARTITIONS, 50);
    let replay = common::replay_metadata(&config_path, &brokers, PARTITIONS);
    let (passed, report) = common::check_outputs(&brokers, &replay, true);
    assert!(passed, "the independent checker failed the soak:\n{report}");
    eprintln!("soak: {repeats} timeline records shown twice (aborted, then retried); checker: {report}");
}
