//! The `server_ops` target: a whole [`ocm_core::RoomServer`] driven by a sequence of inputs
//! (accepts, TCRP requests and raw TCP bytes, port steps, closes, datagrams with real
//! and made-up tokens from a few addresses, clock advances, send failures), acting as
//! the shell and checking every output.
//!
//! Inputs pick from small pools (a dozen addresses, a few room names, usernames,
//! passwords and messages, some of them invalid) so that the fuzzer reaches deep
//! states: rooms with several members, full rooms, wrong passwords, evictions. Tokens
//! come from the server's own complete frames, so datagrams can carry real ones.
//!
//! ```
//! use ocm_testkit::fuzz::{server_ops, FuzzConfig, ServerOp, ServerOps};
//! let ops = vec![
//!     ServerOp::Accept { peer: 0 },
//!     ServerOp::Request { conn: 0, kind: 0, room: 0, user: 0, password: 0, chunk: 0 },
//!     ServerOp::Datagram { from: 0, token: 0, room: 0, message: 2 },
//!     ServerOp::AdvanceFar,
//! ];
//! server_ops(&ServerOps { config: FuzzConfig::ROOMY, ops }.encode());
//! ```

use super::ops::{Long, Ops, Short};
use super::server_shell::Harness;
use arbitrary::{Arbitrary, Unstructured};
use ocm_core::output::Output;

crate::fuzz_ops! {
    /// One input to the server. Small numbers index the pools ([`super::pools`]) or,
    /// from the newest back, the connections opened and the tokens issued so far.
    pub enum ServerOp {
        /// A new connection (fresh id) from `address(peer)`.
        Accept {
            /// Peer address index.
            peer: u8,
        } = 0,
        /// A TCRP frame on a connection, written `chunk` bytes at a time (0: at once).
        /// `kind` bit 0: join (else create); bit 1: raw username payload (else JSON);
        /// bits 2-3: state 0, 0, 1 or 2; bit 4: operation code 0 or 3 instead; bit 5:
        /// the interop JSON (`user_name`, an `ip`, and the `port` of bits 6-7:
        /// 4000, 4001, 5000 or 0).
        Request {
            /// Connection, 0 = the newest.
            conn: u8,
            /// Shape of the frame, see above.
            kind: u8,
            /// Room name index.
            room: u8,
            /// Username index.
            user: u8,
            /// Password index.
            password: u8,
            /// Chunk size.
            chunk: u8,
        } = 1,
        /// Raw bytes on a connection.
        TcpBytes {
            /// Connection, 0 = the newest.
            conn: u8,
            /// The bytes.
            data: Short,
        } = 2,
        /// The 2-byte port step, then the client's EOF.
        Port {
            /// Connection, 0 = the newest.
            conn: u8,
            /// The port sent.
            port: u16,
        } = 3,
        /// The peer closed a connection.
        TcpClosed {
            /// Connection, 0 = the newest.
            conn: u8,
        } = 4,
        /// A well-framed room datagram with an issued token.
        Datagram {
            /// Source address index.
            from: u8,
            /// Token, 0 = the newest issued (a made-up one when none was).
            token: u8,
            /// 0: the token's own room; else `room_name(room - 1)`.
            room: u8,
            /// Message index.
            message: u8,
        } = 5,
        /// Any bytes as a datagram.
        RawDatagram {
            /// Source address index.
            from: u8,
            /// The bytes.
            data: Long,
        } = 6,
        /// The clock moves on, without a timeout call.
        Advance {
            /// Milliseconds.
            millis: u32,
        } = 7,
        /// `handle_timeout` now.
        Timeout = 8,
        /// The clock jumps to `poll_timeout()` (if later) and `handle_timeout` runs.
        FireNext = 9,
        /// A send to an address failed.
        SendFailed {
            /// Address index; bit 7: learnt from ICMP (else a refused `send_to`).
            to: u8,
        } = 10,
        /// The clock jumps past every timeout: the server must be empty afterwards.
        AdvanceFar = 11,
        /// `shutdown`: the server must be empty afterwards.
        Shutdown = 12,
    }
}

/// A configuration and the inputs to apply, one by one.
pub type ServerOps = Ops<ServerOp>;

/// Target: a whole rooms server under a sequence of inputs.
///
/// After every input: no panic; [`ocm_core::Machine::check_invariants`] holds; the shell's view of
/// open connections matches [`ocm_core::Machine::counts`]; a connection is refused exactly when
/// a connection limit is reached; TCRP answers are one response (then, on status 0, one
/// complete frame with a 32-hex token, then a shutdown of the write side) and a non-zero
/// status closes the connection at once; every datagram goes to the address of a
/// member before the input, or to one that became known during it (a port step decided
/// at its deadline, say), and is UTF-8 of at most 4094 bytes; a dropped
/// datagram (and any token used from another IP or for another room) sends nothing and
/// changes no member; after `handle_timeout(now)` the next deadline is later than
/// `now`; once the clock passes every timeout, or after `shutdown`, nothing is left.
pub fn server_ops(data: &[u8]) {
    run(data, false);
}

/// Runs the target; with `record`, returns every output of the server.
pub(super) fn run(data: &[u8], record: bool) -> Vec<Output> {
    let Ok(input) = ServerOps::arbitrary_take_rest(Unstructured::new(data)) else {
        return Vec::new();
    };
    let mut harness = Harness::new(input.config.config(), record);
    for op in &input.ops {
        harness.step(op);
    }
    harness.recorded()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::FuzzConfig;

    #[test]
    fn encode_is_the_inverse_of_arbitrary() {
        let ops = ServerOps {
            config: FuzzConfig::TIGHT,
            ops: vec![
                ServerOp::Accept { peer: 3 },
                ServerOp::Request {
                    conn: 0,
                    kind: 1,
                    room: 2,
                    user: 3,
                    password: 1,
                    chunk: 5,
                },
                ServerOp::TcpBytes {
                    conn: 1,
                    data: Short(vec![1, 2, 3]),
                },
                ServerOp::Port {
                    conn: 0,
                    port: 4000,
                },
                ServerOp::TcpClosed { conn: 2 },
                ServerOp::Datagram {
                    from: 1,
                    token: 0,
                    room: 0,
                    message: 2,
                },
                ServerOp::RawDatagram {
                    from: 2,
                    data: Long(vec![0; 300]),
                },
                ServerOp::Advance { millis: 300_000 },
                ServerOp::Timeout,
                ServerOp::FireNext,
                ServerOp::SendFailed { to: 4 },
                ServerOp::AdvanceFar,
                ServerOp::Shutdown,
            ],
        };
        let bytes = ops.encode();
        assert_eq!(
            ServerOps::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap(),
            ops
        );
        assert_eq!(ServerOp::KINDS, 13);
    }
}
