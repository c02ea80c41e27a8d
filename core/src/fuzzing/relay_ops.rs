//! The `relay_ops` target: a whole [`RelayServer`] driven by a sequence of inputs
//! (well-framed and raw datagrams from a few addresses, clock advances, send failures),
//! acting as the shell and checking every output.
//!
//! ```
//! use ocm_core::fuzzing::{relay_ops, FuzzConfig, RelayOp, RelayOps};
//! let ops = vec![
//!     RelayOp::Datagram { from: 0, user: 0, message: 2 },
//!     RelayOp::Datagram { from: 1, user: 1, message: 2 },
//!     RelayOp::AdvanceFar,
//! ];
//! relay_ops(&RelayOps { config: FuzzConfig::ROOMY, ops }.encode());
//! ```

use super::config::{advance_far, FuzzConfig};
use super::pools::{address, message, username};
use super::server_ops::take;
use crate::output::{DropReason, Event, Output};
use crate::relay::RelayServer;
use crate::wire::relay_datagram::RelayDatagram;
use arbitrary::{Arbitrary, Unstructured};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// One input to the relay. Small numbers index the pools of [`super::ServerOp`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayOp {
    /// `usernamelen | username | message` from `address(from)`.
    Datagram {
        /// Source address index.
        from: u8,
        /// Username index.
        user: u8,
        /// Message index.
        message: u8,
    },
    /// Any bytes as a datagram.
    RawDatagram {
        /// Source address index.
        from: u8,
        /// The bytes (at most 65535).
        data: Vec<u8>,
    },
    /// The clock moves on, without a timeout call.
    Advance {
        /// Milliseconds.
        millis: u32,
    },
    /// `handle_timeout` now.
    Timeout,
    /// The clock jumps to `poll_timeout()` (if later) and `handle_timeout` runs.
    FireNext,
    /// A send to an address failed.
    SendFailed {
        /// Address index.
        to: u8,
    },
    /// The clock jumps past every timeout: no client may be left.
    AdvanceFar,
    /// `shutdown`: no client may be left.
    Shutdown,
}

/// A configuration and the inputs to apply, one by one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayOps {
    /// Limits of the relay under test (`max_members`, `max_send_failures`, `idle_timeout`).
    pub config: FuzzConfig,
    /// The inputs.
    pub ops: Vec<RelayOp>,
}

impl RelayOps {
    /// The bytes that [`Arbitrary`] reads back as `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.config.encode().to_vec();
        for op in &self.ops {
            match op {
                RelayOp::Datagram {
                    from,
                    user,
                    message,
                } => out.extend([0, *from, *user, *message]),
                RelayOp::RawDatagram { from, data } => {
                    out.extend([1, *from]);
                    out.extend(
                        u16::try_from(data.len())
                            .expect("at most 65535 bytes")
                            .to_le_bytes(),
                    );
                    out.extend_from_slice(data);
                }
                RelayOp::Advance { millis } => {
                    out.push(2);
                    out.extend(millis.to_le_bytes());
                }
                RelayOp::Timeout => out.push(3),
                RelayOp::FireNext => out.push(4),
                RelayOp::SendFailed { to } => out.extend([5, *to]),
                RelayOp::AdvanceFar => out.push(6),
                RelayOp::Shutdown => out.push(7),
            }
        }
        out
    }
}

impl<'a> Arbitrary<'a> for RelayOp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let byte = |u: &mut Unstructured<'a>| u8::arbitrary(u);
        Ok(match byte(u)? % 8 {
            0 => RelayOp::Datagram {
                from: byte(u)?,
                user: byte(u)?,
                message: byte(u)?,
            },
            1 => {
                let from = byte(u)?;
                let len = u16::arbitrary(u)?;
                RelayOp::RawDatagram {
                    from,
                    data: take(u, len.into())?,
                }
            }
            2 => RelayOp::Advance {
                millis: u32::arbitrary(u)?,
            },
            3 => RelayOp::Timeout,
            4 => RelayOp::FireNext,
            5 => RelayOp::SendFailed { to: byte(u)? },
            6 => RelayOp::AdvanceFar,
            _ => RelayOp::Shutdown,
        })
    }
}

impl<'a> Arbitrary<'a> for RelayOps {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let config = FuzzConfig::arbitrary(u)?;
        let mut ops = Vec::new();
        while !u.is_empty() {
            ops.push(RelayOp::arbitrary(u)?);
        }
        Ok(RelayOps { config, ops })
    }
}

/// Target: a whole relay-mode server under a sequence of inputs.
///
/// After every input: no panic; [`RelayServer::check_invariants`] holds; every datagram
/// goes to a client registered before the input, never back to the sender of the
/// input, and is either a notice (`0x00 | UTF-8`) or exactly the datagram received; a
/// dropped datagram sends nothing and changes no client; a new client over the limit
/// is dropped as `ServerFull`; after `handle_timeout(now)` the next deadline is later
/// than `now`; once the clock passes every timeout, or after `shutdown`, no client is left.
pub fn relay_ops(data: &[u8]) {
    run(data, false);
}

/// Runs the target; with `record`, returns every output of the relay.
pub(super) fn run(data: &[u8], record: bool) -> Vec<Output> {
    let mut recorded = Vec::new();
    let Ok(input) = RelayOps::arbitrary_take_rest(Unstructured::new(data)) else {
        return recorded;
    };
    let config = input.config.config();
    let mut relay = RelayServer::new(config.clone(), [7; 32]).expect("fuzz configs are valid");
    let mut now = Instant::now();
    for op in &input.ops {
        let before = relay.clients();
        let registered: HashSet<SocketAddr> = before.iter().map(|(addr, _)| *addr).collect();
        let mut received = None;
        match op {
            RelayOp::Datagram {
                from,
                user,
                message,
            } => {
                let name = username(*user);
                let mut datagram = vec![name.len() as u8];
                datagram.extend_from_slice(&name);
                datagram.extend_from_slice(&self::message(*message));
                received = Some((address(*from), datagram));
            }
            RelayOp::RawDatagram { from, data } => received = Some((address(*from), data.clone())),
            RelayOp::Advance { millis } => now += Duration::from_millis(u64::from(*millis)),
            RelayOp::Timeout => relay.handle_timeout(now),
            RelayOp::FireNext => {
                if let Some(at) = relay.poll_timeout() {
                    now = now.max(at);
                }
                relay.handle_timeout(now);
            }
            RelayOp::SendFailed { to } => relay.handle_send_failed(now, address(*to)),
            RelayOp::AdvanceFar => {
                now += advance_far(&config);
                relay.handle_timeout(now);
            }
            RelayOp::Shutdown => relay.shutdown(now),
        }
        if let Some((from, datagram)) = &received {
            relay.handle_datagram(now, *from, datagram);
        }
        let outputs: Vec<Output> = std::iter::from_fn(|| relay.poll_output()).collect();
        let mut dropped = None;
        for output in &outputs {
            match output {
                Output::Datagram { to, payload } => {
                    assert!(
                        registered.contains(to),
                        "datagram to {to}, not a client ({op:?})"
                    );
                    let source = received.as_ref().map(|(from, _)| from);
                    assert_ne!(
                        Some(to),
                        source,
                        "datagram sent back to its sender ({op:?})"
                    );
                    match RelayDatagram::decode(payload) {
                        Ok(RelayDatagram::Notice(body)) => {
                            assert!(std::str::from_utf8(body).is_ok(), "notice not UTF-8");
                        }
                        Ok(RelayDatagram::Message { .. }) => {
                            let relayed = received.as_ref().map(|(_, d)| &d[..]);
                            assert_eq!(
                                relayed,
                                Some(&payload[..]),
                                "relayed something else ({op:?})"
                            );
                        }
                        Err(e) => panic!("relay sent an undecodable datagram: {e}"),
                    }
                }
                Output::Event(Event::DatagramDropped { reason, .. }) => dropped = Some(*reason),
                Output::Event(_) => {}
                other => panic!("relay asked for TCP: {other:?}"),
            }
        }
        if record {
            recorded.extend_from_slice(&outputs);
        }
        if let Some(reason) = dropped {
            assert!(
                !outputs.iter().any(|o| matches!(o, Output::Datagram { .. })),
                "a drop sent"
            );
            assert_eq!(
                relay.clients(),
                before,
                "a dropped datagram changed a client ({op:?})"
            );
            if reason == DropReason::ServerFull {
                assert!(
                    before.len() >= config.max_members,
                    "ServerFull below the limit"
                );
            }
        }
        if let Err(violation) = relay.check_invariants() {
            panic!("{violation} after {op:?}");
        }
        assert_eq!(relay.queued_outputs(), 0);
        if matches!(
            op,
            RelayOp::Timeout | RelayOp::FireNext | RelayOp::AdvanceFar
        ) {
            if let Some(at) = relay.poll_timeout() {
                assert!(at > now, "a due timer was left after handle_timeout");
            }
        }
        if !relay.clients().is_empty() {
            assert!(relay.poll_timeout().is_some(), "clients without a deadline");
        }
        if matches!(op, RelayOp::AdvanceFar | RelayOp::Shutdown) {
            assert!(relay.clients().is_empty(), "clients left after {op:?}");
        }
    }
    recorded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_is_the_inverse_of_arbitrary() {
        let ops = RelayOps {
            config: FuzzConfig::ROOMY,
            ops: vec![
                RelayOp::Datagram {
                    from: 1,
                    user: 2,
                    message: 3,
                },
                RelayOp::RawDatagram {
                    from: 2,
                    data: vec![5; 10],
                },
                RelayOp::Advance { millis: 7 },
                RelayOp::Timeout,
                RelayOp::FireNext,
                RelayOp::SendFailed { to: 9 },
                RelayOp::AdvanceFar,
                RelayOp::Shutdown,
            ],
        };
        let bytes = ops.encode();
        assert_eq!(
            RelayOps::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
            ops
        );
    }
}
