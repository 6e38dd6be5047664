//! The privacy policy (`outputs.md`, "Privacy"): per field class, keep, hash
//! (keyed HMAC-SHA-256, hex) or drop, applied once when an event is accepted,
//! so neither outputs nor state nor changelog ever hold what the policy
//! removes.

use crate::event::{Event, EventType};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// What to do with a class of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldAction {
    /// Pass through unchanged.
    #[default]
    Keep,
    /// Replace by the hex HMAC-SHA-256 of the value under the policy key.
    Hash,
    /// Remove the field.
    Drop,
}

/// The two classes of personal data of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldClass {
    /// `pii.contact`: email, phone numbers, ANI.
    Contact,
    /// `pii.text`: transcripts, comments, notes, summaries, free-text answers.
    Text,
}

/// Per-class actions and the HMAC key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PrivacyPolicy {
    /// Action for `pii.contact`.
    pub contact: FieldAction,
    /// Action for `pii.text`.
    pub text: FieldAction,
    /// Key for `hash`. Must be non-empty when an action is `hash`.
    pub hmac_key: Vec<u8>,
}

impl std::fmt::Debug for PrivacyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyPolicy").field("contact", &self.contact).field("text", &self.text).field("hmac_key", &"<redacted>").finish()
    }
}

/// Survey answer kinds whose value is free text.
const FREE_TEXT_ANSWER_KINDS: &[&str] = &["text", "comment", "free_text", "open"];

/// The personal-data attributes of each event type.
fn personal_attributes(t: &EventType) -> &'static [(&'static str, FieldClass)] {
    use FieldClass::*;
    match t {
        EventType::SessionStarted => &[("ani", Contact)],
        EventType::PhoneNumberCollected => &[("inbound", Contact), ("callback", Contact)],
        EventType::EmailCollected => &[("email", Contact)],
        EventType::TranscriptSegment => &[("text", Text)],
        EventType::RatingReceived => &[("comment", Text)],
        EventType::NoteReceived => &[("text", Text)],
        EventType::DispositionSet => &[("notes", Text)],
        EventType::AgentAssistSummary => &[("summary", Text)],
        _ => &[],
    }
}

impl PrivacyPolicy {
    /// Whether every class is kept (the default), so events pass untouched.
    pub fn is_keep_all(&self) -> bool {
        self.contact == FieldAction::Keep && self.text == FieldAction::Keep
    }

    fn action(&self, class: FieldClass) -> FieldAction {
        match class {
            FieldClass::Contact => self.contact,
            FieldClass::Text => self.text,
        }
    }

    /// The hex HMAC-SHA-256 of `text` under the policy key.
    pub fn hash(&self, text: &str) -> String {
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hmac_key).expect("HMAC takes any key length");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn apply_value(&self, action: FieldAction, value: &mut Value) -> bool {
        match action {
            FieldAction::Keep => true,
            FieldAction::Drop => false,
            FieldAction::Hash => {
                if !value.is_null() {
                    let text = match &mut *value {
                        Value::String(s) => std::mem::take(s),
                        other => other.to_string(),
                    };
                    *value = Value::String(self.hash(&text));
                }
                true
            }
        }
    }

    /// Applies the policy to an event's attributes in place.
    pub fn apply(&self, event: &mut Event) {
        if self.is_keep_all() {
            return;
        }
        let personal = personal_attributes(&event.event_type);
        let survey = event.event_type == EventType::SurveyResponse;
        // Attributes of other types are never parsed here.
        if personal.is_empty() && !survey {
            return;
        }
        event.attributes.update(|value| {
            let Some(attrs) = value.as_object_mut() else { return };
            for (key, class) in personal {
                let action = self.action(*class);
                if let Some(v) = attrs.get_mut(*key)
                    && !self.apply_value(action, v)
                {
                    attrs.remove(*key);
                }
            }
            if survey && let Some(Value::Array(answers)) = attrs.get_mut("answers") {
                for answer in answers.iter_mut().filter_map(Value::as_object_mut) {
                    let free_text = answer.get("kind").and_then(Value::as_str).is_some_and(|k| FREE_TEXT_ANSWER_KINDS.contains(&k));
                    if free_text
                        && let Some(v) = answer.get_mut("value")
                        && !self.apply_value(self.text, v)
                    {
                        answer.remove("value");
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(t: &str, attrs: &Value) -> Event {
        Event::from_json(json!({"event_id": "e", "session_id": "s", "type": t, "channel": "voice",
            "occurred_at": "2024-01-01T00:00:00Z", "attributes": attrs}))
        .unwrap()
    }

    #[test]
    fn hash_drop_keep_per_class() {
        let policy = PrivacyPolicy { contact: FieldAction::Hash, text: FieldAction::Drop, hmac_key: b"k".to_vec() };
        let mut e = event("email.collected", &json!({"email": "a@b.c"}));
        policy.apply(&mut e);
        assert_eq!(e.attributes.str("email"), Some(policy.hash("a@b.c").as_str()));
        assert_eq!(policy.hash("a@b.c").len(), 64);
        let mut e = event("rating.received", &json!({"rating": 4, "comment": "rude agent"}));
        policy.apply(&mut e);
        assert_eq!(e.attributes.0, json!({"rating": 4}));
        let mut e =
            event("survey.response", &json!({"answers": [{"question": "q", "kind": "text", "value": "hi"}, {"question": "c", "kind": "csat", "value": 4}]}));
        policy.apply(&mut e);
        assert_eq!(e.attributes.0["answers"], json!([{"question": "q", "kind": "text"}, {"question": "c", "kind": "csat", "value": 4}]));
    }

    #[test]
    fn hashes_depend_on_the_key() {
        let a = PrivacyPolicy { hmac_key: b"one".to_vec(), ..Default::default() };
        let b = PrivacyPolicy { hmac_key: b"two".to_vec(), ..Default::default() };
        assert_ne!(a.hash("x"), b.hash("x"));
        assert_eq!(a.hash("x"), a.hash("x"));
    }
}
