//! The TCP half of a rooms client: connect, send the TCRP request, read the status and
//! the token, then send the 2-byte UDP port so the server can reach us before we speak.
//! All of it within one deadline.

use super::ClientError;
use bytes::Bytes;
use ocm_core::client::{port_bytes, Handshake, HandshakeError};
use ocm_core::Operation;
use smol::future;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, Timer};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Gets a token for `room`, or the reason why not.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    server: SocketAddr,
    operation: Operation,
    room: &str,
    username: &str,
    password: Option<&str>,
    udp_port: u16,
    timeout: Duration,
) -> Result<Bytes, ClientError> {
    let mut handshake =
        Handshake::new(operation, room, username, password).map_err(ClientError::InvalidName)?;
    let exchange = async {
        let mut stream = Async::<TcpStream>::connect(server)
            .await
            .map_err(|e| ClientError::Connect(server, e))?;
        stream.write_all(handshake.request()).await?;
        let mut buf = [0; 1024];
        let token = loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(ClientError::Handshake(handshake.handle_eof()));
            }
            match handshake.handle_data(&buf[..n]) {
                Ok(Some(token)) => break token,
                Ok(None) => {}
                Err(HandshakeError::Refused(status)) => {
                    return Err(ClientError::Refused {
                        status,
                        room: room.to_owned(),
                        username: username.to_owned(),
                    })
                }
                Err(error) => return Err(ClientError::Handshake(error)),
            }
        };
        // The port step is optional for the server: if it fails, the registration
        // datagram still tells the server where we are.
        let _ = stream.write_all(&port_bytes(udp_port)).await;
        Ok(token)
    };
    future::or(exchange, async {
        Timer::after(timeout).await;
        Err(ClientError::Timeout(server, timeout))
    })
    .await
}
