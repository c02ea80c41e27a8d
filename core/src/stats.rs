//! Counters a server keeps about its traffic, for logs and tests.

use crate::output::DropReason;
use crate::wire::tcrp::Status;

/// Running totals since the server started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received, valid or not.
    pub datagrams_received: u64,
    /// Chat messages accepted and relayed (each counted once, however many receivers).
    pub messages_relayed: u64,
    /// Datagrams emitted: relayed lines and notices, one per receiver.
    pub datagrams_sent: u64,
    /// Empty messages (registrations and keepalives), and members' liveness probes.
    pub keepalives: u64,
    /// Liveness probes from no member, answered `not a member`.
    pub probes_refused: u64,
    /// Dropped datagrams, indexed by [`DropReason::index`].
    pub dropped: [u64; DropReason::ALL.len()],
    /// Members evicted (idle or failing).
    pub evictions: u64,
    /// Send failures reported by the shell.
    pub send_failures: u64,
    /// ICMP errors ignored because the member had spoken within `icmp_grace`.
    pub icmp_ignored: u64,
    /// Datagrams not sent to an address learnt from the port step whose budget of
    /// unproven sends was spent.
    pub unproven_skipped: u64,
    /// Relay mode: codes sent to unregistered addresses (see `relay::verify`).
    pub challenges: u64,
    /// TCRP answers, indexed by status code.
    pub handshakes: [u64; Status::ALL.len()],
    /// Connections closed at once because a connection limit was reached.
    pub connections_refused: u64,
    /// Connections closed at the handshake deadline.
    pub handshake_timeouts: u64,
    /// Unfinished connections closed at the connection limit to make way for a new one
    /// ([`crate::ShedReason::Displaced`]).
    pub connections_displaced: u64,
    /// Unfinished connections closed because the requests of all connections held more
    /// than the budget ([`crate::ShedReason::RequestBudget`]).
    pub connections_over_budget: u64,
}

impl Stats {
    /// Total dropped datagrams.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }

    /// Dropped datagrams for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// Answers with one status.
    pub fn handshakes(&self, status: Status) -> u64 {
        self.handshakes[usize::from(status.code())]
    }
}

impl std::fmt::Display for Stats {
    /// One line, for a periodic log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received={} relayed={} sent={} keepalives={} dropped={} evictions={} send_failures={} handshakes_ok={} handshakes_refused={} connections_refused={} handshake_timeouts={} connections_displaced={} connections_over_budget={}",
            self.datagrams_received,
            self.messages_relayed,
            self.datagrams_sent,
            self.keepalives,
            self.dropped_total(),
            self.evictions,
            self.send_failures,
            self.handshakes(Status::Ok),
            self.handshakes.iter().sum::<u64>() - self.handshakes(Status::Ok),
            self.connections_refused,
            self.handshake_timeouts,
            self.connections_displaced,
            self.connections_over_budget,
        )
    }
}
