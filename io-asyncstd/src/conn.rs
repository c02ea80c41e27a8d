//! The TCP side: the acceptor task, and one task per connection that forwards what it
//! reads to the owner and carries out the owner's [`ConnCmd`]s in order.

use async_channel::{Receiver, Sender};
use async_std::net::{TcpListener, TcpStream};
use async_std::task;
use bytes::Bytes;
use futures_lite::future;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use ocm_core::ConnId;
use ocm_io::{ConnCmd, Input, LINGER, LINGER_BYTES, TCP_READ_BUFFER};
use std::io;
use std::net::Shutdown;
use std::time::Duration;

/// Accepts connections until the owner is gone, numbering them from 0.
pub(crate) async fn accept(listener: TcpListener, tx: Sender<Input>) {
    for id in 0.. {
        let (stream, peer) = loop {
            match listener.accept().await {
                Ok(accepted) => break accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    task::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let conn = ConnId(id);
        let (cmds, commands) = async_channel::unbounded();
        if tx.send(Input::Accepted { conn, peer, cmds }).await.is_err() {
            return;
        }
        task::spawn(connection(conn, stream, commands, tx.clone()));
    }
}

enum Step {
    Read(io::Result<usize>),
    Cmd(Option<ConnCmd>),
}

async fn connection(
    conn: ConnId,
    stream: TcpStream,
    commands: Receiver<ConnCmd>,
    tx: Sender<Input>,
) {
    let mut buf = [0; TCP_READ_BUFFER];
    let mut reading = true;
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
                if (&stream).write_all(&data).await.is_ok() || !reading {
                    continue;
                }
                reading = false;
                Input::TcpClosed { conn }
            }
            Step::Cmd(Some(ConnCmd::ShutdownWrite)) => {
                let _ = stream.shutdown(Shutdown::Write);
                continue;
            }
            Step::Cmd(Some(ConnCmd::Close) | None) => break,
        };
        if tx.send(input).await.is_err() {
            break;
        }
    }
    linger(&stream, reading, &mut buf).await;
}

/// Sends FIN, then reads and discards until the peer's EOF (bounded in time and bytes),
/// so unread input cannot turn the close into a reset that destroys our last answer.
async fn linger(stream: &TcpStream, reading: bool, buf: &mut [u8]) {
    let _ = stream.shutdown(Shutdown::Write);
    if !reading {
        return;
    }
    let discard = async {
        let mut total = 0;
        let mut reader = stream;
        while let Ok(n @ 1..) = reader.read(buf).await {
            total += n;
            if total > LINGER_BYTES {
                break;
            }
        }
    };
    future::or(discard, task::sleep(LINGER)).await;
}
