//! TCRP handshakes over real loopback TCP: a load of creates and joins, and the minimal
//! server they are compared with.
//!
//! [`serve_minimal`] is the least a TCRP server can do on plain sockets: one thread,
//! blocking calls, no state. It accepts, reads one request, answers OK and a fixed token
//! in one write, shuts down its write side, reads until the client's EOF, and closes:
//! the same segments, in the same order, as an ocm handshake without the port step.
//!
//! [`run`] makes `pairs` rooms on each of `threads` client threads: a create by a host,
//! then a join by a guest, each on its own connection (connect, request, FIN, read the
//! answer to EOF, check the token), one after the other on a thread.

use ocm_core::client::Handshake;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The token every answer of the minimal server carries.
const TOKEN: &[u8; 32] = b"00112233445566778899aabbccddeeff";

/// A TCRP header: room name size, operation, state, 29-byte big-endian payload size.
const HEADER_LEN: usize = 32;

/// Serves forever on `listener`.
pub fn serve_minimal(listener: TcpListener) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (stream, _) = listener.accept()?;
        // A client that misbehaves costs this one connection, not the server.
        let _ = answer(stream, &mut buf);
    }
}

fn answer(mut stream: TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header)?;
    let (room_len, operation) = (usize::from(header[0]), header[1]);
    let payload_len = u64::from_be_bytes(header[24..].try_into().expect("8 bytes"));
    let body = (room_len + usize::try_from(payload_len).unwrap_or(usize::MAX)).min(buf.len());
    let body = &mut buf[..body];
    stream.read_exact(body)?;
    let room = &body[..room_len];
    let mut out = Vec::with_capacity(2 * (HEADER_LEN + room_len) + 1 + TOKEN.len());
    frame(&mut out, room, operation, 1, &[0]);
    frame(&mut out, room, operation, 2, TOKEN);
    stream.write_all(&out)?;
    stream.shutdown(Shutdown::Write)?;
    while stream.read(buf)? > 0 {}
    Ok(())
}

fn frame(out: &mut Vec<u8>, room: &[u8], operation: u8, state: u8, payload: &[u8]) {
    out.extend_from_slice(&[room.len() as u8, operation, state]);
    out.extend_from_slice(&[0; HEADER_LEN - 3 - 8]);
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(room);
    out.extend_from_slice(payload);
}

/// What one load run measured.
#[derive(Clone, Copy, Debug)]
pub struct Report {
    /// Handshakes completed, each with a token.
    pub handshakes: u64,
    /// From the first connect to the last answer.
    pub elapsed: Duration,
}

impl Report {
    /// Handshakes per second.
    pub fn rate(&self) -> f64 {
        self.handshakes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs `pairs` create+join pairs on each of `threads` threads against `server`; room
/// names start with `prefix` (so runs against one server never collide).
pub fn run(server: SocketAddr, threads: usize, pairs: usize, prefix: &str) -> io::Result<Report> {
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let prefix = format!("{prefix}{t}-");
            std::thread::spawn(move || -> io::Result<u64> {
                for i in 0..pairs {
                    let room = format!("{prefix}{i}");
                    one(server, Handshake::create(&room, "host", None))?;
                    one(server, Handshake::join(&room, "guest", None))?;
                }
                Ok(2 * pairs as u64)
            })
        })
        .collect();
    let mut handshakes = 0;
    for worker in workers {
        handshakes += worker
            .join()
            .map_err(|_| io::Error::other("handshake thread panicked"))??;
    }
    Ok(Report {
        handshakes,
        elapsed: start.elapsed(),
    })
}

fn one(
    server: SocketAddr,
    handshake: Result<Handshake, ocm_core::client::InvalidName>,
) -> io::Result<()> {
    let mut handshake = handshake.map_err(io::Error::other)?;
    let mut stream = TcpStream::connect(server)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(handshake.request())?;
    stream.shutdown(Shutdown::Write)?;
    let mut answer = Vec::with_capacity(128);
    stream.read_to_end(&mut answer)?;
    match handshake.handle_data(&answer) {
        Ok(Some(_token)) => Ok(()),
        other => Err(io::Error::other(format!("handshake failed: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimal_server_answers_what_a_client_accepts() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || serve_minimal(listener));
        let report = run(addr, 2, 3, "t").unwrap();
        assert_eq!(report.handshakes, 12);
    }
}
