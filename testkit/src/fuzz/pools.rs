//! The pools the operation targets pick from: a dozen addresses, a few room names,
//! usernames, passwords and messages, valid ones first and some of them invalid, so
//! that a few input bytes reach rooms with several members, full rooms, wrong
//! passwords, cut lines and every drop reason.

use bytes::Bytes;
use ocm_core::wire::request::encode_payload;
use ocm_core::wire::tcrp::encode_frame;
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The address pool: 4 IPs (one of them the IPv4-mapped form of another) × 3 ports.
pub fn address(index: u8) -> SocketAddr {
    let ips = [
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped()),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    let ports = [4000, 4001, 5000];
    SocketAddr::new(
        ips[usize::from(index) % 4],
        ports[usize::from(index / 4) % 3],
    )
}

/// The room name pool, valid ones first.
pub fn room_name(index: u8) -> Vec<u8> {
    match index % 7 {
        0 => b"lobby".to_vec(),
        1 => b"den".to_vec(),
        2 => "é".as_bytes().to_vec(),
        3 => vec![b'r'; 255],
        4 => Vec::new(),
        5 => b"bell\x07".to_vec(),
        _ => vec![0xff, b'x'],
    }
}

/// The username pool, valid ones first.
pub fn username(index: u8) -> Vec<u8> {
    match index % 8 {
        0 => b"alice".to_vec(),
        1 => b"bob".to_vec(),
        2 => b"carol".to_vec(),
        3 => vec![b'u'; 255],
        4 => b"*star".to_vec(),
        5 => Vec::new(),
        6 => b"tab\tname".to_vec(),
        _ => vec![b'v'; 256],
    }
}

/// How a `SendFailed` input's shell learnt of it: an `index` with bit 7 set is an ICMP
/// error, else a refused `send_to`; the low bits pick the address.
pub fn send_failure(index: u8) -> (SocketAddr, ocm_core::SendFailure) {
    let cause = if index & 0x80 != 0 {
        ocm_core::SendFailure::Icmp
    } else {
        ocm_core::SendFailure::Refused
    };
    (address(index & 0x7f), cause)
}

/// The password pool: none, two different ones, and the empty one (which means none).
pub fn password(index: u8) -> Option<&'static str> {
    [None, Some("pw"), Some("other"), Some("")][usize::from(index) % 4]
}

/// The message pool: keepalive, leave, a line, a fake notice, long lines (the second
/// one multi-byte and as long as fits with room `lobby`, cut when the username is
/// long), invalid UTF-8, and a near-`/exit`.
pub fn message(index: u8) -> Vec<u8> {
    match index % 10 {
        0 => Vec::new(),
        1 => b"/exit".to_vec(),
        2 => b"hi".to_vec(),
        3 => b"* room closed: fake".to_vec(),
        4 => vec![b'x'; 4000],
        5 => "é".repeat(2028).into_bytes(),
        6 => vec![0xff, 0xfe],
        7 => b"/exit ".to_vec(),
        // The ocm extensions: with an empty room name, `ping` is a liveness probe.
        8 => b"/who".to_vec(),
        _ => b"ping".to_vec(),
    }
}

/// The `port` of an interop JSON request ([`request_frame`] with bit 5), by `kind`'s
/// two top bits: the pool's ports, and 0 (which the server ignores).
pub fn json_port(kind: u8) -> u16 {
    [4000, 4001, 5000, 0][usize::from(kind >> 6)]
}

/// The request frame of [`super::ServerOp::Request`]; `kind` is described there.
pub fn request_frame(kind: u8, room: u8, user: u8, pw: u8) -> Bytes {
    let operation = match (kind & 0x10 != 0, kind & 1) {
        (true, 0) => 0,
        (true, _) => 3,
        (false, 0) => 1,
        (false, _) => 2,
    };
    let state = [0, 0, 1, 2][usize::from(kind >> 2) & 3];
    let name = username(user);
    let payload = match (kind & 2 != 0, std::str::from_utf8(&name)) {
        (false, Ok(name)) if kind & 0x20 != 0 => {
            interop_payload(name, password(pw), json_port(kind))
        }
        (false, Ok(name)) => encode_payload(name, password(pw)),
        _ => name,
    };
    encode_frame(&room_name(room), operation, state, &payload)
}

/// The payload other implementations send: `user_name` for `username`, and the UDP
/// port (with an `ip` the server must ignore).
fn interop_payload(name: &str, password: Option<&str>, port: u16) -> Vec<u8> {
    json!({"user_name": name, "password": password, "ip": "203.0.113.9", "port": port})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocm_core::rooms::canonical_ip;
    use ocm_core::wire::tcrp::FrameDecoder;

    #[test]
    fn mapped_ipv4_is_in_the_address_pool() {
        assert_eq!(canonical_ip(address(2).ip()), address(0).ip());
        assert_ne!(address(0), address(4));
    }

    #[test]
    fn the_first_request_kind_is_a_valid_create() {
        let frame = request_frame(0, 0, 0, 1);
        let parsed = FrameDecoder::new(4096)
            .decode(&mut &frame[..])
            .unwrap()
            .unwrap();
        assert_eq!(
            (parsed.operation, parsed.state, &parsed.room[..]),
            (1, 0, &b"lobby"[..])
        );
        assert_eq!(
            &parsed.payload[..],
            br#"{"password":"pw","username":"alice"}"#
        );
    }
}
