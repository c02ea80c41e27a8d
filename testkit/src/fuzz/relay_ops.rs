//! The `relay_ops` target: a whole [`RelayServer`] driven by a sequence of inputs
//! (well-framed and raw datagrams from a few addresses, clock advances, send failures),
//! acting as the shell and checking every output.
//!
//! ```
//! use ocm_testkit::fuzz::{relay_ops, FuzzConfig, RelayOp, RelayOps};
//! let ops = vec![
//!     RelayOp::Datagram { from: 0, user: 0, message: 2 },
//!     RelayOp::Datagram { from: 1, user: 1, message: 2 },
//!     RelayOp::AdvanceFar,
//! ];
//! relay_ops(&RelayOps { config: FuzzConfig::ROOMY, ops }.encode());
//! ```

use super::config::advance_far;
use super::ops::{Long, Ops};
use super::pools::{address, message, send_failure, username};
use arbitrary::{Arbitrary, Unstructured};
use ocm_core::output::{DropReason, Event, Output};
use ocm_core::relay::RelayServer;
use ocm_core::rooms::canonical_addr;
use ocm_core::wire::relay_datagram::RelayDatagram;
use ocm_core::{invariants, Input, Machine};
use std::time::{Duration, Instant};

crate::fuzz_ops! {
    /// One input to the relay. Small numbers index the pools of [`super::ServerOp`].
    pub enum RelayOp {
        /// `usernamelen | username | message` from `address(from)`.
        Datagram {
            /// Source address index.
            from: u8,
            /// Username index.
            user: u8,
            /// Message index.
            message: u8,
        } = 0,
        /// Any bytes as a datagram.
        RawDatagram {
            /// Source address index.
            from: u8,
            /// The bytes.
            data: Long,
        } = 1,
        /// The clock moves on, without a timeout call.
        Advance {
            /// Milliseconds.
            millis: u32,
        } = 2,
        /// `handle_timeout` now.
        Timeout = 3,
        /// The clock jumps to `poll_timeout()` (if later) and `handle_timeout` runs.
        FireNext = 4,
        /// A send to an address failed.
        SendFailed {
            /// Address index; bit 7: learnt from ICMP (else a refused `send_to`).
            to: u8,
        } = 5,
        /// The clock jumps past every timeout: no client may be left.
        AdvanceFar = 6,
        /// `shutdown`: no client may be left.
        Shutdown = 7,
    }
}

/// A configuration and the inputs to apply, one by one.
pub type RelayOps = Ops<RelayOp>;

/// Target: a whole relay-mode server under a sequence of inputs.
///
/// After every input: no panic; every property of [`ocm_core::invariants::check_step`]
/// (the relay's invariants; datagrams only to clients registered before the input; no
/// timer left due after a timeout; nothing left after `shutdown`); no datagram back to
/// the sender of the input, and each is either a notice (`0x00 | UTF-8`) or exactly
/// the datagram received; a dropped datagram sends nothing and changes no client; a new
/// client over the limit is dropped as `ServerFull`; once the clock passes every
/// timeout, no client is left.
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
    let mut outputs = Vec::new();
    for op in &input.ops {
        let before = relay.clients();
        let mut received = None;
        let step = match op {
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
                None
            }
            RelayOp::RawDatagram { from, data } => {
                received = Some((address(*from), data.0.clone()));
                None
            }
            RelayOp::Advance { millis } => {
                now += Duration::from_millis(u64::from(*millis));
                continue;
            }
            RelayOp::Timeout => Some(Input::Timeout),
            RelayOp::FireNext => {
                if let Some(at) = relay.poll_timeout() {
                    now = now.max(at);
                }
                Some(Input::Timeout)
            }
            RelayOp::SendFailed { to } => {
                let (to, cause) = send_failure(*to);
                Some(Input::SendFailed { to, cause })
            }
            RelayOp::AdvanceFar => {
                now += advance_far(&config);
                Some(Input::Timeout)
            }
            RelayOp::Shutdown => Some(Input::Shutdown),
        };
        let step = step.unwrap_or_else(|| {
            let (from, data) = received.as_ref().expect("a datagram op");
            Input::Datagram {
                from: *from,
                data: &data[..],
            }
        });
        if let Err(violation) = invariants::step(&mut relay, now, step, &mut outputs) {
            panic!("{violation} after {op:?}");
        }
        let mut dropped = None;
        for output in &outputs {
            match output {
                Output::Datagram { to, payload } => {
                    // Only the answers of the ocm extensions go back to the sender.
                    let source = received.as_ref().map(|(from, _)| canonical_addr(*from));
                    let answer = payload.starts_with(b"\x00members: ")
                        || payload.starts_with(b"\x00alive: ");
                    assert!(
                        Some(*to) != source || answer,
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
        if matches!(op, RelayOp::AdvanceFar) {
            assert!(relay.clients().is_empty(), "clients left after {op:?}");
        }
    }
    recorded
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::FuzzConfig;

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
                    data: Long(vec![5; 10]),
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
