//! # ocm-metrics
//!
//! The operator endpoints of `ocm server --metrics ADDR`, on a thread of their own:
//!
//! - `GET /metrics`: every counter, gauge and histogram in the Prometheus text format
//!   (version 0.0.4), encoded by the `prometheus-client` crate ([`encode`]);
//! - `GET /healthz`: 200 when the owner loop answered a question within
//!   [`MetricsOptions::bound`], 503 otherwise;
//! - `GET /readyz`: 200 when the sockets are bound, the owner loop answers and, in
//!   cluster mode, the node is registered (a lease renewal succeeded since start or the
//!   last fence) and the registry's latest answer was not an error; 503 otherwise.
//!
//! Each answer to a health check is one line saying why. `docs/METRICS.md` lists every
//! metric.
//!
//! How it stays off the UDP path: the endpoints never touch the core. Each scrape asks
//! the owner loop, through its [`Inspector`] channel, for a [`Snapshot`]
//! (`ocm_io::Driver::snapshot`: a copy of a few hundred bytes taken between two turns of
//! the loop) and encodes it here, on this thread. A scrape therefore costs the owner one
//! channel message and one copy; it never holds a lock the owner waits for.
//!
//! Why a thread of its own, with smol's executor and reactor (`async-io`), whichever
//! runtime serves chat: the endpoints then behave the same under smol and async-std,
//! the HTTP work never competes with the owner task on the runtime's executor, and the
//! only link to the server is the [`Inspector`], a runtime-agnostic `async-channel`.
//!
//! HTTP is hyper 1.x (HTTP/1.1 only) through `smol-hyper`'s adapter, which gives hyper
//! `async-io`'s sockets and timers: the HTTP parser is hyper's, headers must arrive within
//! [`HEADER_TIMEOUT`], and at most [`MAX_CONNECTIONS`] connections are served at once.
//!
//! ```no_run
//! # fn doc(inspector: ocm_io::Inspector, udp: std::net::SocketAddr) -> std::io::Result<()> {
//! let options = ocm_metrics::MetricsOptions::new("127.0.0.1:9100".parse().unwrap(), None, udp);
//! let endpoints = ocm_metrics::MetricsServer::start(options, inspector)?;
//! println!("metrics on http://{}/metrics", endpoints.addr());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod encode;
mod http;

pub use encode::encode;
pub use http::{MetricsServer, HEADER_TIMEOUT, MAX_CONNECTIONS};

use ocm_io::metrics::Snapshot;
use ocm_io::Inspector;
use std::net::SocketAddr;
use std::time::Duration;

/// Default of [`MetricsOptions::bound`].
pub const DEFAULT_BOUND: Duration = Duration::from_secs(1);

/// Where to serve and what the health checks know about the server.
#[derive(Clone, Debug)]
pub struct MetricsOptions {
    /// Address to listen on (port 0 picks a free one).
    pub addr: SocketAddr,
    /// The server's TCP address (`None` in relay mode), for `/readyz`'s answer.
    pub tcp: Option<SocketAddr>,
    /// The server's UDP address, for `/readyz`'s answer.
    pub udp: SocketAddr,
    /// How long the owner loop may take to answer before `/healthz` (and every other
    /// endpoint) says 503.
    pub bound: Duration,
}

impl MetricsOptions {
    /// Options for a server bound to `tcp` and `udp`, with [`DEFAULT_BOUND`].
    pub fn new(addr: SocketAddr, tcp: Option<SocketAddr>, udp: SocketAddr) -> MetricsOptions {
        MetricsOptions {
            addr,
            tcp,
            udp,
            bound: DEFAULT_BOUND,
        }
    }
}

/// What the owner loop answered for one request, and how long its side took.
#[derive(Debug)]
pub(crate) struct Answer {
    snapshot: Snapshot,
    /// Time the owner loop spent copying the snapshot (what the scrape cost it).
    copy: Duration,
}

/// Asks the owner loop for a snapshot; `Err` says why there is none.
pub(crate) async fn ask(inspector: &Inspector, bound: Duration) -> Result<Answer, String> {
    let question = inspector.inspect(|driver| {
        let start = std::time::Instant::now();
        let snapshot = driver.snapshot();
        Answer {
            copy: start.elapsed(),
            snapshot,
        }
    });
    let timeout = async {
        smol::Timer::after(bound).await;
        Err(format!("owner loop did not answer within {bound:?}"))
    };
    let answer = async {
        question
            .await
            .ok_or_else(|| "server stopped: owner loop gone".to_owned())
    };
    smol::future::or(answer, timeout).await
}
