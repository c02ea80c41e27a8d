//! The descriptor budget: every socket the server may hold must fit `RLIMIT_NOFILE`.
//!
//! A TCP connection holds one descriptor from accept until its socket is closed, and
//! the core counts it against `max_handshakes` for all of that time (lingering
//! included). Accepting holds at most [`ACCEPT_SLACK`] more, connections accepted
//! and not yet refused; the process needs [`RESERVE`] for itself (standard streams, the
//! owner's poller and its waker, the reactor, the UDP socket and the listener, a trace
//! file, the runtime's threads). So at start ([`fit`]) the server reads the limit,
//! raises the soft limit toward the hard one as far as it needs, and, if that is still
//! not enough, lowers `max_handshakes` to what fits, with a warning: accepting then
//! never runs out of descriptors.

use ocm_core::Config;

/// Descriptors the process keeps for itself, beyond its TCP connections.
pub const RESERVE: u64 = 64;

/// Most connections accepted beyond the core's `max_handshakes`: accepted, and closed
/// as soon as the core refuses them (see [`crate::tcp::TcpPath`]).
pub const ACCEPT_SLACK: usize = 64;

/// What [`plan`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Raise the soft limit to this (never above the hard limit).
    pub raise_soft_to: Option<u64>,
    /// The connection limit that fits.
    pub max_handshakes: usize,
}

/// Descriptors needed for `max_handshakes` connections.
pub fn needed(max_handshakes: usize) -> u64 {
    (max_handshakes + ACCEPT_SLACK) as u64 + RESERVE
}

/// Given the soft and hard limits, how to make `max_handshakes` fit: raise the soft
/// limit as far as needed (up to the hard one), then lower the connection limit to
/// what the descriptors allow (at least 1).
pub fn plan(soft: u64, hard: u64, max_handshakes: usize) -> Plan {
    let want = needed(max_handshakes);
    let raise_soft_to = (soft < want)
        .then(|| want.min(hard))
        .filter(|to| *to > soft);
    let limit = raise_soft_to.unwrap_or(soft);
    let fits = limit.saturating_sub(RESERVE + ACCEPT_SLACK as u64).max(1);
    Plan {
        raise_soft_to,
        max_handshakes: max_handshakes.min(usize::try_from(fits).unwrap_or(usize::MAX)),
    }
}

/// Reads `RLIMIT_NOFILE`, raises the soft limit and lowers `config.max_handshakes` as
/// [`plan`] says, logging what it did. Where the limit cannot be read, changes nothing.
pub fn fit(config: &mut Config) {
    let Some((soft, hard)) = limits() else {
        return;
    };
    let asked = config.max_handshakes;
    let soft_now = match plan(soft, hard, asked).raise_soft_to {
        Some(to) => match raise_soft(to, hard) {
            Ok(()) => {
                tracing::info!(from = soft, to, hard, "raised the file descriptor limit");
                to
            }
            Err(error) => {
                tracing::warn!(%error, "cannot raise the file descriptor limit");
                soft
            }
        },
        None => soft,
    };
    let fitted = plan(soft_now, soft_now, asked).max_handshakes;
    if fitted < asked {
        tracing::warn!(
            max_handshakes = fitted,
            asked,
            nofile = soft_now,
            "max_handshakes lowered to fit the file descriptor limit (RLIMIT_NOFILE): each connection holds a descriptor until its socket is closed"
        );
        config.max_handshakes = fitted;
    }
}

#[cfg(target_os = "linux")]
fn limits() -> Option<(u64, u64)> {
    use nix::sys::resource::{getrlimit, Resource};
    getrlimit(Resource::RLIMIT_NOFILE).ok()
}

#[cfg(target_os = "linux")]
fn raise_soft(to: u64, hard: u64) -> nix::Result<()> {
    use nix::sys::resource::{setrlimit, Resource};
    setrlimit(Resource::RLIMIT_NOFILE, to, hard)
}

#[cfg(not(target_os = "linux"))]
fn limits() -> Option<(u64, u64)> {
    None
}

#[cfg(not(target_os = "linux"))]
fn raise_soft(_to: u64, _hard: u64) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soft_limit_below_the_need_is_raised_as_far_as_needed_and_no_further() {
        let need = needed(1024);
        assert_eq!(need, 1024 + 64 + 64);
        let plan = plan(1024, 1 << 20, 1024);
        assert_eq!(plan.raise_soft_to, Some(need));
        assert_eq!(plan.max_handshakes, 1024, "it fits once raised");
        // Enough already: nothing to do.
        assert_eq!(
            super::plan(need, need, 1024),
            Plan {
                raise_soft_to: None,
                max_handshakes: 1024
            }
        );
    }

    #[test]
    fn a_low_hard_limit_lowers_the_connection_limit_to_what_fits() {
        let plan = plan(200, 200, 1024);
        assert_eq!(plan.raise_soft_to, None);
        assert_eq!(plan.max_handshakes, 200 - 64 - 64);
        // Raised to the hard limit, which is still short.
        let plan = super::plan(256, 1000, 1024);
        assert_eq!(plan.raise_soft_to, Some(1000));
        assert_eq!(plan.max_handshakes, 1000 - 128);
        // Never below one connection.
        assert_eq!(super::plan(20, 20, 1024).max_handshakes, 1);
        // An infinite hard limit.
        assert_eq!(super::plan(64, u64::MAX, 10).raise_soft_to, Some(10 + 128));
    }
}
