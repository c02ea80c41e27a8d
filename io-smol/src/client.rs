//! The client: the TCRP handshake over TCP (rooms), then the chat over UDP.
//!
//! [`run`] takes the lines to send as a stream and reports what happens through a
//! callback, so the `ocm client` command feeds it stdin and prints to stdout, and tests
//! feed it a channel. The protocol itself is `ocm_core::client`; this module moves its
//! bytes and keeps its keepalive timer.
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

pub use error::ClientError;

use bytes::Bytes;
use ocm_core::client::{ChatSession, Incoming, SendError};
use ocm_core::Operation;
use smol::future;
use smol::stream::{Stream, StreamExt};
use smol::{Async, Timer};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

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

/// A client to run.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Where and as whom.
    pub target: Target,
    /// How long the TCP handshake may take, connect included (default 5 s).
    pub timeout: Duration,
    /// Keepalive interval while silent (default 60 s).
    pub keepalive: Duration,
}

impl ClientOptions {
    /// Options with the default timeout and keepalive.
    pub fn new(target: Target) -> ClientOptions {
        ClientOptions {
            target,
            timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(60),
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
    },
    /// A message or notice arrived.
    Message(Incoming),
    /// A line was not sent.
    Unsent(SendError),
    /// An input line was not valid UTF-8 and was skipped.
    BadInput,
}

/// How a session ended, as the core's session decided it.
pub type Outcome = ocm_core::client::SessionEnd;

enum Step {
    Datagram(io::Result<usize>),
    Line(Option<io::Result<String>>),
    Timer,
}

/// Runs one session: handshake (rooms), registration, then lines out and messages in
/// until `/exit`, the end of `lines`, or a notice that ends the session.
pub async fn run(
    options: &ClientOptions,
    mut lines: impl Stream<Item = io::Result<String>> + Unpin,
    mut on_event: impl FnMut(ClientEvent),
) -> Result<Outcome, ClientError> {
    let server = match &options.target {
        Target::Room { udp, .. } | Target::Relay { udp, .. } => *udp,
    };
    let udp = Async::<UdpSocket>::bind(unspecified(server))?;
    udp.get_ref().connect(server)?;
    let local = udp.get_ref().local_addr()?;
    let now = Instant::now();
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
        Target::Relay { username, .. } => ChatSession::relay(now, username, options.keepalive)
            .map_err(ClientError::InvalidName)?,
    };
    flush(&udp, &mut session, server).await?;
    on_event(ClientEvent::Ready { local });
    let mut buf = vec![0; ocm_io::DATAGRAM_BUFFER];
    while !session.is_ended() {
        let timer = session.poll_timeout().map_or_else(Timer::never, Timer::at);
        let step = future::or(
            async { Step::Datagram(udp.recv(&mut buf).await) },
            future::or(async { Step::Line(lines.next().await) }, async {
                timer.await;
                Step::Timer
            }),
        )
        .await;
        let now = Instant::now();
        match step {
            Step::Datagram(Ok(n)) => {
                if let Some(incoming) = session.handle_datagram(&buf[..n]) {
                    on_event(ClientEvent::Message(incoming));
                    if let Some(end @ (Outcome::Disconnected | Outcome::RoomClosed)) =
                        session.ended()
                    {
                        return Ok(end);
                    }
                }
            }
            Step::Datagram(Err(error)) => return Err(recv_error(error, server)),
            Step::Line(Some(Ok(line))) => {
                let line = line.strip_suffix('\r').unwrap_or(&line);
                if !line.is_empty() {
                    if let Err(error) = session.send(now, line) {
                        on_event(ClientEvent::Unsent(error));
                    }
                }
            }
            Step::Line(Some(Err(error))) if error.kind() == io::ErrorKind::InvalidData => {
                on_event(ClientEvent::BadInput)
            }
            Step::Line(Some(Err(error))) => return Err(error.into()),
            Step::Line(None) => session.leave(now),
            Step::Timer => session.handle_timeout(now),
        }
        flush(&udp, &mut session, server).await?;
    }
    Ok(Outcome::Left)
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
