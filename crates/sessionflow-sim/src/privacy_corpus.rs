//! Input records with seeded personal values in every carrier, for the
//! privacy leak tests (`docs/privacy.md`): canonical events of every type
//! that carries personal data, native records of the five vendors with
//! personal data where those platforms put it, and malformed records
//! (broken JSON, missing fields, bad times and types, bytes that are not
//! JSON) holding seeded values too. Each seeded value is distinctive
//! (`seed-pii-0007-…`, `+15550190007`, `seed-pii-0007@example.net`,
//! `90417000007`), so finding it in an output, or its SHA-256, proves a
//! leak.

use serde_json::{Value, json};
use sessionflow_adapters::InputFormat;

/// One input record of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusRecord {
    /// The adapter that reads it (`Canonical` for sessionflow's own event).
    pub format: InputFormat,
    /// Record key: the session id the adapter derives, as a bridge keys it.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub value: Vec<u8>,
    /// What it is, for failure messages.
    pub what: String,
    /// It cannot be used: a dead letter.
    pub malformed: bool,
}

/// Which class of the privacy policy a seeded value's carrier belongs to,
/// or how else the policy reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeedCarrier {
    /// `privacy.contact`.
    Contact,
    /// `privacy.text`.
    Text,
    /// `privacy.custom`.
    Custom,
    /// `privacy.link`.
    Link,
    /// `privacy.staff`.
    Staff,
    /// `privacy.vendor`.
    Vendor,
    /// An attribute outside the canonical model (`privacy.unknown_attributes`).
    Unknown,
    /// Only in records that become dead letters (`dead_letter.payload`).
    DeadLetterOnly,
    /// A vendor field the adapter never copies (it must reach no output in
    /// any setting).
    NeverCopied,
}

/// One seeded personal value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// The value as it is written in the record (a number's digits).
    pub value: String,
    /// Where it sits.
    pub carrier: SeedCarrier,
    /// The record and field, for failure messages.
    pub place: String,
}

/// The corpus: records and the seeded values they hold.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyCorpus {
    /// The records, in input order.
    pub records: Vec<CorpusRecord>,
    /// Every seeded value.
    pub seeds: Vec<Seed>,
    /// The session that is erased (it has an event after its erasure).
    pub erased_session: String,
}

impl PrivacyCorpus {
    /// The seeds of one carrier.
    pub fn seeds_of(&self, carrier: SeedCarrier) -> impl Iterator<Item = &Seed> {
        self.seeds.iter().filter(move |s| s.carrier == carrier)
    }
}

struct Builder {
    records: Vec<CorpusRecord>,
    seeds: Vec<Seed>,
}

impl Builder {
    fn seed(&mut self, carrier: SeedCarrier, place: &str, value: String) -> String {
        assert!(!self.seeds.iter().any(|s| s.value == value), "seed {value} twice");
        self.seeds.push(Seed { value: value.clone(), carrier, place: place.to_owned() });
        value
    }

    fn n(&self) -> usize {
        self.seeds.len() + 1
    }

    /// A free-text or name seed: `seed-pii-0007-<slug>`.
    fn text(&mut self, carrier: SeedCarrier, place: &str) -> String {
        let slug: String = place.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let value = format!("seed-pii-{:04}-{slug}", self.n());
        self.seed(carrier, place, value)
    }

    /// A phone number seed: `+15550190007`.
    fn phone(&mut self, carrier: SeedCarrier, place: &str) -> String {
        let value = format!("+1555019{:04}", self.n());
        self.seed(carrier, place, value)
    }

    /// An email seed.
    fn email(&mut self, carrier: SeedCarrier, place: &str) -> String {
        let value = format!("seed-pii-{:04}@example.net", self.n());
        self.seed(carrier, place, value)
    }

    /// A link seed.
    fn link(&mut self, carrier: SeedCarrier, place: &str) -> String {
        let value = format!("https://records.example.net/seed-pii-{:04}", self.n());
        self.seed(carrier, place, value)
    }

    /// A numeric seed (an account number sent as a JSON number).
    fn number(&mut self, carrier: SeedCarrier, place: &str) -> u64 {
        let value = 90_417_000_000 + self.n() as u64;
        self.seed(carrier, place, value.to_string());
        value
    }

    fn push(&mut self, format: InputFormat, key: &str, value: Vec<u8>, what: &str) {
        let malformed = what.starts_with("malformed");
        self.records.push(CorpusRecord { format, key: Some(key.as_bytes().to_vec()), value, what: what.to_owned(), malformed });
    }

    fn json(&mut self, format: InputFormat, key: &str, value: &Value, what: &str) {
        self.push(format, key, serde_json::to_vec(value).expect("JSON"), what);
    }
}

const T0: &str = "2026-03-02T10:00:";

fn at(second: u32) -> String {
    format!("{T0}{second:02}Z")
}

/// The corpus. Deterministic: the same records and seeds on every call.
pub fn privacy_corpus() -> PrivacyCorpus {
    use SeedCarrier::*;
    let mut b = Builder { records: Vec::new(), seeds: Vec::new() };

    // Canonical events: one session through every carrier.
    let s = "pii-canonical-1";
    let mut n = 0;
    let mut ev = |b: &mut Builder, t: &str, attrs: Value| {
        n += 1;
        let mut v = json!({"event_id": format!("c{n:02}"), "session_id": s, "type": t, "occurred_at": at(n), "attributes": attrs});
        if t == "session.started" {
            v["channel"] = json!("voice");
            v["direction"] = json!("inbound");
        }
        b.json(InputFormat::Canonical, s, &v, t);
    };
    let attrs = json!({"ani": b.phone(Contact, "session.started ani"), "outbound_number": b.phone(Contact, "session.started outbound_number"),
        "support_number": "+18005550100", "lang": "en", "caller_name": b.text(Unknown, "session.started unknown caller_name")});
    ev(&mut b, "session.started", attrs);
    let attrs = json!({"virtual_agent": "Bot", "params": {"customer_phone": b.phone(Contact, "virtual_agent.started params.customer_phone"),
        "order": b.text(Custom, "virtual_agent.started params.order"), "pin": b.number(Custom, "virtual_agent.started params.pin")}});
    ev(&mut b, "virtual_agent.started", attrs);
    let attrs = json!({"virtual_agent": "Bot", "params": {"context": b.text(Custom, "virtual_agent.connected params.context")}});
    ev(&mut b, "virtual_agent.connected", attrs);
    let attrs = json!({"intent": "billing", "variables": {"full_name": b.text(Custom, "variables.full_name"), "dob": b.text(Custom, "variables.dob"),
        "email": b.email(Contact, "variables.email")}});
    ev(&mut b, "virtual_agent.variables_captured", attrs);
    let attrs = json!({"loyalty_id": b.text(Custom, "custom_data loyalty_id"), "email": b.email(Contact, "custom_data email"),
        "account_number": b.number(Custom, "custom_data account_number"), "profile": {"street": b.text(Custom, "custom_data profile.street"), "vip": true}});
    ev(&mut b, "custom_data.received", attrs);
    ev(&mut b, "virtual_agent.ended", json!({"virtual_agent": "Bot", "outcome": "handoff"}));
    let attrs = json!({"inbound": b.phone(Contact, "phone_number.collected inbound"), "callback": b.phone(Contact, "phone_number.collected callback")});
    ev(&mut b, "phone_number.collected", attrs);
    let attrs = json!({"email": b.email(Contact, "email.collected email")});
    ev(&mut b, "email.collected", attrs);
    ev(&mut b, "queue.entered", json!({"queue": "Support", "queue_id": "q-1", "priority": 2}));
    let agent = b.text(Staff, "agent name");
    ev(&mut b, "agent.offered", json!({"agent": agent, "agent_id": "a-1"}));
    ev(&mut b, "agent.assigned", json!({"agent": agent, "agent_id": "a-1"}));
    ev(&mut b, "agent.connected", json!({"agent": agent, "agent_id": "a-1"}));
    let attrs = json!({"destination": b.phone(Contact, "sip.headers destination"),
        "headers": {"P-Asserted-Identity": b.text(Custom, "sip.headers P-Asserted-Identity"), "X-Caller": b.phone(Custom, "sip.headers X-Caller")}});
    ev(&mut b, "sip.headers", attrs);
    let attrs = json!({"destination": b.phone(Contact, "sip.redirected destination"), "params": {"user": b.text(Custom, "sip.redirected params.user")}});
    ev(&mut b, "sip.redirected", attrs);
    let attrs = json!({"method": "POST", "body": {"ssn": b.text(Custom, "api.request body.ssn")}});
    ev(&mut b, "api.request", attrs);
    let attrs = json!({"status": 200, "body": {"balance": b.number(Custom, "api.response body.balance"), "name": b.text(Custom, "api.response body.name")}});
    ev(&mut b, "api.response", attrs);
    let attrs = json!({"speaker": "end_user", "text": b.text(Text, "transcript.segment text")});
    ev(&mut b, "transcript.segment", attrs);
    let attrs = json!({"text": b.text(Text, "note.received text")});
    ev(&mut b, "note.received", attrs);
    let attrs = json!({"card": "c", "button": "b", "response": b.text(Text, "content_card.selected response")});
    ev(&mut b, "content_card.selected", attrs);
    let third = b.phone(Contact, "participant.added participant");
    let attrs = json!({"participant": third, "role": "third_party", "by": b.text(Staff, "participant.added by")});
    ev(&mut b, "participant.added", attrs);
    ev(&mut b, "participant.left", json!({"participant": third}));
    let attrs = json!({"participant": b.phone(Contact, "participant.add_failed participant"), "role": "third_party", "reason": "busy"});
    ev(&mut b, "participant.add_failed", attrs);
    let attrs = json!({"by": b.text(Staff, "verification.completed by"), "method": "dob"});
    ev(&mut b, "verification.completed", attrs);
    let attrs = json!({"ticket_id": "T-1", "url": b.link(Link, "crm.ticket_linked url")});
    ev(&mut b, "crm.ticket_linked", attrs);
    let attrs = json!({"kind": "photo", "url": b.link(Link, "media.uploaded url")});
    ev(&mut b, "media.uploaded", attrs);
    let attrs = json!({"url": b.link(Link, "recording.available url"), "urls": [b.link(Link, "recording.available urls")]});
    ev(&mut b, "recording.available", attrs);
    let attrs = json!({"product": "p", "amount": 10, "agent": agent});
    ev(&mut b, "payment.processed", attrs);
    let attrs = json!({"from_agent": agent, "to_agent": b.text(Staff, "transfer.started to_agent"), "kind": "consult"});
    ev(&mut b, "transfer.started", attrs);
    ev(&mut b, "transfer.failed", json!({"reason": "no answer"}));
    ev(&mut b, "session.ended", json!({"ended_by": "end_user"}));
    let attrs = json!({"code": "resolved", "notes": b.text(Text, "disposition.set notes"), "agent": agent});
    ev(&mut b, "disposition.set", attrs);
    let attrs = json!({"summary": b.text(Text, "agent_assist.summary summary"), "agent": agent});
    ev(&mut b, "agent_assist.summary", attrs);
    ev(&mut b, "wrapup.completed", json!({"agent": agent}));
    let attrs = json!({"rating": 2, "comment": b.text(Text, "rating.received comment")});
    ev(&mut b, "rating.received", attrs);
    let attrs = json!({"answers": [{"question": "why", "kind": "text", "value": b.text(Text, "survey.response text answer")}, {"question": "csat", "kind": "csat", "value": 4}]});
    ev(&mut b, "survey.response", attrs);
    let attrs = json!({"virtual_agent": "Survey", "opted_in": true, "params": {"callback_to": b.phone(Custom, "post_session.started params.callback_to")}});
    ev(&mut b, "post_session.started", attrs);
    let attrs = json!({"face": b.text(Unknown, "robot.danced unknown attribute")});
    ev(&mut b, "robot.danced", attrs);

    // An erased session: nothing of it after its erasure.
    let erased = "pii-erased-1";
    let start = json!({"event_id": "e1", "session_id": erased, "type": "session.started", "occurred_at": at(1), "channel": "chat",
        "attributes": {"ani": b.phone(Contact, "erased session.started ani")}});
    b.json(InputFormat::Canonical, erased, &start, "erased session start");
    b.json(InputFormat::Canonical, erased, &json!({"event_id": "e2", "session_id": erased, "type": "session.erased", "occurred_at": at(2)}), "erasure");
    let late = json!({"event_id": "e3", "session_id": erased, "type": "email.collected", "occurred_at": at(3),
        "attributes": {"email": b.email(Contact, "erased session late email")}});
    b.json(InputFormat::Canonical, erased, &late, "event after the erasure");

    // Malformed canonical records.
    let broken =
        format!(r#"{{"event_id":"m1","session_id":"pii-bad-1","type":"email.collected","attributes":{{"email":"{}""#, b.email(DeadLetterOnly, "broken JSON"));
    b.push(InputFormat::Canonical, "pii-bad-1", broken.into_bytes(), "malformed: broken JSON");
    let missing =
        json!({"event_id": "m2", "session_id": "pii-bad-2", "type": "note.received", "attributes": {"text": b.text(DeadLetterOnly, "missing occurred_at")}});
    b.json(InputFormat::Canonical, "pii-bad-2", &missing, "malformed: missing occurred_at");
    let bad_time = json!({"event_id": "m3", "session_id": "pii-bad-3", "type": "transcript.segment", "occurred_at": b.text(DeadLetterOnly, "bad time value"),
        "attributes": {"text": b.text(DeadLetterOnly, "bad time transcript")}});
    b.json(InputFormat::Canonical, "pii-bad-3", &bad_time, "malformed: bad timestamp");
    let bad_type = json!({"event_id": "m4", "session_id": "pii-bad-4", "type": "session.started", "occurred_at": at(4), "channel": "voice",
        "attributes": {"ani": b.number(DeadLetterOnly, "ani as a number"), "lang": "en"}});
    b.json(InputFormat::Canonical, "pii-bad-4", &bad_type, "malformed: ani of the wrong type");
    let bad_channel = json!({"event_id": "m5", "session_id": "pii-bad-5", "type": "session.started", "occurred_at": at(5),
        "channel": b.text(DeadLetterOnly, "bad channel value"), "attributes": {"email": b.email(DeadLetterOnly, "bad channel unknown email")}});
    b.json(InputFormat::Canonical, "pii-bad-5", &bad_channel, "malformed: bad channel");
    let too_early = json!({"event_id": "m6", "session_id": "pii-bad-6", "type": "session.started", "occurred_at": "1970-01-01T00:00:01Z", "channel": "voice",
        "attributes": {"ani": b.phone(DeadLetterOnly, "untrusted time ani"), "extra": {"note": b.text(DeadLetterOnly, "untrusted time extra note")}}});
    b.json(InputFormat::Canonical, "pii-bad-6", &too_early, "malformed: occurred_at before engine.min_event_time");
    let mut not_utf8 = format!(r#"{{"event_id":"m7","attributes":{{"email":"{}"#, b.email(DeadLetterOnly, "not UTF-8")).into_bytes();
    not_utf8.extend_from_slice(b"\xff\"}}");
    b.push(InputFormat::Canonical, "pii-bad-7", not_utf8, "malformed: not UTF-8");
    let mut avro = vec![0, 0, 0, 0, 1, 0x10];
    avro.extend_from_slice(b.phone(DeadLetterOnly, "Avro-framed bytes").as_bytes());
    b.push(InputFormat::Canonical, "pii-bad-8", avro, "malformed: Avro-framed bytes");

    connect(&mut b);
    genesys(&mut b);
    twilio(&mut b);
    zoom(&mut b);
    ccaip(&mut b);
    PrivacyCorpus { records: b.records, seeds: b.seeds, erased_session: erased.to_owned() }
}

fn connect(b: &mut Builder) {
    use SeedCarrier::*;
    let f = InputFormat::AmazonConnect;
    let contact = "c9000000-0000-4000-8000-000000000001";
    let instance = "arn:aws:connect:us-east-1:111122223333:instance/inst-0001";
    let event = |id: &str, time: &str, detail: Value| {
        json!({"version": "0", "id": id, "detail-type": "Amazon Connect Contact Event", "source": "aws.connect", "account": "111122223333",
            "time": time, "region": "us-east-1", "resources": [], "detail": detail})
    };
    let detail = json!({"eventType": "INITIATED", "contactId": contact, "channel": "VOICE", "instanceArn": instance, "initiationMethod": "INBOUND",
        "initiationTimestamp": "2026-03-02T10:00:00Z",
        "customerEndpoint": {"address": b.phone(Contact, "connect detail.customerEndpoint.address"), "type": "TELEPHONE_NUMBER"},
        "tags": {"caseRef": b.text(Vendor, "connect detail.tags.caseRef")}});
    b.json(f, contact, &event("e9000001-0000-4000-8000-000000000001", "2026-03-02T10:00:00Z", detail), "connect INITIATED");
    let detail = json!({"eventType": "QUEUED", "contactId": contact, "channel": "VOICE", "instanceArn": instance, "initiationMethod": "INBOUND",
        "queueInfo": {"queueArn": format!("{instance}/queue/q-support"), "enqueueTimestamp": "2026-03-02T10:00:30Z"},
        "customerEndpoint": {"address": b.phone(Contact, "connect QUEUED customerEndpoint.address"), "type": "TELEPHONE_NUMBER"}});
    b.json(f, contact, &event("e9000001-0000-4000-8000-000000000002", "2026-03-02T10:00:30Z", detail), "connect QUEUED");
    let detail = json!({"eventType": "CONNECTED_TO_AGENT", "contactId": contact, "channel": "VOICE", "instanceArn": instance, "initiationMethod": "INBOUND",
        "agentInfo": {"agentArn": format!("{instance}/agent/agent-7"), "connectedToAgentTimestamp": "2026-03-02T10:01:00Z"}});
    b.json(f, contact, &event("e9000001-0000-4000-8000-000000000003", "2026-03-02T10:01:00Z", detail), "connect CONNECTED_TO_AGENT");
    let record = json!({"AWSAccountId": "111122223333", "AWSContactTraceRecordFormatVersion": "2017-03-10", "ContactId": contact, "InstanceARN": instance,
        "Channel": "VOICE", "InitiationMethod": "INBOUND", "InitiationTimestamp": "2026-03-02T10:00:00Z", "DisconnectTimestamp": "2026-03-02T10:06:00Z",
        "DisconnectReason": "CUSTOMER_DISCONNECT", "LastUpdateTimestamp": "2026-03-02T10:07:05Z",
        "CustomerEndpoint": {"Address": b.phone(Contact, "connect CTR CustomerEndpoint.Address"), "Type": "TELEPHONE_NUMBER"},
        "SystemEndpoint": {"Address": "+18005550100", "Type": "TELEPHONE_NUMBER"},
        "Queue": {"ARN": format!("{instance}/queue/q-support"), "Name": "Support", "EnqueueTimestamp": "2026-03-02T10:00:30Z", "DequeueTimestamp": "2026-03-02T10:01:00Z", "Duration": 30},
        "Agent": {"ARN": format!("{instance}/agent/agent-7"), "Username": b.text(Staff, "connect CTR Agent.Username"), "ConnectedToAgentTimestamp": "2026-03-02T10:01:00Z",
            "NumberOfHolds": 0, "CustomerHoldDuration": 0, "LongestHoldDuration": 0, "AfterContactWorkEndTimestamp": "2026-03-02T10:07:00Z"},
        "Attributes": {"customerName": b.text(Contact, "connect CTR Attributes.customerName"), "accountNumber": b.text(Custom, "connect CTR Attributes.accountNumber")},
        "TransferredToEndpoint": {"Address": b.phone(Contact, "connect CTR TransferredToEndpoint.Address"), "Type": "TELEPHONE_NUMBER"},
        "Recording": {"Location": b.link(Link, "connect CTR Recording.Location"), "Type": "AUDIO"},
        "References": [{"Name": "crm", "Type": "URL", "Value": b.link(Custom, "connect CTR References.Value")}],
        "ContactDetails": {"Description": b.text(Custom, "connect CTR ContactDetails.Description")},
        "NextContactId": null, "PreviousContactId": null, "InitialContactId": null});
    b.json(f, contact, &record, "connect contact record");
    // Malformed: a bad time (its text quoted in the detail) beside a phone number.
    let detail = json!({"eventType": "QUEUED", "contactId": contact, "channel": "VOICE", "instanceArn": instance,
        "queueInfo": {"queueArn": format!("{instance}/queue/q-support"), "enqueueTimestamp": b.text(DeadLetterOnly, "connect bad enqueueTimestamp")},
        "customerEndpoint": {"address": b.phone(DeadLetterOnly, "connect malformed customerEndpoint.address"), "type": "TELEPHONE_NUMBER"}});
    b.json(f, contact, &event("e9000001-0000-4000-8000-000000000009", "not a time", detail), "malformed: connect QUEUED");
}

fn genesys(b: &mut Builder) {
    use SeedCarrier::*;
    let f = InputFormat::GenesysCloud;
    let conversation = "a9f0c3e2-0001-4c5e-9a11-000000000001";
    let ani = b.phone(Contact, "genesys eventBody.ani");
    let callback_name = b.text(Contact, "genesys eventBody.callbackUserName");
    let callback = b.phone(Contact, "genesys eventBody.callbackNumbers");
    let mut n = 0;
    let mut note = |b: &mut Builder, suffix: &str, ms: i64, extra: Value| {
        n += 1;
        let mut body = json!({"mediaType": "VOICE", "direction": "INBOUND", "provider": "Edge", "ani": format!("tel:{ani}"), "dnis": "tel:+18005550199",
            "callbackUserName": callback_name, "callbackNumbers": [format!("tel:{callback}")], "participantId": format!("p-{n}"), "sessionId": format!("s-{n}"),
            "eventTime": 1_772_442_000_000_i64 + ms, "conversationId": conversation});
        if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
            body.extend(extra);
        }
        let v = json!({"topicName": format!("v2.detail.events.conversation.{conversation}.{suffix}"), "version": "2", "eventBody": body, "metadata": {"CorrelationId": format!("corr-{n}")}});
        b.json(f, conversation, &v, &format!("genesys {suffix}"));
    };
    note(b, "customer.start", 0, json!({}));
    let extra = json!({"attributes": {"email": b.email(Contact, "genesys attributes.email"), "caseNote": b.text(Custom, "genesys attributes.caseNote")}});
    note(b, "attributes", 1000, extra);
    note(b, "acd.start", 2000, json!({"queueId": "q-support"}));
    note(b, "acd.end", 30_000, json!({"queueId": "q-support", "acdOutcome": "ANSWERED", "answeredUserId": "u-ann"}));
    note(b, "customer.end", 300_000, json!({"disconnectType": "ENDPOINT"}));
    let extra = json!({"userId": "u-ann", "queueId": "q-support", "wrapupCode": "wc-1", "wrapupNotes": b.text(Text, "genesys acw wrapupNotes")});
    note(b, "acw", 330_000, extra);
    // Malformed: no conversation id.
    let v = json!({"topicName": "v2.detail.events.conversation.x.customer.start", "version": "2",
        "eventBody": {"mediaType": "VOICE", "ani": b.phone(DeadLetterOnly, "genesys malformed ani"), "eventTime": 1_772_442_000_000_i64}});
    b.json(f, conversation, &v, "malformed: genesys without a conversation id");
}

fn twilio(b: &mut Builder) {
    use SeedCarrier::*;
    let f = InputFormat::TwilioTaskrouter;
    let task = "WT90000000000000000000000000000001";
    let attributes = json!({"type": "inbound", "direction": "inbound", "from": b.phone(Contact, "twilio TaskAttributes.from"), "to": "+18005550199",
        "customers": {"name": b.text(Custom, "twilio TaskAttributes.customers.name"), "email": b.email(Contact, "twilio TaskAttributes.customers.email")},
        "caller": b.phone(Contact, "twilio TaskAttributes.caller")})
    .to_string();
    let mut n = 0;
    let mut event = |b: &mut Builder, event_type: &str, seconds: i64, extra: Value| {
        n += 1;
        let mut o = json!({"EventType": event_type, "AccountSid": "AC11111111111111111111111111111111", "WorkspaceSid": "WS22222222222222222222222222222222",
            "Sid": format!("EV9000000000000000000000000000000{n}"), "Timestamp": (1_772_449_200 + seconds).to_string(),
            "TimestampMs": ((1_772_449_200 + seconds) * 1000).to_string(), "TaskSid": task, "TaskAttributes": attributes, "TaskChannelUniqueName": "voice",
            "TaskQueueSid": "WQ1", "TaskQueueName": "Support"});
        if let (Value::Object(o), Value::Object(extra)) = (&mut o, extra) {
            o.extend(extra);
        }
        b.json(f, task, &o, &format!("twilio {event_type}"));
    };
    event(b, "task.created", 0, json!({}));
    event(b, "task-queue.entered", 1, json!({}));
    let worker = b.text(Staff, "twilio WorkerName");
    event(b, "reservation.created", 20, json!({"WorkerSid": "WK1", "WorkerName": worker, "ReservationSid": "WR1"}));
    event(b, "reservation.accepted", 25, json!({"WorkerSid": "WK1", "WorkerName": worker, "ReservationSid": "WR1"}));
    event(b, "task.wrapup", 300, json!({"WorkerSid": "WK1", "WorkerName": worker}));
    // Malformed: task attributes that are not an object.
    let bad = json!({"EventType": "task.created", "Sid": "EV99", "Timestamp": "1772449200", "TaskSid": task, "TaskChannelUniqueName": "voice",
        "TaskAttributes": json!([b.phone(DeadLetterOnly, "twilio malformed TaskAttributes")]).to_string()});
    b.json(f, task, &bad, "malformed: twilio TaskAttributes");
    // Malformed raw form body (no task sid): not JSON.
    let form =
        format!("EventType=task.created&Sid=EV98&Timestamp=1772449200&TaskAttributes=%7B%22from%22%3A%22{}%22%7D", b.text(DeadLetterOnly, "twilio form body"));
    b.push(f, task, form.into_bytes(), "malformed: twilio form body");
}

fn zoom(b: &mut Builder) {
    use SeedCarrier::*;
    let f = InputFormat::ZoomContactCenter;
    let engagement = "eng-pii-1";
    let webhook = |event: &str, ms: i64, object: Value| {
        let mut object = object;
        object["engagement_id"] = json!(engagement);
        json!({"event": format!("contact_center.{event}"), "event_ts": 1_772_443_800_000_i64 + ms, "payload": {"account_id": "acct-zcc-1", "object": object}})
    };
    let started = json!({"channel": "voice", "direction": "inbound", "caller_number": b.phone(Contact, "zoom caller_number"), "callee_number": "+18005550199",
        "consumer_display_name": b.text(NeverCopied, "zoom consumer_display_name"), "consumer_email": b.email(NeverCopied, "zoom consumer_email")});
    b.json(f, engagement, &webhook("engagement_started", 0, started), "zoom engagement_started");
    b.json(f, engagement, &webhook("task_created", 1000, json!({"task_id": "t-1", "queue_id": "q-1", "queue_name": "Billing"})), "zoom task_created");
    let user = b.text(Staff, "zoom user_display_name");
    let answered = json!({"user_id": "u-1", "user_display_name": user, "user_email": b.email(NeverCopied, "zoom user_email")});
    b.json(f, engagement, &webhook("engagement_user_answered", 20_000, answered), "zoom engagement_user_answered");
    let callback = json!({"queue_id": "q-1", "queue_name": "Billing", "callback_number": b.phone(Contact, "zoom callback_number")});
    b.json(f, engagement, &webhook("queue_scheduled_callback_created", 30_000, callback), "zoom scheduled callback");
    let transfer = json!({"user_id": "u-1", "user_display_name": user, "queue_name": "Billing", "transfer_type": "warm",
        "transfer_to_user_id": "u-2", "transfer_to_user_display_name": b.text(Staff, "zoom transfer_to_user_display_name")});
    b.json(f, engagement, &webhook("engagement_transfer_initiated", 40_000, transfer), "zoom transfer initiated");
    b.json(f, engagement, &webhook("engagement_ended", 200_000, json!({})), "zoom engagement_ended");
    let completed = json!({"task_id": "t-1", "task_status": "completed", "user_id": "u-1", "user_display_name": user, "queue_name": "Billing",
        "dispositions": [{"disposition_id": "d-1", "disposition_name": "Refund", "disposition_notes": b.text(Text, "zoom dispositions.disposition_notes")}]});
    b.json(f, engagement, &webhook("task_completed", 260_000, completed), "zoom task_completed");
    // Malformed: a bad event time, quoted in the detail.
    let bad = json!({"event": "contact_center.engagement_started", "event_ts": b.text(DeadLetterOnly, "zoom bad event_ts"),
        "payload": {"account_id": "acct-zcc-1", "object": {"engagement_id": engagement, "caller_number": b.phone(DeadLetterOnly, "zoom malformed caller_number")}}});
    b.json(f, engagement, &bad, "malformed: zoom event_ts");
}

fn ccaip(b: &mut Builder) {
    use SeedCarrier::*;
    let f = InputFormat::CcaiPlatform;
    let key = "call-9001";
    let agent = b.text(Staff, "ccaip participants.agent.name");
    let end_user = json!({"id": "eu-9001", "type": "end_user", "status": "connected"});
    let agent_p = json!({"id": "501", "type": "agent", "name": agent, "status": "dispositionSubmitted", "connected_at": "2026-03-02T10:00:55.000Z",
        "ended_at": "2026-03-02T10:05:55.000Z"});
    let snapshot = |id: &str, ms: i64, item: Value| json!({"event_id": id, "timestamp": 1_772_445_600_000_i64 + ms, "item": item});
    let start = json!({"id": 9001, "call_type": "Voice Inbound", "lang": "en", "support_number": "+18005550100", "status": "connecting",
        "created_at": "2026-03-02T10:00:00.000Z", "deflection": "no_deflection", "fail_reason": "nothing", "participants": [end_user]});
    b.json(f, key, &snapshot("852b41ff-0000-5936-ac38-4fc5f7fd6001", 400, start), "ccaip start");
    let last = json!({"id": 9001, "call_type": "Voice Inbound", "lang": "en", "support_number": "+18005550100", "status": "finished",
        "created_at": "2026-03-02T10:00:00.000Z", "deflection": "no_deflection", "fail_reason": "nothing", "participants": [end_user, agent_p],
        "queued_at": "2026-03-02T10:00:20.000Z", "menu_path": {"id": 12, "name": "Billing"}, "assigned_at": "2026-03-02T10:00:50.000Z",
        "agent_info": {"id": 501, "name": agent}, "connected_at": "2026-03-02T10:00:55.000Z", "ends_at": "2026-03-02T10:05:55.000Z",
        "disconnected_by": "disconnected_by_end_user", "hold_duration": 0, "call_duration": 300,
        "dispositions": {"code": "resolved", "custom_code_id": 77, "note": b.text(Text, "ccaip dispositions.note")}, "rating": 5});
    b.json(f, key, &snapshot("852b41ff-0000-5936-ac38-4fc5f7fd6002", 400_000, last), "ccaip final");
    // A status the adapter does not know: the whole item passes through under `vendor`.
    let passthrough = json!({"id": 9001, "call_type": "Voice Inbound", "status": "escalation_pending", "created_at": "2026-03-02T10:00:00.000Z",
        "participants": [{"id": "eu-9001", "type": "end_user", "name": b.text(Vendor, "ccaip passthrough end_user name"),
            "phone_number": b.phone(Contact, "ccaip passthrough end_user phone_number")}]});
    b.json(f, key, &snapshot("852b41ff-0000-5936-ac38-4fc5f7fd6003", 100_000, passthrough), "ccaip pass-through status");
    // Malformed: an item that is not an object.
    let bad =
        json!({"event_id": "852b41ff-0000-5936-ac38-4fc5f7fd6009", "timestamp": 1_772_445_600_000_i64, "item": b.text(DeadLetterOnly, "ccaip malformed item")});
    b.json(f, key, &bad, "malformed: ccaip item");
}
