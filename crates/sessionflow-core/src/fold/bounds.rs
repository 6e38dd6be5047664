//! What a session bound sees of a fold: list lengths and merged JSON
//! sizes, measured before an event is applied so that none needs undoing.

use super::{Fold, recording_urls};
use crate::event::{Event, EventType};
use crate::json::Json;
use serde::Serialize;
use serde_json::{Map, Value};

/// The lists of a fold that events lengthen, named as on the metadata
/// record, in the order of [`Fold::list_lengths`] and [`Fold::list_growth`].
pub const LIST_NAMES: [&str; LIST_COUNT] =
    ["queues", "participants", "transfers", "attachments", "payments", "survey answers", "dispositions", "participant failures", "recording urls"];

/// How many lists [`LIST_NAMES`] names.
pub const LIST_COUNT: usize = 9;

/// The objects a fold merges events into, named as on the metadata record,
/// in the order of [`Fold::merged_json_bytes`].
pub const MERGED_NAMES: [&str; 2] = ["custom_data", "virtual_agent.variables"];

/// What a session bound sees of a fold: list lengths and merged JSON sizes,
/// measured before an event is applied so that none needs undoing.
impl Fold {
    /// The length of each list of [`LIST_NAMES`].
    pub fn list_lengths(&self) -> [usize; LIST_COUNT] {
        [
            self.queues.len(),
            self.participants.len(),
            self.transfers.len(),
            self.attachments.len(),
            self.payments.len(),
            self.survey.as_ref().map_or(0, Vec::len),
            self.dispositions.len(),
            self.participant_failures.len(),
            self.recording.as_ref().map_or(0, |r| r.urls.len()),
        ]
    }

    /// At most how many entries applying `e` adds to each list of
    /// [`LIST_NAMES`], in any state (`apply` may add fewer).
    pub fn list_growth(e: &Event) -> [usize; LIST_COUNT] {
        use EventType as T;
        let mut growth = [0; LIST_COUNT];
        match &e.event_type {
            T::QueueEntered | T::EngagementReleased => growth[0] = 1,
            T::AgentConnected | T::ParticipantAdded => growth[1] = 1,
            T::TransferStarted => growth[2] = 1,
            // A completion without a pending attempt records one; one to a queue opens a visit.
            T::TransferCompleted | T::TransferFailed => {
                growth[0] = 1;
                growth[2] = 1;
            }
            T::MediaUploaded => growth[3] = 1,
            T::PaymentProcessed => growth[4] = 1,
            T::SurveyResponse => {
                growth[5] = e.attributes.get("answers").and_then(Value::as_array).map_or(0, |list| list.iter().filter(|a| a.is_object()).count());
            }
            T::DispositionSet => growth[6] = 1,
            T::ParticipantAddFailed => growth[7] = 1,
            T::RecordingAvailable => growth[8] = recording_urls(&e.attributes).count(),
            _ => {}
        }
        growth
    }

    /// The size of the JSON text of each object of [`MERGED_NAMES`] (0 when absent).
    pub fn merged_json_bytes(&self) -> [usize; 2] {
        [self.custom_data.as_ref().map_or(0, |j| json_len(&j.0)), self.variables().map_or(0, |v| json_len(&v.0))]
    }

    /// The object of [`MERGED_NAMES`] that applying `e` merges into, by its
    /// index, and the size of its JSON text after the merge.
    pub fn merged_json_bytes_after(&self, e: &Event) -> Option<(usize, usize)> {
        match &e.event_type {
            EventType::CustomDataReceived => {
                let from = e.attributes.as_object()?;
                Some((0, merged_len(self.custom_data.as_ref().and_then(Json::as_object), from)))
            }
            EventType::VirtualAgentVariablesCaptured => {
                let Some(Value::Object(from)) = e.attributes.get("variables") else { return None };
                Some((1, merged_len(self.variables().and_then(Json::as_object), from)))
            }
            _ => None,
        }
    }

    fn variables(&self) -> Option<&Json> {
        self.virtual_agent.as_ref().and_then(|va| va.variables.as_ref())
    }
}

/// The length of a value's compact JSON text, as the metadata record writes it.
fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Cannot fail: the counter takes every byte, and JSON values, maps and
    // strings always serialize.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The JSON size of `into` with the entries of `from` merged in (later
/// wins, as `apply` merges), without building the merged object.
fn merged_len(into: Option<&Map<String, Value>>, from: &Map<String, Value>) -> usize {
    let empty = Map::new();
    let into = into.unwrap_or(&empty);
    let mut len = json_len(into);
    let mut entries = into.len();
    for (key, value) in from {
        match into.get(key) {
            Some(old) => len = len + json_len(value) - json_len(old),
            None => {
                // `"key":value`, and a comma after the previous entry.
                len += json_len(key.as_str()) + 1 + json_len(value) + usize::from(entries > 0);
                entries += 1;
            }
        }
    }
    len
}
