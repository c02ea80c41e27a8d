//! The protocol from its document alone: TCRP frames and UDP datagrams built and read
//! byte by byte with std sockets, without any ocm code, so the wire format cannot
//! drift from docs/PROTOCOL.md unnoticed.

use super::WAIT;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};

/// Operation 1: create a room.
pub const CREATE: u8 = 1;
/// Operation 2: join a room.
pub const JOIN: u8 = 2;

/// A TCRP frame: `RoomNameSize u8 | Operation u8 | State u8 | OperationPayloadSize (29
/// bytes, big-endian)`, then the room name, then the payload.
pub fn frame(room: &[u8], operation: u8, state: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![room.len() as u8, operation, state];
    let mut size = [0u8; 29];
    size[21..].copy_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&size);
    out.extend_from_slice(room);
    out.extend_from_slice(payload);
    out
}

/// A request header alone: room name of `room_len` bytes, `operation`, state 0, then a
/// 29-byte payload size whose low 8 bytes are `size` (`u64::MAX` fills all 29 with 0xff).
pub fn request_header(room_len: u8, operation: u8, size: u64) -> Vec<u8> {
    let mut out = vec![room_len, operation, 0];
    let mut field = [0u8; 29];
    if size == u64::MAX {
        field = [0xff; 29];
    } else {
        field[21..].copy_from_slice(&size.to_be_bytes());
    }
    out.extend_from_slice(&field);
    out
}

/// Reads one TCRP frame: (operation, state, room, payload).
pub fn read_frame(stream: &mut TcpStream) -> std::io::Result<(u8, u8, Vec<u8>, Vec<u8>)> {
    let mut header = [0u8; 32];
    stream.read_exact(&mut header)?;
    assert!(
        header[3..24].iter().all(|b| *b == 0),
        "payload size fits 8 bytes"
    );
    let size = u64::from_be_bytes(header[24..32].try_into().unwrap()) as usize;
    let mut room = vec![0; usize::from(header[0])];
    stream.read_exact(&mut room)?;
    let mut payload = vec![0; size];
    stream.read_exact(&mut payload)?;
    Ok((header[1], header[2], room, payload))
}

/// A TCP connection to the server with every read bounded by [`WAIT`].
pub fn connect(server: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&server, WAIT).expect("TCP connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// One create or join: the JSON payload, the status, and (on status 0) the token.
/// `port`, if given, is sent as the 2-byte port step after the token.
pub fn handshake(
    server: SocketAddr,
    operation: u8,
    room: &str,
    username: &str,
    password: &str,
    port: Option<u16>,
) -> Result<Vec<u8>, u8> {
    let payload = format!(r#"{{"username": "{username}", "password": "{password}"}}"#);
    handshake_with(server, operation, room, &payload, port)
}

/// [`handshake`] with any payload.
pub fn handshake_with(
    server: SocketAddr,
    operation: u8,
    room: &str,
    payload: &str,
    port: Option<u16>,
) -> Result<Vec<u8>, u8> {
    handshake_on(connect(server), operation, room, payload, port)
}

/// [`handshake_with`] on a stream already connected (from another source address, say).
pub fn handshake_on(
    mut stream: TcpStream,
    operation: u8,
    room: &str,
    payload: &str,
    port: Option<u16>,
) -> Result<Vec<u8>, u8> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(&frame(room.as_bytes(), operation, 0, payload.as_bytes()))
        .unwrap();
    let (op, state, echoed, status) = read_frame(&mut stream).expect("a response frame");
    assert_eq!(
        (op, state, &echoed[..]),
        (operation, 1, room.as_bytes()),
        "response header"
    );
    assert_eq!(status.len(), 1, "the status is one byte");
    if status[0] != 0 {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        assert!(rest.is_empty(), "nothing follows a refusal");
        return Err(status[0]);
    }
    let (op, state, echoed, token) = read_frame(&mut stream).expect("a complete frame");
    assert_eq!(
        (op, state, &echoed[..]),
        (operation, 2, room.as_bytes()),
        "complete header"
    );
    assert_eq!(token.len(), 32, "the token is 32 hex characters");
    assert!(token
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
    let mut rest = [0u8; 1];
    assert_eq!(
        stream.read(&mut rest).unwrap(),
        0,
        "the server shuts down its write side after the token"
    );
    if let Some(port) = port {
        stream.write_all(&port.to_be_bytes()).unwrap();
    }
    Ok(token)
}

/// A room datagram: `RoomNameSize u8 | TokenSize u8 | room | token | message`.
pub fn room_datagram(room: &str, token: &[u8], message: &str) -> Vec<u8> {
    let mut out = vec![room.len() as u8, token.len() as u8];
    out.extend_from_slice(room.as_bytes());
    out.extend_from_slice(token);
    out.extend_from_slice(message.as_bytes());
    out
}

/// A relay datagram: `usernamelen u8 | username | message`.
pub fn relay_datagram(username: &str, message: &str) -> Vec<u8> {
    let mut out = vec![username.len() as u8];
    out.extend_from_slice(username.as_bytes());
    out.extend_from_slice(message.as_bytes());
    out
}

/// A UDP socket on `ip`, any port, with reads bounded by [`WAIT`].
pub fn udp(ip: &str) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind((ip, 0))?;
    socket.set_read_timeout(Some(WAIT))?;
    Ok(socket)
}

/// The next datagram, within [`WAIT`].
pub fn recv(socket: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 4097];
    let (n, _) = socket
        .recv_from(&mut buf)
        .expect("a datagram within the wait");
    buf[..n].to_vec()
}

/// The next datagram as text.
pub fn recv_text(socket: &UdpSocket) -> String {
    String::from_utf8(recv(socket)).expect("UTF-8 from the server")
}
