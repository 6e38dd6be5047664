//! Zoom Contact Center: `contact_center.*` webhook bodies, as in
//! `examples/vendors/zoom-contact-center/`. One engagement id across
//! transfers and releases.

use super::{Native, SessionKind, SessionPlan};
use serde_json::{Value, json};
use sessionflow_core::{Channel, Millis};

struct Out<'p> {
    plan: &'p SessionPlan,
    natives: Vec<Native>,
}

impl Out<'_> {
    fn event(&mut self, event: &str, at: Millis, fields: Value) {
        let mut object = json!({"engagement_id": self.plan.session_id});
        if let (Some(o), Value::Object(fields)) = (object.as_object_mut(), fields) {
            o.extend(fields);
        }
        let value = json!({"event": format!("contact_center.{event}"), "event_ts": at.0, "payload": {"account_id": "acct-zcc-sim", "object": object}});
        self.natives.push(Native { at: at.0, value, snapshot: false });
    }
}

fn user(id: &str) -> String {
    format!("u-{id}")
}

pub(super) fn render(plan: &SessionPlan) -> Vec<Native> {
    let mut out = Out { plan, natives: Vec::new() };
    let channel = match plan.channel {
        Channel::Voice => "voice",
        Channel::Messaging => "messaging",
        _ => "chat",
    };
    let task = format!("t-{}", plan.index);
    let (qid, qname) = (format!("q-{}", plan.queue.id), plan.queue.name);
    let mut started = json!({"channel": channel, "direction": "inbound"});
    if plan.channel == Channel::Voice {
        started["channel_source"] = json!("phone_number");
        started["caller_number"] = json!(plan.ani);
        started["callee_number"] = json!("+15550199");
        started["flow_id"] = json!("fl-main");
    } else if plan.channel == Channel::Messaging {
        started["channel_source"] = json!("whatsapp");
    } else {
        started["channel_source"] = json!("in_app_chat");
    }
    out.event("engagement_started", plan.started_at, started);
    let queued = plan.queued_at.unwrap_or(plan.started_at);
    out.event("task_created", queued, json!({"task_id": task, "task_status": "pending", "channel_name": channel, "queue_id": qid, "queue_name": qname}));
    for d in &plan.declines {
        let a =
            json!({"task_id": task, "assigned_user_id": user(d.agent.id), "assigned_user_display_name": d.agent.name, "queue_id": qid, "queue_name": qname});
        out.event("task_reservation_created", d.offered_at, a.clone());
        out.event(if d.rejected { "task_reservation_rejected" } else { "task_reservation_timeout" }, d.declined_at, a);
    }
    match plan.kind {
        SessionKind::AbandonedInQueue => {
            out.event("engagement_ended", plan.ended_at, json!({"channel": channel}));
            out.event(
                "task_canceled",
                Millis(plan.ended_at.0 + 1000),
                json!({"task_id": task, "task_status": "canceled", "channel_name": channel, "queue_name": qname}),
            );
            return out.natives;
        }
        SessionKind::DeflectedCallback => {
            let at = plan.deflected_at.unwrap_or(plan.ended_at);
            out.event("queue_scheduled_callback_created", at, json!({"queue_id": qid, "queue_name": qname, "callback_number": plan.ani}));
            out.event("engagement_ended", plan.ended_at, json!({"channel": channel}));
            return out.natives;
        }
        _ => {}
    }
    let (Some(agent), Some(assigned), Some(connected)) = (plan.agent, plan.assigned_at, plan.connected_at) else { return out.natives };
    let reserved = json!({"task_id": task, "assigned_user_id": user(agent.id), "assigned_user_display_name": agent.name, "queue_id": qid, "queue_name": qname});
    out.event("task_reservation_created", Millis(assigned.0 - 1000), reserved.clone());
    out.event("task_reservation_accepted", assigned, reserved);
    let me = |a: super::Agent| json!({"user_id": user(a.id), "user_display_name": a.name, "channel": channel});
    out.event("engagement_user_answered", connected, me(agent));
    if let Some((a, b)) = plan.hold {
        out.event("engagement_user_hold", a, me(agent));
        out.event("engagement_user_unhold", b, me(agent));
    }
    let mut last = agent;
    if let Some(second) = &plan.second {
        let left = second.left_first_at;
        let a2 = second.agent;
        if plan.kind == SessionKind::Transferred {
            let (q2id, q2name) = (format!("q-{}", second.queue.id), second.queue.name);
            out.event(
                "engagement_transfer_initiated",
                left,
                json!({"queue_id": qid, "queue_name": qname, "transfer_type": "cold", "user_id": user(agent.id), "user_display_name": agent.name,
                    "transfer_to_queue_id": q2id, "transfer_to_queue_name": q2name}),
            );
            out.event("engagement_transfer_queued", second.queued_at, json!({"transfer_to_queue_id": q2id, "transfer_to_queue_name": q2name}));
            out.event("engagement_user_ended", Millis(second.queued_at.0 + 1000), me(agent));
            let to = json!({"transfer_to_user_id": user(a2.id), "transfer_to_user_display_name": a2.name, "transfer_to_queue_id": q2id, "transfer_to_queue_name": q2name});
            out.event("engagement_transfer_reserved", Millis(second.assigned_at.0 - 1000), to.clone());
            out.event("engagement_transfer_accepted", second.assigned_at, to);
        } else {
            // Async: the agent releases the engagement back to the queue.
            out.event(
                "task_updated",
                left,
                json!({"task_id": task, "task_status": "pending", "queue_name": qname, "assigned_user_id": user(agent.id), "assigned_user_display_name": agent.name}),
            );
            let r2 = json!({"task_id": task, "queue_name": qname, "assigned_user_id": user(a2.id), "assigned_user_display_name": a2.name});
            out.event("task_reservation_created", Millis(second.assigned_at.0 - 1000), r2.clone());
            out.event("task_reservation_accepted", second.assigned_at, r2);
        }
        out.event("engagement_user_answered", second.connected_at, me(a2));
        last = a2;
    }
    out.event("engagement_user_ended", plan.ended_at, me(last));
    out.event("engagement_ended", Millis(plan.ended_at.0 + 1000), json!({"channel": channel, "direction": "inbound"}));
    let done = plan.wrapup_until.unwrap_or(plan.ended_at);
    let mut completed = json!({"task_id": task, "task_status": "completed", "user_id": user(last.id), "user_display_name": last.name, "queue_name": qname});
    if plan.updated_snapshot {
        completed["dispositions"] =
            json!([{"disposition_id": "d-1", "disposition_name": "general"}, {"disposition_id": "d-2", "disposition_name": plan.disposition}]);
    } else {
        completed["disposition_id"] = json!("d-2");
        completed["disposition_name"] = json!(plan.disposition);
    }
    out.event("task_completed", Millis(done.0.max(plan.ended_at.0 + 2000)), completed);
    out.natives
}
