//! Compares what the server did with what the model expected, for one input.
//!
//! Outputs are grouped as the protocol makes them observable: datagrams per receiver
//! (order matters per receiver, not across receivers), TCP outputs per connection (in
//! order), and events (in order). Everything must match exactly, except the token in a
//! `complete` frame, which must be 32 lowercase hex characters and is handed back so the
//! model can learn it.

use crate::model::{Expected, TcpOut, TokenHex};
use bytes::Bytes;
use ocm_core::output::{ConnId, Event, Output};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;

fn show(payload: &Bytes) -> String {
    let text = String::from_utf8_lossy(payload);
    if text.len() > 60 {
        let mut cut = 60;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{:?}…({} bytes)", &text[..cut], payload.len())
    } else {
        format!("{text:?}")
    }
}

fn show_datagrams(map: &BTreeMap<SocketAddr, Vec<Bytes>>) -> String {
    let mut out = String::new();
    for (to, payloads) in map {
        let shown: Vec<String> = payloads.iter().map(show).collect();
        let _ = write!(out, "\n    {to} <- [{}]", shown.join(", "));
    }
    out
}

/// Checks `actual` against `expected`; returns the token of an admitted member.
pub fn compare(expected: &Expected, actual: &[Output]) -> Result<Option<TokenHex>, String> {
    let mut datagrams: BTreeMap<SocketAddr, Vec<Bytes>> = BTreeMap::new();
    let mut tcp: BTreeMap<ConnId, Vec<&Output>> = BTreeMap::new();
    let mut events: Vec<&Event> = Vec::new();
    for output in actual {
        match output {
            Output::Datagram { to, payload } => {
                datagrams.entry(*to).or_default().push(payload.clone())
            }
            Output::TcpSend { conn, .. }
            | Output::TcpShutdownWrite { conn }
            | Output::TcpClose { conn } => tcp.entry(*conn).or_default().push(output),
            Output::Event(event) => events.push(event),
            Output::Cluster(cluster) => {
                return Err(format!("cluster output from a single node: {cluster:?}"))
            }
        }
    }
    if datagrams != expected.datagrams {
        return Err(format!(
            "datagrams differ from the model\n  expected:{}\n  actual:{}",
            show_datagrams(&expected.datagrams),
            show_datagrams(&datagrams)
        ));
    }
    if events.iter().copied().ne(expected.events.iter()) {
        return Err(format!(
            "events differ from the model\n  expected: {:?}\n  actual:   {:?}",
            expected.events, events
        ));
    }
    let mut token = None;
    let conns: Vec<ConnId> = tcp.keys().chain(expected.tcp.keys()).copied().collect();
    for conn in conns {
        let want = expected.tcp.get(&conn).map(Vec::as_slice).unwrap_or(&[]);
        let got = tcp.get(&conn).map(Vec::as_slice).unwrap_or(&[]);
        let mismatch =
            || format!("TCP outputs on {conn:?} differ\n  expected: {want:?}\n  actual:   {got:?}");
        if want.len() != got.len() {
            return Err(mismatch());
        }
        for (w, g) in want.iter().zip(got) {
            match (w, g) {
                (TcpOut::Send(a), Output::TcpSend { data, .. }) if a == data => {}
                (TcpOut::SendComplete(prefix), Output::TcpSend { data, .. }) => {
                    let hex = data.strip_prefix(&prefix[..]).ok_or_else(mismatch)?;
                    let hex = TokenHex::try_from(hex).map_err(|_| mismatch())?;
                    if !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
                        return Err(format!("token is not lowercase hex: {:?}", show(data)));
                    }
                    token = Some(hex);
                }
                (TcpOut::ShutdownWrite, Output::TcpShutdownWrite { .. }) => {}
                (TcpOut::Close, Output::TcpClose { .. }) => {}
                _ => return Err(mismatch()),
            }
        }
    }
    if expected.admitted.is_some() && token.is_none() {
        return Err("a member was admitted but no token was sent".into());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tcp_frame;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_receiver_order_matters_but_not_across_receivers() {
        let (a, b) = (addr("10.0.0.1:1"), addr("10.0.0.2:2"));
        let mut expected = Expected::default();
        expected
            .datagrams
            .insert(a, vec![Bytes::from("1"), Bytes::from("2")]);
        expected.datagrams.insert(b, vec![Bytes::from("3")]);
        let dg = |to, p: &'static str| Output::Datagram {
            to,
            payload: Bytes::from(p),
        };
        assert!(compare(&expected, &[dg(b, "3"), dg(a, "1"), dg(a, "2")]).is_ok());
        assert!(compare(&expected, &[dg(a, "2"), dg(a, "1"), dg(b, "3")]).is_err());
        assert!(compare(&expected, &[dg(a, "1"), dg(a, "2")]).is_err());
        assert!(compare(&expected, &[dg(a, "1"), dg(a, "2"), dg(b, "3"), dg(b, "3")]).is_err());
    }

    #[test]
    fn complete_frame_must_carry_a_lowercase_hex_token() {
        let conn = ConnId(1);
        let prefix = tcp_frame(b"r", 1, 2, &[0; 32]).slice(..33);
        let mut expected = Expected::default();
        expected
            .tcp
            .insert(conn, vec![TcpOut::SendComplete(prefix)]);
        expected.admitted = Some(0);
        let send = |token: &[u8; 32]| Output::TcpSend {
            conn,
            data: tcp_frame(b"r", 1, 2, token),
        };
        assert_eq!(
            compare(&expected, &[send(b"0123456789abcdef0123456789abcdef")]),
            Ok(Some(*b"0123456789abcdef0123456789abcdef"))
        );
        assert!(compare(&expected, &[send(b"0123456789ABCDEF0123456789abcdef")]).is_err());
        assert!(compare(&expected, &[]).is_err());
    }
}
