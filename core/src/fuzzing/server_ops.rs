//! The `server_ops` target: a whole rooms [`Server`] driven by a sequence of inputs
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
//! use ocm_core::fuzzing::{server_ops, FuzzConfig, ServerOp, ServerOps};
//! let ops = vec![
//!     ServerOp::Accept { peer: 0 },
//!     ServerOp::Request { conn: 0, kind: 0, room: 0, user: 0, password: 0, chunk: 0 },
//!     ServerOp::Datagram { from: 0, token: 0, room: 0, message: 2 },
//!     ServerOp::AdvanceFar,
//! ];
//! server_ops(&ServerOps { config: FuzzConfig::ROOMY, ops }.encode());
//! ```

use super::config::FuzzConfig;
use super::server_shell::Harness;
use crate::output::Output;
use arbitrary::{Arbitrary, Unstructured};

/// One input to the server. Small numbers index the pools ([`super::pools`]) or, from the newest back, the connections
/// opened and the tokens issued so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOp {
    /// A new connection (fresh id) from `address(peer)`.
    Accept {
        /// Peer address index.
        peer: u8,
    },
    /// A TCRP frame on a connection, written `chunk` bytes at a time (0: at once).
    /// `kind` bit 0: join (else create); bit 1: raw username payload (else JSON);
    /// bits 2-3: state 0, 0, 1 or 2; bit 4: operation code 0 or 3 instead.
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
    },
    /// Raw bytes on a connection.
    TcpBytes {
        /// Connection, 0 = the newest.
        conn: u8,
        /// The bytes (at most 255).
        data: Vec<u8>,
    },
    /// The 2-byte port step, then the client's EOF.
    Port {
        /// Connection, 0 = the newest.
        conn: u8,
        /// The port sent.
        port: u16,
    },
    /// The peer closed a connection.
    TcpClosed {
        /// Connection, 0 = the newest.
        conn: u8,
    },
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
    /// The clock jumps past every timeout: the server must be empty afterwards.
    AdvanceFar,
    /// `shutdown`: the server must be empty afterwards.
    Shutdown,
}

/// A configuration and the inputs to apply, one by one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerOps {
    /// Limits of the server under test.
    pub config: FuzzConfig,
    /// The inputs.
    pub ops: Vec<ServerOp>,
}

const OP_KINDS: u8 = 13;

impl ServerOps {
    /// The bytes that [`Arbitrary`] reads back as `self`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.config.encode().to_vec();
        for op in &self.ops {
            op.encode(&mut out);
        }
        out
    }
}

impl ServerOp {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ServerOp::Accept { peer } => out.extend([0, *peer]),
            ServerOp::Request {
                conn,
                kind,
                room,
                user,
                password,
                chunk,
            } => out.extend([1, *conn, *kind, *room, *user, *password, *chunk]),
            ServerOp::TcpBytes { conn, data } => {
                out.extend([
                    2,
                    *conn,
                    u8::try_from(data.len()).expect("at most 255 bytes"),
                ]);
                out.extend_from_slice(data);
            }
            ServerOp::Port { conn, port } => {
                out.extend([3, *conn]);
                out.extend(port.to_le_bytes());
            }
            ServerOp::TcpClosed { conn } => out.extend([4, *conn]),
            ServerOp::Datagram {
                from,
                token,
                room,
                message,
            } => out.extend([5, *from, *token, *room, *message]),
            ServerOp::RawDatagram { from, data } => {
                out.extend([6, *from]);
                out.extend(
                    u16::try_from(data.len())
                        .expect("at most 65535 bytes")
                        .to_le_bytes(),
                );
                out.extend_from_slice(data);
            }
            ServerOp::Advance { millis } => {
                out.push(7);
                out.extend(millis.to_le_bytes());
            }
            ServerOp::Timeout => out.push(8),
            ServerOp::FireNext => out.push(9),
            ServerOp::SendFailed { to } => out.extend([10, *to]),
            ServerOp::AdvanceFar => out.push(11),
            ServerOp::Shutdown => out.push(12),
        }
    }
}

/// Reads `len` (at most what is left) bytes.
pub(super) fn take(u: &mut Unstructured<'_>, len: usize) -> arbitrary::Result<Vec<u8>> {
    Ok(u.bytes(len.min(u.len()))?.to_vec())
}

impl<'a> Arbitrary<'a> for ServerOp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let byte = |u: &mut Unstructured<'a>| u8::arbitrary(u);
        Ok(match byte(u)? % OP_KINDS {
            0 => ServerOp::Accept { peer: byte(u)? },
            1 => ServerOp::Request {
                conn: byte(u)?,
                kind: byte(u)?,
                room: byte(u)?,
                user: byte(u)?,
                password: byte(u)?,
                chunk: byte(u)?,
            },
            2 => {
                let conn = byte(u)?;
                let len = byte(u)?;
                ServerOp::TcpBytes {
                    conn,
                    data: take(u, len.into())?,
                }
            }
            3 => ServerOp::Port {
                conn: byte(u)?,
                port: u16::arbitrary(u)?,
            },
            4 => ServerOp::TcpClosed { conn: byte(u)? },
            5 => ServerOp::Datagram {
                from: byte(u)?,
                token: byte(u)?,
                room: byte(u)?,
                message: byte(u)?,
            },
            6 => {
                let from = byte(u)?;
                let len = u16::arbitrary(u)?;
                ServerOp::RawDatagram {
                    from,
                    data: take(u, len.into())?,
                }
            }
            7 => ServerOp::Advance {
                millis: u32::arbitrary(u)?,
            },
            8 => ServerOp::Timeout,
            9 => ServerOp::FireNext,
            10 => ServerOp::SendFailed { to: byte(u)? },
            11 => ServerOp::AdvanceFar,
            _ => ServerOp::Shutdown,
        })
    }
}

impl<'a> Arbitrary<'a> for ServerOps {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let config = FuzzConfig::arbitrary(u)?;
        let mut ops = Vec::new();
        while !u.is_empty() {
            ops.push(ServerOp::arbitrary(u)?);
        }
        Ok(ServerOps { config, ops })
    }
}

/// Target: a whole rooms server under a sequence of inputs.
///
/// After every input: no panic; [`crate::Server::check_invariants`] holds; the shell's view of
/// open connections matches [`crate::Server::counts`]; a connection is refused exactly when
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
                    data: vec![1, 2, 3],
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
                    data: vec![0; 300],
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
    }
}
