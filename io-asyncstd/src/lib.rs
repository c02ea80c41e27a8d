//! # ocm-asyncstd
//!
//! The ocm server on [async-std](https://docs.rs/async-std). async-std is deprecated
//! upstream in favour of smol, which is ocm's default; this shell stays supported and
//! passes the same end-to-end suite. The server is the shared shell,
//! [`ocm_io::Shell<AsyncStd>`]: the owner loop, [`ocm_io::Endpoint::serve`] (the core,
//! the UDP socket, the TCP connections and the timers), on the calling thread, and in
//! cluster mode the cluster link's tasks on async-std's executor.
//!
//! ```no_run
//! use ocm_asyncstd::AsyncStd;
//! let server = ocm_io::Shell::<AsyncStd>::bind(&ocm_io::Options::default())?;
//! let stats = server.run_blocking(std::future::pending())?;
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod server;

pub use server::AsyncStd;
