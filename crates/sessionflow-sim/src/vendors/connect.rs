//! Amazon Connect: EventBridge contact events and contact records (CTR),
//! as in `examples/vendors/amazon-connect/`. Journey identity: a transfer
//! opens a second contact whose `initialContactId` is the first.

use super::{Native, SessionKind, SessionPlan, uuid};
use serde_json::{Map, Value, json};
use sessionflow_core::{Channel, Millis};

const ACCOUNT: &str = "111122223333";
const INSTANCE: &str = "arn:aws:connect:us-east-1:111122223333:instance/inst-sim";

pub(super) fn contact_id(seed: u64, index: u64, leg: u64) -> String {
    uuid(seed, index, 0xc000 + leg)
}

fn t(at: Millis) -> String {
    // Connect writes whole seconds without a fraction.
    let s = at.to_rfc3339();
    s.replace(".000Z", "Z")
}

fn queue_arn(id: &str) -> String {
    format!("{INSTANCE}/queue/q-{id}")
}

fn agent_arn(id: &str) -> String {
    format!("{INSTANCE}/agent/agent-{id}")
}

/// One contact (leg) and what its contact events accumulate.
struct Leg {
    contact_id: String,
    initial: Option<String>,
    method: &'static str,
    initiated: Millis,
    detail: Map<String, Value>,
}

impl Leg {
    fn new(contact_id: String, initial: Option<String>, method: &'static str, channel: &str, initiated: Millis) -> Leg {
        let mut detail = Map::new();
        detail.insert("contactId".into(), json!(contact_id));
        if let Some(initial) = &initial {
            detail.insert("initialContactId".into(), json!(initial));
            detail.insert("previousContactId".into(), json!(initial));
        }
        detail.insert("channel".into(), json!(channel));
        detail.insert("instanceArn".into(), json!(INSTANCE));
        detail.insert("initiationMethod".into(), json!(method));
        detail.insert("initiationTimestamp".into(), json!(t(initiated)));
        Leg { contact_id, initial, method, initiated, detail }
    }
}

struct Out<'p> {
    plan: &'p SessionPlan,
    natives: Vec<Native>,
    n: u64,
}

impl Out<'_> {
    fn event(&mut self, leg: &Leg, event_type: &str, at: Millis) {
        self.n += 1;
        let mut detail = Map::new();
        detail.insert("eventType".into(), json!(event_type));
        detail.extend(leg.detail.clone());
        let value = json!({
            "version": "0",
            "id": uuid(self.plan.seed, self.plan.index, 0xe0000 + self.n),
            "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect",
            "account": ACCOUNT,
            "time": t(at),
            "region": "us-east-1",
            "resources": [INSTANCE, format!("{INSTANCE}/contact/{}", leg.contact_id)],
            "detail": detail,
        });
        self.natives.push(Native { at: at.0, value, snapshot: false });
    }

    fn record(&mut self, value: Value, at: Millis) {
        self.natives.push(Native { at: at.0, value, snapshot: true });
    }
}

/// One leg's part in the plan: queue, agent, end.
struct LegPlan<'a> {
    queue: Option<(&'a str, &'a str, Millis)>,
    agent: Option<(&'a str, &'a str, Millis)>,
    ended: Millis,
    /// After-contact work end, when an agent handled it.
    acw_end: Option<Millis>,
    reason: &'static str,
    next: Option<String>,
    hold: Option<(Millis, Millis)>,
}

pub(super) fn render(plan: &SessionPlan) -> Vec<Native> {
    let mut out = Out { plan, natives: Vec::new(), n: 0 };
    let channel = if plan.channel == Channel::Voice { "VOICE" } else { "CHAT" };
    let first_id = contact_id(plan.seed, plan.index, 1);
    let start = plan.started_at;
    let mut leg1 = Leg::new(first_id.clone(), None, "INBOUND", channel, start);
    out.event(&leg1, "INITIATED", start);
    let system = Millis(start.0 + 1000);
    leg1.detail.insert("connectedToSystemTimestamp".into(), json!(t(system)));
    out.event(&leg1, "CONNECTED_TO_SYSTEM", system);

    let reason = |customer: bool| if customer { "CUSTOMER_DISCONNECT" } else { "AGENT_DISCONNECT" };
    let queue = plan.queued_at.map(|at| (plan.queue.id, plan.queue.name, at));
    let agent = plan.agent.zip(plan.connected_at).map(|(a, at)| (a.id, a.username(), at));
    match plan.kind {
        SessionKind::Contained => {
            let update = Millis(start.0 + (plan.ended_at.0 - start.0) / 2 / 1000 * 1000);
            leg1.detail.insert("updatedProperties".into(), json!(["Attributes"]));
            out.event(&leg1, "CONTACT_DATA_UPDATED", update);
            leg1.detail.remove("updatedProperties");
            let lp = LegPlan { queue: None, agent: None, ended: plan.ended_at, acw_end: None, reason: "CONTACT_FLOW_DISCONNECT", next: None, hold: None };
            leg_rest(&mut out, plan, &mut leg1, &lp, json!({"lex_intent": "OrderStatus"}));
        }
        SessionKind::Transferred => {
            let second = plan.second.as_ref().expect("a transfer has a second leg");
            let leg2_id = contact_id(plan.seed, plan.index, 2);
            let lp1 = LegPlan {
                queue,
                agent,
                ended: second.left_first_at,
                acw_end: Some(Millis(second.left_first_at.0 + 30_000)),
                reason: "AGENT_DISCONNECT",
                next: Some(leg2_id.clone()),
                hold: None,
            };
            leg_rest(&mut out, plan, &mut leg1, &lp1, json!({"intent": "transfer"}));
            let mut leg2 = Leg::new(leg2_id, Some(first_id), "TRANSFER", channel, second.left_first_at);
            out.event(&leg2, "INITIATED", second.left_first_at);
            let a2 = second.agent;
            let lp2 = LegPlan {
                queue: Some((second.queue.id, second.queue.name, second.queued_at)),
                agent: Some((a2.id, a2.username(), second.connected_at)),
                ended: plan.ended_at,
                acw_end: plan.wrapup_until,
                reason: reason(plan.ended_by_customer),
                next: None,
                hold: None,
            };
            leg_rest(&mut out, plan, &mut leg2, &lp2, json!({"intent": "transfer", "refund_issued": "yes"}));
        }
        _ => {
            let lp =
                LegPlan { queue, agent, ended: plan.ended_at, acw_end: plan.wrapup_until, reason: reason(plan.ended_by_customer), next: None, hold: plan.hold };
            leg_rest(&mut out, plan, &mut leg1, &lp, json!({"intent": "billing"}));
        }
    }
    out.natives
}

impl super::Agent {
    fn username(&self) -> &'static str {
        self.id
    }
}

/// A leg's events after `INITIATED`, and its contact record(s).
fn leg_rest(out: &mut Out<'_>, plan: &SessionPlan, leg: &mut Leg, lp: &LegPlan<'_>, attributes: Value) {
    if let Some((id, _, at)) = lp.queue {
        leg.detail.insert("queueInfo".into(), json!({"queueArn": queue_arn(id), "queueType": "STANDARD", "enqueueTimestamp": t(at)}));
        out.event(leg, "QUEUED", at);
    }
    if let Some((id, _, at)) = lp.agent {
        leg.detail.insert("agentInfo".into(), json!({"agentArn": agent_arn(id), "connectedToAgentTimestamp": t(at)}));
        out.event(leg, "CONNECTED_TO_AGENT", at);
    }
    leg.detail.insert("disconnectTimestamp".into(), json!(t(lp.ended)));
    out.event(leg, "DISCONNECTED", lp.ended);
    let completed = lp.acw_end.unwrap_or(Millis(lp.ended.0 + 1000));
    if let (Some(acw_end), Some(Value::Object(agent))) = (lp.acw_end, leg.detail.get_mut("agentInfo")) {
        agent.insert("afterContactWorkStartTimestamp".into(), json!(t(lp.ended)));
        agent.insert("afterContactWorkEndTimestamp".into(), json!(t(acw_end)));
        agent.insert("afterContactWorkDuration".into(), json!((acw_end.0 - lp.ended.0) / 1000));
    }
    out.event(leg, "COMPLETED", completed);

    // The contact record, once the contact is complete.
    let mut record = Map::new();
    record.insert("AWSAccountId".into(), json!(ACCOUNT));
    record.insert("AWSContactTraceRecordFormatVersion".into(), json!("2017-03-10"));
    record.insert("ContactId".into(), json!(leg.contact_id));
    record.insert("InstanceARN".into(), json!(INSTANCE));
    record.insert("Channel".into(), leg.detail["channel"].clone());
    record.insert("InitiationMethod".into(), json!(leg.method));
    if let Some(initial) = &leg.initial {
        record.insert("InitialContactId".into(), json!(initial));
        record.insert("PreviousContactId".into(), json!(initial));
    }
    record.insert("InitiationTimestamp".into(), json!(t(leg.initiated)));
    if let Some(system) = leg.detail.get("connectedToSystemTimestamp") {
        record.insert("ConnectedToSystemTimestamp".into(), system.clone());
    }
    record.insert("DisconnectTimestamp".into(), json!(t(lp.ended)));
    record.insert("DisconnectReason".into(), json!(lp.reason));
    let last_update = Millis(completed.0 + 5_000);
    record.insert("LastUpdateTimestamp".into(), json!(t(last_update)));
    if plan.channel == Channel::Voice && leg.initial.is_none() {
        record.insert("CustomerEndpoint".into(), json!({"Address": plan.ani, "Type": "TELEPHONE_NUMBER"}));
    }
    record.insert(
        "Queue".into(),
        match lp.queue {
            Some((id, name, at)) => {
                let dequeue = lp.agent.map_or(lp.ended, |(_, _, connected)| connected);
                json!({"ARN": queue_arn(id), "Name": name, "EnqueueTimestamp": t(at), "DequeueTimestamp": t(dequeue), "Duration": (dequeue.0 - at.0) / 1000})
            }
            None => Value::Null,
        },
    );
    record.insert(
        "Agent".into(),
        match lp.agent {
            Some((id, username, at)) => {
                let (holds, hold_s) = lp.hold.map_or((0, 0), |(a, b)| (1, (b.0 - a.0) / 1000));
                let mut agent = json!({"ARN": agent_arn(id), "Username": username, "ConnectedToAgentTimestamp": t(at),
                    "NumberOfHolds": holds, "CustomerHoldDuration": hold_s, "LongestHoldDuration": hold_s,
                    "AgentInteractionDuration": (lp.ended.0 - at.0) / 1000 - hold_s});
                if let Some(acw_end) = lp.acw_end {
                    agent["AfterContactWorkStartTimestamp"] = json!(t(lp.ended));
                    agent["AfterContactWorkEndTimestamp"] = json!(t(acw_end));
                    agent["AfterContactWorkDuration"] = json!((acw_end.0 - lp.ended.0) / 1000);
                }
                agent
            }
            None => Value::Null,
        },
    );
    record.insert("AgentConnectionAttempts".into(), json!(u32::from(lp.agent.is_some())));
    record.insert("Attributes".into(), attributes.clone());
    record.insert("NextContactId".into(), lp.next.as_ref().map_or(Value::Null, |n| json!(n)));
    if lp.next.is_some() {
        record.insert("TransferCompletedTimestamp".into(), json!(t(lp.ended)));
    }
    out.record(Value::Object(record.clone()), last_update);
    if plan.updated_snapshot {
        // Connect sends the record again when it changes (here: an attribute
        // set after the contact, e.g. by a survey flow).
        let later = Millis(last_update.0 + 600_000);
        record.insert("LastUpdateTimestamp".into(), json!(t(later)));
        let mut attributes = attributes;
        attributes["survey_offered"] = json!("yes");
        record.insert("Attributes".into(), attributes);
        out.record(Value::Object(record), later);
    }
}
