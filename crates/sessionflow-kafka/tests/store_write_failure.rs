//! A store write that fails after the batch's transaction committed must
//! not make the daemon produce that batch again. A fault injected in the
//! store's write path (`fail`) lands after some batches committed; the
//! pipeline stops with an error that says why, a restart catches the store
//! up from the changelog, and the read_committed outputs equal the engine's
//! run: no record twice, none lost.
//!
//! Before the fix the failed batch was rewound and committed again (its
//! outputs twice on the timeline). One test per binary: failpoints are
//! process-wide.

use sessionflow_kafka::DaemonConfig;
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 3;

fn config(brokers: &str) -> DaemonConfig {
    let mut config = testkit::test_config(brokers, "store-failure", 200);
    // The member of the run that stopped may still be in the group on this
    // broker: a short session lets the restart take over soon.
    config.kafka.consumer_properties.insert("session.timeout.ms".into(), "6000".into());
    config
}

#[test]
fn a_failed_store_write_after_the_commit_stops_the_daemon_and_nothing_is_produced_twice() {
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config(""), PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    let config = config(&brokers);
    let engine = testkit::test_engine();
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 5, ..SimConfig::default() }, 3_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);
    let dir = tempfile::tempdir().expect("dir");

    // The sixth store write fails (the disk, as RocksDB would report it).
    fail::cfg("store.write", "5*off->1*return(No space left on device)->off").expect("failpoint");
    let store = Arc::new(Store::open(dir.path(), &StoreConfig { write_ahead_log: false, ..StoreConfig::default() }).expect("store"));
    let (_, first) = testkit::run_pipeline_until(&config, &engine, store, &ends, Duration::from_secs(120));
    fail::remove("store.write");
    let error = format!("{:#}", first.expect_err("the first run stops at the failed store write"));
    assert!(error.contains("committed to Kafka but the local store could not be written") && error.contains("No space left"), "{error}");

    // The restart: the store catches up from the changelog, then the input.
    let store = Arc::new(Store::open(dir.path(), &StoreConfig { write_ahead_log: false, ..StoreConfig::default() }).expect("store"));
    let (_, second) = testkit::run_pipeline_until(&config, &engine, store, &ends, Duration::from_secs(120));
    second.expect("the second run finishes");

    testkit::assert_outputs_equal_engine_run(&brokers, "cc.events.raw", PARTITIONS, &engine);
}
