//! The privacy policy (`outputs.md`, "Privacy"; `docs/privacy.md`): every
//! place personal data can sit in an event has a class (contact details,
//! free text, custom data, links, staff, vendor pass-through), each class
//! is kept, hashed (keyed HMAC-SHA-256, hex) or dropped, and user rules
//! over attribute paths come first. It is applied once when an event is
//! accepted, so neither outputs nor state nor changelog ever hold what the
//! policy removes; dead letters get it too ([`DeadLetterMode`]).

mod builtin;
mod dead_letter;
mod path;

pub use dead_letter::{DeadLetterMode, TreatedDeadLetter};

use crate::event::{self, Event, EventType};
use builtin::{ADAPTER_ATTRIBUTES, Builtin, Condition, Types};
use hmac::{Hmac, Mac};
use path::{Pattern, Step};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::sync::Arc;

/// What to do with a class of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldAction {
    /// Pass through unchanged.
    #[default]
    Keep,
    /// Replace every string and number in it by the hex HMAC-SHA-256 of its
    /// text under the policy key (keys, booleans and nulls stay).
    Hash,
    /// Remove it: the key from its object, the element from its array.
    Drop,
}

/// The classes of personal data. `contact` and `text` are the contract's
/// `pii.contact` and `pii.text`; the others name the carriers of data a
/// platform or a customer passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldClass {
    /// `pii.contact`: email addresses, phone numbers (ANI, callback,
    /// outbound), participant addresses, SIP destinations.
    Contact,
    /// `pii.text`: transcripts, comments, notes, summaries, free-text
    /// answers, content-card responses.
    Text,
    /// Customer-supplied structured data: `custom_data` values, virtual
    /// agent variables and data parameters, API request and response
    /// bodies, SIP headers and parameters, vendor task or contact
    /// attributes.
    Custom,
    /// Links to records about the person: CRM tickets, recordings,
    /// uploaded media.
    Link,
    /// Names and ids of the contact center's own people: agents, who added
    /// a participant, who verified.
    Staff,
    /// Vendor fields the adapters pass through unmapped (`attributes.vendor`)
    /// that no other class claims.
    Vendor,
}

impl FieldClass {
    /// Every class, in the order of the configuration.
    pub const ALL: [FieldClass; 6] = [FieldClass::Contact, FieldClass::Text, FieldClass::Custom, FieldClass::Link, FieldClass::Staff, FieldClass::Vendor];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldClass::Contact => "contact",
            FieldClass::Text => "text",
            FieldClass::Custom => "custom",
            FieldClass::Link => "link",
            FieldClass::Staff => "staff",
            FieldClass::Vendor => "vendor",
        }
    }
}

/// A user rule (`[[privacy.rules]]`): the values at `path` get `action`,
/// or the action of `class`. Rules come before the built-in
/// classification, in order: the first rule that matches a value or one of
/// its containers decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRule {
    /// Dot-separated keys rooted at `attributes`: `attributes.sip_headers.*`,
    /// `attributes.**.ssn`. `*` is any one key or array element, `**` any
    /// number of levels (none included); an array element is also named by
    /// its index. Keys cannot contain dots.
    pub path: String,
    /// `keep`, `hash` or `drop`. Exactly one of `action` and `class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<FieldAction>,
    /// Treat the values as this class. Exactly one of `action` and `class`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<FieldClass>,
    /// Only events of these types (wire names; unknown types too, e.g.
    /// `vendor.CONTACT_RECORD`). Absent: every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
}

/// The privacy settings (`[privacy]` without the key): an action per class,
/// the rules, and the default for attributes outside the canonical model.
/// The default keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// `pii.contact`: emails, phone numbers, ANI, participant addresses, SIP
    /// destinations.
    pub contact: FieldAction,
    /// `pii.text`: transcripts, comments, notes, summaries, free-text answers.
    pub text: FieldAction,
    /// Custom data, virtual-agent variables and parameters, API bodies, SIP
    /// headers, vendor task and contact attributes.
    pub custom: FieldAction,
    /// Links: CRM tickets, recordings, uploaded media.
    pub link: FieldAction,
    /// Agent names and ids, who added a participant, who verified.
    pub staff: FieldAction,
    /// Unmapped vendor fields (`attributes.vendor`) no other class claims.
    pub vendor: FieldAction,
    /// Top-level attributes the canonical model does not list for the
    /// event's type (nor the adapters add), on no rule: `keep` (the
    /// default), `hash` or `drop`.
    pub unknown_attributes: FieldAction,
    /// User rules, before the built-in classification; first match wins.
    pub rules: Vec<PrivacyRule>,
}

impl PrivacySettings {
    /// The action of a class.
    pub fn action(&self, class: FieldClass) -> FieldAction {
        match class {
            FieldClass::Contact => self.contact,
            FieldClass::Text => self.text,
            FieldClass::Custom => self.custom,
            FieldClass::Link => self.link,
            FieldClass::Staff => self.staff,
            FieldClass::Vendor => self.vendor,
        }
    }

    /// Sets every class to `action`.
    pub fn all_classes(action: FieldAction) -> Self {
        PrivacySettings { contact: action, text: action, custom: action, link: action, staff: action, vendor: action, ..PrivacySettings::default() }
    }
}

/// Privacy settings that cannot be used; the configuration names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A rule's path does not parse.
    #[error("privacy.rules[{index}].path {path:?} {problem}")]
    InvalidPath {
        /// The rule's index in `rules` (from 0).
        index: usize,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A rule is not usable otherwise.
    #[error("privacy.rules[{index}] {problem}")]
    InvalidRule {
        /// The rule's index in `rules` (from 0).
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// Something hashes and there is no key.
    #[error("privacy.hmac_key is empty while {what} is set to hash")]
    MissingHmacKey {
        /// What hashes: `privacy.contact`, `privacy.rules[2]`, …
        what: String,
    },
}

/// Where a decision comes from: a rule's place in the combined list, or
/// the unknown-attribute default (after every rule).
type Priority = u32;
const UNKNOWN_DEFAULT: Priority = Priority::MAX;

/// A decision for a value and what it inherits: the rule's priority and
/// action. `None`: no rule, keep.
type Governing = Option<(Priority, FieldAction)>;

/// The event types a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TypeFilter {
    All,
    Only(Vec<EventType>),
}

impl TypeFilter {
    fn admits(&self, t: &EventType) -> bool {
        match self {
            TypeFilter::All => true,
            TypeFilter::Only(types) => types.contains(t),
        }
    }
}

/// A rule ready to match: user rules first, then the built-in ones.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: Pattern,
    action: FieldAction,
    types: TypeFilter,
    condition: Option<Condition>,
}

impl Rule {
    fn holds(&self, parent: Option<&Map<String, Value>>) -> bool {
        match &self.condition {
            None => true,
            Some(Condition::SiblingIn(key, values)) => {
                parent.and_then(|p| p.get(*key)).and_then(Value::as_str).is_some_and(|v| values.iter().any(|x| x.eq_ignore_ascii_case(v)))
            }
        }
    }
}

/// What the policy does to the events of one type.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TypePlan {
    /// The rules that apply, by priority.
    rules: Vec<Priority>,
    /// Whether anything can change: a rule that does not keep, or a
    /// default for unknown attributes that does not.
    may_change: bool,
    /// Quoted top-level keys one of which must be in the attributes' text
    /// for anything to change; `None`: look at every event.
    anchors: Option<Vec<String>>,
    /// Every attribute is part of the model (`custom_data.received`, …).
    any_keys: bool,
    /// The attributes the model lists for the type.
    known: Vec<&'static str>,
}

impl TypePlan {
    fn is_known(&self, key: &str) -> bool {
        self.any_keys || self.known.contains(&key) || ADAPTER_ATTRIBUTES.contains(&key)
    }
}

/// The policy's rules, compiled once.
#[derive(Debug, PartialEq, Eq)]
struct Compiled {
    rules: Vec<Rule>,
    unknown: FieldAction,
    /// Nothing is ever changed: `apply` returns at once.
    keep_all: bool,
    /// The plans of the contract's types, in the order of `EventType::KNOWN`.
    known_plans: Vec<TypePlan>,
    /// The plan of every type the contract does not name, when no rule
    /// names one of them (else each is planned when it comes).
    other_plan: Option<TypePlan>,
}

impl Compiled {
    fn new(settings: &PrivacySettings) -> Result<Compiled, PolicyError> {
        let mut rules = Vec::with_capacity(settings.rules.len() + 64);
        for (index, rule) in settings.rules.iter().enumerate() {
            let pattern = Pattern::parse(&rule.path).map_err(|problem| PolicyError::InvalidPath { index, path: rule.path.clone(), problem })?;
            let action = match (rule.action, rule.class) {
                (Some(action), None) => action,
                (None, Some(class)) => settings.action(class),
                (Some(_), Some(_)) => return Err(PolicyError::InvalidRule { index, problem: "has both `action` and `class`: give one".to_owned() }),
                (None, None) => {
                    return Err(PolicyError::InvalidRule { index, problem: "has neither `action` (keep, hash, drop) nor `class`: give one".to_owned() });
                }
            };
            let types = match &rule.event_types {
                None => TypeFilter::All,
                Some(names) if names.is_empty() => {
                    return Err(PolicyError::InvalidRule { index, problem: "has an empty `event_types`: leave it out to match every type".to_owned() });
                }
                Some(names) => {
                    if let Some(at) = names.iter().position(|n| n.trim().is_empty()) {
                        return Err(PolicyError::InvalidRule { index, problem: format!("has an empty name in `event_types` (at {at})") });
                    }
                    TypeFilter::Only(names.iter().map(|n| EventType::parse(n)).collect())
                }
            };
            rules.push(Rule { pattern, action, types, condition: None });
        }
        for Builtin { types, pattern, class, condition } in builtin::builtins() {
            let types = match types {
                Types::All => TypeFilter::All,
                Types::Only(types) => TypeFilter::Only(types.to_vec()),
            };
            rules.push(Rule { pattern, action: settings.action(class), types, condition });
        }
        let unknown = settings.unknown_attributes;
        let keep_all = unknown == FieldAction::Keep && rules.iter().all(|r| r.action == FieldAction::Keep);
        let mut compiled = Compiled { rules, unknown, keep_all, known_plans: Vec::new(), other_plan: None };
        if !keep_all {
            compiled.known_plans = EventType::KNOWN.iter().map(|t| compiled.plan(t)).collect();
            let names_other =
                compiled.rules.iter().any(|r| matches!(&r.types, TypeFilter::Only(types) if types.iter().any(|t| matches!(t, EventType::Other(_)))));
            if !names_other {
                compiled.other_plan = Some(compiled.plan(&EventType::Other(String::new())));
            }
        }
        Ok(compiled)
    }

    fn plan(&self, t: &EventType) -> TypePlan {
        let rules: Vec<Priority> = (0..self.rules.len()).filter(|&i| self.rules[i].types.admits(t)).map(|i| i as Priority).collect();
        let changing = || rules.iter().map(|&i| &self.rules[i as usize]).filter(|r| r.action != FieldAction::Keep);
        let may_change = self.unknown != FieldAction::Keep || changing().next().is_some();
        // serde_json writes these keys as they are, so their quoted form is
        // in the attributes' text exactly when the key is (or a value
        // spells it: that only costs a look).
        fn plain(k: &str) -> bool {
            !k.chars().any(|c| c == '"' || c == '\\' || c.is_control())
        }
        let anchors = if self.unknown != FieldAction::Keep {
            None
        } else {
            changing().map(|r| r.pattern.first_key().filter(|k| plain(k)).map(|k| format!("\"{k}\""))).collect::<Option<Vec<String>>>()
        };
        TypePlan { rules, may_change, anchors, any_keys: event::accepts_any_attributes(t), known: event::known_attribute_names(t).collect() }
    }

    fn plan_for(&self, t: &EventType) -> std::borrow::Cow<'_, TypePlan> {
        match EventType::KNOWN.iter().position(|k| k == t) {
            Some(i) => std::borrow::Cow::Borrowed(&self.known_plans[i]),
            None => match &self.other_plan {
                Some(plan) => std::borrow::Cow::Borrowed(plan),
                None => std::borrow::Cow::Owned(self.plan(t)),
            },
        }
    }
}

/// Per-class actions, rules and the HMAC key, compiled: build it with
/// [`PrivacyPolicy::new`]. The default keeps everything.
#[derive(Clone)]
pub struct PrivacyPolicy {
    settings: PrivacySettings,
    hmac_key: Vec<u8>,
    /// HMAC-SHA-256 keyed with `hmac_key`, nothing hashed yet: cloned per
    /// value, so the key's pads are set up once, not for every value.
    keyed: Hmac<Sha256>,
    compiled: Arc<Compiled>,
}

impl Default for PrivacyPolicy {
    fn default() -> Self {
        PrivacyPolicy::new(PrivacySettings::default(), b"").expect("the default settings are valid")
    }
}

impl PartialEq for PrivacyPolicy {
    fn eq(&self, other: &Self) -> bool {
        // The compiled form follows from the settings.
        self.settings == other.settings && self.hmac_key == other.hmac_key
    }
}

impl Eq for PrivacyPolicy {}

impl std::fmt::Debug for PrivacyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyPolicy").field("settings", &self.settings).field("hmac_key", &"<redacted>").finish()
    }
}

/// What a walk did: whether it changed anything (an event whose
/// attributes it did not change keeps their text), and, for the dead-letter
/// detail scrub, the text of each string or number it hashed or dropped.
#[derive(Debug, Default)]
struct Tally<'r> {
    changed: bool,
    removed: Option<&'r mut Vec<String>>,
}

fn record_leaves(value: &Value, tally: &mut Tally<'_>) {
    tally.changed = true;
    let Some(out) = tally.removed.as_deref_mut() else { return };
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            Value::Bool(_) | Value::Null => {}
        }
    }
}

impl PrivacyPolicy {
    /// Compiles the settings with the key for `hash` (HMAC-SHA-256; any
    /// length, empty when nothing hashes). Errors name the setting.
    pub fn new(settings: PrivacySettings, hmac_key: &[u8]) -> Result<PrivacyPolicy, PolicyError> {
        let compiled = Compiled::new(&settings)?;
        if hmac_key.is_empty() {
            let class = FieldClass::ALL.iter().find(|c| settings.action(**c) == FieldAction::Hash).map(|c| format!("privacy.{}", c.as_str()));
            let unknown = (settings.unknown_attributes == FieldAction::Hash).then(|| "privacy.unknown_attributes".to_owned());
            let rule = settings.rules.iter().position(|r| r.action == Some(FieldAction::Hash)).map(|i| format!("privacy.rules[{i}]"));
            if let Some(what) = class.or(unknown).or(rule) {
                return Err(PolicyError::MissingHmacKey { what });
            }
        }
        // HMAC accepts keys of any length, so this cannot fail.
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(hmac_key).expect("HMAC takes any key length");
        Ok(PrivacyPolicy { settings, hmac_key: hmac_key.to_vec(), keyed, compiled: Arc::new(compiled) })
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &PrivacySettings {
        &self.settings
    }

    /// Whether a key is set (hashing is possible).
    pub fn has_hmac_key(&self) -> bool {
        !self.hmac_key.is_empty()
    }

    /// Whether every class is kept and no rule changes anything (the
    /// default), so events pass untouched.
    pub fn is_keep_all(&self) -> bool {
        self.compiled.keep_all
    }

    /// The action of a class.
    pub fn action(&self, class: FieldClass) -> FieldAction {
        self.settings.action(class)
    }

    /// The hex HMAC-SHA-256 of `text` under the policy key.
    pub fn hash(&self, text: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Hashes every string and number of `value`, in place.
    fn hash_leaves(&self, value: &mut Value, tally: &mut Tally<'_>) {
        tally.changed = true;
        match value {
            Value::String(s) => {
                if let Some(out) = tally.removed.as_deref_mut() {
                    out.push(s.clone());
                }
                *s = self.hash(s);
            }
            Value::Number(n) => {
                let text = n.to_string();
                let hashed = self.hash(&text);
                if let Some(out) = tally.removed.as_deref_mut() {
                    out.push(text);
                }
                *value = Value::String(hashed);
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.hash_leaves(v, tally)),
            Value::Object(map) => map.values_mut().for_each(|v| self.hash_leaves(v, tally)),
            Value::Bool(_) | Value::Null => {}
        }
    }

    /// Applies the policy to an event's attributes in place.
    pub fn apply(&self, event: &mut Event) {
        if self.compiled.keep_all {
            return;
        }
        let plan = self.compiled.plan_for(&event.event_type);
        if !plan.may_change {
            return;
        }
        // Attributes that hold no key a changing rule starts from are not
        // even parsed.
        if let Some(anchors) = &plan.anchors {
            let text = event.attributes.text();
            if !anchors.iter().any(|a| text.contains(a.as_str())) {
                return;
            }
        }
        event.attributes.update_if(|value| {
            let mut tally = Tally::default();
            if let Value::Object(map) = value {
                self.police_attributes(&plan, map, &mut tally);
            }
            tally.changed
        });
    }

    /// Applies the policy to the attributes of an event of type `t`, as
    /// [`PrivacyPolicy::apply`] does (the dead-letter redaction reads
    /// attributes it has not validated).
    fn police_attributes_of(&self, t: &EventType, map: &mut Map<String, Value>, tally: &mut Tally<'_>) {
        if self.compiled.keep_all {
            return;
        }
        let plan = self.compiled.plan_for(t);
        if plan.may_change {
            self.police_attributes(&plan, map, tally);
        }
    }

    fn police_attributes(&self, plan: &TypePlan, map: &mut Map<String, Value>, tally: &mut Tally<'_>) {
        let active: Vec<(Priority, u64)> = plan.rules.iter().map(|&i| (i, self.compiled.rules[i as usize].pattern.start())).collect();
        self.police_map(map, &active, None, Some(plan), tally);
    }

    /// The rules still alive one level down, and the first that matches
    /// there.
    fn descend(&self, active: &[(Priority, u64)], step: Step<'_>, parent: Option<&Map<String, Value>>) -> (Vec<(Priority, u64)>, Governing) {
        let mut next = Vec::new();
        let mut own = None;
        for &(i, state) in active {
            let rule = &self.compiled.rules[i as usize];
            let state = rule.pattern.step(state, step);
            if state == 0 {
                continue;
            }
            if own.is_none() && rule.pattern.accepts(state) && rule.holds(parent) {
                own = Some((i, rule.action));
            }
            next.push((i, state));
        }
        (next, own)
    }

    /// The earlier rule of two decides.
    fn first(a: Governing, b: Governing) -> Governing {
        match (a, b) {
            (Some(x), Some(y)) => Some(if y.0 < x.0 { y } else { x }),
            (x, y) => x.or(y),
        }
    }

    fn police_map(&self, map: &mut Map<String, Value>, active: &[(Priority, u64)], inherited: Governing, top: Option<&TypePlan>, tally: &mut Tally<'_>) {
        // Decisions first (conditions read siblings), then the changes.
        let parent: &Map<String, Value> = map;
        let decisions: Vec<(Vec<(Priority, u64)>, Governing)> = parent
            .keys()
            .map(|k| {
                let (next, own) = self.descend(active, Step::Key(k), Some(parent));
                let mut governing = Self::first(inherited, own);
                if let Some(plan) = top
                    && governing.is_none()
                    && !plan.is_known(k)
                {
                    governing = Some((UNKNOWN_DEFAULT, self.compiled.unknown));
                }
                (next, governing)
            })
            .collect();
        let mut decisions = decisions.into_iter();
        map.retain(|_, value| {
            let (next, governing) = decisions.next().expect("one decision per key");
            self.police_value(value, &next, governing, tally)
        });
    }

    /// Applies the decisions to one value; `false`: remove it.
    fn police_value(&self, value: &mut Value, active: &[(Priority, u64)], governing: Governing, tally: &mut Tally<'_>) -> bool {
        let action = governing.map(|g| g.1);
        if active.is_empty() || !matches!(value, Value::Object(_) | Value::Array(_)) {
            return match action {
                None | Some(FieldAction::Keep) => true,
                Some(FieldAction::Drop) => {
                    record_leaves(value, tally);
                    false
                }
                Some(FieldAction::Hash) => {
                    self.hash_leaves(value, tally);
                    true
                }
            };
        }
        match value {
            Value::Object(map) => {
                self.police_map(map, active, governing, None, tally);
                let removed = action == Some(FieldAction::Drop) && map.is_empty();
                tally.changed |= removed;
                !removed
            }
            Value::Array(items) => {
                let decisions: Vec<_> = (0..items.len()).map(|i| self.descend(active, Step::Index(i), None)).collect();
                let mut decisions = decisions.into_iter();
                items.retain_mut(|item| {
                    let (next, own) = decisions.next().expect("one decision per element");
                    self.police_value(item, &next, Self::first(governing, own), tally)
                });
                let removed = action == Some(FieldAction::Drop) && items.is_empty();
                tally.changed |= removed;
                !removed
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests;
