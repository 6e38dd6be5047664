//! Twilio TaskRouter: workspace event callbacks as JSON objects of strings,
//! as in `examples/vendors/twilio-taskrouter/transferred.jsonl`. A transfer
//! creates a second task carrying Flex's `conversations.conversation_id`.

use super::{Native, SessionKind, SessionPlan, sid};
use serde_json::{Map, Value, json};
use sessionflow_core::{Channel, Millis};

const ACCOUNT: &str = "AC11111111111111111111111111111111";
const WORKSPACE: &str = "WS22222222222222222222222222222222";

pub(super) fn task_sid(seed: u64, index: u64, leg: u64) -> String {
    sid("WT", seed, index, leg)
}

fn queue_sid(id: &str) -> String {
    format!("WQ{:0>32}", hex(id))
}

fn worker_sid(id: &str) -> String {
    format!("WK{:0>32}", hex(id))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect::<String>().chars().take(32).collect()
}

struct Task {
    sid: String,
    attributes: Value,
    created: Millis,
    queue: Option<(String, &'static str)>,
    worker: Option<(String, &'static str, String)>,
}

struct Out<'p> {
    plan: &'p SessionPlan,
    natives: Vec<Native>,
    n: u64,
}

impl Out<'_> {
    fn event(&mut self, task: &Task, event_type: &str, at: Millis, extra: Value) {
        self.n += 1;
        let resource = if event_type.starts_with("reservation.") { "Reservation" } else { "Task" };
        let mut o = Map::new();
        let mut put = |k: &str, v: String| {
            o.insert(k.to_owned(), Value::String(v));
        };
        put("EventType", event_type.to_owned());
        put("AccountSid", ACCOUNT.to_owned());
        put("WorkspaceSid", WORKSPACE.to_owned());
        put("WorkspaceName", "Flex Task Assignment".to_owned());
        put("EventDescription", format!("{event_type} for {}", task.sid));
        put("ResourceType", resource.to_owned());
        put("ResourceSid", task.sid.clone());
        put("Sid", sid("EV", self.plan.seed, self.plan.index, self.n));
        put("Timestamp", (at.0 / 1000).to_string());
        put("TaskSid", task.sid.clone());
        put("TaskAttributes", task.attributes.to_string());
        put("TaskChannelUniqueName", if self.plan.channel == Channel::Voice { "voice" } else { "chat" }.to_owned());
        put("TaskAge", ((at.0 - task.created.0) / 1000).to_string());
        put("TimestampMs", at.0.to_string());
        if let Some((sid, name)) = &task.queue {
            put("TaskQueueSid", sid.clone());
            put("TaskQueueName", (*name).to_owned());
            put("TaskPriority", "1".to_owned());
        }
        if let Some((sid, name, reservation)) = &task.worker {
            put("WorkerSid", sid.clone());
            put("WorkerName", (*name).to_owned());
            put("ReservationSid", reservation.clone());
        }
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                o.insert(k, v);
            }
        }
        self.natives.push(Native { at: at.0, value: Value::Object(o), snapshot: false });
    }
}

pub(super) fn render(plan: &SessionPlan) -> Vec<Native> {
    let mut out = Out { plan, natives: Vec::new(), n: 0 };
    let first = task_sid(plan.seed, plan.index, 1);
    let channel_type = if plan.channel == Channel::Voice { "voice" } else { "web" };
    let base = json!({"type": "inbound", "direction": "inbound", "from": plan.ani, "to": "+15550199", "channelType": channel_type});
    let mut task = Task { sid: first.clone(), attributes: base.clone(), created: plan.started_at, queue: None, worker: None };
    out.event(&task, "task.created", plan.started_at, json!({}));
    let queued = plan.queued_at.unwrap_or(plan.started_at);
    task.queue = Some((queue_sid(plan.queue.id), plan.queue.name));
    out.event(&task, "task-queue.entered", queued, json!({}));
    for (i, d) in plan.declines.iter().enumerate() {
        task.worker = Some((worker_sid(d.agent.id), d.agent.name, sid("WR", plan.seed, plan.index, 100 + i as u64)));
        out.event(&task, "reservation.created", d.offered_at, json!({}));
        out.event(&task, if d.rejected { "reservation.rejected" } else { "reservation.timeout" }, d.declined_at, json!({}));
        task.worker = None;
    }
    match plan.kind {
        SessionKind::AbandonedInQueue => {
            out.event(&task, "task.canceled", plan.ended_at, json!({"TaskCanceledReason": "hangup"}));
            return out.natives;
        }
        SessionKind::DeflectedCallback => {
            let at = plan.deflected_at.unwrap_or(plan.ended_at);
            out.event(&task, "task.canceled", at, json!({"TaskCanceledReason": "Callback requested by caller"}));
            return out.natives;
        }
        _ => {}
    }
    let (Some(agent), Some(assigned)) = (plan.agent, plan.assigned_at) else { return out.natives };
    task.worker = Some((worker_sid(agent.id), agent.name, sid("WR", plan.seed, plan.index, 1)));
    out.event(&task, "reservation.created", assigned, json!({}));
    // Flex joins the agent on accept: the plan's connection is the accept.
    out.event(&task, "reservation.accepted", plan.connected_at.unwrap_or(assigned), json!({}));
    let hang_up_by = if plan.ended_by_customer { "Customer" } else { "Agent" };
    let outcome = plan.disposition;
    if let Some(second) = &plan.second {
        let to = queue_sid(second.queue.id);
        task.attributes["conversations"] = json!({"conversation_id": first, "followed_by": "Transfer to Queue"});
        let transfer = |status: Option<&str>| {
            let mut v = json!({"TransferType": "QUEUE", "TransferTo": to, "TransferMode": "COLD", "TransferSid": sid("TT", plan.seed, plan.index, 1),
                "TransferInitiatingWorkerSid": worker_sid(agent.id), "TransferInitiatingReservationSid": sid("WR", plan.seed, plan.index, 1)});
            if let Some(status) = status {
                v["TransferStatus"] = json!(status);
            }
            v
        };
        let left = second.left_first_at;
        out.event(&task, "task.transfer-initiated", left, transfer(None));
        let mut attrs2 = base;
        attrs2["transferTargetType"] = json!("queue");
        attrs2["conversations"] = json!({"conversation_id": first, "preceded_by": "Transfer"});
        let mut task2 = Task { sid: task_sid(plan.seed, plan.index, 2), attributes: attrs2, created: Millis(left.0 + 1000), queue: None, worker: None };
        out.event(&task2, "task.created", task2.created, json!({}));
        task2.queue = Some((to.clone(), second.queue.name));
        out.event(&task2, "task-queue.entered", second.queued_at, json!({}));
        out.event(&task, "task.wrapup", Millis(left.0 + 2000), json!({}));
        out.event(&task, "task.completed", Millis(left.0 + 20_000), json!({"TaskCompletedReason": "Task transferred"}));
        task2.worker = Some((worker_sid(second.agent.id), second.agent.name, sid("WR", plan.seed, plan.index, 2)));
        out.event(&task2, "reservation.created", second.assigned_at, json!({}));
        out.event(&task2, "reservation.accepted", second.connected_at, json!({}));
        out.event(&task, "task.transfer-completed", Millis(second.connected_at.0 + 500), transfer(Some("completed")));
        task2.attributes["conversations"]["hang_up_by"] = json!(hang_up_by);
        task2.attributes["conversations"]["outcome"] = json!(outcome);
        out.event(&task2, "task.wrapup", plan.ended_at, json!({}));
        let done = plan.wrapup_until.unwrap_or(plan.ended_at);
        out.event(&task2, "task.completed", done, json!({"TaskCompletedReason": "Task completed"}));
        return out.natives;
    }
    task.attributes["conversations"] = json!({"hang_up_by": hang_up_by, "outcome": outcome});
    out.event(&task, "task.wrapup", plan.ended_at, json!({}));
    let done = plan.wrapup_until.unwrap_or(plan.ended_at);
    out.event(&task, "task.completed", done, json!({"TaskCompletedReason": "Task completed"}));
    out.natives
}
