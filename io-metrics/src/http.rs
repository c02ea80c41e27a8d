//! [`MetricsServer`]: the HTTP side, hyper 1.x on smol's executor, on its own thread.

use crate::{ask, encode, MetricsOptions};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use ocm_io::Inspector;
use smol::{future, Async, LocalExecutor, Timer};
use smol_hyper::rt::{FuturesIo, SmolTimer};
use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections served at once; one more is closed as soon as it is accepted.
pub const MAX_CONNECTIONS: usize = 32;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a connection is kept, keep-alive or not.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// The endpoints, running on their own thread until dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `options.addr` (errors name it) and starts serving on a new thread.
    pub fn start(options: MetricsOptions, inspector: Inspector) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(options.addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind metrics {}: {e}", options.addr),
            )
        })?;
        let addr = listener.local_addr()?;
        let listener = Async::new(listener)?;
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("ocm-metrics".into())
            .spawn(move || {
                let executor = LocalExecutor::new();
                let serve = serve(&executor, listener, Rc::new(options), inspector);
                smol::block_on(executor.run(future::or(serve, async move {
                    let _ = stopped.recv().await;
                })));
            })?;
        Ok(MetricsServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    /// Stops accepting, drops the open connections and waits for the thread.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    executor: &LocalExecutor<'_>,
    listener: Async<TcpListener>,
    options: Rc<MetricsOptions>,
    inspector: Inspector,
) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: wait a little instead of spinning.
                tracing::warn!(%error, "metrics: accept failed");
                Timer::after(Duration::from_millis(100)).await;
                continue;
            }
        };
        if open.get() >= MAX_CONNECTIONS {
            continue; // dropped: closed at once
        }
        open.set(open.get() + 1);
        let guard = Open(open.clone());
        let (options, inspector) = (options.clone(), inspector.clone());
        executor
            .spawn(async move {
                let _guard = guard;
                connection(stream, options, inspector).await;
            })
            .detach();
    }
}

/// Counts a connection as open while it lives.
struct Open(Rc<Cell<usize>>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

async fn connection(stream: Async<TcpStream>, options: Rc<MetricsOptions>, inspector: Inspector) {
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let (options, inspector) = (options.clone(), inspector.clone());
        async move { Ok::<_, std::convert::Infallible>(respond(&request, &options, &inspector).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(SmolTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let served = builder.serve_connection(FuturesIo::new(stream), service);
    let lifetime = async {
        Timer::after(CONNECTION_LIFETIME).await;
        Ok(())
    };
    if let Err(error) = future::or(served, lifetime).await {
        tracing::debug!(%error, "metrics: connection ended");
    }
}

/// Answers one request: `/metrics`, `/healthz`, `/readyz`; anything else is 404, a
/// method other than GET or HEAD 405.
async fn respond(
    request: &Request<Incoming>,
    options: &MetricsOptions,
    inspector: &Inspector,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/readyz") {
        return text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
    }
    let started = std::time::Instant::now();
    let answer = ask(inspector, options.bound).await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(why) => return text(StatusCode::SERVICE_UNAVAILABLE, &why),
    };
    match path {
        "/metrics" => {
            let body = encode(&answer.snapshot, answer.copy);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(crate::encode::CONTENT_TYPE),
            );
            response
        }
        "/healthz" => text(
            StatusCode::OK,
            &format!("ok: owner loop answered in {:?}", started.elapsed()),
        ),
        _ => {
            let bound = match options.tcp {
                Some(tcp) => format!("tcp={tcp} udp={}", options.udp),
                None => format!("udp={}", options.udp),
            };
            let failing = answer.snapshot.telemetry.registry_failing;
            match (answer.snapshot.registered, failing) {
                (None, _) => text(StatusCode::OK, &format!("ready: {bound} bound")),
                (Some(_), Some(error)) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("not ready: {error} (latest registry answer)"),
                ),
                (Some(false), None) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not ready: not registered with the cluster registry (yet, or fenced)",
                ),
                (Some(true), None) => text(
                    StatusCode::OK,
                    &format!("ready: {bound} bound, registered with the cluster registry"),
                ),
            }
        }
    }
}

/// A one-line plain-text answer.
fn text(status: StatusCode, line: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{line}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
