//! No seeded personal value leaves the daemon unprotected. The corpus of
//! `sessionflow_sim::privacy_corpus` (personal values in every carrier of
//! the canonical model and of the five vendor formats, and in malformed
//! records) goes through `sessionflow run` on the embedded broker, once with
//! every class hashed and dead letters redacted, once with every class
//! dropped and dead letters dropped. Then every byte the daemon wrote is
//! searched for each seeded value and its unkeyed SHA-256: every record
//! (key, value, headers) of every topic but the inputs and the repartition
//! topic (a copy of input records as they came), the changelog included;
//! every key and value of the RocksDB store, read through RocksDB (its
//! files are compressed) and every file of the store directory as bytes;
//! and the daemon's log. The erased session gets its tombstone, and nothing
//! of it is written after it.
//!
//! That the search can fail is shown at the level of the engine
//! (`sessionflow-sim`'s `the_checker_finds_any_carrier_left_out`); here, a
//! run that keeps one class finds its seeds.

mod common;

use common::{INPUT, free_port, start_daemon, start_embedded_broker, wait_ready};
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use sessionflow_adapters::InputFormat;
use sessionflow_kafka::testkit;
use sessionflow_sim::privacy_corpus::{PrivacyCorpus, SeedCarrier, privacy_corpus};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};

const GROUP: &str = "privacy";
const KEY: &str = "daemon-leak-test-hmac-key";

fn topic_of(format: InputFormat) -> String {
    if format == InputFormat::Canonical { INPUT.to_owned() } else { format!("vendor.{format}") }
}

fn config(dir: &Path, classes: &str, unknown: &str, payload: &str) -> std::path::PathBuf {
    let path = dir.join("sessionflow.toml");
    let inputs: String = InputFormat::ALL.iter().map(|f| format!("\n[[topics.inputs]]\nname = \"{}\"\nformat = \"{f}\"\n", topic_of(*f))).collect();
    let classes: String = classes.lines().map(|l| format!("{l}\n")).collect();
    // The key from a file, as a deployment would give it.
    let key_file = dir.join("hmac-key");
    std::fs::write(&key_file, KEY).unwrap();
    let key_file = key_file.display().to_string();
    let sections =
        format!("[privacy]\n{classes}unknown_attributes = \"{unknown}\"\nhmac_key_file = {key_file:?}\n\n[dead_letter]\npayload = \"{payload}\"\n{inputs}");
    let kafka = format!("group_id = \"{GROUP}\"\ninstance_id = \"{GROUP}-1\"\ncommit_interval_ms = 50\ncreate_topics = false");
    common::write_daemon_config(&path, &dir.join("state"), &kafka, &sections);
    path
}

fn every_class(action: &str) -> String {
    ["contact", "text", "custom", "link", "staff", "vendor"].iter().map(|c| format!("{c} = \"{action}\"")).collect::<Vec<_>>().join("\n")
}

fn produce(brokers: &str, corpus: &PrivacyCorpus) {
    let producer: BaseProducer = rdkafka::ClientConfig::new().set("bootstrap.servers", brokers).set("enable.idempotence", "true").create().unwrap();
    for record in &corpus.records {
        let topic = topic_of(record.format);
        let mut r = BaseRecord::<[u8], [u8]>::to(&topic).payload(&record.value).partition(0);
        if let Some(key) = &record.key {
            r = r.key(key);
        }
        producer.send(r).map_err(|(e, _)| e).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// A record as read back: its key, whether it has a value, and all of it
/// (key, value, headers) as text.
struct Record {
    place: String,
    key: String,
    tombstone: bool,
    text: String,
}

/// Every record of `topic`, read_committed.
fn topic_records(brokers: &str, topic: &str) -> Vec<Record> {
    testkit::read_all(brokers, topic, 1)
        .iter()
        .map(|m: &OwnedMessage| {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let mut text = format!("{key}\n{}", String::from_utf8_lossy(m.payload().unwrap_or_default()));
            for h in m.headers().into_iter().flat_map(|h| h.iter()) {
                text.push_str(&format!("\n{}: {}", h.key, String::from_utf8_lossy(h.value.unwrap_or_default())));
            }
            Record { place: format!("{topic} offset {}", m.offset()), key, tombstone: m.payload().is_none(), text }
        })
        .collect()
}

/// Every key and value of the store, through RocksDB, as text.
fn store_texts(state: &Path) -> Vec<(String, String)> {
    let options = rocksdb::Options::default();
    let families = rocksdb::DB::list_cf(&options, state).unwrap();
    let db = rocksdb::DB::open_cf_for_read_only(&options, state, &families, false).unwrap();
    let mut texts = Vec::new();
    for family in &families {
        let cf = db.cf_handle(family).unwrap();
        for item in db.iterator_cf(&cf, rocksdb::IteratorMode::Start) {
            let (k, v) = item.unwrap();
            texts.push((format!("store {family}"), format!("{}\n{}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v))));
        }
    }
    assert!(texts.len() > 10, "the store holds almost nothing: {} entries", texts.len());
    texts
}

/// Every file under `dir`, as bytes read as text.
fn file_texts(dir: &Path) -> Vec<(String, String)> {
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            texts.extend(file_texts(&path));
        } else {
            texts.push((format!("file {}", path.display()), String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned()));
        }
    }
    texts
}

/// What the daemon wrote, each piece with where it is.
struct Written {
    texts: Vec<(String, String)>,
    /// Keys of the erased session's tombstones on the metadata topic.
    tombstones: Vec<String>,
    /// Metadata records of the erased session after its tombstone.
    after_erasure: Vec<String>,
}

fn run_daemon(dir: &Path, classes: &str, unknown: &str, payload: &str, corpus: &PrivacyCorpus) -> Written {
    let config = config(dir, classes, unknown, payload);
    let (_broker, brokers) = start_embedded_broker(&config, 1);
    produce(&brokers, corpus);
    let topics: Vec<String> = InputFormat::ALL.iter().map(|f| topic_of(*f)).collect();
    let ends: Vec<i64> = topics.iter().map(|t| testkit::read_all(&brokers, t, 1).last().map_or(0, |m| m.offset() + 1)).collect();

    let metrics = format!("127.0.0.1:{}", free_port());
    let mut daemon = start_daemon(&config, "daemon", &brokers, &metrics);
    wait_ready(&mut daemon, &metrics, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let committed: Vec<i64> =
            topics.iter().map(|t| common::metric(&metrics, "sessionflow_input_committed_offset", &format!("partition=\"0\",topic=\"{t}\"")) as i64).collect();
        if committed == ends {
            break;
        }
        assert!(Instant::now() < deadline && !daemon.exited(), "not finished: {committed:?} of {ends:?}\n{}", daemon.tail());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(daemon.terminate().success(), "graceful shutdown\n{}", daemon.tail());

    let mut texts = Vec::new();
    let mut tombstones = Vec::new();
    let mut after_erasure = Vec::new();
    let group_topics = [
        sessionflow_kafka::TopicsSection::changelog(GROUP),
        sessionflow_kafka::TopicsSection::instances(GROUP),
        "cc.sessions.timeline".into(),
        "cc.sessions.metadata".into(),
        "cc.events.dlq".into(),
    ];
    for topic in &group_topics {
        let records = topic_records(&brokers, topic);
        assert!(!records.is_empty(), "{topic} is empty");
        let mut erased = false;
        for record in records {
            if record.key == corpus.erased_session {
                if topic == "cc.sessions.metadata" && record.tombstone {
                    tombstones.push(record.key.clone());
                    erased = true;
                } else if erased {
                    after_erasure.push(record.place.clone());
                }
            }
            texts.push((record.place, record.text));
        }
    }
    texts.extend(store_texts(&dir.join("state")));
    texts.extend(file_texts(&dir.join("state")));
    texts.push(("the daemon's log".into(), std::fs::read_to_string(&daemon.log).unwrap()));
    Written { texts, tombstones, after_erasure }
}

/// Every place a seed (or its unkeyed SHA-256) appears.
fn leaks<'a>(written: &Written, corpus: &'a PrivacyCorpus, carriers: Option<SeedCarrier>) -> Vec<(&'a str, String)> {
    let mut found = Vec::new();
    for seed in corpus.seeds.iter().filter(|s| carriers.is_none_or(|c| s.carrier == c)) {
        let unkeyed = hex::encode(Sha256::digest(seed.value.as_bytes()));
        for (place, text) in &written.texts {
            if text.contains(&seed.value) || text.contains(&unkeyed) {
                found.push((seed.place.as_str(), format!("{} in {place}", seed.value)));
            }
        }
    }
    found
}

#[test]
fn no_seeded_value_leaves_the_daemon_when_every_class_is_hashed_or_dropped() {
    let corpus = privacy_corpus();
    for (action, unknown, payload) in [("hash", "hash", "redact"), ("drop", "drop", "drop")] {
        let dir = tempfile::tempdir().unwrap();
        let written = run_daemon(dir.path(), &every_class(action), unknown, payload, &corpus);
        let found = leaks(&written, &corpus, None);
        assert!(found.is_empty(), "{action}: {} leaks, first ones: {:#?}", found.len(), &found[..found.len().min(10)]);
        assert_eq!(written.tombstones, vec![corpus.erased_session.clone()], "{action}: the erased session's tombstone");
        assert!(written.after_erasure.is_empty(), "{action}: written after the erasure: {:?}", written.after_erasure);
    }
}

#[test]
fn the_search_finds_a_class_the_policy_keeps() {
    let corpus = privacy_corpus();
    let dir = tempfile::tempdir().unwrap();
    // Everything hashed but the free text.
    let classes = every_class("hash").replace("text = \"hash\"", "text = \"keep\"");
    let written = run_daemon(dir.path(), &classes, "hash", "redact", &corpus);
    let found = leaks(&written, &corpus, None);
    let text_seeds = corpus.seeds_of(SeedCarrier::Text).count();
    assert!(text_seeds > 3, "the corpus seeds free text");
    assert!(!found.is_empty(), "a kept class leaked nothing");
    let carrier = |place: &str| corpus.seeds.iter().find(|s| s.place == place).map(|s| s.carrier);
    assert!(found.iter().any(|(place, _)| carrier(place) == Some(SeedCarrier::Text)), "no free text found: {found:#?}");
    // What still hashes stays hidden: contact data, wherever it sits.
    let contact: Vec<_> = found.iter().filter(|(place, _)| carrier(place) == Some(SeedCarrier::Contact)).collect();
    assert!(contact.is_empty(), "contact data leaked while hashed: {contact:#?}");
}
