//! The daemon's Kafka settings (`[kafka]` and `[topics]` of the config file).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sessionflow_adapters::{InputFormat, SessionIdentity};
use std::collections::BTreeMap;

/// Delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Kafka transactions: outputs, changelog and input offsets commit together.
    #[default]
    ExactlyOnce,
    /// For brokers without transactions: outputs flushed, then offsets
    /// committed; duplicates possible after a crash (drop them by
    /// `session_id` + `seq` / `version`).
    AtLeastOnce,
}

/// `[kafka]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSection {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group; also names the internal topics.
    pub group_id: String,
    /// This instance's stable id: the `transactional.id` suffix and
    /// `group.instance.id` (static membership). Defaults to the host name.
    pub instance_id: Option<String>,
    /// Delivery guarantee.
    pub delivery: Delivery,
    /// How often a batch is committed (the transaction interval).
    pub commit_interval_ms: u64,
    /// Most records in one batch: bounds a batch's memory when a backlog is
    /// read (otherwise the commit interval cuts it). Each batch pays a
    /// transaction and a state write per session it touches, so larger
    /// batches cost less per record.
    pub max_batch_records: usize,
    /// Threads that fold a batch's partitions in parallel (each partition on
    /// one thread at a time); unset: one per CPU core.
    pub processing_threads: Option<usize>,
    /// Partitions of the internal topics when the daemon creates them;
    /// must equal the input topic's partition count.
    pub partitions: Option<i32>,
    /// Replication factor of topics the daemon creates.
    pub replication_factor: i32,
    /// Create missing topics at start-up.
    pub create_topics: bool,
    /// Join the group as a static member (`group.instance.id` =
    /// `instance_id`): a restart within `session.timeout.ms` keeps its
    /// partitions. Off for brokers that mishandle static members (tansu
    /// 0.6 never assigns a restarted one).
    pub static_membership: bool,
    /// Partitioner used to re-key records by `session_id`; must match the
    /// one your producers use for keyed records (`murmur2_random` is the
    /// Java client's default).
    pub partitioner: String,
    /// `/healthz` answers 503 once the processing loop has neither
    /// committed a batch nor found nothing to do for this long while it
    /// holds partitions (a batch failing over and over, a hung call).
    /// One call that has not returned for this long makes `sessionflow
    /// run` exit (status 3) for a restart. 0 turns both off. Default
    /// 120,000 (2 minutes).
    pub stall_timeout_ms: u64,
    /// How long one transaction call (commit, abort, offsets) or a wait for
    /// deliveries may block before it is retried or the batch fails.
    /// Default 30,000.
    pub call_timeout_ms: u64,
    /// Any librdkafka property, passed to both consumer and producer
    /// (`security.protocol`, `ssl.*`, `sasl.*`, …).
    pub properties: ClientProperties,
    /// Consumer-only librdkafka properties.
    pub consumer_properties: ClientProperties,
    /// Producer-only librdkafka properties.
    pub producer_properties: ClientProperties,
}

/// librdkafka properties by name. Its `Debug` hides the value of every
/// property [`is_secret_property`] names, so a logged or panicking config
/// never shows a password.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct ClientProperties(pub BTreeMap<String, String>);

/// Whether a librdkafka property holds a secret: its name says password,
/// secret or key (`sasl.password`, `sasl.oauthbearer.client.secret`,
/// `ssl.key.password`, `ssl.key.pem`, …).
pub fn is_secret_property(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "key"].iter().any(|word| name.contains(word))
}

impl std::fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, if is_secret_property(k) { "<redacted>" } else { v.as_str() }))).finish()
    }
}

impl std::ops::Deref for ClientProperties {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for ClientProperties {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a ClientProperties {
    type Item = (&'a String, &'a String);
    type IntoIter = std::collections::btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for ClientProperties {
    type Item = (String, String);
    type IntoIter = std::collections::btree_map::IntoIter<String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ClientProperties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        ClientProperties(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl Default for KafkaSection {
    fn default() -> Self {
        KafkaSection {
            brokers: "localhost:9092".into(),
            group_id: "sessionflow".into(),
            instance_id: None,
            delivery: Delivery::ExactlyOnce,
            commit_interval_ms: 100,
            max_batch_records: 20_000,
            processing_threads: None,
            partitions: None,
            replication_factor: 3,
            create_topics: true,
            static_membership: true,
            partitioner: "murmur2_random".into(),
            stall_timeout_ms: 120_000,
            call_timeout_ms: 30_000,
            properties: ClientProperties::default(),
            consumer_properties: ClientProperties::default(),
            producer_properties: ClientProperties::default(),
        }
    }
}

impl KafkaSection {
    /// [`KafkaSection::call_timeout_ms`] as a duration.
    pub fn call_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.call_timeout_ms.max(1))
    }
}

/// `[topics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsSection {
    /// Input topics of canonical events.
    pub input: Vec<String>,
    /// Input topics with their format (`[[topics.inputs]]`): a vendor's
    /// native records, turned into canonical events by its adapter.
    pub inputs: Vec<InputTopic>,
    /// Timeline output.
    pub timeline: String,
    /// Metadata output (compacted).
    pub metadata: String,
    /// Dead letters.
    pub dead_letter: String,
}

impl Default for TopicsSection {
    fn default() -> Self {
        TopicsSection {
            input: vec!["cc.events.raw".into()],
            inputs: Vec::new(),
            timeline: "cc.sessions.timeline".into(),
            metadata: "cc.sessions.metadata".into(),
            dead_letter: "cc.events.dlq".into(),
        }
    }
}

/// One `[[topics.inputs]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputTopic {
    /// The topic.
    pub name: String,
    /// What its records are: `canonical` (default), `amazon-connect`,
    /// `genesys-cloud`, `twilio-taskrouter`, `zoom-contact-center`,
    /// `ccai-platform` (docs/adapters.md).
    #[serde(default, with = "format_name")]
    #[schemars(with = "String")]
    pub format: InputFormat,
    /// Where a vendor splits a contact into legs: `journey` (default: one
    /// session, transfers as `transfer.*` events) or `leg`.
    #[serde(default, with = "identity_name")]
    #[schemars(with = "String")]
    pub session_identity: SessionIdentity,
}

mod format_name {
    use sessionflow_adapters::InputFormat;

    pub fn serialize<S: serde::Serializer>(format: &InputFormat, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(format.as_str())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<InputFormat, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

mod identity_name {
    use sessionflow_adapters::SessionIdentity;

    pub fn serialize<S: serde::Serializer>(identity: &SessionIdentity, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match identity {
            SessionIdentity::Journey => "journey",
            SessionIdentity::Leg => "leg",
        })
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SessionIdentity, D::Error> {
        match <String as serde::Deserialize>::deserialize(d)?.as_str() {
            "journey" => Ok(SessionIdentity::Journey),
            "leg" => Ok(SessionIdentity::Leg),
            other => Err(serde::de::Error::custom(format!("unknown session identity {other:?}: expected \"journey\" or \"leg\""))),
        }
    }
}

impl TopicsSection {
    /// Every input topic with its format: `input`'s as canonical, then
    /// `inputs`.
    pub fn input_topics(&self) -> Vec<InputTopic> {
        let canonical =
            self.input.iter().map(|name| InputTopic { name: name.clone(), format: InputFormat::Canonical, session_identity: SessionIdentity::default() });
        canonical.chain(self.inputs.iter().cloned()).collect()
    }

    /// The names of every input topic.
    pub fn input_names(&self) -> Vec<String> {
        self.input_topics().into_iter().map(|t| t.name).collect()
    }

    /// The changelog topic of a group (compacted).
    pub fn changelog(group_id: &str) -> String {
        format!("{group_id}-sessionflow-changelog")
    }

    /// The instances topic of a group (compacted, one partition): each
    /// process claims its `kafka.instance_id` there.
    pub fn instances(group_id: &str) -> String {
        format!("{group_id}-sessionflow-instances")
    }

    /// The repartition topic of a group.
    pub fn repartition(group_id: &str) -> String {
        format!("{group_id}-sessionflow-repartition")
    }
}

/// Everything the pipeline needs from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    pub kafka: KafkaSection,
    pub topics: TopicsSection,
    /// Idle partitions advance their watermark with the wall clock after
    /// this long; 0 turns it off.
    pub idle_advance_after_ms: i64,
    /// Memory for session entries kept decoded between batches
    /// (`store.session_cache_mib`), split over the partitions processed.
    pub session_cache_bytes: usize,
}

impl KafkaSection {
    /// `processing_threads`, or the number of CPU cores when unset.
    pub fn processing_threads(&self) -> usize {
        self.processing_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get)).max(1)
    }
}

impl DaemonConfig {
    /// Instance id: configured, else the host name, else "sessionflow".
    pub fn instance_id(&self) -> String {
        self.kafka.instance_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "sessionflow".into())
        })
    }
}
