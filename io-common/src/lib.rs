//! # ocm-io
//!
//! What the smol and async-std shells share, none of it tied to a runtime:
//!
//! - [`Options`]: what to bind and which protocol to serve.
//! - [`Shell`]: what a shell is, given its [`Runtime`] (where the cluster link's tasks
//!   are spawned): an [`Endpoint`], the bound sockets and the driver, with the owner loop
//!   both shells run (waiting in its own [`poller`], one `epoll_wait` per wait).
//! - [`Driver`]: owns the sans-IO core ([`ocm_core::AnyServer`]: rooms or relay). The
//!   shell's owner task feeds it `ocm_core::Input`s with `Instant::now()`, sends the
//!   datagrams it hands back and carries out the TCP commands ([`ConnCmd`]) it collects.
//! - [`addr`]: the one place where socket addresses are mapped between what core
//!   sees (plain IPv4) and what an IPv6 socket needs (`::ffff:a.b.c.d`).
//! - [`errqueue`]: `IP_RECVERR` / `IPV6_RECVERR` and the socket error queue on Linux,
//!   so a member whose port is closed is counted as a failed send.
//! - [`seed`]: the token RNG seed, from OS entropy once at start.
//! - [`UdpPath`]: the UDP hot path both owner loops use: batched reads in the owner task,
//!   batched receives and sends ([`batch_recv`]: `recvmmsg`, [`batch`]: `sendmmsg`, on
//!   Linux).
//! - [`tcp`]: the TCP side in the owner task: accepting, reading, writing and lingering
//!   on non-blocking sockets, reported per socket by the [`poller`].
//! - [`poller`]: the owner loop's edge-triggered `epoll`, with the deadline as its
//!   timeout and an `eventfd` waker for what is not a socket.
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
//!     stop if shutdown is ready
//!     udp.wait() if the last turn chose to     // a recvmmsg that sleeps for a datagram
//!     now = Instant::now()
//!     answer waiting questions
//!     udp.read_ready(..)                     // non-blocking recvmmsg, up to 64 datagrams
//!     tcp.handle_ready(..)                   // accept, read up to 64 ready sockets
//!     driver.handle_timeout(now); tcp.expire(..)   // lingers that ran out
//!     udp.flush(..)                          // sendmmsg batches of what the core queued
//!     tcp.carry_out(..)                      // the core's writes and closes, at once
//!     poller.wait(..)                        // one epoll_wait: no time if more is known
//!         to be waiting, else until a socket is reported, the waker is woken
//!         (shutdown, a question, a cluster input) or the next deadline; while
//!         datagrams keep coming, asked only about every 1 ms (in between the owner
//!         reads on, or waits in udp.wait() next turn if no TCP connection is open,
//!         the UDP socket out of the poller until a wait needs it reported)
//! }
//! ```

#![warn(missing_docs)]
// The exceptions (`batch`'s `sendmmsg`, `batch_recv`'s `recvmmsg`, the portable poller's
// registration) allow themselves and say why.
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
pub mod poller;
pub mod recorder;
mod runtime;
pub mod seed;
pub mod sockbuf;
pub mod tcp;
pub mod udp;

pub use driver::{ConnCmd, Driver};
pub use events::{log_event, EventLog, LogLimiter};
pub use inspect::{Inspection, Inspector};
pub use ocm_core::Protocol;
pub use options::{ClusterOptions, Options, DEFAULT_STATS_INTERVAL};
pub use owner::Endpoint;
pub use recorder::{RecordOptions, Recorder};
pub use runtime::{Runtime, Shell, Task};
pub use udp::UdpPath;

/// Size of the datagram read buffer: one byte more than the largest valid datagram
/// (4096), so an oversize datagram is seen as oversize instead of being truncated into
/// a valid one.
pub const DATAGRAM_BUFFER: usize = ocm_core::wire::MAX_DATAGRAM_LEN + 1;

/// Read buffer of the TCP side (one, shared by every connection).
pub const TCP_READ_BUFFER: usize = 1024;

/// Most bytes read and discarded while a closed connection lingers. Unread bytes at
/// close would make the kernel send a reset that can destroy the answer the client has
/// not read yet, so the shell reads and discards until EOF, this many bytes or the
/// core's linger deadline (`ocm_core::Config::linger`, 2 s by default).
pub const LINGER_BYTES: usize = 64 * 1024;
