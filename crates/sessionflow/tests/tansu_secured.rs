//! The daemon on secured connections to a real broker process: `tansu`
//! behind `stunnel` for TLS (tansu 0.6 accepts `--cert` but serves
//! plaintext, docs/security.md), and tansu's own SASL/SCRAM (with SQLite
//! storage, where credentials persist). Certificates come from a CA made
//! here with `openssl`. Each test runs `sessionflow run` (at least once:
//! tansu has no transactions) to the end of its input and checks the
//! timeline against the engine's run, and that a client without the
//! credential is refused.

mod common;

use common::{INPUT, Proc, committed_offsets, end_offsets, free_port, start_daemon, wait_ready};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sessionflow_core::Output;
use sessionflow_kafka::config::ClientProperties;
use sessionflow_kafka::testkit;
use sessionflow_kafka::{DaemonConfig, Delivery, KafkaSection, TopicsSection};
use sessionflow_sim::SimConfig;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("{program}: {e} (scripts/system-packages.txt)"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn pki(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run(dir, "openssl", &[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=sessionflow-test-ca", "-days", "2"]].concat());
    for (name, ext) in [("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")] {
        run(
            dir,
            "openssl",
            &[&["req"][..], &ec, &["-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr"), "-subj", &format!("/CN={name}")]].concat(),
        );
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(
            dir,
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
    }
}

/// stunnel terminating TLS on `accept` for the plaintext `connect`; with
/// `mutual`, only clients with a certificate of the CA get through.
fn stunnel(dir: &Path, accept: u16, connect: u16, mutual: bool) -> Proc {
    let verify = if mutual { format!("CAfile = {}\nverifyChain = yes\nrequireCert = yes\n", dir.join("ca.pem").display()) } else { String::new() };
    let config = dir.join(format!("stunnel-{accept}.conf"));
    std::fs::write(
        &config,
        format!(
            "foreground = yes\npid =\n[kafka]\naccept = 127.0.0.1:{accept}\nconnect = 127.0.0.1:{connect}\ncert = {}\nkey = {}\n{verify}",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        ),
    )
    .unwrap();
    let log = dir.join("stunnel.log");
    let child = Command::new("stunnel")
        .arg(&config)
        .stdout(common::append(&log))
        .stderr(common::append(&log))
        .stdin(Stdio::null())
        .spawn()
        .expect("stunnel (scripts/system-packages.txt)");
    let mut proc = Proc::new(child, log);
    common::wait_listening(&format!("127.0.0.1:{accept}"), &mut proc);
    proc
}

/// Whether a client with `properties` gets the cluster's metadata.
fn can_connect(brokers: &str, properties: &[(&str, &str)]) -> bool {
    let mut config = rdkafka::ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("group.id", "probe");
    for (k, v) in properties {
        config.set(*k, *v);
    }
    // A client librdkafka will not even create (SASL without a usable
    // mechanism) connects nowhere.
    let Ok(consumer) = config.create::<BaseConsumer>() else { return false };
    consumer.fetch_metadata(None, Duration::from_secs(5)).is_ok()
}

/// Runs the daemon with `properties` on `brokers` over fresh input, to the
/// end, and checks its timeline against the engine's run.
fn daemon_to_the_end(dir: &Path, brokers: &str, properties: &[(&str, &str)]) {
    let owned: ClientProperties = properties.iter().map(|(k, v)| (*k, *v)).collect();
    let daemon_config = DaemonConfig {
        kafka: KafkaSection {
            brokers: brokers.into(),
            group_id: "secured".into(),
            partitions: Some(1),
            replication_factor: 1,
            delivery: Delivery::AtLeastOnce,
            properties: owned,
            ..KafkaSection::default()
        },
        topics: TopicsSection::default(),
        idle_advance_after_ms: 0,
        session_cache_bytes: 64 << 20,
    };
    sessionflow_kafka::clients::create_topics(&daemon_config).expect("topics created over the secured connection");
    // tansu 0.6 misreads batches of more than one record: one per batch.
    let produce_properties: Vec<(&str, &str)> = properties.iter().copied().chain([("batch.num.messages", "1")]).collect();
    let sim = SimConfig { seed: 5, malformed_rate: 0.01, ..SimConfig::default() };
    let sent = testkit::produce_with(brokers, INPUT, sim, 600, 0, &produce_properties);
    let input = testkit::read_all_with(brokers, INPUT, 1, properties);
    assert_eq!(input.len(), sent, "the input read back over the secured connection");

    let config = dir.join("sessionflow.toml");
    // A password goes in a file, as a deployment gives it (`<key>_file`).
    let table: String = properties
        .iter()
        .map(|(k, v)| {
            if *k == "sasl.password" {
                let file = dir.join("kafka-password");
                std::fs::write(&file, v).unwrap();
                format!("\"{k}_file\" = {:?}\n", file.display().to_string())
            } else {
                format!("\"{k}\" = \"{v}\"\n")
            }
        })
        .collect();
    common::write_daemon_config(
        &config,
        &dir.join("state"),
        "group_id = \"secured\"\ndelivery = \"at_least_once\"\ncommit_interval_ms = 50\ncreate_topics = false\nstatic_membership = false",
        &format!("{}\n[kafka.properties]\n{table}\n[kafka.producer_properties]\n\"batch.num.messages\" = \"1\"\n", common::FAST_REBALANCE),
    );
    let metrics = format!("127.0.0.1:{}", free_port());
    let mut daemon = start_daemon(&config, "daemon", brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    let end = end_offsets(&input, 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_offsets(&metrics, 1) != end {
        assert!(Instant::now() < deadline && !daemon.exited(), "not finished: {:?} of {end:?}\n{}", committed_offsets(&metrics, 1), daemon.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());
    if let Some((_, password)) = properties.iter().find(|(k, _)| *k == "sasl.password") {
        assert!(!std::fs::read_to_string(&daemon.log).unwrap().contains(password), "the password is in the daemon's log");
    }

    let expected: BTreeSet<(String, String)> = testkit::reference_run(&input, 1, &common::engine())
        .into_iter()
        .filter_map(|o| match o {
            Output::Timeline(t) => Some((t.session_id.to_string(), t.event_id.to_string())),
            _ => None,
        })
        .collect();
    let timeline = testkit::read_all_with(brokers, "cc.sessions.timeline", 1, properties);
    let got: BTreeSet<(String, String)> = timeline
        .iter()
        .filter_map(|m| serde_json::from_slice::<serde_json::Value>(m.payload()?).ok())
        .map(|v| (v["session_id"].as_str().unwrap_or_default().to_owned(), v["event_id"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert!(expected.len() > 300, "too little traffic: {}", expected.len());
    assert_eq!(got, expected, "the timeline over the secured connection");
}

fn pem(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn tls_and_mutual_tls_to_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d);
    let (plain, tls) = (free_port(), free_port());
    let _tansu = common::start_tansu_with(d, plain, tls, "memory://tansu/", &[]);
    let _stunnel = stunnel(d, tls, plain, true);
    let brokers = format!("127.0.0.1:{tls}");
    let (ca, cert, key) = (pem(d, "ca.pem"), pem(d, "client.pem"), pem(d, "client.key"));
    let mutual: Vec<(&str, &str)> =
        vec![("security.protocol", "SSL"), ("ssl.ca.location", &ca), ("ssl.certificate.location", &cert), ("ssl.key.location", &key)];
    assert!(can_connect(&brokers, &mutual), "the client certificate is accepted");
    assert!(!can_connect(&brokers, &mutual[..2]), "a client without a certificate got through");
    assert!(!can_connect(&brokers, &[("security.protocol", "SSL")]), "a client that does not trust the CA got through");
    assert!(!can_connect(&brokers, &[]), "a plaintext client got through");
    daemon_to_the_end(d, &brokers, &mutual);
}

#[test]
fn sasl_scram_over_tls_to_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    pki(d);
    let (plain, tls) = (free_port(), free_port());
    let tansu_binary = std::env::var("TANSU").unwrap_or_else(|_| "tansu".into());
    // Users are created while the broker takes anyone, then it restarts
    // requiring SASL; SQLite keeps the credentials across the restart.
    let mut open = common::start_tansu_with(d, plain, plain, "sqlite://tansu.db", &[]);
    let url = format!("tcp://127.0.0.1:{plain}");
    run(d, &tansu_binary, &["user", "create", "--broker", &url, "--mechanism", "scram512", "sessionflow", "scram-s3cret"]);
    open.kill();
    let _tansu = common::start_tansu_with(d, plain, tls, "sqlite://tansu.db", &["--authentication"]);
    let _stunnel = stunnel(d, tls, plain, false);
    let brokers = format!("127.0.0.1:{tls}");
    let ca = pem(d, "ca.pem");
    let scram = |password: &'static str| -> Vec<(&str, String)> {
        vec![
            ("security.protocol", "SASL_SSL".into()),
            ("ssl.ca.location", ca.clone()),
            ("sasl.mechanism", "SCRAM-SHA-512".into()),
            ("sasl.username", "sessionflow".into()),
            ("sasl.password", password.into()),
        ]
    };
    let good = scram("scram-s3cret");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let wrong = scram("wrong-password");
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert!(can_connect(&brokers, &good), "SCRAM with the right password");
    assert!(!can_connect(&brokers, &wrong), "SCRAM with a wrong password got through");
    assert!(!can_connect(&brokers, &good[..2]), "a client without SASL got through");
    daemon_to_the_end(d, &brokers, &good);
}
