//! The client: the TCRP handshake over TCP (rooms), then the chat over UDP.
//!
//! [`connect`] joins (or creates, or registers with the relay) and gives a
//! [`Connection`]; [`Connection::run`] then sends the lines of a stream and reports what
//! happens through a callback, so the `ocm client` command feeds it stdin or its
//! terminal UI, and tests feed it a channel. [`run`] does both. The protocol itself is
//! `ocm_core::client`; this module moves its bytes, keeps its timers, paces what it
//! sends ([`ClientOptions::lines_per_sec`]) and, when [`ClientOptions::reconnect`] is
//! on, joins again with a backoff after the membership was lost.
//!
//! ```no_run
//! use ocm_smol::client::{run, ClientOptions, Target};
//! use ocm_core::Operation;
//! let options = ClientOptions::new(Target::Room {
//!     tcp: "127.0.0.1:8000".parse().unwrap(),
//!     udp: "127.0.0.1:8001".parse().unwrap(),
//!     operation: Operation::Join,
//!     room: "lobby".into(),
//!     username: "bob".into(),
//!     password: None,
//! });
//! let lines = smol::stream::iter(vec![Ok("hello".to_string())]);
//! let outcome = smol::block_on(run(&options, lines, |event| println!("{event:?}")));
//! ```

mod error;
mod handshake;
pub mod reconnect;

pub use error::ClientError;

use bytes::Bytes;
use ocm_core::client::{ChatSession, Incoming, SendError, SessionEnd};
use ocm_core::probe::Lost;
use ocm_core::rate::{TokenBucket, CLIENT_BURST, CLIENT_LINES_PER_SEC};
use ocm_core::wire::notice::Notice;
use ocm_core::Operation;
use smol::future;
use smol::stream::{Stream, StreamExt};
use smol::{Async, Timer};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Default keepalive (and liveness probe) interval: a lost membership is noticed
/// within two of them.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);

/// Where to chat, and as whom.
#[derive(Clone, Debug)]
pub enum Target {
    /// A room of a rooms server.
    Room {
        /// The server's TCP (TCRP) address.
        tcp: SocketAddr,
        /// The server's UDP address.
        udp: SocketAddr,
        /// Create (become the host) or join.
        operation: Operation,
        /// Room name.
        room: String,
        /// Username.
        username: String,
        /// Password protecting the room (create) or opening it (join).
        password: Option<String>,
    },
    /// A relay-mode server.
    Relay {
        /// The server's UDP address.
        udp: SocketAddr,
        /// Username.
        username: String,
    },
}

impl Target {
    /// The server's UDP address.
    pub fn udp(&self) -> SocketAddr {
        match self {
            Target::Room { udp, .. } | Target::Relay { udp, .. } => *udp,
        }
    }

    /// The username.
    pub fn username(&self) -> &str {
        match self {
            Target::Room { username, .. } | Target::Relay { username, .. } => username,
        }
    }
}

/// A client to run.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Where and as whom.
    pub target: Target,
    /// How long the TCP handshake may take, connect included (default 5 s).
    pub timeout: Duration,
    /// Keepalive and liveness probe interval (default [`DEFAULT_KEEPALIVE`]).
    pub keepalive: Duration,
    /// Send liveness probes (an ocm extension; default on).
    pub liveness: bool,
    /// Join again, with a backoff, after the membership was lost (default off here;
    /// `ocm client` turns it on unless `--no-reconnect`).
    pub reconnect: bool,
    /// Most lines sent per second (default [`CLIENT_LINES_PER_SEC`]).
    pub lines_per_sec: u32,
    /// Lines sent at once before the pace applies (default [`CLIENT_BURST`]).
    pub burst: u32,
}

impl ClientOptions {
    /// Options with the defaults.
    pub fn new(target: Target) -> ClientOptions {
        ClientOptions {
            target,
            timeout: Duration::from_secs(5),
            keepalive: DEFAULT_KEEPALIVE,
            liveness: true,
            reconnect: false,
            lines_per_sec: CLIENT_LINES_PER_SEC,
            burst: CLIENT_BURST,
        }
    }
}

/// Why the membership is gone although the session did not end normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LostReason {
    /// The liveness probes say so.
    Probes(Lost),
    /// The server's UDP port answered "unreachable".
    Unreachable,
    /// The server evicted us (`* disconnected: REASON, join again`).
    Evicted(String),
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LostReason::Probes(lost) => write!(f, "{lost}"),
            LostReason::Unreachable => f.write_str("the server is unreachable"),
            LostReason::Evicted(reason) => write!(f, "disconnected by the server: {reason}"),
        }
    }
}

/// What happens during a session, in order.
#[derive(Debug)]
pub enum ClientEvent {
    /// In the room (or registered with the relay): lines can be sent now.
    Ready {
        /// The local UDP address.
        local: SocketAddr,
        /// The longest message this session can send, in bytes.
        max_message_len: usize,
        /// True after a reconnect.
        rejoined: bool,
    },
    /// A message or notice arrived (liveness answers excepted).
    Message(Incoming),
    /// The server told the room's size (in its liveness answer).
    RoomSize(usize),
    /// The server does not answer liveness probes: a lost membership will not be noticed.
    NoLiveness,
    /// A line was not sent.
    Unsent(SendError),
    /// An input line was not valid UTF-8 and was skipped.
    BadInput,
    /// The membership is gone; with reconnect on, attempts follow.
    Lost(LostReason),
    /// Attempt `attempt` to join again starts after `after`.
    Retrying {
        /// 1, 2, ...
        attempt: u32,
        /// The wait before it.
        after: Duration,
    },
    /// An attempt to join again failed; another follows.
    RetryFailed(ClientError),
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `/exit` or the end of input: the leave was sent (or, while reconnecting,
    /// there was nothing to leave).
    Left,
    /// The server evicted us (`* disconnected: ...`).
    Disconnected,
    /// The room closed (`* room closed: ...`).
    RoomClosed,
    /// The membership was lost (reconnect off).
    Lost(LostReason),
}

/// A joined session: its socket and its state machine.
pub struct Connection {
    options: ClientOptions,
    udp: Async<UdpSocket>,
    server: SocketAddr,
    local: SocketAddr,
    session: ChatSession,
    /// The reason in the eviction notice, once one came.
    evicted: Option<String>,
}

/// Joins (rooms: the TCRP handshake, then registration) or registers (relay).
pub async fn connect(options: &ClientOptions) -> Result<Connection, ClientError> {
    let server = options.target.udp();
    let udp = Async::<UdpSocket>::bind(unspecified(server))?;
    udp.get_ref().connect(server)?;
    let local = udp.get_ref().local_addr()?;
    let mut session = match &options.target {
        Target::Room {
            tcp,
            operation,
            room,
            username,
            password,
            ..
        } => {
            let token = handshake::run(
                *tcp,
                *operation,
                room,
                username,
                password.as_deref(),
                local.port(),
                options.timeout,
            )
            .await?;
            ChatSession::room(Instant::now(), room, &token, options.keepalive)
                .map_err(ClientError::InvalidName)?
        }
        Target::Relay { username, .. } => {
            ChatSession::relay(Instant::now(), username, options.keepalive)
                .map_err(ClientError::InvalidName)?
        }
    };
    if options.liveness {
        session.enable_liveness(Instant::now());
    }
    flush(&udp, &mut session, server).await?;
    Ok(Connection {
        options: options.clone(),
        udp,
        server,
        local,
        session,
        evicted: None,
    })
}

/// Connects, reports [`ClientEvent::Ready`], and runs the session ([`Connection::run`]).
pub async fn run(
    options: &ClientOptions,
    lines: impl Stream<Item = io::Result<String>> + Unpin,
    mut on_event: impl FnMut(ClientEvent),
) -> Result<Outcome, ClientError> {
    let connection = connect(options).await?;
    on_event(connection.ready(false));
    connection.run(lines, on_event).await
}

enum Step {
    Datagram(io::Result<usize>),
    Line(Option<io::Result<String>>),
    Timer,
}

/// Why one session (between two joins) ended.
enum End {
    Left,
    RoomClosed,
    Lost(LostReason),
}

impl Connection {
    /// The local UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The event that says this connection is ready.
    pub fn ready(&self, rejoined: bool) -> ClientEvent {
        ClientEvent::Ready {
            local: self.local,
            max_message_len: self.session.max_message_len(),
            rejoined,
        }
    }

    /// Sends `lines` (paced) and reports what arrives, until `/exit`, the end of
    /// `lines`, or a notice that ends the session; with reconnect on, a lost
    /// membership is joined again (with [`reconnect::delay`] between attempts), and
    /// input waits meanwhile.
    pub async fn run(
        mut self,
        mut lines: impl Stream<Item = io::Result<String>> + Unpin,
        mut on_event: impl FnMut(ClientEvent),
    ) -> Result<Outcome, ClientError> {
        let mut pace = TokenBucket::new(self.options.lines_per_sec, self.options.burst);
        let mut held: Option<String> = None;
        // A membership lost again soon after a rejoin (a relay that registers anyone
        // but is not there) keeps backing off instead of starting over.
        let mut attempts = 0;
        let mut joined = Instant::now();
        loop {
            let end = self
                .chat(&mut lines, &mut on_event, &mut pace, &mut held)
                .await?;
            let reason = match end {
                End::Left => return Ok(Outcome::Left),
                End::RoomClosed => return Ok(Outcome::RoomClosed),
                End::Lost(reason) if !self.options.reconnect => {
                    return match reason {
                        LostReason::Unreachable => Err(ClientError::Unreachable(self.server)),
                        LostReason::Evicted(_) => Ok(Outcome::Disconnected),
                        reason => Ok(Outcome::Lost(reason)),
                    }
                }
                End::Lost(reason) => reason,
            };
            // The server may only have been out of reach and still hold the membership:
            // it is probed again before each new join, unless the server said it is gone.
            let resumable = matches!(
                reason,
                LostReason::Unreachable | LostReason::Probes(Lost::NoAnswer)
            ) && self.options.liveness;
            on_event(ClientEvent::Lost(reason));
            if joined.elapsed() > 2 * self.options.keepalive {
                attempts = 0;
            }
            let options = self.options.clone();
            let mut old = resumable.then_some(self);
            let rejoined = rejoin(
                &options,
                &mut old,
                &mut lines,
                &mut on_event,
                &mut held,
                &mut attempts,
            );
            match rejoined.await? {
                Some(connection) => {
                    self = connection;
                    joined = Instant::now();
                    on_event(self.ready(true));
                }
                None => return Ok(Outcome::Left),
            }
        }
    }

    /// One session, until it ends.
    async fn chat(
        &mut self,
        lines: &mut (impl Stream<Item = io::Result<String>> + Unpin),
        on_event: &mut impl FnMut(ClientEvent),
        pace: &mut TokenBucket,
        held: &mut Option<String>,
    ) -> Result<End, ClientError> {
        if let Some(line) = held.take() {
            self.send_line(Instant::now(), &line, on_event, pace);
            self.flush_or_lost().await?;
        }
        let mut buf = vec![0; ocm_io::DATAGRAM_BUFFER];
        let mut liveness_on = self.session.is_liveness_on();
        loop {
            if let Some(end) = self.end() {
                return Ok(end);
            }
            let now = Instant::now();
            let line_at = pace.ready_at(now);
            let can_read = line_at <= now;
            let wake = match (self.session.poll_timeout(), can_read) {
                (Some(at), true) => Some(at),
                (Some(at), false) => Some(at.min(line_at)),
                (None, true) => None,
                (None, false) => Some(line_at),
            };
            let step = future::or(
                async { Step::Datagram(self.udp.recv(&mut buf).await) },
                future::or(
                    async {
                        if can_read {
                            Step::Line(lines.next().await)
                        } else {
                            future::pending().await
                        }
                    },
                    async {
                        wake.map_or_else(Timer::never, Timer::at).await;
                        Step::Timer
                    },
                ),
            )
            .await;
            let now = Instant::now();
            match step {
                Step::Datagram(Ok(n)) => match self.session.handle_datagram(&buf[..n]) {
                    Some(Incoming::Notice(Notice::Alive(n))) => on_event(ClientEvent::RoomSize(n)),
                    Some(Incoming::Notice(Notice::NotMember)) if self.session.is_ended() => {}
                    Some(Incoming::Notice(Notice::Disconnected(reason))) => {
                        self.evicted = Some(reason.clone());
                        let notice = Notice::Disconnected(reason);
                        on_event(ClientEvent::Message(Incoming::Notice(notice)));
                    }
                    Some(incoming) => on_event(ClientEvent::Message(incoming)),
                    None => {}
                },
                Step::Datagram(Err(error)) => return self.io_error(error),
                Step::Line(Some(Ok(line))) if line == "/exit" => self.leave(now),
                Step::Line(Some(Ok(line))) => self.send_line(now, &line, on_event, pace),
                Step::Line(Some(Err(error))) if error.kind() == io::ErrorKind::InvalidData => {
                    on_event(ClientEvent::BadInput)
                }
                Step::Line(Some(Err(error))) => return Err(error.into()),
                Step::Line(None) => self.leave(now),
                Step::Timer => self.session.handle_timeout(now),
            }
            if liveness_on && !self.session.is_liveness_on() && !self.session.is_ended() {
                liveness_on = false;
                on_event(ClientEvent::NoLiveness);
            }
            if let Err(error) = self.flush_or_lost().await {
                return match error {
                    FlushError::Unreachable => Ok(End::Lost(LostReason::Unreachable)),
                    FlushError::Other(error) => Err(error),
                };
            }
        }
    }

    /// Why the session ended, as the core decided it.
    fn end(&self) -> Option<End> {
        Some(match self.session.ended()? {
            SessionEnd::Left => End::Left,
            SessionEnd::RoomClosed => End::RoomClosed,
            SessionEnd::Disconnected => End::Lost(LostReason::Evicted(
                self.evicted.clone().unwrap_or_default(),
            )),
            SessionEnd::Lost(lost) => End::Lost(LostReason::Probes(lost)),
        })
    }

    fn leave(&mut self, now: Instant) {
        self.session.leave(now);
    }

    fn send_line(
        &mut self,
        now: Instant,
        line: &str,
        on_event: &mut impl FnMut(ClientEvent),
        pace: &mut TokenBucket,
    ) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return;
        }
        pace.try_take(now);
        if let Err(error) = self.session.send(now, line) {
            on_event(ClientEvent::Unsent(error));
        }
    }

    fn io_error(&self, error: io::Error) -> Result<End, ClientError> {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => Ok(End::Lost(LostReason::Unreachable)),
            _ => Err(ClientError::Io(error)),
        }
    }

    async fn flush_or_lost(&mut self) -> Result<(), FlushError> {
        while let Some(datagram) = self.session.poll_transmit() {
            if let Err(error) = send(&self.udp, &datagram).await {
                return Err(match error.kind() {
                    io::ErrorKind::ConnectionRefused => FlushError::Unreachable,
                    _ => FlushError::Other(ClientError::Io(error)),
                });
            }
        }
        Ok(())
    }
}

/// How long a resume probe waits for its answer.
const RESUME_WAIT: Duration = Duration::from_secs(1);

enum Resume {
    /// The server answered `alive`: the old membership is back.
    Resumed,
    /// The server answered `not a member`, or the socket failed: join anew.
    Gone,
    /// No answer in time.
    NoAnswer,
}

impl Connection {
    /// Probes the old membership once and waits a little for the answer. What else
    /// arrives meanwhile is dropped.
    async fn try_resume(&mut self) -> Resume {
        if !self.session.resume(Instant::now()) || self.flush_or_lost().await.is_err() {
            return Resume::Gone;
        }
        let mut buf = vec![0; ocm_io::DATAGRAM_BUFFER];
        let answer = async {
            loop {
                let Ok(n) = self.udp.recv(&mut buf).await else {
                    return Resume::Gone;
                };
                self.session.handle_datagram(&buf[..n]);
                if self.session.is_liveness_confirmed() {
                    return Resume::Resumed;
                }
                if self.session.is_ended() {
                    return Resume::Gone;
                }
            }
        };
        future::or(answer, async {
            Timer::after(RESUME_WAIT).await;
            Resume::NoAnswer
        })
        .await
    }
}

enum FlushError {
    Unreachable,
    Other(ClientError),
}

impl From<FlushError> for ClientError {
    fn from(error: FlushError) -> ClientError {
        match error {
            FlushError::Unreachable => ClientError::Io(io::ErrorKind::ConnectionRefused.into()),
            FlushError::Other(error) => error,
        }
    }
}

enum Wait {
    Line(Option<io::Result<String>>),
    Done,
}

/// Joins again with a backoff until it works, a failure no wait can cure, or the
/// input ends (`None`: leave). One input line is held meanwhile, to be sent after.
async fn rejoin(
    options: &ClientOptions,
    old: &mut Option<Connection>,
    lines: &mut (impl Stream<Item = io::Result<String>> + Unpin),
    on_event: &mut impl FnMut(ClientEvent),
    held: &mut Option<String>,
    attempt: &mut u32,
) -> Result<Option<Connection>, ClientError> {
    loop {
        *attempt = attempt.saturating_add(1);
        let attempt = *attempt;
        let after = reconnect::delay(attempt);
        on_event(ClientEvent::Retrying { attempt, after });
        let until = Instant::now() + after;
        let mut result = None;
        // Wait, then try, watching the input all along for its end or /exit.
        let attempt_done = async {
            Timer::at(until).await;
            if let Some(connection) = old.as_mut() {
                match connection.try_resume().await {
                    Resume::Resumed => return Ok(old.take().expect("checked above")),
                    Resume::Gone => *old = None,
                    Resume::NoAnswer => {}
                }
            }
            connect(options).await
        };
        let mut attempt_done = Box::pin(attempt_done);
        while result.is_none() {
            let waited = future::or(
                async {
                    if held.is_none() {
                        Wait::Line(lines.next().await)
                    } else {
                        future::pending().await
                    }
                },
                async {
                    result = Some((&mut attempt_done).await);
                    Wait::Done
                },
            )
            .await;
            match waited {
                Wait::Line(None) => return Ok(None),
                Wait::Line(Some(Ok(line))) if line == "/exit" => return Ok(None),
                Wait::Line(Some(Ok(line))) => *held = Some(line),
                Wait::Line(Some(Err(error))) if error.kind() == io::ErrorKind::InvalidData => {
                    on_event(ClientEvent::BadInput)
                }
                Wait::Line(Some(Err(error))) => return Err(error.into()),
                Wait::Done => {}
            }
        }
        match result.expect("set above") {
            Ok(connection) => return Ok(Some(connection)),
            Err(error) if reconnect::is_transient(&error) => {
                on_event(ClientEvent::RetryFailed(error))
            }
            Err(error) => return Err(error),
        }
    }
}

async fn flush(
    udp: &Async<UdpSocket>,
    session: &mut ChatSession,
    server: SocketAddr,
) -> Result<(), ClientError> {
    while let Some(datagram) = session.poll_transmit() {
        send(udp, &datagram)
            .await
            .map_err(|e| recv_error(e, server))?;
    }
    Ok(())
}

async fn send(udp: &Async<UdpSocket>, datagram: &Bytes) -> io::Result<()> {
    udp.send(datagram).await.map(drop)
}

fn recv_error(error: io::Error, server: SocketAddr) -> ClientError {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => ClientError::Unreachable(server),
        _ => ClientError::Io(error),
    }
}

/// The wildcard address of the server's family, any port.
fn unspecified(server: SocketAddr) -> SocketAddr {
    let ip = match server.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, 0)
}
