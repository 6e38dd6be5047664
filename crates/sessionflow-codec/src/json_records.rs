//! The timeline and metadata records written as JSON without going through
//! serde.
//!
//! Through serde every field costs a call chain, a scan of its name for
//! bytes to escape and a capacity check per piece. Here each field's name,
//! with its quotes, colon and leading comma, is one constant known when
//! compiling, and each value is written by the one function for its type.
//! The bytes are exactly `serde_json::to_vec`'s for the same record
//! (`tests/json_writer.rs` compares every record of the example sessions
//! and of the simulator's traffic, and `tests` below a record with every
//! field set): the derived `Serialize` stays the definition of the format,
//! this is a faster way of printing it.

use crate::json_writer::{write_count, write_finite, write_quoted, write_str};
use serde_json::Value;
use sessionflow_core::fold::{
    Attachment, Cobrowse, CrmTicket, Csat, Deflection, Disposition, Flags, Participant, ParticipantFailure, Payment, PhoneNumbers, PostSession, QueueVisit,
    Recording, SmartActions, SurveyAnswer, Transfer, TransferEnd, VirtualAgent,
};
use sessionflow_core::json::{Json, Num};
use sessionflow_core::records::{Card, Sentiment};
use sessionflow_core::{
    Anomaly, AnswerType, Attributes, Channel, Direction, EventType, InputPosition, MetadataRecord, Millis, Outcome, RevisionReason, State, TimelineRecord,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A value that prints itself as serde_json prints its `Serialize` form.
pub trait WriteJson {
    /// Appends the value's JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Writes an object: `{"a":…,"b":…}`, each key a compile-time constant
/// with its separators. `name => field` for a key unlike the field's name.
macro_rules! write_object {
    ($out:expr, $value:expr, $first:ident $(=> $first_name:literal)? $(, $field:ident $(=> $name:literal)?)* $(,)?) => {{
        let out: &mut Vec<u8> = $out;
        let value = $value;
        out.extend_from_slice(concat!("{\"", key!($first $(=> $first_name)?), "\":").as_bytes());
        value.$first.write_json(out);
        $(
            out.extend_from_slice(concat!(",\"", key!($field $(=> $name)?), "\":").as_bytes());
            value.$field.write_json(out);
        )*
        out.push(b'}');
    }};
}

/// A field's JSON key: its name, or the one given.
macro_rules! key {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident => $name:literal) => {
        $name
    };
}

/// `WriteJson` for structs written field by field, in declaration order.
macro_rules! impl_object {
    ($($ty:ty { $($fields:tt)* })*) => {$(
        impl WriteJson for $ty {
            fn write_json(&self, out: &mut Vec<u8>) {
                write_object!(out, self, $($fields)*);
            }
        }
    )*};
}

/// `WriteJson` for enums written as their wire name.
macro_rules! impl_name {
    ($($ty:ty),* $(,)?) => {$(
        impl WriteJson for $ty {
            #[inline]
            fn write_json(&self, out: &mut Vec<u8>) {
                write_str(out, self.as_str());
            }
        }
    )*};
}

impl_name!(Channel, Direction, State, Outcome, AnswerType, RevisionReason, Anomaly, EventType);

/// `WriteJson` for string types, escaped as serde_json escapes.
macro_rules! impl_string {
    ($($ty:ty),* $(,)?) => {$(
        impl WriteJson for $ty {
            #[inline]
            fn write_json(&self, out: &mut Vec<u8>) {
                write_str(out, self);
            }
        }
    )*};
}

impl_string!(str, String, Arc<str>);

impl WriteJson for bool {
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) {
        // Two fixed-size writes rather than one of varying size.
        if *self {
            out.extend_from_slice(b"true");
        } else {
            out.extend_from_slice(b"false");
        }
    }
}

macro_rules! impl_integer {
    ($($ty:ty),*) => {$(
        impl WriteJson for $ty {
            #[inline]
            fn write_json(&self, out: &mut Vec<u8>) {
                write_count(out, *self);
            }
        }
    )*};
}

impl_integer!(i32, i64, u32, u64);

impl WriteJson for f64 {
    /// NaN and infinities have no JSON form: `null`, as serde_json.
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) {
        if self.is_finite() {
            write_finite(out, *self);
        } else {
            out.extend_from_slice(b"null");
        }
    }
}

impl WriteJson for Num {
    /// As `Num`'s `Serialize`: an integer when it is one.
    fn write_json(&self, out: &mut Vec<u8>) {
        match self.as_integer() {
            Some(integer) => write_count(out, integer),
            None => self.0.write_json(out),
        }
    }
}

impl WriteJson for Millis {
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) {
        match self.rfc3339_bytes() {
            // ASCII digits and separators: nothing to escape.
            Some(bytes) => {
                out.push(b'"');
                out.extend_from_slice(&bytes);
                out.push(b'"');
            }
            None => write_str(out, &self.to_rfc3339()),
        }
    }
}

impl<T: WriteJson> WriteJson for Option<T> {
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
}

/// `{"key":value,…}` from entries in order.
fn write_entries<'a, V: WriteJson + 'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a str, &'a V)>) {
    out.push(b'{');
    for (i, (key, value)) in entries.enumerate() {
        write_quoted(out, if i > 0 { b",\"" } else { b"\"" }, key, b"\":");
        value.write_json(out);
    }
    out.push(b'}');
}

impl WriteJson for BTreeMap<Anomaly, u32> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_entries(out, self.iter().map(|(code, count)| (code.as_str(), count)));
    }
}

impl WriteJson for Value {
    /// As serde_json's `Value`: objects in their map's order, numbers as
    /// the integer or float they hold.
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => b.write_json(out),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => u.write_json(out),
                (None, Some(i), _) => i.write_json(out),
                (None, None, Some(f)) => f.write_json(out),
                // Every number without `arbitrary_precision` is one of those.
                (None, None, None) => out.extend_from_slice(n.to_string().as_bytes()),
            },
            Value::String(s) => write_str(out, s),
            Value::Array(items) => items.write_json(out),
            Value::Object(map) => write_entries(out, map.iter().map(|(key, item)| (key.as_str(), item))),
        }
    }
}

impl WriteJson for Json {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.0.write_json(out);
    }
}

impl WriteJson for Attributes {
    /// Kept as the JSON text serde_json writes for it: copied as is.
    #[inline]
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.text().as_bytes());
    }
}

impl_object! {
    InputPosition { topic, partition, offset }
    TimelineRecord {
        session_id, event_id, event_type => "type", occurred_at, channel, tenant, source, seq, state_before, state_after, transition, anomaly,
        out_of_order, elapsed_ms, queue, agent, attributes, input,
    }
    Card { color, icon, status_or_wrapup }
    Sentiment { last, mean }
    QueueVisit { queue, queue_id, priority, entered_at, left_at, outcome }
    Participant { id, role, joined_at, left_at, by }
    ParticipantFailure { id, role, by, reason, failed_at }
    TransferEnd { queue, agent }
    Transfer { from, to, kind, started_at, outcome, reason }
    Deflection { kind, offered_at, accepted, queue }
    Disposition { code, notes, list, custom_code_id, agent, list_id, code_id }
    Csat { rating, comment }
    SurveyAnswer { question, kind, value }
    VirtualAgent { name, started_at, ended_at, outcome, intent, variables, connected_at, params }
    PostSession { virtual_agent, opted_in, started_at, ended_at, outcome, params }
    SmartActions { verified, photos, screenshots, videos, text_inputs }
    Attachment { kind, url, uploaded_at }
    Payment { product, amount, currency, status, transaction_id, agent, processed_at }
    Recording { url, permission, urls }
    CrmTicket { ticket_id, url }
    PhoneNumbers { inbound, callback }
    Cobrowse { sessions, active_ms, level, control_requested, control_accepted, control_declined, control_level }
    Flags { emergency }
    MetadataRecord {
        session_id, tenant, source, channel, direction, lang, device,
        state, outcome, abandon_phase, short_abandon, ended_by, answer_type, card,
        version, is_final, revision_reason, updated_at,
        created_at, scheduled_for, queued_at, assigned_at, connected_at, ended_at, wrapup_completed_at, finalized_at,
        self_service_ms, queue_wait_ms, ring_ms, talk_ms, hold_ms, hold_count, longest_hold_ms, wrapup_ms, handle_ms, total_ms, masked_ms,
        open_intervals_closed,
        queue, queues, menu_path, menu_path_id, support_number, outbound_number,
        agent, participants, participant_failures, offers, declines,
        transfer_count, transfers,
        deflection, disposition, dispositions, csat, survey, sentiment, summary,
        virtual_agent, post_session,
        smart_actions, attachments, payments, recording, crm_ticket, custom_data, phone_numbers, email, cobrowse, flags, notes_count,
        event_count, duplicate_count, anomaly_count, anomalies, late_event_count, unknown_event_count,
    }
}

/// A record as JSON, in a vector that starts with room for `capacity`
/// bytes.
pub fn to_vec<T: WriteJson + ?Sized>(record: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    record.write_json(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same_as_serde_json<T: WriteJson + serde::Serialize>(value: &T) {
        let ours = to_vec(value, 0);
        let theirs = serde_json::to_vec(value).unwrap();
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
    }

    fn text(tag: &str) -> String {
        format!("{tag} \"quoted\" \\ back\nslash \u{1} é 😀")
    }

    fn at(n: i64) -> Millis {
        Millis(1_720_000_000_000 + n)
    }

    /// A metadata record with every optional field set, every list
    /// non-empty and strings that need escaping.
    fn full_metadata() -> MetadataRecord {
        let some = |tag: &str| Some(text(tag));
        let shared = |tag: &str| Some(Arc::<str>::from(text(tag)));
        let value = json!({"k": [1, -2, 2.5, 1e300, "s\"", null, true, {"nested": {}}], "u": 18_446_744_073_709_551_615_u64});
        let disposition = Disposition {
            code: some("code"),
            notes: some("notes"),
            list: some("list"),
            custom_code_id: some("custom"),
            agent: some("a"),
            list_id: some("list_id"),
            code_id: some("code_id"),
        };
        MetadataRecord {
            session_id: text("session").into(),
            tenant: Some(Arc::from(text("tenant"))),
            source: Some(Arc::from("src")),
            channel: Some(Channel::Voice),
            direction: Some(Direction::Outbound),
            lang: some("lang"),
            device: some("device"),
            state: State::Abandoned,
            outcome: Some(Outcome::Abandoned),
            abandon_phase: Some(State::Queued),
            short_abandon: true,
            ended_by: some("ended_by"),
            answer_type: AnswerType::Virtual,
            card: Card { color: "white".into(), icon: some("icon"), status_or_wrapup: text("wrapup") },
            version: 12_345_678_901,
            is_final: true,
            revision_reason: Some(RevisionReason::LateEvent),
            updated_at: at(1),
            created_at: Millis(-62_167_219_200_001),
            scheduled_for: Some(Millis(253_402_300_800_000)),
            queued_at: Some(at(3)),
            assigned_at: Some(at(4)),
            connected_at: Some(at(5)),
            ended_at: Some(at(6)),
            wrapup_completed_at: Some(at(7)),
            finalized_at: Some(at(8)),
            self_service_ms: -1,
            queue_wait_ms: 9,
            ring_ms: 10,
            talk_ms: i64::MAX,
            hold_ms: i64::MIN,
            hold_count: u32::MAX,
            longest_hold_ms: 0,
            wrapup_ms: 100,
            handle_ms: Some(7),
            total_ms: Some(-7),
            masked_ms: 3,
            open_intervals_closed: vec!["hold".into(), text("interval")],
            queue: Some(Arc::from(text("queue"))),
            queues: vec![
                QueueVisit {
                    queue: shared("q1"),
                    queue_id: shared("id1"),
                    priority: Some(3),
                    entered_at: at(2),
                    left_at: Some(at(4)),
                    outcome: shared("answered"),
                },
                QueueVisit { queue: None, queue_id: None, priority: None, entered_at: at(5), left_at: None, outcome: None },
            ],
            menu_path: some("menu"),
            menu_path_id: some("menu_id"),
            support_number: some("support"),
            outbound_number: some("outbound"),
            agent: Some(Arc::from("agent")),
            participants: vec![Participant { id: text("p").into(), role: shared("agent"), joined_at: at(4), left_at: Some(at(6)), by: some("by") }],
            participant_failures: vec![ParticipantFailure {
                id: some("p2"),
                role: some("third_party"),
                by: some("agent"),
                reason: some("busy"),
                failed_at: at(5),
            }],
            offers: 2,
            declines: 1,
            transfer_count: 1,
            transfers: vec![Transfer {
                from: TransferEnd { queue: some("from_q"), agent: None },
                to: TransferEnd { queue: None, agent: some("to_a") },
                kind: some("blind"),
                started_at: at(5),
                outcome: "failed".into(),
                reason: some("reason"),
            }],
            deflection: Some(Deflection { kind: some("sms"), offered_at: Some(at(3)), accepted: Some(false), queue: some("queue") }),
            disposition: Some(disposition.clone()),
            dispositions: vec![disposition],
            csat: Some(Csat { rating: Some(Num(4.0)), comment: some("comment") }),
            survey: Some(vec![
                SurveyAnswer { question: some("q"), kind: some("stars"), value: Json(json!(5)) },
                SurveyAnswer { question: None, kind: None, value: Json(value.clone()) },
            ]),
            sentiment: Some(Sentiment { last: Some(Num(-0.25)), mean: Some(Num(f64::NAN)) }),
            summary: some("summary"),
            virtual_agent: Some(VirtualAgent {
                name: some("va"),
                started_at: at(1),
                ended_at: Some(at(2)),
                outcome: some("handoff"),
                intent: some("intent"),
                variables: Some(Json(value.clone())),
                connected_at: Some(at(1)),
                params: Some(Json(json!({"order": 12}))),
            }),
            post_session: Some(PostSession {
                virtual_agent: some("post"),
                opted_in: Some(true),
                started_at: at(9),
                ended_at: None,
                outcome: None,
                params: Some(Json(json!({}))),
            }),
            smart_actions: SmartActions { verified: true, photos: 1, screenshots: 2, videos: 3, text_inputs: 40 },
            attachments: vec![Attachment { kind: some("image"), url: some("https://x/y?a=1&b=\"2\""), uploaded_at: at(3) }],
            payments: vec![Payment {
                product: some("product"),
                amount: some("12.50"),
                currency: some("EUR"),
                status: some("ok"),
                transaction_id: some("tx"),
                agent: None,
                processed_at: at(4),
            }],
            recording: Some(Recording { url: some("url"), permission: some("granted"), urls: vec![text("url"), text("url2")] }),
            crm_ticket: Some(CrmTicket { ticket_id: some("t"), url: None }),
            custom_data: Some(Json(value)),
            phone_numbers: PhoneNumbers { inbound: some("+1555"), callback: None },
            email: some("a@b"),
            cobrowse: Cobrowse {
                sessions: 1,
                active_ms: 1_000,
                level: some("remote"),
                control_requested: 2,
                control_accepted: 1,
                control_declined: 1,
                control_level: some("full_device"),
            },
            flags: Flags { emergency: true },
            notes_count: 3,
            event_count: 99,
            duplicate_count: 1,
            anomaly_count: 2,
            anomalies: [(Anomaly::ALL[0], 1), (Anomaly::ALL[Anomaly::ALL.len() - 1], 10)].into_iter().collect(),
            late_event_count: 4,
            unknown_event_count: 5,
        }
    }

    #[test]
    fn a_metadata_record_with_every_field_set_prints_as_serde_json() {
        same_as_serde_json(&full_metadata());
    }

    #[test]
    fn a_metadata_record_with_every_field_empty_prints_as_serde_json() {
        let mut record = full_metadata();
        record.tenant = None;
        record.source = None;
        record.channel = None;
        record.direction = None;
        record.lang = None;
        record.outcome = None;
        record.abandon_phase = None;
        record.ended_by = None;
        record.card.icon = None;
        record.revision_reason = None;
        record.scheduled_for = None;
        record.handle_ms = None;
        record.open_intervals_closed.clear();
        record.queue = None;
        record.queues.clear();
        record.device = None;
        record.participants.clear();
        record.participant_failures.clear();
        record.dispositions.clear();
        record.transfers.clear();
        record.deflection = None;
        record.disposition = None;
        record.csat = None;
        record.survey = Some(Vec::new());
        record.sentiment = None;
        record.virtual_agent = None;
        record.post_session = None;
        record.attachments.clear();
        record.payments.clear();
        record.recording = None;
        record.crm_ticket = None;
        record.custom_data = None;
        record.email = None;
        record.anomalies.clear();
        same_as_serde_json(&record);
    }

    #[test]
    fn numbers_and_free_form_values_print_as_serde_json() {
        for v in [0.0, -0.0, 1.0, -1.0, 0.1, 1e15, 9_007_199_254_740_992.0, -9_007_199_254_740_991.0, 1e300, f64::INFINITY, f64::NAN, f64::MIN_POSITIVE] {
            same_as_serde_json(&Num(v));
            same_as_serde_json(&v);
            same_as_serde_json(&Json(json!(v)));
        }
        for v in [json!(null), json!(u64::MAX), json!(i64::MIN), json!([]), json!({}), json!({"a\u{0}": ["\u{7f}", {"b": []}]})] {
            same_as_serde_json(&Json(v));
        }
    }
}
