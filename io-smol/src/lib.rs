//! # ocm-smol
//!
//! The ocm server and client on [smol](https://docs.rs/smol), the default runtime.
//!
//! The server is the shared shell on smol's executor, [`ocm_io::Shell<Smol>`]: it binds a
//! TCP listener and a UDP socket and drives the sans-IO core from `ocm-core` over them:
//! one owner loop ([`ocm_io::Endpoint::serve`]) holds the core, reads and sends
//! datagrams itself, accepts, reads and writes TCP connections itself, and sleeps in its
//! own poller until a socket has something for it or the next deadline; in cluster mode
//! the cluster link's tasks run on smol's executor.
//!
//! ```no_run
//! use ocm_smol::Smol;
//! let server = ocm_io::Shell::<Smol>::bind(&ocm_io::Options::default())?;
//! println!("listening tcp={:?} udp={}", server.tcp_addr(), server.udp_addr());
//! let stats = server.run_blocking(std::future::pending())?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`client`] is the other side: the TCRP handshake, then the chat over UDP.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
mod server;

pub use server::Smol;
