//! EventBridge contact events: one record per moment of one contact (leg).

use super::{FORMAT, Leg, Rank, arn_resource_id, unused_fields};
use crate::SessionIdentity;
use crate::common::{self, EventBuilder, Object};
use sessionflow_core::{DeadLetterReason, Event, InputError, Millis};
use std::borrow::Cow;

/// Detail fields every event's envelope already carries.
const IDENTITY_FIELDS: &[&str] = &["eventType", "contactId", "channel", "instanceArn"];

/// The events of one contact event, in the order they happened.
pub(super) fn adapt(identity: SessionIdentity, record: &Object<'_>) -> Result<Vec<Event>, InputError> {
    let vendor_id = common::required_str(FORMAT, record, "", "id")?;
    let detail = common::optional_object(FORMAT, record, "", "detail")?
        .ok_or_else(|| common::error(FORMAT, DeadLetterReason::MissingField, "detail", "an object, found nothing"))?;
    let native_type = common::required_str(FORMAT, detail, "detail", "eventType")?;
    let envelope_time = common::optional_time(FORMAT, record, "", "time")?;
    let leg = Leg::read(detail, &super::EVENT_SPELLING)?;
    let queue_info = common::optional_object(FORMAT, detail, "detail", "queueInfo")?;
    let agent_info = common::optional_object(FORMAT, detail, "detail", "agentInfo")?;
    let agent_id = match agent_info {
        Some(agent) => common::optional_str(FORMAT, agent, "detail.agentInfo", "agentArn")?.map(|arn| arn_resource_id(arn, "agent")),
        None => None,
    };

    let mut vendor = unused_fields(detail, IDENTITY_FIELDS);
    for name in ["account", "region"] {
        if let Some(value) = common::field(record, name) {
            vendor.insert(name, value.clone());
        }
    }
    let moment = Moment { identity, leg: &leg, vendor_id: &vendor_id, vendor: &vendor };
    // The moment's own timestamp, else the envelope's `time`.
    let at = |specific: Option<Millis>| {
        specific.or(envelope_time).ok_or_else(|| common::error(FORMAT, DeadLetterReason::MissingField, "time", "an RFC 3339 time, found nothing"))
    };

    let builders = match native_type.to_ascii_uppercase().as_str() {
        "INITIATED" => {
            let t = at(common::optional_time(FORMAT, detail, "detail", "initiationTimestamp")?)?;
            if leg.opens_session(identity) {
                if leg.channel.is_none() {
                    return Err(common::error(FORMAT, DeadLetterReason::MissingField, "detail.channel", "VOICE, CHAT, TASK or EMAIL, found nothing"));
                }
                let mut events = vec![moment.event(Rank::SessionStarted, "session.started", "session.started", t)];
                if leg.starts_in_flow() {
                    events.push(
                        moment.event(Rank::VirtualAgentStarted, "virtual_agent.started", "virtual_agent.started", t).attr("platform", Some("connect_flow")),
                    );
                }
                events
            } else if leg.is_transfer() {
                // Connect names neither end of the transfer here; the next
                // leg's QUEUED and CONNECTED_TO_AGENT say where it went.
                vec![
                    moment.event(Rank::TransferStarted, "transfer.started", "transfer.started", t),
                    moment.event(Rank::TransferCompleted, "transfer.completed", "transfer.completed", t),
                ]
            } else {
                vec![moment.pass_through(&native_type, t)]
            }
        }
        "QUEUED" => {
            let enqueued = match queue_info {
                Some(queue) => common::optional_time(FORMAT, queue, "detail.queueInfo", "enqueueTimestamp")?,
                None => None,
            };
            let t = at(enqueued)?;
            let queue_id = match queue_info {
                Some(queue) => common::optional_str(FORMAT, queue, "detail.queueInfo", "queueArn")?.map(|arn| arn_resource_id(arn, "queue")),
                None => None,
            };
            let mut events = Vec::new();
            if leg.opens_session(identity) && leg.starts_in_flow() {
                events.push(moment.event(Rank::VirtualAgentHandoff, "virtual_agent.ended", "virtual_agent.ended", t).attr("outcome", Some("handoff")));
            }
            // Contact events name a queue by ARN only: its id is its name.
            events.push(moment.event(Rank::QueueEntered, "queue.entered", "queue.entered", t).attr("queue", queue_id.clone()).attr("queue_id", queue_id));
            events
        }
        "CONNECTED_TO_AGENT" => {
            let connected = match agent_info {
                Some(agent) => common::optional_time(FORMAT, agent, "detail.agentInfo", "connectedToAgentTimestamp")?,
                None => None,
            };
            let t = at(connected)?;
            // Connect has no separate assignment: the agent accepted and is
            // connected in one moment.
            vec![
                moment.event(Rank::AgentAssigned, "agent.assigned", "agent.assigned", t).attr("agent", agent_id.clone()).attr("agent_id", agent_id.clone()),
                moment.event(Rank::AgentConnected, "agent.connected", "agent.connected", t).attr("agent", agent_id.clone()).attr("agent_id", agent_id),
            ]
        }
        // A leg's end is the session's end in leg identity only: in journey
        // identity the record cannot tell a transferred leg from the last
        // one, so the journey's end comes from the last leg's contact record.
        "DISCONNECTED" if identity == SessionIdentity::Leg => {
            let t = at(common::optional_time(FORMAT, detail, "detail", "disconnectTimestamp")?)?;
            vec![leg.ended(identity, t)]
        }
        "COMPLETED" if identity == SessionIdentity::Leg && agent_id.is_some() => {
            let acw_end = match agent_info {
                Some(agent) => common::optional_time(FORMAT, agent, "detail.agentInfo", "afterContactWorkEndTimestamp")?,
                None => None,
            };
            // Without after-contact work, COMPLETED repeats DISCONNECTED:
            // the wrap-up took no time.
            let t = at(acw_end.or(common::optional_time(FORMAT, detail, "detail", "disconnectTimestamp")?))?;
            vec![leg.wrapup_completed(identity, t, agent_id.as_deref())]
        }
        _ => {
            let t = at(None)?;
            vec![moment.pass_through(&native_type, t)]
        }
    };
    builders.into_iter().map(|b| b.build(FORMAT)).collect()
}

/// What every event of one contact event shares.
struct Moment<'m, 'a> {
    identity: SessionIdentity,
    leg: &'m Leg<'a>,
    vendor_id: &'m str,
    vendor: &'m Object<'a>,
}

impl<'m> Moment<'m, '_> {
    /// An event whose id is the vendor's event id plus `suffix` (one
    /// record can yield several), keeping the unused fields under `vendor`.
    fn event(&self, rank: Rank, suffix: &str, event_type: impl Into<Cow<'m, str>>, at: Millis) -> EventBuilder<'m> {
        self.leg.event(self.identity, rank, &[self.vendor_id, suffix], event_type, at).vendor_fields("vendor", self.vendor.clone())
    }

    /// A contact event the mapping does not turn into a lifecycle moment:
    /// to the timeline as `vendor.<eventType>`.
    fn pass_through(&self, native_type: &str, at: Millis) -> EventBuilder<'m> {
        self.event(Rank::PassThrough, "vendor", format!("vendor.{native_type}"), at).attr("contact_id", Some(self.leg.contact_id.as_ref()))
    }
}
