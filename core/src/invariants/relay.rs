//! The relay's bookkeeping: the client limit, the fan-out order, failure counts.

use super::{ensure, InvariantViolation};
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
    )
}
