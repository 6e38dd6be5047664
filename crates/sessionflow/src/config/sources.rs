//! Where configuration values come from, and the keys they may set.
//!
//! Layers, each over the one before: the defaults; the TOML file, whose
//! strings may say `${VAR}`; `SESSIONFLOW_<SECTION>_<KEY>` environment
//! variables; `--set section.key=value`. A string key also reads from a
//! file: `<key>_file` in the file or in `--set`, `SESSIONFLOW_..._FILE` in
//! the environment, and `"<property>_file"` for librdkafka properties (for
//! secrets mounted as files). The keys, their types, defaults, environment
//! names and descriptions come from the config types' JSON schema
//! (schemars), so a new field is settable everywhere, and documented, at
//! once.

use super::{Config, ConfigError};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// Environment variables of the command line itself, not config keys.
const COMMAND_LINE_VARIABLES: &[&str] = &["SESSIONFLOW_CONFIG", "SESSIONFLOW_LOG_FORMAT"];

/// Keys whose values are secrets: never printed.
const SECRET_KEYS: &[&str] = &["privacy.hmac_key", "metrics.bearer_token", "metrics.basic_auth_password"];

/// The tables of librdkafka properties.
const PROPERTY_TABLES: &[&str] = &["kafka.properties", "kafka.consumer_properties", "kafka.producer_properties"];

/// What `check-config` prints instead of a secret.
pub const REDACTED: &str = "<redacted>";

/// Overrides of the file: the process environment and `--set` arguments.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Environment variables: `SESSIONFLOW_*` overrides, and any variable
    /// a `${VAR}` in the file names.
    pub vars: BTreeMap<String, String>,
    /// `section.key=value`, in order.
    pub sets: Vec<String>,
}

impl Overrides {
    /// This process's environment, and the command line's `--set`s.
    pub fn from_process(sets: Vec<String>) -> Overrides {
        Overrides { vars: std::env::vars().collect(), sets }
    }
}

/// One settable key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// `section.key`.
    pub path: String,
    /// `SESSIONFLOW_SECTION_KEY`.
    pub env: String,
    /// The type, as the reference names it.
    pub type_name: String,
    /// Set from a string as is (else the string is a TOML value).
    pub text: bool,
    pub default: Option<Json>,
    pub description: String,
    pub secret: bool,
}

/// Every key of the config file, from the types' schema, in file order.
pub fn keys() -> Vec<KeyInfo> {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).expect("a schema is JSON");
    let defs = schema.get("$defs").cloned().unwrap_or(Json::Null);
    let resolve = |node: &Json| -> Json {
        match node.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(name) => defs[name].clone(),
            None => node.clone(),
        }
    };
    let mut keys = Vec::new();
    for (section, node) in schema["properties"].as_object().into_iter().flatten() {
        let section_schema = resolve(node);
        for (field, node) in section_schema["properties"].as_object().into_iter().flatten() {
            let path = format!("{section}.{field}");
            let resolved = resolve(node);
            let (type_name, text) = type_of(&resolved, &resolve);
            let description = node.get("description").or_else(|| resolved.get("description")).and_then(Json::as_str).unwrap_or_default();
            keys.push(KeyInfo {
                env: format!("SESSIONFLOW_{}", path.replace('.', "_").to_ascii_uppercase()),
                secret: SECRET_KEYS.contains(&path.as_str()),
                default: node.get("default").cloned(),
                description: description.split_whitespace().collect::<Vec<_>>().join(" "),
                path,
                type_name,
                text,
            });
        }
    }
    keys
}

/// A key's type name, and whether a plain string sets it.
fn type_of(node: &Json, resolve: &dyn Fn(&Json) -> Json) -> (String, bool) {
    let variants = node.get("oneOf").or_else(|| node.get("anyOf")).and_then(Json::as_array);
    if let Some(variants) = variants {
        let consts: Vec<&str> = variants.iter().filter_map(|v| v.get("const").and_then(Json::as_str)).collect();
        if consts.len() == variants.len() {
            return (format!("one of {}", consts.join(", ")), true);
        }
        // Option<T> of a referenced type: T, optional.
        if let Some(inner) = variants.iter().find(|v| v.get("type") != Some(&Json::from("null"))) {
            let (name, text) = type_of(&resolve(inner), resolve);
            return (format!("{name} (optional)"), text);
        }
    }
    if let Some(values) = node.get("enum").and_then(Json::as_array) {
        let names: Vec<&str> = values.iter().filter_map(Json::as_str).collect();
        return (format!("one of {}", names.join(", ")), true);
    }
    let (types, optional): (Vec<&str>, bool) = match node.get("type") {
        Some(Json::String(t)) => (vec![t.as_str()], false),
        Some(Json::Array(ts)) => {
            let ts: Vec<&str> = ts.iter().filter_map(Json::as_str).collect();
            let optional = ts.contains(&"null");
            (ts.into_iter().filter(|t| *t != "null").collect(), optional)
        }
        _ => (vec![], false),
    };
    let (name, text) = match types.first().copied() {
        Some("string") => ("string", true),
        Some("integer") => ("integer", false),
        Some("number") => ("number", false),
        Some("boolean") => ("boolean", false),
        Some("array") => ("array", false),
        Some("object") => ("table", false),
        _ => ("value", false),
    };
    (if optional { format!("{name} (optional)") } else { name.to_owned() }, text)
}

/// The configuration the layers give, and warnings to log.
pub(super) fn resolve(text: &str, overrides: &Overrides) -> Result<(Config, Vec<String>), ConfigError> {
    let mut table: toml::Table = text.parse().map_err(|e| toml_error(text, &e, "write valid TOML (https://toml.io)"))?;
    interpolate(&mut table, "", &overrides.vars)?;
    let keys = keys();
    read_file_keys(&mut table, &keys)?;
    // The file alone first, so that its mistakes are not blamed on an override.
    Config::from_toml(&toml::to_string(&table).expect("a table prints"))?;
    let mut warnings = Vec::new();
    // Which key each override set, to name it in an error about its value.
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in overrides.vars.iter().filter(|(name, _)| name.starts_with("SESSIONFLOW_")) {
        if COMMAND_LINE_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let (key, from_file) = match keys.iter().find(|k| k.env == *name) {
            Some(key) => (key, false),
            None => match name.strip_suffix("_FILE").and_then(|stem| keys.iter().find(|k| k.env == stem && k.text)) {
                Some(key) => (key, true),
                None => {
                    warnings.push(format!("unknown environment variable {name}: no config key has that name (docs/configuration-reference.md lists them)"));
                    continue;
                }
            },
        };
        let value = if from_file { read_secret_file(name, value)? } else { value.clone() };
        set(&mut table, key, &value, name)?;
        origins.insert(key.path.clone(), name.clone());
    }
    for assignment in &overrides.sets {
        let Some((path, value)) = assignment.split_once('=') else {
            return Err(ConfigError::new(
                "--set",
                format!("{assignment:?} has no `=`"),
                "write --set section.key=value, e.g. --set kafka.brokers=kafka-1:9092",
            ));
        };
        let path = path.trim();
        let (key, value) = match keys.iter().find(|k| k.path == path) {
            Some(key) => (key, value.to_owned()),
            None => match path.strip_suffix("_file").and_then(|stem| keys.iter().find(|k| k.path == stem && k.text)) {
                Some(key) => (key, read_secret_file(path, value)?),
                None => return Err(ConfigError::new(path, "is not a config key (in --set)", "see docs/configuration-reference.md for the keys")),
            },
        };
        set(&mut table, key, &value, "--set")?;
        origins.insert(key.path.clone(), format!("--set {}", key.path));
    }
    let resolved = toml::to_string(&table).expect("a table prints");
    let config = Config::from_toml(&resolved).map_err(|mut e| {
        if let Some(origin) = origins.get(&e.key) {
            e.problem = format!("{} (set by {origin})", e.problem);
        }
        e
    })?;
    Ok((config, warnings))
}

/// Sets a key from an override's text: a string key takes it as is, any
/// other parses it as a TOML value (`30`, `true`, `["a", "b"]`, `{ k = "v" }`).
fn set(table: &mut toml::Table, key: &KeyInfo, value: &str, origin: &str) -> Result<(), ConfigError> {
    let value = if key.text {
        toml::Value::String(value.to_owned())
    } else {
        let parsed: Result<toml::Table, _> = format!("v = {value}").parse();
        match parsed.ok().and_then(|mut t| t.remove("v")) {
            Some(v) => v,
            None => {
                let shown = if key.secret { REDACTED.to_owned() } else { format!("{value:?}") };
                return Err(ConfigError::new(
                    &key.path,
                    format!("{origin} = {shown} is not a TOML {}", key.type_name),
                    "write the value as in the file: 30, true, [\"a\", \"b\"] or { name = \"value\" }",
                ));
            }
        }
    };
    let (section_name, field) = key.path.split_once('.').expect("section.key");
    let section = table.entry(section_name).or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let toml::Value::Table(section) = section else {
        return Err(ConfigError::new(section_name, "is not a table", "make it a [section]"));
    };
    section.insert(field.to_owned(), value);
    Ok(())
}

/// Replaces `${VAR}` in every string of the file by the variable's value
/// (`$${` writes a literal `${`).
fn interpolate(table: &mut toml::Table, prefix: &str, vars: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    for (name, value) in table.iter_mut() {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        interpolate_value(value, &path, vars)?;
    }
    Ok(())
}

fn interpolate_value(value: &mut toml::Value, path: &str, vars: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains('$') => *s = substitute(s, path, vars)?,
        toml::Value::Table(t) => interpolate(t, path, vars)?,
        toml::Value::Array(items) => {
            for item in items {
                interpolate_value(item, path, vars)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn substitute(text: &str, path: &str, vars: &BTreeMap<String, String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err(ConfigError::new(path, "has `${` without a closing `}`", "write ${NAME}, or $${ for a literal ${"));
            };
            let name = &tail[..end];
            let Some(value) = vars.get(name) else {
                return Err(ConfigError::new(
                    path,
                    format!("refers to ${{{name}}}, which is not set"),
                    format!("set the environment variable {name}, or change the value"),
                ));
            };
            out.push_str(value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `<key>_file` keys of the file and `--set`: the named file's content
/// becomes the key's value. Also `"<property>_file"` in the librdkafka
/// property tables.
fn read_file_keys(table: &mut toml::Table, keys: &[KeyInfo]) -> Result<(), ConfigError> {
    for (section_name, section) in table.iter_mut() {
        let toml::Value::Table(section) = section else { continue };
        let file_keys: Vec<String> = section.keys().filter(|k| k.ends_with("_file")).cloned().collect();
        for file_key in file_keys {
            let stem = file_key.strip_suffix("_file").expect("suffix").to_owned();
            let stem_path = format!("{section_name}.{stem}");
            if !keys.iter().any(|k| k.path == stem_path && k.text) {
                continue; // not a string key: the check of the file refuses it
            }
            read_into(section, &file_key, &stem, &format!("{section_name}.{file_key}"))?;
        }
        for (sub_name, sub) in section.iter_mut() {
            let path = format!("{section_name}.{sub_name}");
            if !PROPERTY_TABLES.contains(&path.as_str()) {
                continue;
            }
            let toml::Value::Table(properties) = sub else { continue };
            let file_keys: Vec<String> = properties.keys().filter(|k| k.ends_with("_file")).cloned().collect();
            for file_key in file_keys {
                let stem = file_key.strip_suffix("_file").expect("suffix").to_owned();
                read_into(properties, &file_key, &stem, &format!("{path}.{file_key}"))?;
            }
        }
    }
    Ok(())
}

fn read_into(table: &mut toml::Table, file_key: &str, stem: &str, path: &str) -> Result<(), ConfigError> {
    if table.contains_key(stem) {
        return Err(ConfigError::new(path, format!("is set together with {stem}"), format!("set either {stem} or {file_key}, not both")));
    }
    let Some(toml::Value::String(file)) = table.remove(file_key) else {
        return Err(ConfigError::new(path, "is not a string", "give the path of the file that holds the value"));
    };
    let value = read_secret_file(path, &file)?;
    table.insert(stem.to_owned(), toml::Value::String(value));
    Ok(())
}

/// A secret's file, without the line end an editor or `echo` leaves.
fn read_secret_file(key: &str, file: &str) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError::new(key, format!("cannot read {file}: {e}"), "give a readable file"))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// A TOML error as a [`ConfigError`] naming the `section.key` it is at.
pub(super) fn toml_error(text: &str, e: &toml::de::Error, fix: &str) -> ConfigError {
    let key = e.span().map(|s| key_at(text, s.start)).unwrap_or_default();
    ConfigError::new(if key.is_empty() { "(file)".to_owned() } else { key }, e.message().to_owned(), fix)
}

/// The `section.key` of the TOML text at byte `offset` (for an error).
fn key_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let line = text[line_start..line_end].trim();
    let Some((key, _)) = line.split_once('=') else {
        return line.to_owned();
    };
    let key = key.trim().trim_matches('"');
    let section =
        before[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    match section {
        Some(section) => format!("{section}.{key}"),
        None => key.to_owned(),
    }
}

/// The configuration as TOML with every secret replaced by [`REDACTED`]:
/// the secret keys, and librdkafka properties whose name says password,
/// secret or key.
pub fn redacted(config: &Config) -> toml::Table {
    let mut table = toml::Table::try_from(config).expect("the config serializes");
    for path in SECRET_KEYS {
        let (section, field) = path.split_once('.').expect("section.key");
        if let Some(value) = table.get_mut(section).and_then(|s| s.get_mut(field)) {
            *value = toml::Value::String(REDACTED.into());
        }
    }
    for path in PROPERTY_TABLES {
        let (section, field) = path.split_once('.').expect("section.key");
        if let Some(toml::Value::Table(properties)) = table.get_mut(section).and_then(|s| s.get_mut(field)) {
            for (name, value) in properties.iter_mut() {
                if sessionflow_kafka::config::is_secret_property(name) {
                    *value = toml::Value::String(REDACTED.into());
                }
            }
        }
    }
    table
}

/// The configuration reference: every key with its type, default,
/// environment variable and description, as a Markdown table.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated by `sessionflow config-reference` from the config types; a\n\
         test keeps it in step with the code. `docs/configuration.md` explains\n\
         the layers (file, `${VAR}`, environment, `--set`, `*_file`).\n\n\
         | key | type | default | environment | description |\n| --- | --- | --- | --- | --- |\n",
    );
    for key in keys() {
        let default = match &key.default {
            None | Some(Json::Null) => "(unset)".to_owned(),
            Some(Json::String(s)) if s.is_empty() => "\"\"".to_owned(),
            Some(Json::String(s)) => format!("`{s}`"),
            Some(other) => format!("`{other}`"),
        };
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!("| `{}` | {} | {} | `{}` | {} |\n", key.path, cell(&key.type_name), cell(&default), key.env, cell(&key.description)));
    }
    out
}
