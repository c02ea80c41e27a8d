//! # ocm-asyncstd
//!
//! The ocm server on [async-std](https://docs.rs/async-std). async-std is deprecated
//! upstream in favour of smol, which is ocm's default; this shell stays supported and
//! passes the same end-to-end suite. It has the same shape and API as `ocm-smol`'s
//! server: one owner task holds the core ([`ocm_io::Driver`]); the acceptor, each
//! connection and the UDP reader are tasks that forward what they read over a channel;
//! the owner sleeps until the core's next deadline in between.
//!
//! ```no_run
//! let server = ocm_asyncstd::Server::bind(&ocm_io::Options::default())?;
//! let stats = server.run_blocking(std::future::pending())?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod conn;
mod server;

pub use server::Server;
