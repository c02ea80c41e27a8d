//! Coverage: how many times a run exercised each rule the invariants guard.
//!
//! A check that never fires proves nothing, so every run counts what it did (messages
//! relayed, datagrams refused by reason, evictions by kind, handshake answers by
//! status, ...) and the CI test asserts that its schedules reached every one.

use ocm_core::output::Event;
use ocm_core::wire::notice::EvictReason;
use std::collections::BTreeMap;

/// How many times each interesting thing happened: proof that a run exercised the rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Server inputs fed.
    pub steps: u64,
    /// Chat messages relayed (authorized, non-empty, not `/exit`).
    pub relayed: u64,
    /// Datagrams the server refused, by drop reason name.
    pub refused: BTreeMap<String, u64>,
    /// Members whose UDP address came from the `port` of their JSON request.
    pub json_ports: u64,
    /// Refused datagrams that carried a token that was once valid.
    pub retired_token_probes: u64,
    /// Evictions, by reason text.
    pub evictions: BTreeMap<String, u64>,
    /// Rooms closed.
    pub rooms_closed: u64,
    /// Members who left with `/exit`.
    pub left: u64,
    /// TCRP answers, by status.
    pub statuses: BTreeMap<String, u64>,
    /// Connections refused at accept, and handshake timeouts.
    pub conns_refused: u64,
    /// Unfinished connections closed unanswered, by reason.
    pub shed: BTreeMap<String, u64>,
    /// Creates refused for the rooms-per-source limit alone.
    pub rooms_per_source_refusals: u64,
    /// Handshake deadlines hit.
    pub handshake_timeouts: u64,
    /// Send failures reported to the server.
    pub send_failures: u64,
    /// Sessions whose delivery log was compared with the model at the end.
    pub sessions_checked: u64,
    /// Creates and joins refused for the per-IP member limit alone.
    pub per_ip_refusals: u64,
    /// Strangers' liveness probes answered `not a member`.
    pub stranger_probes_answered: u64,
    /// Connections closed after an answer that lingered until the linger deadline.
    pub lingered_to_deadline: u64,
    /// Connections closed after an answer whose linger the peer's close ended.
    pub linger_ended_by_peer: u64,
}

impl Coverage {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &Coverage) {
        self.steps += other.steps;
        self.relayed += other.relayed;
        self.stranger_probes_answered += other.stranger_probes_answered;
        self.retired_token_probes += other.retired_token_probes;
        self.json_ports += other.json_ports;
        self.rooms_closed += other.rooms_closed;
        self.left += other.left;
        self.conns_refused += other.conns_refused;
        self.handshake_timeouts += other.handshake_timeouts;
        self.send_failures += other.send_failures;
        self.sessions_checked += other.sessions_checked;
        self.per_ip_refusals += other.per_ip_refusals;
        self.rooms_per_source_refusals += other.rooms_per_source_refusals;
        self.lingered_to_deadline += other.lingered_to_deadline;
        self.linger_ended_by_peer += other.linger_ended_by_peer;
        for (mine, theirs) in [
            (&mut self.refused, &other.refused),
            (&mut self.evictions, &other.evictions),
            (&mut self.statuses, &other.statuses),
            (&mut self.shed, &other.shed),
        ] {
            for (k, v) in theirs {
                *mine.entry(k.clone()).or_default() += v;
            }
        }
    }

    /// Counts what an event shows.
    pub fn count(&mut self, event: &Event) {
        match event {
            Event::Handshake { status, .. } => {
                *self.statuses.entry(format!("{status:?}")).or_default() += 1
            }
            Event::ConnectionRefused { .. } => self.conns_refused += 1,
            Event::ConnectionShed { reason, .. } => {
                *self.shed.entry(format!("{reason:?}")).or_default() += 1
            }
            Event::HandshakeTimedOut { .. } => self.handshake_timeouts += 1,
            Event::RoomClosed { .. } => self.rooms_closed += 1,
            Event::MemberLeft { .. } => self.left += 1,
            Event::MemberEvicted { reason, .. } => {
                let kind = match reason {
                    EvictReason::Idle(_) => "idle",
                    EvictReason::SendFailures(_) => "send failures",
                    EvictReason::NeverRegistered(_) => "never registered",
                };
                *self.evictions.entry(kind.into()).or_default() += 1
            }
            Event::DatagramDropped { reason, .. } => {
                *self.refused.entry(format!("{reason:?}")).or_default() += 1
            }
            Event::RoomCreated { .. }
            | Event::MemberJoined { .. }
            | Event::MemberAddress { .. } => {}
        }
    }
}
