//! What must always hold, checked by tests, the simulator, the fuzzers and trace
//! replay, written once.
//!
//! - [`crate::Machine::check_invariants`]: a server's own bookkeeping (tables agree
//!   with each other and with the limits), per protocol in [`rooms`] and [`relay`].
//! - [`check_step`]: what a driver sees of one step, for either server: datagrams go
//!   only to member addresses, no timer is left overdue after a timeout, stale timers
//!   stay bounded, live state always has a deadline, nothing is left after shutdown.
//!   [`step`] feeds one input and runs every check.
//!
//! A violation is always a bug in the server, never the fault of an input.

mod relay;
mod rooms;

use crate::input::Input;
use crate::machine::Machine;
use crate::output::{Event, Output};
use crate::rooms::Counts;
use crate::timers::max_entries;
use crate::wire::MAX_DATAGRAM_LEN;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

pub(crate) use relay::check as relay;
pub(crate) use rooms::check as rooms;

/// Which rule of a server's bookkeeping was found broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvariantViolation(pub &'static str);

impl std::fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server invariant broken: {}", self.0)
    }
}

impl std::error::Error for InvariantViolation {}

fn ensure(ok: bool, rule: &'static str) -> Result<(), InvariantViolation> {
    if ok {
        Ok(())
    } else {
        Err(InvariantViolation(rule))
    }
}

/// Checks what came of one input: `before` is [`Machine::member_addrs`] from just
/// before it, `outputs` everything drained after it.
///
/// A datagram may go to an address that was a member's before the input, or that
/// became one during it (an address learnt from a port step that reached its deadline
/// may be told of its own eviction in the same step), or answer the input's source:
/// one it made a member, or a liveness probe with no more bytes than the probe had
/// (`not a member`).
pub fn check_step<M: Machine + ?Sized>(
    machine: &M,
    now: Instant,
    input: &Input<&[u8]>,
    before: &HashSet<SocketAddr>,
    outputs: &[Output],
) -> Result<(), String> {
    machine.check_invariants().map_err(|e| e.to_string())?;
    let mut learnt = Vec::new();
    for output in outputs {
        match output {
            Output::Event(Event::MemberAddress { addr, .. }) => learnt.push(*addr),
            Output::Datagram { to, payload } => {
                let known = before.contains(to) || learnt.contains(to);
                if !known && !answers_sender(machine, input, *to, payload) {
                    return Err(format!("datagram to {to}, not a member address"));
                }
                if payload.is_empty() || payload.len() > MAX_DATAGRAM_LEN {
                    return Err(format!("datagram of {} bytes to {to}", payload.len()));
                }
            }
            _ => {}
        }
    }
    let counts = machine.counts();
    let deadline = machine.poll_timeout();
    if counts.connections + counts.members > 0 && deadline.is_none() {
        return Err("live entries without a deadline".into());
    }
    match input {
        Input::Timeout => {
            if deadline.is_some_and(|at| at <= now) {
                return Err("a due timer was left after the timeout".into());
            }
            let live = counts.connections + counts.members;
            if counts.timers > max_entries(live) {
                return Err(format!("{} timers for {live} live entries", counts.timers));
            }
        }
        Input::Shutdown if counts != Counts::default() => {
            return Err(format!("{counts:?} left after shutdown"));
        }
        _ => {}
    }
    Ok(())
}

/// An answer to the datagram's own source, which was no member's address before it:
/// to a sender the datagram made a member (a relay client registered by its `/who`),
/// or to a rooms liveness probe, no larger than the probe (`not a member`).
fn answers_sender<M: Machine + ?Sized>(
    machine: &M,
    input: &Input<&[u8]>,
    to: SocketAddr,
    payload: &[u8],
) -> bool {
    let Input::Datagram { from, data } = input else {
        return false;
    };
    if crate::rooms::canonical_addr(*from) != to {
        return false;
    }
    let probe = crate::probe::room_probe_token(data).is_some() && payload.len() <= data.len();
    probe || machine.member_addrs().contains(&to)
}

/// Feeds `input` at `now`, drains every output into `outputs` (cleared first) and runs
/// [`check_step`]: the one way tests, fuzz targets and replays step a server.
pub fn step<M: Machine + ?Sized>(
    machine: &mut M,
    now: Instant,
    input: Input<&[u8]>,
    outputs: &mut Vec<Output>,
) -> Result<(), String> {
    let before: HashSet<SocketAddr> = machine.member_addrs().into_iter().collect();
    machine.handle(now, input.clone());
    outputs.clear();
    outputs.extend(std::iter::from_fn(|| machine.poll_output()));
    check_step(machine, now, &input, &before, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnyServer, Config, Protocol};
    use bytes::Bytes;

    fn relay() -> AnyServer {
        AnyServer::new(Protocol::Relay, Config::default(), [1; 32]).unwrap()
    }

    /// A relay with one client registered at `now`.
    fn relay_with_a_client(now: Instant) -> AnyServer {
        let mut server = relay();
        let from = "10.0.0.1:4000".parse().unwrap();
        let registration = Input::Datagram {
            from,
            data: &b"\x01ahi"[..],
        };
        step(&mut server, now, registration, &mut Vec::new()).unwrap();
        server
    }

    #[test]
    fn a_datagram_to_a_stranger_is_caught() {
        let stray = Output::Datagram {
            to: "10.9.9.9:1".parse().unwrap(),
            payload: Bytes::from_static(b"\x00hi"),
        };
        let error = check_step(
            &relay(),
            Instant::now(),
            &Input::Timeout,
            &HashSet::new(),
            &[stray],
        )
        .unwrap_err();
        assert!(error.contains("not a member address"), "{error}");
    }

    #[test]
    fn a_timer_left_due_after_a_timeout_is_caught() {
        let now = Instant::now();
        let mut server = relay_with_a_client(now);
        // Checked at a time after the idle deadline without firing it: caught.
        let late = now + Config::default().idle_timeout;
        let error = check_step(&server, late, &Input::Timeout, &HashSet::new(), &[]).unwrap_err();
        assert!(error.contains("due timer"), "{error}");
        // Fired properly, it holds.
        step(&mut server, late, Input::Timeout, &mut Vec::new()).unwrap();
    }

    #[test]
    fn state_left_after_shutdown_is_caught() {
        let now = Instant::now();
        let mut server = relay_with_a_client(now);
        let error = check_step(&server, now, &Input::Shutdown, &HashSet::new(), &[]).unwrap_err();
        assert!(error.contains("left after shutdown"), "{error}");
        step(&mut server, now, Input::Shutdown, &mut Vec::new()).unwrap();
    }
}
