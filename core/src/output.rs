//! What the servers ask their shell to do, and what they report having done.
//!
//! A shell feeds an input, then calls `poll_output()` until it returns `None`, carrying
//! out each [`Output`] in order, then sleeps until `poll_timeout()` or the next input.

use crate::wire::notice::{CloseReason, EvictReason};
use crate::wire::tcrp::{Operation, Status};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// A TCP connection, named by the shell. Ids must not be reused while the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// One thing for the shell to do, or one thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes on the connection, after anything queued before.
    TcpSend {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// Shut down the write half (send FIN) once queued bytes are written; keep reading.
    TcpShutdownWrite {
        /// The connection.
        conn: ConnId,
    },
    /// Write what is queued, then close the connection. The server has forgotten it.
    ///
    /// The peer may still have unread bytes in flight (an oversize payload, say). Closing
    /// a socket with unread input makes the kernel send a reset, which can destroy the
    /// answer before the peer reads it; so shut down the write side, then read and discard
    /// for a bounded time until the peer closes (a lingering close).
    TcpClose {
        /// The connection.
        conn: ConnId,
    },
    /// Send one datagram. Payloads of one fan-out share a buffer (cheap clones).
    Datagram {
        /// Destination.
        to: SocketAddr,
        /// Bytes to send.
        payload: Bytes,
    },
    /// An event for logs and tests; the shell need not act on it.
    Event(Event),
    /// Cluster mode only: a registry request, a publish or the rooms to subscribe to,
    /// for the cluster backend.
    Cluster(crate::cluster::node::ClusterOutput),
}

/// Something that happened inside the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A TCRP request was answered with this status.
    Handshake {
        /// Peer of the connection.
        peer: SocketAddr,
        /// The operation asked for, if it was a known one.
        operation: Option<Operation>,
        /// The status sent back.
        status: Status,
    },
    /// A connection was closed at once because a connection limit was reached.
    ConnectionRefused {
        /// Peer of the refused connection.
        peer: SocketAddr,
    },
    /// An unfinished connection was closed without an answer to protect the others.
    ConnectionShed {
        /// Peer of the closed connection.
        peer: SocketAddr,
        /// Why it was the one.
        reason: ShedReason,
    },
    /// A connection did not complete its request in time and was closed.
    HandshakeTimedOut {
        /// Peer of the connection.
        peer: SocketAddr,
    },
    /// A room was created.
    RoomCreated {
        /// Room name.
        room: Arc<str>,
        /// Its host.
        host: Arc<str>,
    },
    /// A room was closed and all its tokens removed.
    RoomClosed {
        /// Room name.
        room: Arc<str>,
        /// Why.
        reason: CloseReason,
    },
    /// A member joined a room (or a client registered in relay mode).
    MemberJoined {
        /// Room name (`None` in relay mode, which has no rooms).
        room: Option<Arc<str>>,
        /// Username.
        username: Arc<str>,
    },
    /// A member's UDP address became known or changed (a valid datagram from a new
    /// source, or the port step).
    MemberAddress {
        /// Room name.
        room: Arc<str>,
        /// Username.
        username: Arc<str>,
        /// Where it now receives.
        addr: SocketAddr,
    },
    /// A member left with `/exit`.
    MemberLeft {
        /// Room name (`None` in relay mode, which has no rooms).
        room: Option<Arc<str>>,
        /// Username.
        username: Arc<str>,
    },
    /// A member was evicted.
    MemberEvicted {
        /// Room name (`None` in relay mode, which has no rooms).
        room: Option<Arc<str>>,
        /// Username.
        username: Arc<str>,
        /// Why.
        reason: EvictReason,
    },
    /// A datagram was dropped; nothing was sent back.
    DatagramDropped {
        /// Source address.
        from: SocketAddr,
        /// Why.
        reason: DropReason,
    },
}

/// Why an unfinished connection was closed without an answer ([`Event::ConnectionShed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShedReason {
    /// At the total connection limit, a new connection came from a source below its
    /// own limit: the oldest connection still sending its request made way for it.
    Displaced,
    /// The unfinished requests of all connections held more bytes than the global
    /// budget: this one held the most.
    RequestBudget,
}

impl std::fmt::Display for ShedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ShedReason::Displaced => "oldest unfinished request, displaced at the connection limit",
            ShedReason::RequestBudget => "largest unfinished request, over the request budget",
        })
    }
}

/// Why an inbound datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// More than 4096 bytes.
    TooLarge,
    /// Shorter than its size fields say, or empty.
    Truncated,
    /// The room named does not exist.
    UnknownRoom,
    /// The token is malformed, unknown, or belongs to another room.
    UnknownToken,
    /// A known token sent from an IP other than the one that obtained it.
    WrongAddress,
    /// The message is not valid UTF-8.
    NotUtf8,
    /// Relay mode: the username is empty (a notice frame) or breaks a name rule.
    BadUsername,
    /// Relay mode: a new client while the client limit is reached.
    ServerFull,
    /// The message holds a control character other than TAB (a terminal escape, a
    /// carriage return that would fake a notice, ...).
    ControlCharacter,
    /// A message over its member's, its source's or its room's rate.
    RateLimited,
    /// Relay mode: from an address that has not shown it receives (no code echoed, or a
    /// wrong one), and not answered (the answer would not fit three times its size, or
    /// over the rate of answers).
    Unverified,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 11] = [
        DropReason::TooLarge,
        DropReason::Truncated,
        DropReason::UnknownRoom,
        DropReason::UnknownToken,
        DropReason::WrongAddress,
        DropReason::NotUtf8,
        DropReason::BadUsername,
        DropReason::ServerFull,
        DropReason::ControlCharacter,
        DropReason::RateLimited,
        DropReason::Unverified,
    ];

    /// Position in [`DropReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<crate::wire::DatagramError> for DropReason {
    fn from(error: crate::wire::DatagramError) -> DropReason {
        match error {
            crate::wire::DatagramError::TooLarge => DropReason::TooLarge,
            crate::wire::DatagramError::Truncated => DropReason::Truncated,
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DropReason::TooLarge => "too large",
            DropReason::Truncated => "truncated",
            DropReason::UnknownRoom => "unknown room",
            DropReason::UnknownToken => "unknown token",
            DropReason::WrongAddress => "token used from another IP",
            DropReason::NotUtf8 => "message not UTF-8",
            DropReason::BadUsername => "bad username",
            DropReason::ServerFull => "server full",
            DropReason::ControlCharacter => "control character in message",
            DropReason::RateLimited => "over a rate limit",
            DropReason::Unverified => "address not verified",
        })
    }
}
