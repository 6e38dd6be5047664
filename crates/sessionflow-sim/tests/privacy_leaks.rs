//! The privacy policy reaches every carrier: the corpus of seeded personal
//! values (`privacy_corpus`) goes through the adapters and the processor,
//! every output is serialized (timeline, metadata, dead letters with their
//! key, value and headers, tombstones, and the state writes a changelog
//! would carry) and searched for every seeded value and its unkeyed
//! SHA-256.

use sessionflow_adapters::{Adapter, AdapterOptions, InputFormat, adapt_for_batch, adapter};
use sessionflow_core::memstore::MemState;
use sessionflow_core::{
    Batch, DeadLetterMode, DeadLetterPayload, EngineConfig, FieldAction, FieldClass, InputPosition, InputRecord, Millis, Output, PrivacyPolicy,
    PrivacySettings, Write,
};
use sessionflow_sim::privacy_corpus::{PrivacyCorpus, SeedCarrier, privacy_corpus};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

const KEY: &[u8] = b"leak-test-hmac-key";

/// What a run wrote, each piece as text with where it came from.
#[derive(Debug)]
struct Run {
    outputs: Vec<Output>,
    texts: Vec<(String, String)>,
}

fn dead_letter_text(d: &sessionflow_core::DeadLetter) -> String {
    let mut text = String::new();
    text.push_str(&String::from_utf8_lossy(d.key.as_deref().unwrap_or_default()));
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(d.value.as_deref().unwrap_or_default()));
    for (k, v) in d.headers().into_iter().chain([d.payload_header()].map(|(k, v)| (k, v.to_owned()))) {
        text.push_str(&format!("\n{k}: {v}"));
    }
    text
}

fn run(corpus: &PrivacyCorpus, config: &EngineConfig) -> Run {
    let adapters: HashMap<InputFormat, Box<dyn Adapter>> = InputFormat::ALL.iter().map(|f| (*f, adapter(*f, &AdapterOptions::default()))).collect();
    let mut state = MemState::default();
    let mut outputs = Vec::new();
    let mut texts = Vec::new();
    let chunks: Vec<_> = corpus.records.chunks(6).collect();
    let mut offset = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let Ok(mut batch) = Batch::new(config, &state, Millis(0));
        for record in *chunk {
            let events = adapt_for_batch(adapters[&record.format].as_ref(), &batch, Some(record.value.as_slice()));
            let position = InputPosition { topic: record.format.as_str().into(), partition: 0, offset };
            offset += 1;
            let results: Vec<_> = match events {
                Ok(events) => events.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            for event in results {
                let Ok(()) = batch.record(InputRecord { key: record.key.as_deref(), value: Some(record.value.as_slice()), position: position.clone(), event });
            }
        }
        if i + 1 == chunks.len() {
            let Ok(()) = batch.advance_watermark(Millis(i64::MAX));
        }
        let result = batch.finish();
        for write in &result.writes {
            match write {
                Write::PutSession(id, entry) => texts.push((format!("state: session {id}"), serde_json::to_string(entry).unwrap())),
                Write::PutEvents { session_id, events, .. } => texts.push((format!("state: events of {session_id}"), serde_json::to_string(events).unwrap())),
                _ => {}
            }
        }
        outputs.extend(result.outputs);
        state.apply(result.writes);
    }
    for output in &outputs {
        let (what, text) = match output {
            Output::Timeline(t) => (format!("timeline {} {}", t.session_id, t.event_id), serde_json::to_string(t).unwrap()),
            Output::Metadata(m) => (format!("metadata {} v{}", m.session_id, m.version), serde_json::to_string(m).unwrap()),
            Output::Tombstone(id) => (format!("tombstone {id}"), id.clone()),
            Output::DeadLetter(d) => (format!("dead letter {} ({})", d.input.offset, d.reason), dead_letter_text(d)),
        };
        texts.push((what, text));
    }
    Run { outputs, texts }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Every seeded value found, or its SHA-256: `(value, where it was seeded,
/// the output it was found in)`.
fn leaks(corpus: &PrivacyCorpus, run: &Run) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for seed in &corpus.seeds {
        let digest = sha256_hex(&seed.value);
        if let Some((what, _)) = run.texts.iter().find(|(_, text)| text.contains(&seed.value) || text.contains(&digest)) {
            found.push((seed.value.clone(), seed.place.clone(), what.clone()));
        }
    }
    found
}

fn config(settings: PrivacySettings, payload: DeadLetterMode) -> EngineConfig {
    EngineConfig { privacy: PrivacyPolicy::new(settings, KEY).unwrap(), dead_letter_payload: payload, ..EngineConfig::default() }
}

fn every_class(action: FieldAction) -> PrivacySettings {
    PrivacySettings { unknown_attributes: action, ..PrivacySettings::all_classes(action) }
}

fn dead_letters(run: &Run) -> Vec<&sessionflow_core::DeadLetter> {
    run.outputs.iter().filter_map(|o| if let Output::DeadLetter(d) = o { Some(d.as_ref()) } else { None }).collect()
}

#[test]
fn no_seeded_value_reaches_any_output_when_every_class_is_hashed_or_dropped() {
    let corpus = privacy_corpus();
    for action in [FieldAction::Hash, FieldAction::Drop] {
        for payload in [DeadLetterMode::Redact, DeadLetterMode::Drop] {
            let run = run(&corpus, &config(every_class(action), payload));
            let found = leaks(&corpus, &run);
            assert!(found.is_empty(), "{action:?} / {payload:?}: {} leaks: {found:#?}", found.len());
            // The corpus went through: every format gave timeline records, and
            // every malformed record a dead letter.
            let sources: BTreeSet<&str> = run.outputs.iter().filter_map(|o| if let Output::Timeline(t) = o { t.source.as_deref() } else { None }).collect();
            for format in InputFormat::ALL {
                let source = if format == InputFormat::Canonical { None } else { Some(format.source()) };
                if let Some(source) = source {
                    assert!(sources.contains(source), "{action:?}: no timeline record from {format}: {sources:?}");
                }
            }
            let malformed: BTreeSet<i64> = corpus.records.iter().enumerate().filter(|(_, r)| r.malformed).map(|(i, _)| i as i64).collect();
            let dead: BTreeSet<i64> = dead_letters(&run).iter().map(|d| d.input.offset).collect();
            assert_eq!(dead, malformed, "the malformed records, and only they, are dead letters");
            if payload == DeadLetterMode::Drop {
                assert!(dead_letters(&run).iter().all(|d| d.value.is_none() && d.payload == DeadLetterPayload::Dropped));
            }
        }
    }
}

#[test]
fn hashed_values_are_the_keyed_hashes_of_the_seeds() {
    let corpus = privacy_corpus();
    let config = config(every_class(FieldAction::Hash), DeadLetterMode::Redact);
    let run = run(&corpus, &config);
    let all: String = run.texts.iter().map(|(_, t)| t.as_str()).collect();
    // Hashing, not dropping: the keyed hashes of seeds in accepted events are there.
    for carrier in
        [SeedCarrier::Contact, SeedCarrier::Text, SeedCarrier::Custom, SeedCarrier::Link, SeedCarrier::Staff, SeedCarrier::Vendor, SeedCarrier::Unknown]
    {
        let hashed = corpus.seeds_of(carrier).filter(|s| all.contains(&config.privacy.hash(&s.value))).count();
        assert!(hashed > 0, "no keyed hash of a {carrier:?} seed in the outputs");
    }
    // Redacted dead letters keep what identifies the record.
    let redacted: Vec<_> = dead_letters(&run).into_iter().filter(|d| d.payload == DeadLetterPayload::Redacted).collect();
    assert!(redacted.len() >= 6, "{redacted:#?}");
    assert!(redacted.iter().any(|d| String::from_utf8_lossy(d.value.as_deref().unwrap()).contains("\"session_id\":\"pii-bad-3\"")));
    let dropped = dead_letters(&run).into_iter().filter(|d| d.payload == DeadLetterPayload::Dropped).count();
    assert!(dropped >= 3, "broken JSON, bytes that are not UTF-8, Avro and a form body are dropped");
}

/// With nothing protected, every seeded value reaches an output: each sits
/// in a carrier, and the checker sees it. (Zoom's personal fields are never
/// copied, and the erased session's late event is suppressed.)
#[test]
fn every_seed_reaches_an_output_when_nothing_is_protected() {
    let corpus = privacy_corpus();
    let run = run(&corpus, &EngineConfig::default());
    let found: BTreeSet<String> = leaks(&corpus, &run).into_iter().map(|(value, ..)| value).collect();
    for seed in &corpus.seeds {
        let expected = seed.carrier != SeedCarrier::NeverCopied && !seed.place.contains("erased session late");
        assert_eq!(found.contains(&seed.value), expected, "{seed:?}");
    }
}

/// The checker's power: leave one carrier out of the policy and it finds
/// that carrier's seeds.
#[test]
fn the_checker_finds_any_carrier_left_out() {
    let corpus = privacy_corpus();
    let carriers = [
        (FieldClass::Contact, SeedCarrier::Contact),
        (FieldClass::Text, SeedCarrier::Text),
        (FieldClass::Custom, SeedCarrier::Custom),
        (FieldClass::Link, SeedCarrier::Link),
        (FieldClass::Staff, SeedCarrier::Staff),
        (FieldClass::Vendor, SeedCarrier::Vendor),
    ];
    for (class, carrier) in carriers {
        let mut settings = every_class(FieldAction::Hash);
        match class {
            FieldClass::Contact => settings.contact = FieldAction::Keep,
            FieldClass::Text => settings.text = FieldAction::Keep,
            FieldClass::Custom => settings.custom = FieldAction::Keep,
            FieldClass::Link => settings.link = FieldAction::Keep,
            FieldClass::Staff => settings.staff = FieldAction::Keep,
            FieldClass::Vendor => settings.vendor = FieldAction::Keep,
        }
        let found = leaks(&corpus, &run(&corpus, &config(settings, DeadLetterMode::Redact)));
        let of_carrier: Vec<_> = corpus.seeds_of(carrier).map(|s| s.value.clone()).collect();
        assert!(
            !found.is_empty() && found.iter().all(|(value, ..)| of_carrier.contains(value) || is_dead_letter_seed(&corpus, value)),
            "{class:?}: {found:#?}"
        );
        assert!(found.iter().any(|(value, ..)| of_carrier.contains(value)), "{class:?} kept, yet none of its seeds found: {found:#?}");
    }
    // Unknown attributes kept.
    let settings = PrivacySettings { unknown_attributes: FieldAction::Keep, ..every_class(FieldAction::Hash) };
    let found = leaks(&corpus, &run(&corpus, &config(settings, DeadLetterMode::Redact)));
    assert!(found.iter().any(|(value, ..)| corpus.seeds_of(SeedCarrier::Unknown).any(|s| s.value == *value)), "{found:#?}");
    // Dead letters kept as they came.
    let found = leaks(&corpus, &run(&corpus, &config(every_class(FieldAction::Hash), DeadLetterMode::Keep)));
    let dead_letter_seeds: Vec<_> = corpus.seeds_of(SeedCarrier::DeadLetterOnly).map(|s| s.value.clone()).collect();
    assert_eq!(found.iter().filter(|(value, ..)| dead_letter_seeds.contains(value)).count(), dead_letter_seeds.len(), "{found:#?}");
}

/// A seed of a malformed record that the class left out protects in a
/// redacted dead letter too (the same policy as an accepted event).
fn is_dead_letter_seed(corpus: &PrivacyCorpus, value: &str) -> bool {
    corpus.seeds_of(SeedCarrier::DeadLetterOnly).any(|s| s.value == value)
}

#[test]
fn nothing_of_an_erased_session_follows_its_erasure() {
    let corpus = privacy_corpus();
    let late = corpus.seeds.iter().find(|s| s.place.contains("erased session late")).unwrap().value.clone();
    for config in [EngineConfig::default(), config(every_class(FieldAction::Hash), DeadLetterMode::Redact)] {
        let run = run(&corpus, &config);
        let erased = corpus.erased_session.as_bytes();
        let tombstone = run.outputs.iter().position(|o| matches!(o, Output::Tombstone(id) if id.as_bytes() == erased)).expect("a tombstone");
        assert!(run.outputs[tombstone + 1..].iter().all(|o| o.key() != Some(erased)), "an output of the erased session after its erasure");
        assert!(run.texts.iter().all(|(_, text)| !text.contains(&late)), "the erased session's late event was recorded");
    }
}

/// The adapters write only attributes of the canonical model (or their own,
/// `vendor`, `contact_id`, `task_sid`, `synthetic`): dropping unknown
/// attributes changes none of their events.
#[test]
fn adapters_write_no_attribute_outside_the_model() {
    let corpus = privacy_corpus();
    let vendor_attributes = |run: &Run| -> Vec<String> {
        run.outputs
            .iter()
            .filter_map(|o| if let Output::Timeline(t) = o { Some(t) } else { None })
            .filter(|t| t.source.as_deref().is_some_and(|s| s != "canonical") && t.input.topic.as_ref() != "canonical")
            .map(|t| format!("{} {}", t.event_type.as_str(), t.attributes.text()))
            .collect()
    };
    let kept = vendor_attributes(&run(&corpus, &EngineConfig::default()));
    let settings = PrivacySettings { unknown_attributes: FieldAction::Drop, ..PrivacySettings::default() };
    let dropped = vendor_attributes(&run(&corpus, &config(settings, DeadLetterMode::Keep)));
    assert!(kept.len() > 30, "{} vendor events", kept.len());
    assert_eq!(kept, dropped);
}
