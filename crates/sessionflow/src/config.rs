//! The configuration file (TOML), shared by `replay` and the daemon.
//!
//! Every key has a default; `check-config` prints the effective values.
//! Errors name the key and the fix.

mod sources;

pub use sources::{Overrides, redacted, reference_markdown};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sessionflow_codec::Encoding;
use sessionflow_codec::avro::SchemaIds;
use sessionflow_core::privacy::{DeadLetterMode, FieldAction, PolicyError, PrivacyPolicy, PrivacyRule, PrivacySettings};
use sessionflow_core::{EngineConfig, FoldRules, Millis, SessionCache};
use sessionflow_store::StoreConfig;
use std::path::Path;

/// A configuration error: the key, what is wrong, and the fix.
#[derive(Debug, thiserror::Error)]
#[error("config key `{key}`: {problem}. Fix: {fix}")]
pub struct ConfigError {
    /// Dotted key.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError { key: key.into(), problem: problem.into(), fix: fix.into() }
    }
}

/// A duration written as `500ms`, `60s`, `15m`, `24h` or `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct Duration(pub i64);

impl Duration {
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: i64 = digits.parse().map_err(|_| format!("{text:?} is not a duration"))?;
        let scale = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => return Err(format!("unknown unit {other:?} in {text:?}")),
        };
        n.checked_mul(scale).map(Duration).ok_or_else(|| format!("{text:?} is too long"))
    }

    pub fn millis(self) -> i64 {
        self.0
    }
}

impl TryFrom<String> for Duration {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Duration::parse(&s)
    }
}

impl From<Duration> for String {
    fn from(d: Duration) -> String {
        let ms = d.0;
        for (unit, scale) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if ms != 0 && ms % scale == 0 {
                return format!("{}{unit}", ms / scale);
            }
        }
        format!("{ms}ms")
    }
}

/// A point in time written in RFC 3339 (`1970-01-02T00:00:00Z`), kept as
/// milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Parses an RFC 3339 time with offset.
    pub fn parse(text: &str) -> Result<Timestamp, String> {
        Millis::parse_rfc3339(text.trim()).map(|m| Timestamp(m.0)).map_err(|_| format!("{text:?} is not an RFC 3339 time"))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl TryFrom<String> for Timestamp {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Timestamp::parse(&s)
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> String {
        Millis(t.0).to_rfc3339()
    }
}

/// `[engine]`: lifecycle timers (`lifecycle.md`, "Timers") and the bounds
/// on event times and on sessions (`lifecycle.md`, "Event time bounds",
/// "Session bounds").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Watermark lag behind the largest event time of a partition.
    pub allowed_lateness: Duration,
    /// Terminal time to the final record.
    pub finalize_after: Duration,
    /// Event-time silence after which a session expires.
    pub session_timeout: Duration,
    /// Event-time silence after which an asynchronous engagement (channel
    /// `email` or `messaging`) expires.
    pub async_session_timeout: Duration,
    /// How long a final session is kept for duplicates and revisions.
    pub retain_after_final: Duration,
    /// How long a retired session id is remembered (erased ones are kept
    /// for good).
    pub marker_retention: Duration,
    /// End-user hang-ups in self-service shorter than this are short abandons.
    pub short_abandon_threshold: Duration,
    /// Daemon only: a partition idle this long (wall clock) advances its
    /// watermark with the wall clock. `0s` turns it off.
    pub idle_advance_after: Duration,
    /// Daemon only: events further ahead of the wall clock are dead letters
    /// (`bad_timestamp`).
    pub max_future_skew: Duration,
    /// Events before this time are dead letters (`bad_timestamp`).
    pub min_event_time: Timestamp,
    /// Distinct events a session may hold; more are dead letters (`oversize`).
    pub max_events_per_session: u64,
    /// Input bytes of a session's events it may hold (`oversize` past it).
    pub max_session_bytes: u64,
    /// Entries per list of a session's metadata (`oversize` past it).
    pub max_list_entries: usize,
    /// JSON bytes of a session's `custom_data` and virtual-agent
    /// `variables` (`oversize` past it).
    pub max_custom_data_bytes: usize,
}

impl Default for EngineSection {
    fn default() -> Self {
        // The engine's own defaults for the bounds (documented there).
        let engine = EngineConfig::default();
        EngineSection {
            allowed_lateness: Duration(0),
            finalize_after: Duration(15 * 60_000),
            session_timeout: Duration(24 * 3_600_000),
            async_session_timeout: Duration(engine.async_session_timeout_ms),
            retain_after_final: Duration(24 * 3_600_000),
            marker_retention: Duration(7 * 86_400_000),
            short_abandon_threshold: Duration(5_000),
            idle_advance_after: Duration(60_000),
            max_future_skew: Duration(engine.max_future_skew_ms),
            min_event_time: Timestamp(engine.min_event_time_ms),
            max_events_per_session: engine.max_events_per_session,
            max_session_bytes: engine.max_session_bytes,
            max_list_entries: engine.max_list_entries,
            max_custom_data_bytes: engine.max_custom_data_bytes,
        }
    }
}

/// `[privacy]`: per class of personal data, `keep`, `hash` or `drop`,
/// applied once when an event is accepted (docs/privacy.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySection {
    /// `pii.contact`: emails, phone numbers, ANI, participant addresses,
    /// SIP destinations. `keep`, `hash` or `drop`.
    #[schemars(with = "String")]
    pub contact: FieldAction,
    /// `pii.text`: transcripts, comments, notes, summaries, free-text
    /// answers. `keep`, `hash` or `drop`.
    #[schemars(with = "String")]
    pub text: FieldAction,
    /// Customer data: `custom_data`, virtual-agent variables and
    /// parameters, API bodies, SIP headers, vendor task and contact
    /// attributes. `keep`, `hash` or `drop`.
    #[schemars(with = "String")]
    pub custom: FieldAction,
    /// Links: CRM tickets, recordings, uploaded media. `keep`, `hash` or
    /// `drop`.
    #[schemars(with = "String")]
    pub link: FieldAction,
    /// Staff: agent names and ids, who added a participant, who verified.
    /// `keep`, `hash` or `drop`.
    #[schemars(with = "String")]
    pub staff: FieldAction,
    /// Unmapped vendor fields (`attributes.vendor`) no other class claims.
    /// `keep`, `hash` or `drop`.
    #[schemars(with = "String")]
    pub vendor: FieldAction,
    /// Attributes the canonical model does not list for the event's type
    /// and no rule names: `keep`, `hash` or `drop`.
    #[schemars(with = "String")]
    pub unknown_attributes: FieldAction,
    /// Rules before the built-in classes, first match wins
    /// (`[[privacy.rules]]`: `path = "attributes.sip_headers.*"`, then
    /// `action = "drop"` or `class = "contact"`, optionally
    /// `event_types = [...]`).
    #[schemars(with = "Vec<std::collections::BTreeMap<String, String>>")]
    pub rules: Vec<PrivacyRule>,
    /// HMAC key for `hash`: a secret (redacted by `check-config`); set it
    /// from the environment or a file (`hmac_key_file`), not in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_key: Option<Secret>,
}

impl PrivacySection {
    fn settings(&self) -> PrivacySettings {
        PrivacySettings {
            contact: self.contact,
            text: self.text,
            custom: self.custom,
            link: self.link,
            staff: self.staff,
            vendor: self.vendor,
            unknown_attributes: self.unknown_attributes,
            rules: self.rules.clone(),
        }
    }

    /// The policy, or what is wrong with the section.
    pub fn policy(&self) -> Result<PrivacyPolicy, PolicyError> {
        PrivacyPolicy::new(self.settings(), self.hmac_key.as_deref().unwrap_or_default().as_bytes())
    }
}

/// `[dead_letter]`: what the dead-letter topic keeps of a record it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterSection {
    /// The record's value: `keep` (as received, so a fixed record can be
    /// replayed), `redact` (the privacy policy applied to what parses,
    /// the rest dropped; inspect only) or `drop` (headers only).
    #[schemars(with = "String")]
    pub payload: DeadLetterMode,
}

/// A secret config value: serialized as it is (for `check-config` to
/// replace), shown as `<redacted>` by `Debug`, so no log line or panic
/// message holds it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(sources::REDACTED)
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// `[store]`: RocksDB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Directory of the state store.
    pub path: String,
    /// RocksDB memory budget in MiB (block cache, memtables charged to it).
    pub memory_budget_mib: usize,
    /// Write RocksDB's write-ahead log and `fsync` it on every batch. The
    /// daemon otherwise runs without the log: the changelog is the durable
    /// copy of the state (docs/daemon.md).
    pub sync_writes: bool,
    /// Memory in MiB for session entries kept decoded between batches, in
    /// front of RocksDB and in addition to its budget (an estimate, split
    /// over the partitions processed). 0 turns the cache off.
    pub session_cache_mib: usize,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            path: "./sessionflow-state".into(),
            memory_budget_mib: 256,
            sync_writes: false,
            session_cache_mib: SessionCache::DEFAULT_BUDGET_BYTES >> 20,
        }
    }
}

/// `[encoding]`: record formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EncodingSection {
    /// Output encoding: `json` or `avro`. Input is recognised per record.
    #[schemars(with = "String")]
    pub output: Encoding,
    /// Schema registry ids written in Avro headers: a table of `event`,
    /// `timeline` and `metadata`.
    #[schemars(with = "std::collections::BTreeMap<String, u32>")]
    pub schema_ids: SchemaIds,
    /// Larger input values are dead letters (`oversize`).
    pub max_event_bytes: usize,
}

impl Default for EncodingSection {
    fn default() -> Self {
        EncodingSection { output: Encoding::Json, schema_ids: SchemaIds::default(), max_event_bytes: sessionflow_codec::DEFAULT_MAX_EVENT_BYTES }
    }
}

/// `[metrics]`: the HTTP port of `/metrics`, `/healthz`, `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Listen address. Loopback by default; to listen beyond the host, set
    /// `bearer_token` (or basic auth) and, on an untrusted network, TLS.
    pub addr: String,
    /// A secret `/metrics` requires as `Authorization: Bearer <token>`
    /// (Prometheus: `authorization.credentials`). `/healthz` and `/readyz`
    /// stay open for probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    /// User name of HTTP basic auth on `/metrics`, with
    /// `basic_auth_password` (instead of a bearer token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth_user: Option<String>,
    /// Password of HTTP basic auth on `/metrics`: a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth_password: Option<Secret>,
    /// PEM certificate (chain) file: serve HTTPS, with `tls_key_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_path: Option<String>,
    /// PEM private key file of `tls_cert_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_path: Option<String>,
    /// Connections served at once; further ones are closed on arrival.
    pub max_connections: usize,
    /// Bound in milliseconds on a TLS handshake and on reading a request's
    /// headers, so a slow client cannot hold a connection.
    pub request_timeout_ms: u64,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            addr: "127.0.0.1:9898".into(),
            bearer_token: None,
            basic_auth_user: None,
            basic_auth_password: None,
            tls_cert_path: None,
            tls_key_path: None,
            max_connections: sessionflow_kafka::http::DEFAULT_MAX_CONNECTIONS,
            request_timeout_ms: sessionflow_kafka::http::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
        }
    }
}

impl MetricsSection {
    /// The endpoint's settings, with `addr` (the section's, or the command
    /// line's `--metrics-addr`).
    pub fn http_settings(&self, addr: std::net::SocketAddr) -> sessionflow_kafka::http::HttpSettings {
        use sessionflow_kafka::http::{HttpAuth, TlsFiles};
        let auth = match (&self.bearer_token, &self.basic_auth_user, &self.basic_auth_password) {
            (Some(token), _, _) => Some(HttpAuth::Bearer(token.to_string())),
            (None, Some(user), Some(password)) => Some(HttpAuth::Basic { user: user.clone(), password: password.to_string() }),
            _ => None,
        };
        let tls = match (&self.tls_cert_path, &self.tls_key_path) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
            _ => None,
        };
        sessionflow_kafka::http::HttpSettings {
            addr,
            auth,
            tls,
            max_connections: self.max_connections,
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms.max(1)),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub engine: EngineSection,
    pub privacy: PrivacySection,
    pub dead_letter: DeadLetterSection,
    pub store: StoreSection,
    pub encoding: EncodingSection,
    pub kafka: sessionflow_kafka::KafkaSection,
    pub topics: sessionflow_kafka::TopicsSection,
    pub metrics: MetricsSection,
}

/// librdkafka properties sessionflow sets itself.
const MANAGED_PROPERTIES: &[&str] =
    &["group.id", "group.instance.id", "enable.auto.commit", "enable.auto.offset.store", "isolation.level", "transactional.id", "bootstrap.servers"];

impl Config {
    /// Reads a TOML file (or the defaults), then the overrides: `${VAR}`
    /// in its strings, `SESSIONFLOW_*` environment variables, `--set`,
    /// and `*_file` keys (see `sources`). Returns the warnings to log
    /// (unknown `SESSIONFLOW_*` variables).
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<(Config, Vec<String>), ConfigError> {
        let text = match path {
            None => String::new(),
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new("--config", format!("cannot read {}: {e}", path.display()), "pass an existing TOML file"))?,
        };
        let (config, warnings) = sources::resolve(&text, overrides)?;
        config.validate()?;
        Ok((config, warnings))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| sources::toml_error(text, &e, "see docs/configuration-reference.md for the keys and their types"))?;
        // `[[topics.inputs]]` alone replaces the default canonical input
        // topic rather than adding to it.
        let topics = toml::from_str::<toml::Table>(text).ok().and_then(|t| t.get("topics").and_then(|t| t.as_table()).cloned());
        if let Some(topics) = topics
            && topics.get("inputs").and_then(toml::Value::as_array).is_some_and(|inputs| !inputs.is_empty())
            && !topics.contains_key("input")
        {
            config.topics.input.clear();
        }
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.engine;
        for (key, d) in [
            ("engine.allowed_lateness", e.allowed_lateness),
            ("engine.finalize_after", e.finalize_after),
            ("engine.retain_after_final", e.retain_after_final),
            ("engine.idle_advance_after", e.idle_advance_after),
            ("engine.short_abandon_threshold", e.short_abandon_threshold),
            ("engine.max_future_skew", e.max_future_skew),
        ] {
            if d.0 < 0 {
                return Err(ConfigError::new(key, "is negative", "use a duration of zero or more"));
            }
        }
        for (key, d) in [
            ("engine.session_timeout", e.session_timeout),
            ("engine.async_session_timeout", e.async_session_timeout),
            ("engine.marker_retention", e.marker_retention),
        ] {
            if d.0 <= 0 {
                return Err(ConfigError::new(key, "must be longer than zero", "use a positive duration such as 24h"));
            }
        }
        for (key, n, example) in [
            ("engine.max_events_per_session", e.max_events_per_session, 10_000),
            ("engine.max_session_bytes", e.max_session_bytes, 524_288),
            ("engine.max_list_entries", e.max_list_entries as u64, 1_000),
            ("engine.max_custom_data_bytes", e.max_custom_data_bytes as u64, 65_536),
        ] {
            if n == 0 {
                return Err(ConfigError::new(key, "is 0: every session would be turned away", format!("use a positive bound, e.g. {example}")));
            }
        }
        match self.privacy.policy() {
            Ok(_) => {}
            Err(PolicyError::MissingHmacKey { what }) => {
                return Err(ConfigError::new(
                    "privacy.hmac_key",
                    format!("is empty while {what} is set to hash"),
                    "set SESSIONFLOW_PRIVACY_HMAC_KEY (or privacy.hmac_key) to a secret of 32 or more random bytes",
                ));
            }
            Err(PolicyError::InvalidPath { index, path, problem }) => {
                return Err(ConfigError::new(
                    format!("privacy.rules[{index}].path"),
                    format!("{path:?} {problem}"),
                    "write a dot-separated path from `attributes`, e.g. \"attributes.sip_headers.*\" (`*` one key, `**` any depth)",
                ));
            }
            Err(PolicyError::InvalidRule { index, problem }) => {
                return Err(ConfigError::new(
                    format!("privacy.rules[{index}]"),
                    problem,
                    "give a path and exactly one of `action` (keep, hash, drop) and `class` (contact, text, custom, link, staff, vendor)",
                ));
            }
        }
        if self.store.memory_budget_mib < 16 {
            return Err(ConfigError::new("store.memory_budget_mib", format!("{} MiB is too small", self.store.memory_budget_mib), "give at least 16 (MiB)"));
        }
        if self.kafka.brokers.trim().is_empty() {
            return Err(ConfigError::new("kafka.brokers", "is empty", "give bootstrap servers, e.g. \"kafka-1:9092,kafka-2:9092\""));
        }
        if self.kafka.group_id.trim().is_empty() {
            return Err(ConfigError::new("kafka.group_id", "is empty", "name the consumer group, e.g. \"sessionflow\""));
        }
        if self.topics.input.is_empty() && self.topics.inputs.is_empty() {
            return Err(ConfigError::new(
                "topics.input",
                "lists no topic (and there is no [[topics.inputs]])",
                "give the input topic(s), e.g. [\"cc.events.raw\"], or [[topics.inputs]] entries with name and format",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for topic in self.topics.input_topics() {
            if !seen.insert(topic.name.clone()) {
                return Err(ConfigError::new("topics.inputs", format!("lists {:?} twice", topic.name), "give each input topic once, with one format"));
            }
        }
        if self.kafka.commit_interval_ms == 0 || self.kafka.max_batch_records == 0 {
            return Err(ConfigError::new("kafka.commit_interval_ms", "commit interval and max_batch_records must be positive", "use e.g. 100 (ms) and 20000"));
        }
        if self.kafka.processing_threads == Some(0) {
            return Err(ConfigError::new("kafka.processing_threads", "is 0", "use 1 or more, or leave it unset for one thread per CPU core"));
        }
        for (section, props) in [
            ("properties", &self.kafka.properties),
            ("consumer_properties", &self.kafka.consumer_properties),
            ("producer_properties", &self.kafka.producer_properties),
        ] {
            if let Some(key) = props.keys().find(|k| MANAGED_PROPERTIES.contains(&k.as_str())) {
                return Err(ConfigError::new(
                    format!("kafka.{section}.{key}"),
                    "is managed by sessionflow",
                    "remove it (brokers: kafka.brokers; group: kafka.group_id; instance (group.instance.id, transactional.id): kafka.instance_id; delivery: kafka.delivery)",
                ));
            }
        }
        self.validate_assignment()?;
        if self.metrics.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new("metrics.addr", format!("{:?} is not an address", self.metrics.addr), "use host:port, e.g. 127.0.0.1:9898"));
        }
        self.validate_metrics()?;
        if self.encoding.max_event_bytes < 1024 {
            return Err(ConfigError::new("encoding.max_event_bytes", "is below 1024", "give the largest event value to accept, e.g. 524288"));
        }
        Ok(())
    }

    /// Only the range assignor of the classic group protocol keeps each
    /// task (partition p of every input topic and of the repartition topic)
    /// on one instance; any other would split a session's state.
    fn validate_assignment(&self) -> Result<(), ConfigError> {
        let assignor = sessionflow_kafka::clients::ASSIGNOR;
        for (section, props) in [("properties", &self.kafka.properties), ("consumer_properties", &self.kafka.consumer_properties)] {
            for (key, allowed) in [("partition.assignment.strategy", assignor), ("group.protocol", "classic")] {
                if let Some(value) = props.get(key).filter(|v| v.trim() != allowed) {
                    return Err(ConfigError::new(
                        format!("kafka.{section}.{key}"),
                        format!("is {value:?}, which may give partition p of one topic and of another to two instances and split a task's state"),
                        format!("remove it: sessionflow uses {key} = {allowed:?}, the one that keeps each task on one instance"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_metrics(&self) -> Result<(), ConfigError> {
        let m = &self.metrics;
        let empty = |secret: &Option<Secret>| secret.as_deref().is_some_and(str::is_empty);
        if empty(&m.bearer_token) || empty(&m.basic_auth_password) {
            let key = if empty(&m.bearer_token) { "metrics.bearer_token" } else { "metrics.basic_auth_password" };
            return Err(ConfigError::new(key, "is empty", "set a secret of 32 or more random characters, or remove the key"));
        }
        if m.bearer_token.is_some() && (m.basic_auth_user.is_some() || m.basic_auth_password.is_some()) {
            return Err(ConfigError::new(
                "metrics.bearer_token",
                "is set together with basic auth",
                "choose one: a bearer token, or basic_auth_user and basic_auth_password",
            ));
        }
        if m.basic_auth_user.is_some() != m.basic_auth_password.is_some() {
            let missing = if m.basic_auth_user.is_some() { "metrics.basic_auth_password" } else { "metrics.basic_auth_user" };
            return Err(ConfigError::new(missing, "is missing: basic auth needs a user and a password", "set both, or neither"));
        }
        if m.tls_cert_path.is_some() != m.tls_key_path.is_some() {
            let missing = if m.tls_cert_path.is_some() { "metrics.tls_key_path" } else { "metrics.tls_cert_path" };
            return Err(ConfigError::new(missing, "is missing: TLS needs a certificate and its key", "set both PEM files, or neither"));
        }
        for (key, path) in [("metrics.tls_cert_path", &m.tls_cert_path), ("metrics.tls_key_path", &m.tls_key_path)] {
            if let Some(path) = path
                && let Err(e) = std::fs::metadata(path)
            {
                return Err(ConfigError::new(key, format!("{path}: {e}"), "point it at a readable PEM file"));
            }
        }
        if m.max_connections == 0 {
            return Err(ConfigError::new("metrics.max_connections", "is 0", "allow at least 1 (default 32)"));
        }
        Ok(())
    }

    /// Whether `/metrics` listens beyond this host without auth: worth a
    /// warning at start, not a refusal (a private network may be enough).
    pub fn metrics_exposed_without_auth(&self, addr: &str) -> bool {
        let loopback = addr.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
        !loopback && self.metrics.bearer_token.is_none() && self.metrics.basic_auth_user.is_none()
    }

    /// The engine settings.
    pub fn engine_config(&self) -> EngineConfig {
        let e = &self.engine;
        EngineConfig {
            rules: FoldRules { short_abandon_threshold_ms: e.short_abandon_threshold.millis() },
            // `load` has validated the section; an invalid one that got
            // here anyway fails closed: everything personal dropped.
            privacy: self.privacy.policy().unwrap_or_else(|_| {
                let drop_all = PrivacySettings { unknown_attributes: FieldAction::Drop, ..PrivacySettings::all_classes(FieldAction::Drop) };
                PrivacyPolicy::new(drop_all, &[]).expect("dropping needs no key")
            }),
            dead_letter_payload: self.dead_letter.payload,
            allowed_lateness_ms: e.allowed_lateness.millis(),
            finalize_after_ms: e.finalize_after.millis(),
            session_timeout_ms: e.session_timeout.millis(),
            async_session_timeout_ms: e.async_session_timeout.millis(),
            retain_after_final_ms: e.retain_after_final.millis(),
            marker_retention_ms: e.marker_retention.millis(),
            max_future_skew_ms: e.max_future_skew.millis(),
            min_event_time_ms: e.min_event_time.millis(),
            max_events_per_session: e.max_events_per_session,
            max_session_bytes: e.max_session_bytes,
            max_list_entries: e.max_list_entries,
            max_custom_data_bytes: e.max_custom_data_bytes,
        }
    }

    /// The daemon settings.
    pub fn daemon_config(&self) -> sessionflow_kafka::DaemonConfig {
        sessionflow_kafka::DaemonConfig {
            kafka: self.kafka.clone(),
            topics: self.topics.clone(),
            idle_advance_after_ms: self.engine.idle_advance_after.millis(),
            session_cache_bytes: self.session_cache_bytes(),
        }
    }

    /// The codec of the configured encodings.
    pub fn codec(&self) -> anyhow::Result<sessionflow_codec::Codec> {
        Ok(sessionflow_codec::Codec::new(self.encoding.output, self.encoding.schema_ids, self.encoding.max_event_bytes)?)
    }

    /// The session cache's budget in bytes.
    pub fn session_cache_bytes(&self) -> usize {
        self.store.session_cache_mib << 20
    }

    /// The store settings of the offline replay (no changelog: RocksDB's
    /// write-ahead log keeps its state across crashes).
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig { memory_budget_bytes: self.store.memory_budget_mib << 20, sync_writes: self.store.sync_writes, ..StoreConfig::default() }
    }

    /// The store settings of the daemon: the changelog is the durable copy
    /// of the state, so RocksDB's write-ahead log is off (as Kafka Streams
    /// runs its stores) unless `store.sync_writes` asks for local durability.
    pub fn daemon_store_config(&self) -> StoreConfig {
        StoreConfig { write_ahead_log: false, ..self.store_config() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The file `text` under the environment `vars` and the `--set`s `sets`.
    fn layered(text: &str, vars: &[(&str, &str)], sets: &[&str]) -> Result<Config, ConfigError> {
        let overrides =
            Overrides { vars: vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(), sets: sets.iter().map(|s| (*s).to_owned()).collect() };
        sources::resolve(text, &overrides).map(|(config, _)| config)
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Duration::parse("15m").unwrap(), Duration(900_000));
        assert_eq!(Duration::parse("500ms").unwrap(), Duration(500));
        assert_eq!(String::from(Duration(86_400_000)), "1d");
        assert!(Duration::parse("soon").is_err());
        assert!(Duration::parse("5 parsecs").is_err());
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let err = Config::from_toml("[engine]\nfinalize_after = \"5 parsecs\"\n").unwrap_err();
        assert!(err.to_string().contains("finalize_after"), "{err}");
        let err = Config::from_toml("[engine]\nfinalise_after = \"5m\"\n").unwrap_err();
        assert!(err.to_string().contains("finalise_after"), "{err}");
        let mut config = Config::default();
        config.privacy.contact = FieldAction::Hash;
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, "privacy.hmac_key");
        assert!(err.fix.contains("SESSIONFLOW_PRIVACY_HMAC_KEY"));
        let err = layered("", &[("SESSIONFLOW_PRIVACY_TEXT", "shred")], &[]).unwrap_err();
        assert_eq!(err.key, "privacy.text");
        assert!(err.problem.contains("SESSIONFLOW_PRIVACY_TEXT"), "{err}");
        let err = Config::from_toml("[kafka.properties]\n\"enable.auto.commit\" = \"true\"\n").unwrap().validate().unwrap_err();
        assert_eq!(err.key, "kafka.properties.enable.auto.commit");
        let config = Config::from_toml("[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n").unwrap();
        config.validate().unwrap();
        assert_eq!(config.kafka.properties["security.protocol"], "SASL_SSL");
        let err =
            Config::from_toml("[kafka.consumer_properties]\n\"partition.assignment.strategy\" = \"cooperative-sticky\"\n").unwrap().validate().unwrap_err();
        assert_eq!(err.key, "kafka.consumer_properties.partition.assignment.strategy");
        assert!(err.fix.contains("\"range\""), "{err}");
        let err = Config::from_toml("[kafka.properties]\n\"group.protocol\" = \"consumer\"\n").unwrap().validate().unwrap_err();
        assert_eq!(err.key, "kafka.properties.group.protocol");
        Config::from_toml("[kafka.consumer_properties]\n\"partition.assignment.strategy\" = \"range\"\n").unwrap().validate().unwrap();
        let err = Config::from_toml("[kafka]\nprocessing_threads = 0\n").unwrap().validate().unwrap_err();
        assert_eq!(err.key, "kafka.processing_threads");
        let config = Config::from_toml("[kafka]\nprocessing_threads = 3\n").unwrap();
        config.validate().unwrap();
        assert_eq!(config.kafka.processing_threads(), 3);
    }

    #[test]
    fn the_engine_bounds_parse_validate_and_reach_the_engine() {
        let config = Config::from_toml(
            "[engine]\nmax_future_skew = \"30m\"\nmin_event_time = \"2000-01-01T00:00:00Z\"\nmax_events_per_session = 50\nmax_list_entries = 7\n",
        )
        .unwrap();
        config.validate().unwrap();
        let engine = config.engine_config();
        assert_eq!((engine.max_future_skew_ms, engine.min_event_time_ms), (1_800_000, 946_684_800_000));
        assert_eq!((engine.max_events_per_session, engine.max_list_entries), (50, 7));
        assert_eq!(Config::default().engine_config(), EngineConfig::default(), "the defaults are the engine's");
        let config = layered("", &[("SESSIONFLOW_ENGINE_MAX_SESSION_BYTES", "1000")], &[]).unwrap();
        assert_eq!(config.engine_config().max_session_bytes, 1000);
        let err = layered("", &[("SESSIONFLOW_ENGINE_MIN_EVENT_TIME", "yesterday")], &[]).unwrap_err();
        assert_eq!(err.key, "engine.min_event_time");
        let err = Config::from_toml("[engine]\nmax_list_entries = 0\n").unwrap().validate().unwrap_err();
        assert_eq!(err.key, "engine.max_list_entries");
        assert!(Config::from_toml("[engine]\nmin_event_time = \"0\"\n").is_err());
    }

    #[test]
    fn env_overrides_the_file() {
        let file = "[engine]\nfinalize_after = \"5m\"\n";
        let config = layered(file, &[("SESSIONFLOW_ENGINE_FINALIZE_AFTER", "1m")], &[]).unwrap();
        assert_eq!(config.engine.finalize_after, Duration(60_000));
        // --set over the environment over the file.
        let config = layered(file, &[("SESSIONFLOW_ENGINE_FINALIZE_AFTER", "1m")], &["engine.finalize_after=2m"]).unwrap();
        assert_eq!(config.engine.finalize_after, Duration(120_000));
    }

    #[test]
    fn the_session_cache_budget_reaches_the_pipeline() {
        let file = "[store]\nsession_cache_mib = 32\n";
        assert_eq!(Config::from_toml(file).unwrap().daemon_config().session_cache_bytes, 32 << 20);
        let config = layered(file, &[("SESSIONFLOW_STORE_SESSION_CACHE_MIB", "0")], &[]).unwrap();
        assert_eq!(config.daemon_config().session_cache_bytes, 0, "0 turns it off");
        let err = layered(file, &[("SESSIONFLOW_STORE_SESSION_CACHE_MIB", "lots")], &[]).unwrap_err();
        assert_eq!(err.key, "store.session_cache_mib");
    }

    #[test]
    fn every_key_is_settable_from_the_environment_and_named_in_the_reference() {
        let keys = sources::keys();
        for path in ["kafka.instance_id", "privacy.hmac_key", "kafka.processing_threads", "topics.inputs", "kafka.properties", "engine.finalize_after"] {
            assert!(keys.iter().any(|k| k.path == path), "{path} is not among the keys");
        }
        // Each key set from the environment to its default's text gives the defaults.
        for key in keys.iter().filter(|k| k.default.as_ref().is_some_and(|d| !d.is_null())) {
            let default = key.default.clone().expect("filtered");
            let text = match &default {
                serde_json::Value::String(s) if key.text => s.clone(),
                other => toml::Value::try_from(other).expect("TOML value").to_string(),
            };
            let config = layered("", &[(&key.env, &text)], &[]).unwrap_or_else(|e| panic!("{}={text}: {e}", key.env));
            assert_eq!(config, Config::default(), "{} = {text}", key.env);
        }
        let config = layered(
            "",
            &[
                ("SESSIONFLOW_KAFKA_INSTANCE_ID", "host-7"),
                ("SESSIONFLOW_KAFKA_COMMIT_INTERVAL_MS", "250"),
                ("SESSIONFLOW_KAFKA_PROPERTIES", r#"{ "security.protocol" = "SSL" }"#),
                ("SESSIONFLOW_TOPICS_INPUT", r#"["a", "b"]"#),
                ("SESSIONFLOW_KAFKA_DELIVERY", "at_least_once"),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(config.kafka.instance_id.as_deref(), Some("host-7"));
        assert_eq!(config.kafka.commit_interval_ms, 250);
        assert_eq!(config.kafka.properties["security.protocol"], "SSL");
        assert_eq!(config.topics.input, ["a", "b"]);
        assert_eq!(config.kafka.delivery, sessionflow_kafka::Delivery::AtLeastOnce);
        let err = layered("", &[("SESSIONFLOW_KAFKA_COMMIT_INTERVAL_MS", "soon")], &[]).unwrap_err();
        assert_eq!(err.key, "kafka.commit_interval_ms");
        assert!(err.problem.contains("SESSIONFLOW_KAFKA_COMMIT_INTERVAL_MS"), "{err}");

        let reference = std::fs::read_to_string(format!(
            "{}/../../docs/configuration-reference.md",
            std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
        ))
        .unwrap_or_default();
        assert!(
            reference == reference_markdown(),
            "docs/configuration-reference.md is out of date: run `cargo run --release -- config-reference > docs/configuration-reference.md`"
        );
    }

    #[test]
    fn unknown_variables_warn_and_set_errors_name_the_key() {
        let overrides = Overrides {
            vars: [("SESSIONFLOW_KAFKA_BROKRS", "x:9092"), ("SESSIONFLOW_CONFIG", "sessionflow.toml"), ("HOME", "/")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            sets: vec![],
        };
        let (_, warnings) = sources::resolve("", &overrides).unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("SESSIONFLOW_KAFKA_BROKRS"), "{warnings:?}");
        assert_eq!(layered("", &[], &["kafka.brokrs=x"]).unwrap_err().key, "kafka.brokrs");
        assert_eq!(layered("", &[], &["kafka.brokers"]).unwrap_err().key, "--set");
        assert_eq!(layered("", &[], &["kafka.brokers=k1:9092,k2:9092"]).unwrap().kafka.brokers, "k1:9092,k2:9092");
    }

    #[test]
    fn strings_interpolate_variables_and_secrets_come_from_files() {
        let file = "[kafka]\nbrokers = \"${BROKERS}\"\ngroup_id = \"cost-$${literal}\"\n";
        let config = layered(file, &[("BROKERS", "k1:9092")], &[]).unwrap();
        assert_eq!((config.kafka.brokers.as_str(), config.kafka.group_id.as_str()), ("k1:9092", "cost-${literal}"));
        let err = layered(file, &[], &[]).unwrap_err();
        assert_eq!(err.key, "kafka.brokers");
        assert!(err.problem.contains("BROKERS") && err.fix.contains("BROKERS"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret-value\n").unwrap();
        let path = secret.display().to_string();
        let config = layered(&format!("[privacy]\nhmac_key_file = {path:?}\n[kafka.properties]\n\"sasl.password_file\" = {path:?}\n"), &[], &[]).unwrap();
        assert_eq!(config.privacy.hmac_key.as_deref(), Some("s3cret-value"));
        assert_eq!(config.kafka.properties["sasl.password"], "s3cret-value");
        let config = layered("", &[("SESSIONFLOW_PRIVACY_HMAC_KEY_FILE", &path)], &[]).unwrap();
        assert_eq!(config.privacy.hmac_key.as_deref(), Some("s3cret-value"));
        let config = layered("", &[], &[&format!("privacy.hmac_key_file={path}")]).unwrap();
        assert_eq!(config.privacy.hmac_key.as_deref(), Some("s3cret-value"));
        let both = format!("[privacy]\nhmac_key = \"k\"\nhmac_key_file = {path:?}\n");
        assert_eq!(layered(&both, &[], &[]).unwrap_err().key, "privacy.hmac_key_file");
        assert_eq!(layered("[privacy]\nhmac_key_file = \"/nonexistent/key\"\n", &[], &[]).unwrap_err().key, "privacy.hmac_key_file");
    }

    #[test]
    fn the_printed_configuration_holds_no_secret() {
        let config = layered(
            "[privacy]\nhmac_key = \"hmac-secret-1\"\n[kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.password\" = \"sasl-secret-2\"\n\
             \"ssl.key.password\" = \"key-secret-3\"\n\"sasl.oauthbearer.client.secret\" = \"oauth-secret-4\"\n\
             [kafka.producer_properties]\n\"ssl.key.pem\" = \"pem-secret-5\"\n",
            &[],
            &[],
        )
        .unwrap();
        let printed = toml::to_string_pretty(&redacted(&config)).unwrap();
        for secret in ["hmac-secret-1", "sasl-secret-2", "key-secret-3", "oauth-secret-4", "pem-secret-5"] {
            assert!(!printed.contains(secret), "{secret} printed:\n{printed}");
        }
        assert!(printed.contains("SASL_SSL") && printed.contains(sources::REDACTED), "{printed}");
        // Nor does any `Debug` form: of the config, or of what the daemon
        // and the engine are built from (what a log line or a panic shows).
        for debug in [format!("{config:?}"), format!("{:?}", config.daemon_config()), format!("{:?}", config.engine_config())] {
            for secret in ["hmac-secret-1", "sasl-secret-2", "key-secret-3", "oauth-secret-4", "pem-secret-5"] {
                assert!(!debug.contains(secret), "{secret} in a Debug form:\n{debug}");
            }
            assert!(debug.contains(sources::REDACTED), "{debug}");
        }
    }
}
