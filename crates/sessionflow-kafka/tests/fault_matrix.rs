//! The fault matrix on a three-broker embedded cluster: retriable request
//! errors on every API the daemon uses, the coordinators moved, and round
//! trips slower than the daemon's call timeout, one after another while
//! input keeps arriving. After each fault the daemon must catch up by
//! itself; at the end every timeline and metadata record of the engine's
//! run is on the broker, in order, and a record shown twice is an exact
//! copy of itself (the embedded broker shows the records of aborted
//! transactions; docs/daemon.md "Failure modes").
//!
//! Errors on the APIs of start-up (InitProducerId, FindCoordinator,
//! JoinGroup, SyncGroup) are queued before the daemon starts; the others
//! while it runs. Each fault is a few errors in a row, so librdkafka's own
//! retries and the daemon's (aborted batch, retried commit) both play.

use rdkafka::types::{RDKafkaApiKey as Api, RDKafkaRespErr as Err};
use sessionflow_codec::avro::RecordKind;
use sessionflow_kafka::embedded::{EmbeddedBroker, Fault, pipeline_topics};
use sessionflow_kafka::{DaemonConfig, Delivery, testkit};
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

const PARTITIONS: i32 = 3;
const INPUT: &str = "cc.events.raw";

/// Per session, the timeline and metadata records equal the engine's run
/// once exact repeats (same `seq`, or same `version`, and the same record)
/// are collapsed; two different records at one position fail.
fn assert_outputs_match_allowing_exact_repeats(brokers: &str) {
    let expected = testkit::reference_run(&testkit::read_all(brokers, INPUT, PARTITIONS), PARTITIONS, &testkit::test_engine());
    for (topic, kind, timeline, position) in
        [("cc.sessions.timeline", RecordKind::Timeline, true, "seq"), ("cc.sessions.metadata", RecordKind::Metadata, false, "version")]
    {
        let got = testkit::topic_by_session(&testkit::read_all(brokers, topic, PARTITIONS), kind);
        let expected = testkit::outputs_by_session(&expected, timeline);
        assert!(expected.len() > 50, "{} sessions", expected.len());
        for (session, records) in &expected {
            let mut unique: Vec<&serde_json::Value> = Vec::new();
            for r in got.get(session).into_iter().flatten() {
                match unique.iter().find(|u| u[position] == r[position]) {
                    Some(first) => assert_eq!(*first, r, "{topic} {session}: two different records at {position} {}", r[position]),
                    None => unique.push(r),
                }
            }
            let unique: Vec<serde_json::Value> = unique.into_iter().cloned().collect();
            assert_eq!(&unique, records, "{topic} {session}: differs from the engine's run");
        }
        assert!(got.keys().all(|s| expected.contains_key(s)), "{topic}: a session the engine's run does not have");
    }
}

fn run_matrix(delivery: Delivery, group: &str, startup: &[(Api, Err)], running: &[(Api, Err)]) {
    let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    let mut config: DaemonConfig = testkit::test_config("", group, 200);
    config.kafka.delivery = delivery;
    config.kafka.call_timeout_ms = 2_000;
    // A member lost to a fault leaves the group in seconds, not 45.
    config.kafka.consumer_properties.insert("session.timeout.ms".into(), "6000".into());
    config.kafka.consumer_properties.insert("heartbeat.interval.ms".into(), "500".into());
    let broker = EmbeddedBroker::start(3, &pipeline_topics(&config, PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    config.kafka.brokers = brokers.clone();
    let mut seed = 600;
    let mut produce = |n: usize| {
        seed += 1;
        testkit::produce(&brokers, INPUT, SimConfig { seed, ..SimConfig::default() }, n, 0);
    };
    produce(300);
    for &(api, err) in startup {
        broker.inject(Fault::RequestErrors(api, vec![err; 3])).expect("fault");
    }
    let dir = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig::default()).expect("store"));
    let (shared, daemon) = testkit::spawn_pipeline(&config, &testkit::test_engine(), store);
    let mut daemon = Some(daemon);
    let mut catch_up = |what: &str| {
        let ends = testkit::high_watermarks(&brokers, INPUT, PARTITIONS);
        let running = daemon.as_ref().expect("running");
        testkit::wait_for(what, Duration::from_secs(120), || testkit::caught_up(&shared, INPUT, &ends) || running.is_finished());
        if running.is_finished() {
            let outcome = daemon.take().expect("running").join().expect("thread");
            panic!("the daemon stopped ({what}): {outcome:?}");
        }
    };
    catch_up("start-up through its faults");

    let mut faults: Vec<(String, Vec<Fault>, Vec<Fault>)> =
        running.iter().map(|&(api, err)| (format!("{api:?}: {err:?}"), vec![Fault::RequestErrors(api, vec![err; 4])], vec![])).collect();
    faults.push((
        "coordinators moved".into(),
        vec![Fault::TransactionCoordinator(format!("{group}-{group}-1"), 2), Fault::GroupCoordinator(group.into(), 3)],
        vec![],
    ));
    faults.push((
        "round trips slower than kafka.call_timeout_ms".into(),
        (1..=3).map(|b| Fault::RoundTripTime(b, Duration::from_millis(2_500))).collect(),
        (1..=3).map(|b| Fault::RoundTripTime(b, Duration::ZERO)).collect(),
    ));
    faults.push(("the first broker down for 3 s".into(), vec![Fault::BrokerDown(1)], vec![Fault::BrokerUp(1)]));
    for (name, inject, clear) in faults {
        // Input first: with a broker down, producing would wait for it.
        produce(300);
        for fault in inject {
            broker.inject(fault).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        std::thread::sleep(Duration::from_secs(3));
        for fault in clear {
            broker.inject(fault).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        catch_up(&name);
        testkit::assert_metrics_balance(&shared, "cc.sessions.timeline");
    }
    shared.shutdown.store(true, Ordering::SeqCst);
    daemon.take().expect("running").join().expect("thread").expect("the daemon ran through every fault");
    assert_outputs_match_allowing_exact_repeats(&brokers);
}

/// Errors queued before start: the calls of joining and initialising.
const STARTUP: &[(Api, Err)] = &[
    (Api::InitProducerId, Err::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS),
    (Api::FindCoordinator, Err::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
    (Api::JoinGroup, Err::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS),
    (Api::SyncGroup, Err::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
];

#[test]
fn exactly_once_through_every_fault() {
    run_matrix(
        Delivery::ExactlyOnce,
        "matrix-eos",
        STARTUP,
        &[
            (Api::Produce, Err::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION),
            (Api::Fetch, Err::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION),
            (Api::Heartbeat, Err::RD_KAFKA_RESP_ERR_NOT_COORDINATOR),
            (Api::AddPartitionsToTxn, Err::RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS),
            (Api::AddOffsetsToTxn, Err::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
            (Api::TxnOffsetCommit, Err::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS),
            (Api::EndTxn, Err::RD_KAFKA_RESP_ERR_NOT_COORDINATOR),
            (Api::FindCoordinator, Err::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
        ],
    );
}

#[test]
fn at_least_once_through_every_fault() {
    run_matrix(
        Delivery::AtLeastOnce,
        "matrix-alo",
        STARTUP,
        &[
            (Api::Produce, Err::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION),
            (Api::Fetch, Err::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION),
            (Api::Heartbeat, Err::RD_KAFKA_RESP_ERR_NOT_COORDINATOR),
            (Api::OffsetCommit, Err::RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS),
            (Api::FindCoordinator, Err::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
        ],
    );
}
