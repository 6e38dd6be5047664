//! Contact records (CTR, Kinesis): the whole contact (leg) again each time
//! Connect updates it. Only what the contact events lack is taken: the end
//! with who ended it, the holds, the after-contact work, the transfer
//! endpoint, the contact attributes.
//!
//! A record re-sent, late or older than one already seen yields the same
//! lifecycle events (ids from the contact id and the moment, times from
//! fields Connect sets once); only its facts are new, keyed by
//! `ContactId` + `LastUpdateTimestamp`, and later versions win by event time.

use super::{FORMAT, Leg, Rank, arn_resource_id, unused_fields, whole_second};
use crate::SessionIdentity;
use crate::common::{self, EventBuilder, Json, Object};
use sessionflow_core::{DeadLetterReason, Event, InputError, Millis};
use std::borrow::Cow;

/// Record fields the events' envelopes or the custom data already carry.
const USED_FIELDS: &[&str] = &["ContactId", "Channel", "InstanceARN", "Attributes"];

/// Synthetic holds are laid out this far apart (and this far after the
/// agent connects): the record gives their count and durations, not times.
const HOLD_GAP_MS: i64 = 1000;

/// The events of one contact record, in the order they happened.
pub(super) fn adapt(identity: SessionIdentity, record: &Object<'_>) -> Result<Vec<Event>, InputError> {
    let leg = Leg::read(record, &super::RECORD_SPELLING)?;
    let updated_at = common::optional_time(FORMAT, record, "", "LastUpdateTimestamp")?
        .ok_or_else(|| common::error(FORMAT, DeadLetterReason::MissingField, "LastUpdateTimestamp", "an RFC 3339 time, found nothing"))?;
    let next_contact_id = common::optional_str(FORMAT, record, "", "NextContactId")?;
    let disconnected_at = common::optional_time(FORMAT, record, "", "DisconnectTimestamp")?;
    let disconnect_reason = common::optional_str(FORMAT, record, "", "DisconnectReason")?;
    let agent = common::optional_object(FORMAT, record, "", "Agent")?.map(AgentPart::read).transpose()?;
    let queued = common::optional_object(FORMAT, record, "", "Queue")?.is_some();
    let attributes = common::optional_object(FORMAT, record, "", "Attributes")?;
    let transferred_to = match common::optional_object(FORMAT, record, "", "TransferredToEndpoint")? {
        Some(endpoint) => common::optional_str(FORMAT, endpoint, "TransferredToEndpoint", "Address")?,
        None => None,
    };

    let mut builders = Vec::new();
    if let Some(agent) = &agent {
        builders.extend(synthetic_holds(identity, &leg, agent, disconnected_at));
    }
    // In journey identity a leg that handed the customer on (NextContactId)
    // does not end the journey; the next leg's INITIATED is the transfer.
    let last_leg = identity == SessionIdentity::Leg || next_contact_id.is_none();
    if let (true, Some(disconnected_at)) = (last_leg, disconnected_at) {
        let flow_ended = disconnect_reason.as_deref() == Some("CONTACT_FLOW_DISCONNECT");
        if flow_ended && agent.is_none() && !queued && leg.starts_in_flow() && leg.opens_session(identity) {
            // The flow (IVR, bot) ended a contact that never queued: the
            // virtual agent contained it.
            builders.push(
                leg.event(
                    identity,
                    Rank::VirtualAgentCompleted,
                    &[&leg.contact_id, "virtual_agent.completed"],
                    "virtual_agent.ended",
                    whole_second(disconnected_at),
                )
                .attr("outcome", Some("completed")),
            );
        }
        let ended = leg.ended(identity, disconnected_at);
        // In leg identity DISCONNECTED ends the same session with the same
        // event, which cannot know who ended it: only the journey's end
        // (which only this record gives) carries `ended_by`.
        builders.push(match identity {
            SessionIdentity::Journey => ended.attr("ended_by", disconnect_reason.as_deref().and_then(ended_by)).attr("reason", disconnect_reason.as_deref()),
            SessionIdentity::Leg => ended,
        });
        if let Some(agent) = &agent {
            builders.push(leg.wrapup_completed(identity, agent.acw_end.unwrap_or(disconnected_at), agent.id.as_deref()));
        }
    }

    let update = updated_at.0.to_string();
    let mut custom = attributes.cloned().unwrap_or_default();
    if let Some(reason) = &disconnect_reason {
        custom.insert("connect_disconnect_reason", Json::from(reason.as_ref()));
    }
    if let Some(address) = transferred_to {
        custom.insert("connect_transferred_to", Json::from(address));
    }
    if !custom.is_empty() {
        let mut facts = leg.event(identity, Rank::Fact, &[&leg.contact_id, "custom_data", &update], "custom_data.received", updated_at);
        for (key, value) in custom {
            facts = facts.attr(key, Some(value));
        }
        builders.push(facts);
    }
    // The record itself, for the timeline and audit.
    builders.push(
        leg.event(identity, Rank::PassThrough, &[&leg.contact_id, "record", &update], "vendor.CONTACT_RECORD", updated_at)
            .attr("contact_id", Some(leg.contact_id.as_ref()))
            .vendor_fields("vendor", unused_fields(record, USED_FIELDS)),
    );
    builders.into_iter().map(|b| b.build(FORMAT)).collect()
}

/// The canonical `ended_by` of a `DisconnectReason`; `None` where Connect's
/// reason names no party the canonical values have (a third party, other).
fn ended_by(reason: &str) -> Option<&'static str> {
    match reason {
        "CUSTOMER_DISCONNECT" => Some("end_user"),
        "AGENT_DISCONNECT" => Some("agent"),
        "CONTACT_FLOW_DISCONNECT" | "API" | "EXPIRED" | "IDLE_DISCONNECT" | "OUTBOUND_DESTINATION_ENDPOINT_ERROR" => Some("system"),
        r if r.starts_with("TELECOM_") => Some("system"),
        _ => None,
    }
}

/// What the record's `Agent` tells.
struct AgentPart<'a> {
    id: Option<Cow<'a, str>>,
    connected_at: Option<Millis>,
    holds: u32,
    hold_ms: i64,
    longest_hold_ms: i64,
    acw_end: Option<Millis>,
}

impl<'a> AgentPart<'a> {
    fn read(agent: &Object<'a>) -> Result<AgentPart<'a>, InputError> {
        let path = "Agent";
        let holds = seconds_or_count(agent, "NumberOfHolds")?.unwrap_or(0.0);
        Ok(AgentPart {
            id: common::optional_str(FORMAT, agent, path, "ARN")?.map(|arn| arn_resource_id(arn, "agent")),
            connected_at: common::optional_time(FORMAT, agent, path, "ConnectedToAgentTimestamp")?,
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            holds: holds.clamp(0.0, 1000.0) as u32,
            hold_ms: millis_of_seconds(seconds_or_count(agent, "CustomerHoldDuration")?),
            longest_hold_ms: millis_of_seconds(seconds_or_count(agent, "LongestHoldDuration")?),
            acw_end: common::optional_time(FORMAT, agent, path, "AfterContactWorkEndTimestamp")?,
        })
    }
}

/// A number field of `Agent` (a count or seconds): a number or a numeric string.
fn seconds_or_count(agent: &Object<'_>, name: &str) -> Result<Option<f64>, InputError> {
    let bad = |found: &str| common::error(FORMAT, DeadLetterReason::BadFieldType, &format!("Agent.{name}"), &format!("a non-negative number, found {found}"));
    match common::field(agent, name) {
        None => Ok(None),
        Some(Json::Number(n)) => n.as_f64().filter(|x| *x >= 0.0).map(Some).ok_or_else(|| bad(&n.to_string())),
        Some(Json::String(s)) => s.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).map(Some).ok_or_else(|| bad(&format!("{s:?}"))),
        Some(other) => Err(bad(other.type_name())),
    }
}

fn millis_of_seconds(seconds: Option<f64>) -> i64 {
    #[allow(clippy::cast_possible_truncation)]
    seconds.map_or(0, |s| (s.min(1e9) * 1000.0).round() as i64)
}

/// The record's holds as hold intervals the engine can fold: the longest
/// first, the rest of the hold time shared by the others, one second apart
/// from the agent's connection on. Their times are made up; their count,
/// total and longest are Connect's. None when they do not fit before the
/// end of the leg.
fn synthetic_holds<'b>(identity: SessionIdentity, leg: &'b Leg<'_>, agent: &AgentPart<'_>, disconnected_at: Option<Millis>) -> Vec<EventBuilder<'b>> {
    let (Some(connected_at), true) = (agent.connected_at, agent.holds > 0 && agent.hold_ms > 0) else { return Vec::new() };
    let count = i64::from(agent.holds);
    let longest = if count == 1 { agent.hold_ms } else { agent.longest_hold_ms.clamp(0, agent.hold_ms) };
    let (each, remainder) = if count == 1 { (0, 0) } else { ((agent.hold_ms - longest) / (count - 1), (agent.hold_ms - longest) % (count - 1)) };
    let durations: Vec<i64> = (0..count)
        .map(|i| {
            if i == 0 {
                longest
            } else if i == count - 1 {
                each + remainder
            } else {
                each
            }
        })
        .collect();
    let span: i64 = durations.iter().sum::<i64>() + HOLD_GAP_MS * (count + 1);
    if disconnected_at.is_some_and(|end| connected_at.0 + span > end.0) {
        return Vec::new();
    }
    let mut events = Vec::new();
    let mut t = connected_at.0 + HOLD_GAP_MS;
    for (i, duration) in durations.iter().enumerate() {
        let n = i.to_string();
        events.push(leg.event(identity, Rank::HoldStarted, &[&leg.contact_id, "hold", &n, "started"], "hold.started", Millis(t)).attr("synthetic", Some(true)));
        t += duration;
        events.push(leg.event(identity, Rank::HoldEnded, &[&leg.contact_id, "hold", &n, "ended"], "hold.ended", Millis(t)).attr("synthetic", Some(true)));
        t += HOLD_GAP_MS;
    }
    events
}
