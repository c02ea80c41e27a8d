//! [`ClientError`]: why a client session could not start or went wrong, each as one
//! line for the user (`room "x" already exists`, `wrong password for room "x"`, ...).

use ocm_core::client::{HandshakeError, InvalidName};
use ocm_core::Status;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a session could not start or went wrong.
#[derive(Debug)]
pub enum ClientError {
    /// The room name or username breaks a rule; nothing was sent.
    InvalidName(InvalidName),
    /// The TCP connection could not be made.
    Connect(SocketAddr, io::Error),
    /// The server did not complete the handshake in time.
    Timeout(SocketAddr, Duration),
    /// The server refused the request.
    Refused {
        /// The status it answered.
        status: Status,
        /// The room asked for.
        room: String,
        /// The username asked for.
        username: String,
    },
    /// The server's answer made no sense.
    Handshake(HandshakeError),
    /// The server's UDP port answered "unreachable": it is not running.
    Unreachable(SocketAddr),
    /// Another I/O error.
    Io(io::Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::InvalidName(e) => write!(f, "{e}"),
            ClientError::Connect(addr, e) => write!(f, "cannot connect to {addr}: {e}"),
            ClientError::Timeout(addr, d) => {
                write!(f, "no answer from {addr} within {} s", d.as_secs_f32())
            }
            ClientError::Refused {
                status,
                room,
                username,
            } => match status {
                Status::RoomExists => write!(f, "room {room:?} already exists"),
                Status::RoomNotFound => write!(f, "room {room:?} does not exist"),
                Status::InvalidPassword => write!(f, "wrong password for room {room:?}"),
                Status::UsernameTaken => {
                    write!(f, "username {username:?} is already taken in room {room:?}")
                }
                Status::InvalidRequest => f.write_str("the server found the request invalid"),
                Status::PayloadTooLarge => f.write_str("the request is too large for the server"),
                Status::ServerFull => {
                    f.write_str("server full: the room or member limit is reached")
                }
                Status::TryLater => f.write_str(
                    "the server asks to try again later (too many wrong passwords lately)",
                ),
                Status::Ok => f.write_str("unexpected status ok"),
            },
            ClientError::Handshake(e) => write!(f, "{e}"),
            ClientError::Unreachable(addr) => {
                write!(f, "server {addr} is unreachable (not running?)")
            }
            ClientError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(error: io::Error) -> ClientError {
        ClientError::Io(error)
    }
}
