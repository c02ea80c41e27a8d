//! [`Input`]: everything a server can be told, in one enum.
//!
//! Both servers take it through [`crate::Machine::handle`] with the current time; the
//! shells, the simulator, the fuzzers and recorded traces ([`crate::record`]) all speak
//! it, so there is one list of what can happen to a server and one place to add to it.
//!
//! The bytes are generic: the servers read `Input<&[u8]>` (a datagram straight from
//! the shell's read buffer), while a channel or a trace holds `Input<Bytes>` or
//! `Input<Vec<u8>>`; [`Input::as_slice`] borrows either back.

use crate::output::ConnId;
use std::net::SocketAddr;

/// One thing that happened to a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<B> {
    /// A TCP connection was accepted from `peer` (rooms mode; relay mode closes it).
    TcpAccepted {
        /// Id chosen by the shell, never reused while the server runs.
        conn: ConnId,
        /// The peer.
        peer: SocketAddr,
    },
    /// Bytes arrived on a connection.
    TcpData {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: B,
    },
    /// The peer closed its side, or the connection failed.
    TcpClosed {
        /// The connection.
        conn: ConnId,
    },
    /// A datagram arrived on the UDP socket.
    Datagram {
        /// Its source, in either address form (IPv4 or IPv4-mapped IPv6).
        from: SocketAddr,
        /// Its bytes.
        data: B,
    },
    /// The shell could not send to `to`.
    SendFailed {
        /// The destination that failed.
        to: SocketAddr,
        /// How the shell knows: `send_to` failed, or an ICMP error came back.
        cause: SendFailure,
    },
    /// Time passed: fire every timer due (an early call does nothing).
    Timeout,
    /// The server is going: tell every member and forget everything.
    Shutdown,
}

impl<B: AsRef<[u8]>> Input<B> {
    /// The same input, its bytes borrowed.
    pub fn as_slice(&self) -> Input<&[u8]> {
        match self {
            Input::TcpAccepted { conn, peer } => Input::TcpAccepted {
                conn: *conn,
                peer: *peer,
            },
            Input::TcpData { conn, data } => Input::TcpData {
                conn: *conn,
                data: data.as_ref(),
            },
            Input::TcpClosed { conn } => Input::TcpClosed { conn: *conn },
            Input::Datagram { from, data } => Input::Datagram {
                from: *from,
                data: data.as_ref(),
            },
            Input::SendFailed { to, cause } => Input::SendFailed {
                to: *to,
                cause: *cause,
            },
            Input::Timeout => Input::Timeout,
            Input::Shutdown => Input::Shutdown,
        }
    }

    /// The same input with its bytes converted (copied into a `Vec`, say).
    pub fn map<C>(self, f: impl FnOnce(B) -> C) -> Input<C> {
        match self {
            Input::TcpAccepted { conn, peer } => Input::TcpAccepted { conn, peer },
            Input::TcpData { conn, data } => Input::TcpData {
                conn,
                data: f(data),
            },
            Input::TcpClosed { conn } => Input::TcpClosed { conn },
            Input::Datagram { from, data } => Input::Datagram {
                from,
                data: f(data),
            },
            Input::SendFailed { to, cause } => Input::SendFailed { to, cause },
            Input::Timeout => Input::Timeout,
            Input::Shutdown => Input::Shutdown,
        }
    }
}

/// How a shell learnt that a send failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SendFailure {
    /// `send_to` itself returned an error: the kernel refused the send.
    Refused,
    /// An ICMP error (port or host unreachable) quoting the destination, read from the
    /// socket's error queue. Anyone can forge one, so it is a hint, not proof
    /// (RFC 8085 section 5.2, RFC 5927): it counts only against a silent member.
    Icmp,
}
