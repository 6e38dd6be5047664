//! Genesys Cloud: conversation detail events as bare notifications
//! (`{topicName, version, eventBody, metadata}`), as in
//! `examples/vendors/genesys-cloud/`.

use super::{Native, SessionKind, SessionPlan};
use serde_json::{Value, json};
use sessionflow_core::{Channel, Millis};

struct Out<'p> {
    plan: &'p SessionPlan,
    natives: Vec<Native>,
    n: u32,
}

impl Out<'_> {
    fn event(&mut self, suffix: &str, participant: &str, at: Millis, fields: Value) {
        let plan = self.plan;
        let conversation = &plan.session_id;
        let (media, provider) = if plan.channel == Channel::Voice { ("VOICE", "Edge") } else { ("CHAT", "PureCloud Webchat v2") };
        let mut body = json!({
            "mediaType": media,
            "direction": "INBOUND",
            "provider": provider,
            "participantId": format!("p-{participant}"),
            "sessionId": format!("s-{participant}"),
            "eventTime": at.0,
            "conversationId": conversation,
        });
        if plan.channel == Channel::Voice {
            body["ani"] = json!(format!("tel:{}", plan.ani));
            body["dnis"] = json!("tel:+18005550199");
        } else {
            body["addressFrom"] = json!("Web visitor");
        }
        if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
            body.extend(fields);
        }
        let value = json!({
            "topicName": format!("v2.detail.events.conversation.{conversation}.{suffix}"),
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": format!("corr-{}-{:02}", plan.index, self.n)},
        });
        self.n += 1;
        self.natives.push(Native { at: at.0, value, snapshot: false });
    }
}

fn queue_id(id: &str) -> String {
    format!("q-{id}")
}

fn user_id(id: &str) -> String {
    format!("u-{id}")
}

pub(super) fn render(plan: &SessionPlan) -> Vec<Native> {
    let mut out = Out { plan, natives: Vec::new(), n: 0 };
    let start = plan.started_at;
    out.event("customer.start", "cust", start, json!({}));
    let flow = json!({"flowId": "f-main-menu", "flowName": "Main menu", "flowType": "INBOUNDCALL"});
    if let Some(ivr_end) = plan.self_service_until {
        out.event("flow.start", "ivr", Millis(start.0 + 1000), flow.clone());
        let mut end = flow.clone();
        end["exitReason"] = json!("TRANSFER");
        end["transferType"] = json!("ACD");
        end["disconnectType"] = json!("TRANSFER");
        out.event("flow.end", "ivr", ivr_end, end);
    }
    if plan.kind == SessionKind::Contained {
        let bot = json!({"flowId": "f-chat-bot", "flowName": "Order bot", "flowType": "INBOUNDCHAT"});
        out.event("flow.start", "bot", Millis(start.0 + 1000), bot.clone());
        out.event("attributes", "bot", Millis(start.0 + 20_000), json!({"attributes": {"intent": "order_status"}}));
        let mut end = bot;
        end["exitReason"] = json!("FLOW_DISCONNECT");
        end["disconnectType"] = json!("PEER");
        out.event("flow.end", "bot", plan.ended_at, end);
        out.event("customer.end", "cust", plan.ended_at, json!({"disconnectType": "PEER"}));
        return out.natives;
    }
    let q1 = queue_id(plan.queue.id);
    let queued = plan.queued_at.unwrap_or(start);
    out.event("acd.start", "acd1", queued, json!({"queueId": q1, "routingPriority": 3}));
    for d in &plan.declines {
        let who = d.agent.id;
        out.event("user.start", who, d.offered_at, json!({"userId": user_id(who), "queueId": q1}));
        let disconnect = if d.rejected { "CLIENT" } else { "TIMEOUT" };
        out.event(
            "user.end",
            who,
            d.declined_at,
            json!({"userId": user_id(who), "queueId": q1, "disconnectType": disconnect, "alertingDurationMs": d.declined_at.0 - d.offered_at.0}),
        );
    }
    let customer_end = if plan.ended_by_customer { "ENDPOINT" } else { "PEER" };
    let agent_end = if plan.ended_by_customer { "PEER" } else { "CLIENT" };
    let (Some(agent), Some(assigned), Some(connected)) = (plan.agent, plan.assigned_at, plan.connected_at) else {
        // Abandoned in queue.
        out.event("acd.end", "acd1", plan.ended_at, json!({"queueId": q1, "acdOutcome": "ABANDON", "disconnectType": "PEER"}));
        out.event("customer.end", "cust", plan.ended_at, json!({"disconnectType": if plan.channel == Channel::Voice { "ENDPOINT" } else { "CLIENT" }}));
        return out.natives;
    };
    let u1 = user_id(agent.id);
    out.event("user.start", agent.id, assigned, json!({"userId": u1, "queueId": q1}));
    out.event("acd.end", "acd1", connected, json!({"queueId": q1, "acdOutcome": "ANSWERED", "answeredUserId": u1}));
    let (last_agent, last_queue, last_connected) = match &plan.second {
        Some(second) => {
            let left = second.left_first_at;
            out.event(
                "user.end",
                agent.id,
                left,
                json!({"userId": u1, "queueId": q1, "disconnectType": "TRANSFER", "alertingDurationMs": connected.0 - assigned.0,
                    "interactingDurationMs": left.0 - connected.0}),
            );
            let q2 = queue_id(second.queue.id);
            out.event("acd.start", "acd2", left, json!({"queueId": q2}));
            // The transferring agent wraps up while the customer waits.
            out.event(
                "acw",
                agent.id,
                Millis(left.0 + 10_000),
                json!({"userId": u1, "queueId": q1, "wrapupCode": "wc-transferred", "wrapupDurationMs": 10_000}),
            );
            let u2 = user_id(second.agent.id);
            out.event("user.start", second.agent.id, second.assigned_at, json!({"userId": u2, "queueId": q2}));
            out.event("acd.end", "acd2", second.connected_at, json!({"queueId": q2, "acdOutcome": "ANSWERED", "answeredUserId": u2}));
            (second.agent, q2, second.connected_at)
        }
        None => (agent, q1, connected),
    };
    let u = user_id(last_agent.id);
    let mut user_end = json!({"userId": u, "queueId": last_queue, "disconnectType": agent_end, "alertingDurationMs": 4000,
        "interactingDurationMs": plan.ended_at.0 - last_connected.0});
    if let Some((a, b)) = plan.hold {
        user_end["heldDurationMs"] = json!(b.0 - a.0);
    }
    out.event("user.end", last_agent.id, plan.ended_at, user_end);
    out.event("customer.end", "cust", plan.ended_at, json!({"disconnectType": customer_end}));
    if let Some(acw_end) = plan.wrapup_until {
        out.event(
            "acw",
            last_agent.id,
            acw_end,
            json!({"userId": u, "queueId": last_queue, "wrapupCode": format!("wc-{}", plan.disposition), "wrapupNotes": "simulated",
                "wrapupDurationMs": acw_end.0 - plan.ended_at.0}),
        );
    }
    out.natives
}
