//! CCAI Platform: external session events, each a snapshot of the whole
//! call or chat (`{event_id, timestamp, item}`), as in
//! `examples/vendors/ccai-platform/`.

use super::{Native, SessionKind, SessionPlan, rfc, uuid};
use serde_json::{Value, json};
use sessionflow_core::{Channel, Millis};

fn native_id(index: u64) -> u64 {
    10_000 + index
}

pub(super) fn session_id(_seed: u64, plan: &SessionPlan) -> String {
    let prefix = if plan.channel == Channel::Voice { "call" } else { "chat" };
    format!("{prefix}-{}", native_id(plan.index))
}

struct Out<'p> {
    plan: &'p SessionPlan,
    natives: Vec<Native>,
    n: u64,
}

impl Out<'_> {
    /// A snapshot of `item` sent `lag_ms` after the moment `at`.
    fn snapshot(&mut self, item: &Value, at: Millis) {
        self.n += 1;
        let lag = 100 + (self.n * 137) % 400;
        #[allow(clippy::cast_possible_wrap)]
        let sent = at.0 + lag as i64;
        let value = json!({"event_id": uuid(self.plan.seed, self.plan.index, 0xcc00 + self.n), "timestamp": sent, "item": item});
        self.natives.push(Native { at: sent, value, snapshot: true });
    }
}

fn participant(agent: super::Agent, status: &str) -> Value {
    json!({"id": agent.number.to_string(), "type": "agent", "name": agent.name, "status": status})
}

pub(super) fn render(plan: &SessionPlan) -> Vec<Native> {
    let mut out = Out { plan, natives: Vec::new(), n: 0 };
    let voice = plan.channel == Channel::Voice;
    let end_user = json!({"id": format!("eu-{}", plan.index), "type": "end_user", "status": "connected"});
    let mut item = json!({"id": native_id(plan.index), "lang": "en", "status": "connecting", "created_at": rfc(plan.started_at),
        "deflection": "no_deflection", "fail_reason": "nothing", "participants": [end_user]});
    if voice {
        item["call_type"] = json!("Voice Inbound");
        item["support_number"] = json!("+15550100");
    } else {
        item["chat_type"] = json!("Messaging (Web)");
    }
    let ended_at = rfc(plan.ended_at);
    if plan.kind == SessionKind::Contained {
        let bot = json!({"id": "virtual_agent_15", "type": "virtual_agent", "name": "OrderBot", "status": "connected",
            "connected_at": rfc(Millis(plan.started_at.0 + 1000))});
        item["status"] = json!("va_connected");
        item["initiator"] = json!("virtual_agent_15");
        item["participants"] = json!([item["participants"][0].clone(), bot]);
        out.snapshot(&item, Millis(plan.started_at.0 + 1000));
        item["status"] = json!("finished");
        item["participants"][0]["status"] = json!("disconnected");
        item["participants"][1]["status"] = json!("disconnected");
        item["participants"][1]["ended_at"] = json!(ended_at);
        item["ends_at"] = json!(ended_at);
        item["disconnected_by"] = json!("disconnected_by_virtual_agent");
        out.snapshot(&item, plan.ended_at);
        return out.natives;
    }
    if voice {
        out.snapshot(&item, plan.started_at);
    }
    let queued = plan.queued_at.unwrap_or(plan.started_at);
    item["status"] = json!("queued");
    item["queued_at"] = json!(rfc(queued));
    item["menu_path"] = json!({"id": plan.queue.number, "name": plan.queue.name});
    out.snapshot(&item, queued);
    if let (Some(agent), Some(assigned), Some(connected)) = (plan.agent, plan.assigned_at, plan.connected_at) {
        item["status"] = json!("assigned");
        item["assigned_at"] = json!(rfc(assigned));
        item["agent_info"] = json!({"id": agent.number, "name": agent.name});
        push(&mut item, participant(agent, "accepted"));
        out.snapshot(&item, assigned);
        item["status"] = json!("connected");
        item["connected_at"] = json!(rfc(connected));
        item["participants"][1]["status"] = json!("connected");
        item["participants"][1]["connected_at"] = json!(rfc(connected));
        out.snapshot(&item, connected);
        if let Some(second) = &plan.second {
            let started = rfc(second.left_first_at);
            let mut transfer = json!({"id": format!("tr-{}", plan.index), "type": "blind", "status": "in_progress", "from_agent": agent.name,
                "to_queue": second.queue.name, "started_at": started});
            item["status"] = json!("switching");
            item["transfers"] = json!([transfer.clone()]);
            out.snapshot(&item, second.left_first_at);
            transfer["status"] = json!("completed");
            transfer["ended_at"] = json!(rfc(second.queued_at));
            item["transfers"] = json!([transfer]);
            item["status"] = json!("queued");
            item["participants"][1]["status"] = json!("disconnected");
            item["participants"][1]["ended_at"] = json!(rfc(second.queued_at));
            out.snapshot(&item, second.queued_at);
            let a2 = second.agent;
            let mut p2 = participant(a2, "connected");
            p2["connected_at"] = json!(rfc(second.connected_at));
            push(&mut item, p2);
            item["agent_info"] = json!({"id": a2.number, "name": a2.name});
            item["status"] = json!("connected");
            out.snapshot(&item, second.connected_at);
        }
    }
    // The end.
    item["status"] = json!("finished");
    item["ends_at"] = json!(ended_at);
    item["disconnected_by"] = json!(if plan.ended_by_customer { "disconnected_by_end_user" } else { "disconnected_by_agent" });
    let hold_s = plan.hold.map_or(0, |(a, b)| (b.0 - a.0) / 1000);
    item["hold_duration"] = json!(hold_s);
    item["queue_duration"] = json!((plan.assigned_at.unwrap_or(plan.ended_at).0 - queued.0) / 1000);
    if let Some(parts) = item["participants"].as_array_mut() {
        for p in parts.iter_mut() {
            if p["status"] != "disconnected" {
                p["status"] = json!("disconnected");
                if p["type"] != "end_user" {
                    p["ended_at"] = json!(ended_at);
                }
            }
        }
    }
    out.snapshot(&item, plan.ended_at);
    if plan.updated_snapshot && plan.agent.is_some() {
        // The agent submits the disposition; the customer rates the call.
        item["dispositions"] = json!({"code": plan.disposition, "custom_code_id": 77, "note": "simulated"});
        item["rating"] = json!(4);
        if let Some(last) = item["participants"].as_array_mut().and_then(|p| p.last_mut()) {
            last["status"] = json!("dispositionSubmitted");
        }
        out.snapshot(&item, plan.wrapup_until.unwrap_or(plan.ended_at));
    }
    out.natives
}

fn push(item: &mut Value, participant: Value) {
    if let Some(parts) = item["participants"].as_array_mut() {
        parts.push(participant);
    }
}
