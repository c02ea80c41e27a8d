//! The relay's bookkeeping: the client limit, the fan-out order, failure counts.

use super::{ensure, InvariantViolation};
use crate::relay::source_of;
use crate::relay::RelayServer;

/// Checks the client limit and that the fan-out order lists each client once.
pub(crate) fn check(relay: &RelayServer) -> Result<(), InvariantViolation> {
    ensure(
        relay.clients.len() <= relay.config.max_members,
        "more relay clients than max_members",
    )?;
    ensure(
        relay.order.len() == relay.clients.len()
            && relay.order.iter().all(|a| relay.clients.contains_key(a)),
        "fan-out order disagrees with the client table",
    )?;
    ensure(
        relay
            .clients
            .values()
            .all(|c| c.liveness.failures() < relay.config.max_send_failures),
        "client kept after max_send_failures",
    )?;
    let counted: usize = relay.per_ip.iter().map(|(_, n)| n).sum();
    ensure(
        counted == relay.clients.len()
            && relay
                .per_ip
                .iter()
                .all(|(_, n)| (1..=relay.config.max_members_per_ip).contains(&n)),
        "per-IP client counts disagree with the clients or the limit",
    )?;
    ensure(
        relay
            .clients
            .iter()
            .all(|(addr, client)| relay.per_ip.is_key_of(client.source, source_of(*addr))),
        "a client's IP entry is not its IP's",
    )?;
    ensure(
        relay.per_ip.slots_match(),
        "the per-IP bucket slots disagree with the entries",
    )?;
    ensure(
        relay.verifier.tracked() <= crate::throttle::MAX_ENTRIES,
        "verification guesses over their bound",
    )
}
