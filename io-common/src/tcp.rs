//! The TCP side of both shells: the acceptor, and one task per connection that forwards
//! what it reads to the owner and carries out the owner's [`ConnCmd`]s in order.
//!
//! Sockets are `async_io::Async` (what smol's and async-std's own TCP types wrap), so
//! this code is the same on either runtime; the shell passes its executor's `spawn`.

use crate::{ConnCmd, TcpEvent, LINGER, LINGER_BYTES, TCP_READ_BUFFER};
use async_channel::{Receiver, Sender};
use async_io::{Async, Timer};
use bytes::Bytes;
use futures_lite::future::{self, Future};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use ocm_core::{ConnId, Input};
use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::time::Duration;

/// A task for the shell's executor.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Accepts connections until the owner is gone, numbering them from 0; each one's task
/// is handed to `spawn`.
pub async fn accept(listener: Async<TcpListener>, tx: Sender<TcpEvent>, spawn: impl Fn(Task)) {
    for id in 0.. {
        let (stream, peer) = loop {
            match listener.accept().await {
                Ok(accepted) => break accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    Timer::after(Duration::from_millis(100)).await;
                }
            }
        };
        let conn = ConnId(id);
        let (cmds, commands) = async_channel::unbounded();
        if tx
            .send(TcpEvent::Accepted { conn, peer, cmds })
            .await
            .is_err()
        {
            return;
        }
        spawn(Box::pin(connection(conn, stream, commands, tx.clone())));
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
    loop {
        let next_cmd = async { Step::Cmd(commands.recv().await.ok()) };
        let step = if reading {
            future::or(
                async { Step::Read((&stream).read(&mut buf).await) },
                next_cmd,
            )
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
            Step::Cmd(Some(ConnCmd::Close) | None) => break,
        };
        if tx.send(TcpEvent::Input(input)).await.is_err() {
            break;
        }
    }
    // A connection closed without an answer (refused at a limit, timed out) has nothing
    // a reset could destroy: it closes at once, so a connection flood holds no
    // descriptors in lingering.
    if answered {
        linger(&stream, reading, &mut buf).await;
    }
}

/// Sends FIN, then reads and discards until the peer's EOF (bounded in time and bytes),
/// so unread input cannot turn the close into a reset that destroys our last answer.
async fn linger(stream: &Async<TcpStream>, reading: bool, buf: &mut [u8]) {
    let _ = stream.get_ref().shutdown(Shutdown::Write);
    if !reading {
        return;
    }
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
        Timer::after(LINGER).await;
    })
    .await;
}
