//! States, outcomes and the closed list of anomaly codes (`lifecycle.md`).

use crate::event::closed_enum;

closed_enum! {
    /// The lifecycle state of a session.
    State {
        Initiated => "initiated",
        Scheduled => "scheduled",
        SelfService => "self_service",
        Queued => "queued",
        Offered => "offered",
        Assigned => "assigned",
        Connected => "connected",
        OnHold => "on_hold",
        WrapUp => "wrap_up",
        PostSession => "post_session",
        Ended => "ended",
        Abandoned => "abandoned",
        Deflected => "deflected",
        Expired => "expired",
    }
}

impl State {
    /// `ended`, `abandoned`, `deflected`, `expired`.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Ended | State::Abandoned | State::Deflected | State::Expired)
    }

    /// Before any agent: the states a `session.ended` turns into an abandon.
    pub fn is_pre_agent(self) -> bool {
        matches!(self, State::Initiated | State::Scheduled | State::SelfService | State::Queued | State::Offered)
    }

    /// An agent holds the session.
    pub fn is_with_agent(self) -> bool {
        matches!(self, State::Assigned | State::Connected | State::OnHold)
    }

    /// Waiting for an agent (`queue_wait_ms` counts these).
    pub fn is_waiting(self) -> bool {
        matches!(self, State::Queued | State::Offered)
    }

    /// The outcome of a terminal state; `None` while active.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            State::Ended => Some(Outcome::Completed),
            State::Abandoned => Some(Outcome::Abandoned),
            State::Deflected => Some(Outcome::Deflected),
            State::Expired => Some(Outcome::Expired),
            _ => None,
        }
    }

    /// Genesys card colour: blue while active, white when abandoned, grey otherwise.
    pub fn card_color(self) -> &'static str {
        match self {
            State::Abandoned => "white",
            s if s.is_terminal() => "grey",
            _ => "blue",
        }
    }
}

closed_enum! {
    /// How a session ended.
    Outcome { Completed => "completed", Abandoned => "abandoned", Deflected => "deflected", Expired => "expired" }
}

closed_enum! {
    /// Who answered: a human agent, a virtual agent that contained the
    /// session, or nobody.
    AnswerType { Human => "human", Virtual => "virtual", None => "none" }
}

closed_enum! {
    /// Why a final record was revised.
    RevisionReason { LateEvent => "late_event", Erasure => "erasure" }
}

closed_enum! {
    /// The closed list of anomaly codes. An event that does not fit the
    /// current state is applied by the most plausible rule and marked with
    /// one of these; see `docs/lifecycle.md` for the rule of each. The one
    /// exception, `session_bound_exceeded`, counts events that were *not*
    /// applied: a session bound sent them to the dead-letter topic.
    Anomaly {
        MissingStart => "missing_start",
        DuplicateStart => "duplicate_start",
        MissingQueue => "missing_queue",
        MissingAssignment => "missing_assignment",
        MissingOffer => "missing_offer",
        MissingConnect => "missing_connect",
        MissingHold => "missing_hold",
        MissingTransfer => "missing_transfer",
        MissingEnd => "missing_end",
        MissingPostSession => "missing_post_session",
        DuplicateEnd => "duplicate_end",
        AfterTerminal => "after_terminal",
        InvalidTransition => "invalid_transition",
        SessionBoundExceeded => "session_bound_exceeded",
    }
}
