//! Session scripts: what happens in a contact, with realistic timings.

use crate::SimRecord;
use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use sessionflow_core::{Channel, Direction, Event, EventType, Millis};

const QUEUES: &[&str] = &["SUPPORT_T1", "SUPPORT_T2", "ORDERS_RETURNS", "BILLING", "SALES"];
const AGENTS: &[(&str, &str)] = &[("Alex B", "a-1"), ("Noam B", "a-2"), ("Ariel C", "a-3"), ("Lee P", "a-4"), ("Sam K", "a-9"), ("Kim D", "a-11")];
const TENANTS: &[&str] = &["acme", "globex", "initech"];
const SOURCES: &[&str] = &["ccaip", "genesys", "zoom", "connect", "twilio"];

struct Script<'r> {
    rng: &'r mut StdRng,
    session_id: String,
    t: i64,
    n: u32,
    events: Vec<Event>,
    channel: Channel,
    direction: Direction,
    tenant: String,
    source: String,
}

impl Script<'_> {
    fn event(&mut self, event_type: &str, attributes: Value) {
        self.n += 1;
        let first = self.events.is_empty();
        self.events.push(Event {
            event_id: format!("{}-{}", self.session_id, self.n),
            session_id: self.session_id.as_str().into(),
            event_type: EventType::parse(event_type),
            occurred_at: Millis(self.t),
            channel: Some(self.channel),
            direction: first.then_some(self.direction),
            tenant: first.then(|| self.tenant.clone()),
            source: first.then(|| self.source.clone()),
            attributes: sessionflow_core::Attributes::from(attributes),
        });
    }

    fn wait(&mut self, lo_ms: i64, hi_ms: i64) {
        self.t += self.rng.random_range(lo_ms..=hi_ms);
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn agent(&mut self) -> (&'static str, &'static str) {
        AGENTS[self.rng.random_range(0..AGENTS.len())]
    }

    fn start(&mut self, extra: Value) {
        let mut attrs = json!({"lang": "en-US", "menu_path": "Orders/Returns", "menu_path_id": "m-17",
            "support_number": "+12223334444", "device": "browser"});
        if self.channel == Channel::Voice {
            attrs["ani"] = json!(format!("+1555{:07}", self.rng.random_range(0..10_000_000)));
        }
        if let (Some(into), Value::Object(from)) = (attrs.as_object_mut(), extra) {
            into.extend(from);
        }
        self.event("session.started", attrs);
    }

    fn ivr(&mut self) {
        self.wait(500, 1500);
        self.event("virtual_agent.started", json!({"virtual_agent": "PN virtual agent - Voice", "platform": "dialogflow"}));
        self.wait(5_000, 30_000);
        self.event("virtual_agent.variables_captured", json!({"intent": "order_status", "variables": {"order": "A-1"}}));
        self.wait(1_000, 5_000);
        self.event("virtual_agent.ended", json!({"virtual_agent": "PN virtual agent - Voice", "outcome": "handoff"}));
    }

    fn queue(&mut self) -> &'static str {
        self.wait(200, 1000);
        let queue = QUEUES[self.rng.random_range(0..QUEUES.len())];
        let priority = self.rng.random_range(1..=8);
        self.event("queue.entered", json!({"queue": queue, "queue_id": format!("q-{}", queue.len()), "priority": priority}));
        queue
    }

    /// Offers until one is taken, then assignment and connection.
    fn answer(&mut self, manual_acceptance: bool) -> &'static str {
        self.wait(5_000, 90_000);
        if manual_acceptance {
            while self.chance(0.3) {
                let (name, id) = self.agent();
                self.event("agent.offered", json!({"agent": name, "agent_id": id}));
                self.wait(5_000, 20_000);
                let reason = self.pick(&["rejected", "timeout", "missed"]);
                self.event("agent.declined", json!({"agent": name, "agent_id": id, "reason": reason}));
                self.wait(1_000, 10_000);
            }
        }
        let (name, id) = self.agent();
        if manual_acceptance {
            self.event("agent.offered", json!({"agent": name, "agent_id": id}));
            self.wait(2_000, 15_000);
        }
        self.event("agent.assigned", json!({"agent": name, "agent_id": id}));
        self.wait(500, 3_000);
        self.event("agent.connected", json!({"agent": name, "agent_id": id}));
        name
    }

    /// Conversation: transcript, sentiment, assist, API calls.
    fn talk(&mut self, extra: u32, agent: &str) {
        for i in 0..extra {
            self.wait(2_000, 20_000);
            match i % 5 {
                0 | 1 => {
                    let speaker = if i % 2 == 0 { "agent" } else { "end_user" };
                    self.event("transcript.segment", json!({"speaker": speaker, "text": "Sure, let me check that for you."}));
                }
                2 => {
                    let score = self.rng.random_range(10..=95);
                    self.event("sentiment.scored", json!({"score": score}));
                }
                3 => self.event("api.request", json!({"method": "GET", "path": "/orders/A-1"})),
                _ => self.event("api.response", json!({"status": 200})),
            }
        }
        if self.chance(0.3) {
            self.wait(1_000, 5_000);
            self.event("agent_assist.summary", json!({"summary": "Customer asked about an order; resolved.", "agent": agent}));
        }
    }

    fn hold(&mut self) {
        self.wait(5_000, 60_000);
        self.event("hold.started", json!({}));
        self.wait(5_000, 90_000);
        self.event("hold.ended", json!({}));
    }

    fn payment(&mut self, agent: &str) {
        self.wait(5_000, 30_000);
        self.event("masking.started", json!({}));
        self.wait(10_000, 40_000);
        self.event(
            "payment.processed",
            json!({"product": "sample product", "amount": "10.00", "currency": "USD",
            "status": "succeeded", "transaction_id": format!("ch_{}", self.n), "agent": agent}),
        );
        self.wait(1_000, 3_000);
        self.event("masking.ended", json!({}));
    }

    /// A transfer; returns the new agent when it completed.
    fn transfer(&mut self, from_agent: &str, from_queue: &str) -> Option<&'static str> {
        self.wait(5_000, 60_000);
        let to_queue = self.pick(QUEUES);
        let kind = self.pick(&["blind", "consult", "external_sip"]);
        let attrs = json!({"from_queue": from_queue, "from_agent": from_agent, "to_queue": to_queue, "kind": kind});
        self.event("transfer.started", attrs.clone());
        self.wait(1_000, 5_000);
        if self.chance(0.2) {
            let mut failed = attrs;
            failed["reason"] = json!("no_answer");
            self.event("transfer.failed", failed);
            return None;
        }
        self.event("transfer.completed", attrs);
        Some(self.answer(false))
    }

    fn end(&mut self, ended_by: &str) {
        self.wait(5_000, 60_000);
        self.event("session.ended", json!({"ended_by": ended_by, "reason": "resolved"}));
    }

    fn wrap_up(&mut self, agent: &str) {
        self.wait(2_000, 20_000);
        let code = self.pick(&["resolved", "follow_up", "escalated", "test001"]);
        self.event(
            "disposition.set",
            json!({"code": code, "notes": "Customer needed opening hours.", "list": "Custom",
            "custom_code_id": "123", "agent": agent}),
        );
        if self.chance(0.3) {
            self.wait(1_000, 5_000);
            self.event("note.received", json!({"text": "Call back next week."}));
        }
        self.wait(2_000, 30_000);
        self.event("wrapup.completed", json!({"agent": agent}));
    }

    fn survey(&mut self) {
        self.wait(500, 2_000);
        self.event(
            "post_session.started",
            json!({"virtual_agent": "PN virtual agent - Survey", "opted_in": true,
            "params": {"order": "yes", "queueId": 502}}),
        );
        self.wait(10_000, 40_000);
        let stars = self.rng.random_range(1..=5);
        let csat = self.rng.random_range(1..=5);
        self.event(
            "survey.response",
            json!({"answers": [
            {"question": "Star rating question", "kind": "stars", "value": stars},
            {"question": "CSAT question", "kind": "csat", "value": csat},
            {"question": "Anything else?", "kind": "text", "value": "Quick and friendly."}]}),
        );
        if self.chance(0.5) {
            self.wait(1_000, 5_000);
            self.event("rating.received", json!({"rating": csat, "comment": "Helpful agent."}));
        }
        self.wait(1_000, 5_000);
        self.event("post_session.ended", json!({"virtual_agent": "PN virtual agent - Survey", "outcome": "completed"}));
    }
}

fn voice_full(s: &mut Script<'_>, extra: u32) {
    s.start(json!({}));
    s.ivr();
    let mut queue = s.queue();
    let mut agent = s.answer(true);
    s.talk(extra, agent);
    if s.chance(0.4) {
        s.hold();
    }
    if s.chance(0.3) {
        s.payment(agent);
    }
    if s.chance(0.3)
        && let Some(new_agent) = s.transfer(agent, queue)
    {
        agent = new_agent;
        queue = "transferred";
        s.talk(extra / 3, agent);
    }
    let _ = queue;
    if s.chance(0.5) {
        s.wait(1_000, 5_000);
        s.event("recording.available", json!({"url": "https://recordings.example/r.mp3", "permission": "agent"}));
    }
    s.end("agent");
    s.wrap_up(agent);
    if s.chance(0.6) {
        s.survey();
    }
}

fn chat(s: &mut Script<'_>, extra: u32) {
    s.start(json!({}));
    s.queue();
    s.wait(500, 2_000);
    s.event("custom_data.received", json!({"membershipNumber": "21754", "model": "1234", "osVersion": "17.3.1"}));
    if s.chance(0.3) {
        s.wait(30_000, 600_000);
        s.event("session.ended", json!({"ended_by": "end_user"}));
        return;
    }
    let agent = s.answer(false);
    s.wait(1_000, 5_000);
    s.event("translation.used", json!({"languages": ["en", "es"]}));
    s.wait(1_000, 5_000);
    s.event("content_card.selected", json!({"card": "returns", "button": "start", "response": "ok"}));
    s.talk(extra, agent);
    s.wait(1_000, 10_000);
    let kind = s.pick(&["photo", "screenshot", "video", "text", "chat_transcript"]);
    s.event("media.uploaded", json!({"kind": kind, "url": "https://media.example/1"}));
    if s.chance(0.3) {
        s.wait(2_000, 10_000);
        s.event("cobrowse.started", json!({"level": "remote"}));
        s.wait(2_000, 10_000);
        s.event("cobrowse.control_requested", json!({"level": "full_device"}));
        s.wait(1_000, 4_000);
        if s.chance(0.7) {
            s.event("cobrowse.control_accepted", json!({"level": "full_device"}));
        } else {
            s.event("cobrowse.control_declined", json!({"level": "full_device"}));
        }
        s.wait(10_000, 60_000);
        s.event("cobrowse.ended", json!({}));
    }
    s.wait(1_000, 5_000);
    s.event("crm.ticket_linked", json!({"ticket_id": "T-100", "url": "https://crm.example/T-100"}));
    s.end("end_user");
    s.wrap_up(agent);
}

fn email(s: &mut Script<'_>, extra: u32) {
    s.start(json!({}));
    s.queue();
    let first = s.answer(false);
    s.wait(1_000, 5_000);
    s.event("email.collected", json!({"email": "user@example.com"}));
    s.talk(extra / 2, first);
    s.wait(60_000, 900_000);
    s.event("engagement.released", json!({"agent": first, "queue": "BILLING_EMAIL"}));
    let second = s.answer(false);
    s.talk(extra / 2, second);
    s.end("agent");
    s.wrap_up(second);
}

fn deflection(s: &mut Script<'_>) {
    s.start(json!({}));
    s.queue();
    s.wait(10_000, 60_000);
    let kind = s.pick(&["sms", "callback", "voicemail"]);
    s.event("deflection.offered", json!({"kind": kind, "queue": "ORDERS_RETURNS"}));
    s.wait(3_000, 15_000);
    if s.chance(0.7) {
        s.event("deflection.accepted", json!({"kind": kind, "queue": "ORDERS_RETURNS"}));
        if kind == "callback" {
            s.wait(1_000, 5_000);
            s.event("phone_number.collected", json!({"inbound": "+15550001111", "callback": "+15550002222"}));
        }
        s.wait(500, 2_000);
        s.event("session.ended", json!({"ended_by": "system"}));
    } else {
        s.event("deflection.declined", json!({"kind": kind, "queue": "ORDERS_RETURNS"}));
        let agent = s.answer(true);
        s.end("end_user");
        s.wrap_up(agent);
    }
}

fn contained(s: &mut Script<'_>, extra: u32) {
    s.start(json!({}));
    s.wait(500, 1_500);
    s.event("virtual_agent.started", json!({"virtual_agent": "PN virtual agent - Chat", "platform": "dialogflow"}));
    // Assigned, then connected once the bot's session is up.
    s.wait(200, 1_000);
    s.event("virtual_agent.connected", json!({"virtual_agent": "PN virtual agent - Chat", "params": {"locale": "en-US"}}));
    for _ in 0..extra.min(4) {
        s.wait(2_000, 8_000);
        s.event("api.request", json!({"path": "/orders"}));
        s.wait(100, 800);
        s.event("api.response", json!({"status": 200}));
    }
    s.wait(2_000, 10_000);
    s.event("virtual_agent.variables_captured", json!({"intent": "order_status", "variables": {"order": "A-9"}}));
    s.wait(2_000, 10_000);
    s.event("virtual_agent.ended", json!({"virtual_agent": "PN virtual agent - Chat", "outcome": "completed"}));
    s.wait(200, 1_000);
    s.event("session.ended", json!({"ended_by": "end_user"}));
}

fn short_abandon(s: &mut Script<'_>) {
    s.start(json!({}));
    s.wait(300, 800);
    s.event("virtual_agent.started", json!({"virtual_agent": "PN virtual agent - Voice"}));
    s.wait(500, 2_500);
    s.event("session.ended", json!({"ended_by": "end_user"}));
}

fn outbound(s: &mut Script<'_>, extra: u32) {
    s.start(json!({"outbound_number": "+12223335555"}));
    let (name, id) = s.agent();
    s.wait(500, 2_000);
    s.event("agent.assigned", json!({"agent": name, "agent_id": id}));
    s.wait(5_000, 20_000);
    s.event("agent.connected", json!({"agent": name, "agent_id": id}));
    s.wait(1_000, 3_000);
    s.event("sip.headers", json!({"headers": {"X-Campaign": "renewals"}}));
    s.talk(extra, name);
    s.wait(2_000, 10_000);
    s.event("participant.add_started", json!({"participant": "p-77", "role": "third_party", "by": name}));
    s.wait(2_000, 10_000);
    if s.chance(0.7) {
        s.event("participant.added", json!({"participant": "p-77", "role": "third_party", "by": name}));
        s.wait(20_000, 120_000);
        s.event("participant.left", json!({"participant": "p-77", "role": "third_party"}));
    } else {
        s.event("participant.add_failed", json!({"participant": "p-77", "role": "third_party", "reason": "busy"}));
        s.wait(1_000, 3_000);
        s.event("sip.redirected", json!({"destination": "sip:backoffice@example.com", "params": {"reason": "busy"}}));
    }
    s.end("agent");
    s.wrap_up(name);
}

fn scheduled_callback(s: &mut Script<'_>, extra: u32) {
    s.start(json!({}));
    s.wait(1_000, 3_000);
    let due = Millis(s.t + 1_800_000).to_rfc3339();
    s.event("session.scheduled", json!({"scheduled_for": due}));
    s.wait(60_000, 300_000);
    s.queue();
    let agent = s.answer(true);
    s.wait(2_000, 10_000);
    s.event("verification.completed", json!({"by": agent, "method": "dob"}));
    if s.chance(0.05) {
        s.wait(1_000, 5_000);
        s.event("emergency.requested", json!({"by": agent}));
    }
    s.talk(extra, agent);
    s.end("end_user");
    s.wrap_up(agent);
}

/// One session's events in event-time order.
pub(crate) fn session(rng: &mut StdRng, n: u64, start: Millis, extra: u32) -> Vec<Event> {
    let roll: f64 = rng.random();
    let (prefix, channel, direction) = match roll {
        r if r < 0.30 => ("call", Channel::Voice, Direction::Inbound),
        r if r < 0.50 => ("chat", Channel::Chat, Direction::Inbound),
        r if r < 0.60 => ("email", Channel::Email, Direction::Inbound),
        r if r < 0.70 => ("call", Channel::Voice, Direction::Inbound),
        r if r < 0.78 => ("msg", Channel::Messaging, Direction::Inbound),
        r if r < 0.83 => ("call", Channel::Voice, Direction::Inbound),
        r if r < 0.90 => ("call", Channel::Voice, Direction::Outbound),
        r if r < 0.95 => ("call", Channel::Voice, Direction::Inbound),
        _ => ("video", Channel::Video, Direction::Inbound),
    };
    let tenant = TENANTS[(n % TENANTS.len() as u64) as usize].to_owned();
    let source = SOURCES[rng.random_range(0..SOURCES.len())].to_owned();
    let mut script = Script { rng, session_id: format!("{prefix}-{n}"), t: start.0, n: 0, events: Vec::new(), channel, direction, tenant, source };
    match roll {
        r if r < 0.30 => voice_full(&mut script, extra),
        r if r < 0.50 => chat(&mut script, extra),
        r if r < 0.60 => email(&mut script, extra),
        r if r < 0.70 => deflection(&mut script),
        r if r < 0.78 => contained(&mut script, extra),
        r if r < 0.83 => short_abandon(&mut script),
        r if r < 0.90 => outbound(&mut script, extra),
        r if r < 0.95 => scheduled_callback(&mut script, extra),
        _ => chat(&mut script, extra),
    }
    script.events
}

/// An erasure request for a session.
pub(crate) fn erasure(session_id: &str, at: Millis) -> Event {
    Event {
        event_id: format!("{session_id}-erase"),
        session_id: session_id.into(),
        event_type: EventType::SessionErased,
        occurred_at: at,
        channel: None,
        direction: None,
        tenant: None,
        source: None,
        attributes: sessionflow_core::Attributes::from(json!({"reason": "gdpr_request"})),
    }
}

/// A malformed record derived from a real event, one class of the
/// dead-letter list at a time.
pub(crate) fn malformed(rng: &mut StdRng, event: &Event) -> SimRecord {
    let key = Some(event.session_id.as_bytes().to_vec());
    let mut json = serde_json::to_value(event).unwrap_or(Value::Null);
    let (reason, value) = match rng.random_range(0..20) {
        0..=4 => ("decode_error", b"{\"event_id\": \"trunc".to_vec()),
        5..=9 => {
            json.as_object_mut().map(|o| o.remove("event_id"));
            ("missing_field", json.to_string().into_bytes())
        }
        10..=14 => {
            json["occurred_at"] = json!("yesterday at noon");
            ("bad_timestamp", json.to_string().into_bytes())
        }
        15..=18 => {
            json["session_id"] = json!(12345);
            ("bad_field_type", json.to_string().into_bytes())
        }
        _ => {
            json["attributes"] = json!({"blob": "x".repeat(520 * 1024)});
            ("oversize", json.to_string().into_bytes())
        }
    };
    SimRecord::Malformed { key, value, reason }
}
