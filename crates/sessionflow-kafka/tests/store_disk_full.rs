//! A store on a filesystem that fills up: the daemon stops with the disk's
//! error instead of producing the same batch again and again, and a restart
//! on a disk with room restores from the changelog and finishes with
//! outputs equal to the engine's run. Needs a size-limited tmpfs, which
//! only root may mount: elsewhere the test says so and returns.

use sessionflow_codec::avro::RecordKind;
use sessionflow_kafka::embedded::{EmbeddedBroker, pipeline_topics};
use sessionflow_kafka::testkit;
use sessionflow_sim::SimConfig;
use sessionflow_store::{Store, StoreConfig};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const PARTITIONS: i32 = 2;

/// A tmpfs of `size` mounted at `at`, unmounted on drop.
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(at: &'a Path, size: &str) -> Result<Tmpfs<'a>, String> {
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).output().map_err(|e| e.to_string())?;
        if out.status.success() { Ok(Tmpfs(at)) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0).status();
    }
}

#[test]
fn a_full_disk_stops_the_daemon_and_a_restart_elsewhere_finishes_without_repeats() {
    let mount_point = tempfile::tempdir().expect("dir");
    let tmpfs = match Tmpfs::mount(mount_point.path(), "2m") {
        Ok(t) => t,
        Err(why) => {
            println!("skipped: cannot mount a size-limited tmpfs here ({why}); the failpoint test covers the same path");
            return;
        }
    };
    let mut config = testkit::test_config("", "disk-full", 300);
    // The member of the run that stopped may still be in the group on this
    // broker: a short session lets the restart take over soon.
    config.kafka.consumer_properties.insert("session.timeout.ms".into(), "6000".into());
    let broker = EmbeddedBroker::start(1, &pipeline_topics(&config, PARTITIONS)).expect("broker");
    let brokers = broker.bootstrap_servers().to_owned();
    config.kafka.brokers = brokers.clone();
    let engine = testkit::test_engine();
    testkit::produce(&brokers, "cc.events.raw", SimConfig { seed: 9, ..SimConfig::default() }, 8_000, 0);
    let ends = testkit::high_watermarks(&brokers, "cc.events.raw", PARTITIONS);

    // With its write-ahead log on, the store's writes hit the disk at once.
    let store = Arc::new(Store::open(mount_point.path().join("state"), &StoreConfig::default()).expect("store on tmpfs"));
    let (_, first) = testkit::run_pipeline_until(&config, &engine, store, &ends, Duration::from_secs(180));
    let error = format!("{:#}", first.expect_err("the disk fills before the input ends"));
    assert!(error.contains("local store could not be written") || error.contains("space"), "{error}");
    drop(tmpfs);

    // A new disk: the state comes back from the changelog.
    let fresh = tempfile::tempdir().expect("dir");
    let store = Arc::new(Store::open(fresh.path(), &StoreConfig::default()).expect("store"));
    let (_, second) = testkit::run_pipeline_until(&config, &engine, store, &ends, Duration::from_secs(180));
    second.expect("the second run finishes");

    // The timeline only: the metadata of this much input outgrows the 5 MiB
    // per partition the embedded broker keeps.
    let expected = testkit::reference_run(&testkit::read_all(&brokers, "cc.events.raw", PARTITIONS), PARTITIONS, &engine);
    let got = testkit::topic_by_session(&testkit::read_all(&brokers, "cc.sessions.timeline", PARTITIONS), RecordKind::Timeline);
    if let Some(diff) = testkit::first_difference(&testkit::outputs_by_session(&expected, true), &got) {
        panic!("timeline: {diff}");
    }
}
