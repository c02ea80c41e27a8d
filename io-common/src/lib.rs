//! # ocm-io
//!
//! What the smol and async-std shells share, none of it tied to a runtime:
//!
//! - [`Options`]: what to bind and which protocol to serve.
//! - [`Shell`]: what a shell is, given its [`Runtime`] (how to spawn a task and block on
//!   a future): an [`Endpoint`], the bound sockets and the driver, with the owner loop
//!   both shells run (waiting through `async_io`, the reactor under smol and async-std
//!   alike).
//! - [`Driver`]: owns the sans-IO core ([`ocm_core::AnyServer`]: rooms or relay) and the
//!   table of open TCP connections. The shell's owner task feeds it `ocm_core::Input`s
//!   with `Instant::now()`, and sends the datagrams it hands back; TCP commands go out
//!   to each connection's task over its channel ([`ConnCmd`]).
//! - [`addr`]: the one place where socket addresses are mapped between what core
//!   sees (plain IPv4) and what an IPv6 socket needs (`::ffff:a.b.c.d`).
//! - [`errqueue`]: `IP_RECVERR` / `IPV6_RECVERR` and the socket error queue on Linux,
//!   so a member whose port is closed is counted as a failed send.
//! - [`seed`]: the token RNG seed, from OS entropy once at start.
//! - [`UdpPath`]: the UDP hot path both owner loops use: batched reads in the owner task,
//!   batched receives and sends ([`batch_recv`]: `recvmmsg`, [`batch`]: `sendmmsg`, on
//!   Linux).
//! - [`tcp`]: the acceptor and the per-connection tasks, handed to the shell's `spawn`.
//! - [`fd_limit`]: the connection limit fitted to `RLIMIT_NOFILE` at start.
//! - [`Inspector`]: questions to a running server's owner task (tests, admin views).
//! - [`metrics`]: what the owner loop measures beside the core's counters, and the
//!   [`metrics::Snapshot`] an operator endpoint asks for through an [`Inspector`].
//! - [`Recorder`]: `--record FILE`, every input the core receives written to a trace
//!   that `ocm replay` runs again ([`ocm_core::record`]).
//!
//! The owner loop ([`Endpoint::serve`]), in outline:
//!
//! ```text
//! loop {
//!     stop if shutdown is ready; now = Instant::now()
//!     answer waiting questions; driver.handle_tcp(now, ..) for up to 64 waiting TcpEvents
//!     udp.read_ready(..)                     // non-blocking recvmmsg, up to 64 datagrams
//!     driver.handle_timeout(now)
//!     udp.flush(..)                          // sendmmsg batches of what the core queued
//!     if nothing was waiting: wait for shutdown, a question, a TcpEvent, a readable
//!         UDP socket, or driver.poll_timeout() (a timer kept while it does not move)
//! }
//! ```

#![warn(missing_docs)]
// The one exception, `batch`'s `sendmmsg` call, allows itself and says why.
#![deny(unsafe_code)]

pub mod addr;
pub mod batch;
pub mod batch_recv;
mod driver;
pub mod errqueue;
mod events;
pub mod fd_limit;
mod inspect;
pub mod metrics;
mod options;
mod owner;
pub mod recorder;
mod runtime;
pub mod seed;
pub mod sockbuf;
pub mod tcp;
pub mod udp;

pub use driver::{ConnCmd, Driver, TcpEvent};
pub use events::{log_event, EventLog, LogLimiter};
pub use inspect::{Inspection, Inspector};
pub use ocm_core::Protocol;
pub use options::{ClusterOptions, Options, DEFAULT_STATS_INTERVAL};
pub use owner::Endpoint;
pub use recorder::{RecordOptions, Recorder};
pub use runtime::{Runtime, Shell};
pub use udp::UdpPath;

/// Size of the datagram read buffer: one byte more than the largest valid datagram
/// (4096), so an oversize datagram is seen as oversize instead of being truncated into
/// a valid one.
pub const DATAGRAM_BUFFER: usize = ocm_core::wire::MAX_DATAGRAM_LEN + 1;

/// Read buffer of a TCP connection task.
pub const TCP_READ_BUFFER: usize = 1024;

/// Most bytes read and discarded while a closed connection lingers. Unread bytes at
/// close would make the kernel send a reset that can destroy the answer the client has
/// not read yet, so the shell reads and discards until EOF, this many bytes or the
/// core's linger deadline (`ocm_core::Config::linger`, 2 s by default).
pub const LINGER_BYTES: usize = 64 * 1024;

/// Capacity of the channel from the TCP tasks to the owner task. When it is full, those
/// tasks wait (and stop reading their sockets).
pub const INPUT_QUEUE: usize = 1024;
