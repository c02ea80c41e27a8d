//! The client side, sans-IO: the TCRP handshake, then a chat session over UDP.
//!
//! [`Handshake`] builds the request and reads the server's answer from the TCP stream
//! until it has a token (or a refusal). [`ChatSession`] frames outgoing lines, sends the
//! registration datagram at once and keepalives on a timer, and recognizes what comes
//! back: relayed lines and server notices. The same code serves the `ocm client`
//! command and the simulator.
//!
//! ```
//! use ocm_core::client::{ChatSession, Handshake, Incoming};
//! use std::time::{Duration, Instant};
//!
//! let mut handshake = Handshake::join("lobby", "bob", None).unwrap();
//! // write handshake.request() to the TCP stream, then feed what comes back:
//! let answer = [
//!     ocm_core::wire::tcrp::encode_response(b"lobby", 2, ocm_core::Status::Ok),
//!     ocm_core::wire::tcrp::encode_complete(b"lobby", 2, &ocm_core::Token::from_bytes([1; 16])),
//! ]
//! .concat();
//! let token = handshake.handle_data(&answer).unwrap().unwrap();
//! let now = Instant::now();
//! let mut chat = ChatSession::room(now, "lobby", &token, Duration::from_secs(60)).unwrap();
//! let registration = chat.poll_transmit().unwrap(); // send it to the server's UDP port
//! assert_eq!(chat.handle_datagram(b"alice: hi"), Some(Incoming::Line("alice: hi".into())));
//! ```

use crate::names::{self, NameError};
use crate::probe::{self, Lost, Monitor, Step};
use crate::wire::notice::{Notice, NOTICE_PREFIX};
use crate::wire::relay_datagram::RelayDatagram;
use crate::wire::request::encode_payload;
use crate::wire::room_datagram::RoomDatagram;
use crate::wire::tcrp::{encode_frame, FrameDecoder, Operation, State, Status};
use crate::wire::MAX_DATAGRAM_LEN;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A name the client was asked to use breaks a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidName {
    /// The room name.
    Room(NameError),
    /// The username.
    Username(NameError),
    /// The token from the handshake is empty or longer than 255 bytes.
    Token,
}

impl std::fmt::Display for InvalidName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidName::Room(e) => write!(f, "invalid room name: {e}"),
            InvalidName::Username(e) => write!(f, "invalid username: {e}"),
            InvalidName::Token => f.write_str("invalid token: empty or longer than 255 bytes"),
        }
    }
}

impl std::error::Error for InvalidName {}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// The server answered with a non-zero status.
    Refused(Status),
    /// The server closed the connection before sending a token.
    Closed,
    /// The server sent something that is not a TCRP answer.
    Protocol(&'static str),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Refused(status) => write!(f, "server refused: {status}"),
            HandshakeError::Closed => {
                f.write_str("server closed the connection before sending a token")
            }
            HandshakeError::Protocol(what) => write!(f, "protocol error: {what}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Longest token the client accepts (the spec's bound).
const MAX_TOKEN_LEN: u32 = 255;

/// The TCRP exchange of one create or join.
#[derive(Debug)]
pub struct Handshake {
    operation: Operation,
    request: Bytes,
    decoder: FrameDecoder,
    accepted: bool,
}

impl Handshake {
    /// Create `room` and become its host; `password` (if any) protects it.
    pub fn create(
        room: &str,
        username: &str,
        password: Option<&str>,
    ) -> Result<Handshake, InvalidName> {
        Handshake::new(Operation::Create, room, username, password)
    }

    /// Join `room`.
    pub fn join(
        room: &str,
        username: &str,
        password: Option<&str>,
    ) -> Result<Handshake, InvalidName> {
        Handshake::new(Operation::Join, room, username, password)
    }

    /// A handshake for `operation`, with the names checked before anything is sent.
    pub fn new(
        operation: Operation,
        room: &str,
        username: &str,
        password: Option<&str>,
    ) -> Result<Handshake, InvalidName> {
        names::room_name(room.as_bytes()).map_err(InvalidName::Room)?;
        names::username(username.as_bytes()).map_err(InvalidName::Username)?;
        let payload = encode_payload(username, password);
        let request = encode_frame(
            room.as_bytes(),
            operation.code(),
            State::Request.code(),
            &payload,
        );
        Ok(Handshake {
            operation,
            request,
            decoder: FrameDecoder::new(MAX_TOKEN_LEN),
            accepted: false,
        })
    }

    /// The request bytes to write on the TCP stream.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// Feeds bytes read from the stream. Returns the token once it arrived.
    pub fn handle_data(&mut self, mut data: &[u8]) -> Result<Option<Bytes>, HandshakeError> {
        while !data.is_empty() {
            let frame = match self.decoder.decode(&mut data) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(None),
                Err(_) => return Err(HandshakeError::Protocol("answer payload too large")),
            };
            if frame.operation != self.operation.code() {
                return Err(HandshakeError::Protocol("answer for another operation"));
            }
            match (State::from_code(frame.state), self.accepted) {
                (Some(State::Response), false) => {
                    let [code] = frame.payload[..] else {
                        return Err(HandshakeError::Protocol("status is not one byte"));
                    };
                    match Status::from_code(code) {
                        Some(Status::Ok) => self.accepted = true,
                        Some(status) => return Err(HandshakeError::Refused(status)),
                        None => return Err(HandshakeError::Protocol("unknown status code")),
                    }
                }
                (Some(State::Complete), true) if !frame.payload.is_empty() => {
                    return Ok(Some(frame.payload));
                }
                _ => return Err(HandshakeError::Protocol("unexpected frame")),
            }
        }
        Ok(None)
    }

    /// The stream ended before a token: the error to report.
    pub fn handle_eof(&self) -> HandshakeError {
        HandshakeError::Closed
    }
}

/// The optional port step: the 2 bytes a client writes after the token so the server
/// knows where it receives before it first speaks.
pub fn port_bytes(port: u16) -> [u8; 2] {
    port.to_be_bytes()
}

/// A received datagram, made readable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A chat line, `NAME: message`.
    Line(String),
    /// A server notice.
    Notice(Notice),
}

impl std::fmt::Display for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Incoming::Line(line) => f.write_str(line),
            Incoming::Notice(notice) => write!(f, "{NOTICE_PREFIX}{}", notice.body()),
        }
    }
}

/// A message could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Longer than [`ChatSession::max_message_len`].
    TooLong {
        /// The most bytes a message can have in this session.
        max: usize,
    },
    /// The session ended (left, evicted or room closed).
    Ended,
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::TooLong { max } => write!(f, "message longer than {max} bytes"),
            SendError::Ended => f.write_str("the chat session has ended"),
        }
    }
}

impl std::error::Error for SendError {}

/// Why a chat session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// `/exit` (or [`ChatSession::leave`]): the leave was queued.
    Left,
    /// The server evicted this member (`* disconnected: ...`).
    Disconnected,
    /// The room closed (`* room closed: ...`).
    RoomClosed,
    /// The liveness probes say the membership is gone (see [`crate::probe`]).
    Lost(Lost),
}

#[derive(Debug)]
enum Framing {
    Room { room: Bytes, token: Bytes },
    Relay { username: Bytes },
}

/// A chat over UDP, in a room or in relay mode.
#[derive(Debug)]
pub struct ChatSession {
    framing: Framing,
    keepalive: Duration,
    next_keepalive: Instant,
    transmits: VecDeque<Bytes>,
    ended: Option<SessionEnd>,
    /// Liveness probes (an ocm extension), once enabled and while the server answers.
    probes: Option<Monitor>,
    room_size: Option<usize>,
}

impl ChatSession {
    /// A room session with the token from the handshake. Queues the registration datagram.
    pub fn room(
        now: Instant,
        room: &str,
        token: &[u8],
        keepalive: Duration,
    ) -> Result<ChatSession, InvalidName> {
        names::room_name(room.as_bytes()).map_err(InvalidName::Room)?;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN as usize {
            return Err(InvalidName::Token);
        }
        let framing = Framing::Room {
            room: Bytes::copy_from_slice(room.as_bytes()),
            token: Bytes::copy_from_slice(token),
        };
        Ok(ChatSession::start(now, framing, keepalive))
    }

    /// A relay-mode session as `username`. Queues the registration datagram.
    pub fn relay(
        now: Instant,
        username: &str,
        keepalive: Duration,
    ) -> Result<ChatSession, InvalidName> {
        names::username(username.as_bytes()).map_err(InvalidName::Username)?;
        let framing = Framing::Relay {
            username: Bytes::copy_from_slice(username.as_bytes()),
        };
        Ok(ChatSession::start(now, framing, keepalive))
    }

    fn start(now: Instant, framing: Framing, keepalive: Duration) -> ChatSession {
        let mut session = ChatSession {
            framing,
            keepalive,
            next_keepalive: now,
            transmits: VecDeque::new(),
            ended: None,
            probes: None,
            room_size: None,
        };
        session.queue(now, "");
        session
    }

    /// The most bytes of message text one datagram can carry here.
    pub fn max_message_len(&self) -> usize {
        match &self.framing {
            Framing::Room { room, token } => MAX_DATAGRAM_LEN - 2 - room.len() - token.len(),
            Framing::Relay { username } => MAX_DATAGRAM_LEN - 1 - username.len(),
        }
    }

    /// Queues one chat line. `/exit` leaves, as [`ChatSession::leave`] does.
    pub fn send(&mut self, now: Instant, text: &str) -> Result<(), SendError> {
        if self.ended.is_some() {
            return Err(SendError::Ended);
        }
        let max = self.max_message_len();
        if text.len() > max {
            return Err(SendError::TooLong { max });
        }
        if text == "/exit" {
            self.leave(now);
        } else {
            self.queue(now, text);
        }
        Ok(())
    }

    /// Queues `/exit` twice and ends the session: a leave is one datagram nobody
    /// acknowledges, so a second copy makes it survive one lost datagram (the server
    /// drops the copy that finds the member gone).
    pub fn leave(&mut self, now: Instant) {
        if self.ended.is_none() {
            self.queue(now, "/exit");
            self.queue(now, "/exit");
            self.ended = Some(SessionEnd::Left);
        }
    }

    /// Why the session ended, once it has: it left, was evicted or its room closed.
    pub fn ended(&self) -> Option<SessionEnd> {
        self.ended
    }

    /// True once the session left, was evicted or its room closed.
    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// The next datagram to send to the server.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmits.pop_front()
    }

    /// When the next keepalive (or liveness probe) is due; `None` once ended.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ended.is_some() {
            return None;
        }
        match &self.probes {
            Some(monitor) => Some(monitor.poll_timeout()),
            None => Some(self.next_keepalive),
        }
    }

    /// Queues a keepalive or a probe if one is due; ends the session when the probes
    /// say the membership is lost.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended.is_some() {
            return;
        }
        let Some(monitor) = &mut self.probes else {
            if now >= self.next_keepalive {
                self.queue(now, "");
            }
            return;
        };
        match monitor.handle_timeout(now) {
            Step::Wait => {}
            Step::Probe => self.queue_probe(now),
            Step::Lost(lost) => self.ended = Some(SessionEnd::Lost(lost)),
            Step::Unsupported => {
                self.probes = None;
                self.queue(now, "");
            }
        }
    }

    /// Turns on liveness probes (an ocm extension, see [`crate::probe`]): the first
    /// probe is queued now, then one every keepalive interval instead of the
    /// keepalive. If the server never answers, the session falls back to keepalives.
    pub fn enable_liveness(&mut self, now: Instant) {
        if self.ended.is_some() || self.probes.is_some() {
            return;
        }
        self.probes = Some(Monitor::new(now, self.keepalive));
        self.queue_probe(now);
    }

    /// After [`SessionEnd::Lost`]: tries the same membership again (the server may
    /// only have been out of reach, and still hold it): the session is live again and
    /// a probe is queued. The caller holds it for resumed once an `alive` answer
    /// comes back ([`ChatSession::is_liveness_confirmed`]), else joins anew. False
    /// (and nothing changes) for a session that did not end that way.
    pub fn resume(&mut self, now: Instant) -> bool {
        if !matches!(self.ended, Some(SessionEnd::Lost(_))) {
            return false;
        }
        self.ended = None;
        self.probes = Some(Monitor::new(now, self.keepalive));
        self.queue_probe(now);
        true
    }

    /// True while probes are sent and the server has answered one.
    pub fn is_liveness_confirmed(&self) -> bool {
        self.probes.as_ref().is_some_and(Monitor::is_confirmed)
    }

    /// True while probes are sent (the server has not yet been found without them).
    pub fn is_liveness_on(&self) -> bool {
        self.probes.is_some()
    }

    /// The room's size from the last `alive` answer.
    pub fn room_size(&self) -> Option<usize> {
        self.room_size
    }

    fn queue_probe(&mut self, now: Instant) {
        let probe = match &self.framing {
            Framing::Room { token, .. } => RoomDatagram {
                room: b"",
                token,
                message: probe::PROBE,
            }
            .encode()
            .ok(),
            Framing::Relay { .. } => RelayDatagram::Notice(probe::PROBE).encode().ok(),
        };
        if let Some(probe) = probe {
            self.transmits.push_back(probe);
        }
        self.next_keepalive = now + self.keepalive;
    }

    /// Reads a datagram from the server. Datagrams that are not valid UTF-8 (or, in relay
    /// mode, not valid framing) give `None`. A notice that ends the session ends it.
    pub fn handle_datagram(&mut self, data: &[u8]) -> Option<Incoming> {
        let incoming = match self.framing {
            Framing::Room { .. } => {
                let text = std::str::from_utf8(data).ok()?;
                match text.strip_prefix(NOTICE_PREFIX) {
                    Some(body) => Incoming::Notice(Notice::parse_body(body)),
                    None => Incoming::Line(text.to_owned()),
                }
            }
            Framing::Relay { .. } => match RelayDatagram::decode(data).ok()? {
                RelayDatagram::Notice(body) => {
                    Incoming::Notice(Notice::parse_body(std::str::from_utf8(body).ok()?))
                }
                RelayDatagram::Message { username, message } => Incoming::Line(format!(
                    "{}: {}",
                    std::str::from_utf8(username).ok()?,
                    std::str::from_utf8(message).ok()?
                )),
            },
        };
        if self.ended.is_none() {
            self.ended = match &incoming {
                Incoming::Notice(Notice::Disconnected(_)) => Some(SessionEnd::Disconnected),
                Incoming::Notice(Notice::RoomClosed(_)) => Some(SessionEnd::RoomClosed),
                Incoming::Notice(Notice::NotMember) if self.probes.is_some() => {
                    Some(SessionEnd::Lost(Lost::NotMember))
                }
                _ => None,
            };
        }
        if let Incoming::Notice(Notice::Alive(n)) = &incoming {
            if let Some(monitor) = &mut self.probes {
                monitor.answered();
            }
            self.room_size = Some(*n);
        }
        Some(incoming)
    }

    fn queue(&mut self, now: Instant, text: &str) {
        let datagram = match &self.framing {
            Framing::Room { room, token } => RoomDatagram {
                room,
                token,
                message: text.as_bytes(),
            }
            .encode()
            .ok(),
            Framing::Relay { username } => RelayDatagram::Message {
                username,
                message: text.as_bytes(),
            }
            .encode()
            .ok(),
        };
        // Lengths were checked by the constructors and by `send`, so encoding succeeds.
        if let Some(datagram) = datagram {
            self.transmits.push_back(datagram);
        }
        self.next_keepalive = now + self.keepalive;
    }
}

#[cfg(test)]
mod tests;
