//! The TCP side of both shells: the acceptor, and one task per connection that forwards
//! what it reads to the owner and carries out the owner's [`ConnCmd`]s in order.
//!
//! A command always wins over a read that is ready at the same time, so once the core
//! has answered and closed a connection, the task stops forwarding at once; what it
//! reads after that is the bounded linger (until the core's deadline, `Config::linger`,
//! and at most [`crate::LINGER_BYTES`]). A task that lingered tells the owner when its
//! socket is closed ([`Input::TcpClosed`] on the closed connection): until then the
//! core counts it against the connection limits.
//!
//! Sockets are `async_io::Async` (what smol's and async-std's own TCP types wrap), so
//! this code is the same on either runtime; the shell passes its executor's `spawn`.

use crate::{ConnCmd, TcpEvent, LINGER_BYTES, TCP_READ_BUFFER};
use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use bytes::Bytes;
use futures_lite::future::{self, Future};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use ocm_core::{ConnId, Input};
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A task for the shell's executor.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Accepts connections until the owner is gone, numbering them from 0; each one's task
/// is handed to `spawn`.
///
/// At most `max_sockets` connection sockets are open at once (the core's
/// `max_handshakes` plus [`crate::fd_limit::ACCEPT_SLACK`] for those accepted and not
/// yet refused): at that many the acceptor waits for one to close, and new connections
/// wait in the kernel's backlog, holding no descriptor. An `accept` error (out of
/// descriptors, say) backs off, from 10 ms doubling to 1 s, and is logged at most once
/// a second.
pub async fn accept(
    listener: Async<TcpListener>,
    tx: Sender<TcpEvent>,
    spawn: impl Fn(Task),
    max_sockets: usize,
) {
    // A permit per open socket: sent before accept, taken back when the task ends.
    let (permits, returned) = async_channel::bounded::<()>(max_sockets.max(1));
    let mut backoff = Backoff::default();
    for id in 0.. {
        if permits.send(()).await.is_err() {
            return;
        }
        let (stream, peer) = loop {
            match listener.accept().await {
                Ok(accepted) => break accepted,
                Err(error) => {
                    let (delay, report) = backoff.failed(Instant::now());
                    if let Some(failures) = report {
                        tracing::warn!(%error, failures, ?delay, "accept failed; backing off");
                    }
                    Timer::after(delay).await;
                }
            }
        };
        backoff.succeeded();
        let conn = ConnId(id);
        let (cmds, commands) = async_channel::unbounded();
        if tx
            .send(TcpEvent::Accepted { conn, peer, cmds })
            .await
            .is_err()
        {
            return;
        }
        let returned = returned.clone();
        let task = connection(conn, stream, commands, tx.clone());
        spawn(Box::pin(async move {
            task.await;
            let _ = returned.try_recv();
        }));
    }
}

/// How long the acceptor waits after a failed `accept`, and when it says so.
#[derive(Debug, Default)]
struct Backoff {
    /// Failures in a row.
    failures: u32,
    /// Failures not yet reported.
    unreported: u64,
    last_report: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// One more failure at `now`: how long to wait, and the count to report (at most
    /// once a second).
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(7))
            .min(Self::MAX);
        self.failures += 1;
        self.unreported += 1;
        let due = match self.last_report {
            Some(at) => now.duration_since(at) >= Duration::from_secs(1),
            None => true,
        };
        let report = due.then(|| {
            self.last_report = Some(now);
            std::mem::take(&mut self.unreported)
        });
        (delay, report)
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }
}

enum Step {
    Read(io::Result<usize>),
    Cmd(Option<ConnCmd>),
}

async fn connection(
    conn: ConnId,
    stream: Async<TcpStream>,
    commands: Receiver<ConnCmd>,
    tx: Sender<TcpEvent>,
) {
    let mut buf = [0; TCP_READ_BUFFER];
    let mut reading = true;
    let mut answered = false;
    let close = loop {
        // Commands first: once the owner has answered and said Close, no read competes
        // with it (a peer streaming faster than we read would otherwise keep the read
        // ready forever, and the socket would be read for as long as it sends).
        let next_cmd = async { Step::Cmd(commands.recv().await.ok()) };
        let step = if reading {
            future::or(next_cmd, async {
                Step::Read((&stream).read(&mut buf).await)
            })
            .await
        } else {
            next_cmd.await
        };
        let input = match step {
            Step::Read(Ok(n)) if n > 0 => Input::TcpData {
                conn,
                data: Bytes::copy_from_slice(&buf[..n]),
            },
            Step::Read(_) => {
                reading = false;
                Input::TcpClosed { conn }
            }
            Step::Cmd(Some(ConnCmd::Send(data))) => {
                answered = true;
                if (&stream).write_all(&data).await.is_ok() || !reading {
                    continue;
                }
                reading = false;
                Input::TcpClosed { conn }
            }
            Step::Cmd(Some(ConnCmd::ShutdownWrite)) => {
                let _ = stream.get_ref().shutdown(Shutdown::Write);
                continue;
            }
            Step::Cmd(Some(ConnCmd::Close { linger_until })) => break Some(linger_until),
            // The owner is gone (the server is stopping): nothing to linger for.
            Step::Cmd(None) => break None,
        };
        if tx.send(TcpEvent::Input(input)).await.is_err() {
            break None;
        }
    };
    // A connection closed without an answer (refused at a limit, timed out) has nothing
    // a reset could destroy: it closes at once, so a connection flood holds no
    // descriptors in lingering; so does one whose peer has closed already.
    let Some(until) = close.filter(|_| answered) else {
        return;
    };
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    if !reading {
        return;
    }
    linger(&stream, &mut buf, until).await;
    // The core holds the connection's slot until it hears that the socket is gone.
    drop(stream);
    let _ = tx.send(TcpEvent::Input(Input::TcpClosed { conn })).await;
}

/// Reads and discards until the peer's EOF, [`LINGER_BYTES`] or `until` (the core's
/// linger deadline, `Config::linger` after it closed the connection), so unread input
/// cannot turn the close into a reset that destroys our last answer.
async fn linger(stream: &Async<TcpStream>, buf: &mut [u8], until: Instant) {
    let discard = async {
        let mut total = 0;
        while let Ok(n @ 1..) = (&*stream).read(buf).await {
            total += n;
            if total > LINGER_BYTES {
                break;
            }
        }
    };
    future::or(discard, async {
        Timer::at(until).await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_exponentially_to_a_second_and_report_once_a_second() {
        let t0 = Instant::now();
        let mut backoff = Backoff::default();
        let mut now = t0;
        let mut delays = Vec::new();
        let mut reports = Vec::new();
        for _ in 0..12 {
            let (delay, report) = backoff.failed(now);
            delays.push(delay.as_millis());
            reports.extend(report);
            now += delay;
        }
        assert_eq!(
            delays,
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000]
        );
        // 12 failures over about 7 s: the first at once, then one count a second.
        assert_eq!(reports.iter().sum::<u64>(), 12 - backoff.unreported);
        assert!(reports.len() <= 8, "{reports:?}");
        assert_eq!(reports[0], 1);
        backoff.succeeded();
        assert_eq!(
            backoff.failed(now).0,
            Backoff::FIRST,
            "a success starts over"
        );
    }
}
