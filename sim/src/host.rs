//! A simulated chat client: core's `client::Handshake` over simulated TCP, then core's
//! `client::ChatSession` over simulated UDP, plus the misbehaviour a schedule asks for
//! (going silent, vanishing, rebinding, resending stale datagrams).
//!
//! An actor lives on a host with its own IP; its TCP connections come from that IP and
//! its datagrams from `udp_ip` (the same address, or its IPv4-mapped IPv6 form, as a
//! dual-stack socket would send). Each chat session gets a fresh UDP port. What each
//! session receives is logged, so the end of a run can compare it with what the model
//! says the server owed that member.

use crate::model::canonical;
use crate::net::{below, Net, Segment};
use crate::schedule::KEEPALIVE;
use bytes::Bytes;
use ocm_core::client::{port_bytes, ChatSession, Handshake, HandshakeError};
use ocm_core::ConnId;
use rand_chacha::ChaCha20Rng;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// What an actor needs to reach the wire.
pub struct Wire<'a> {
    /// The network.
    pub net: &'a mut Net,
    /// The run's generator.
    pub rng: &'a mut ChaCha20Rng,
    /// The time, as an offset from `base`.
    pub now: Duration,
    /// The start of the run.
    pub base: Instant,
    /// The server's UDP address.
    pub server: SocketAddr,
    /// Datagrams seen on the wire from clients, for the attacker to replay.
    pub captured: &'a mut Vec<Bytes>,
}

impl Wire<'_> {
    fn instant(&self) -> Instant {
        self.base + self.now
    }

    fn send_udp(&mut self, from: SocketAddr, payload: Bytes) {
        if self.captured.len() < 64 {
            self.captured.push(payload.clone());
        } else {
            let slot = below(self.rng, 64) as usize;
            self.captured[slot] = payload.clone();
        }
        self.net
            .send_udp(self.rng, self.now, from, self.server, payload);
    }
}

/// What one chat session received, for the end-of-run delivery check.
#[derive(Clone, Debug)]
pub struct SessionLog {
    /// The token the server gave this session.
    pub token: Bytes,
    /// Every datagram received, in order.
    pub received: Vec<Bytes>,
    /// False once the client itself stopped listening or moved (leave, vanish, rebind),
    /// so it may have missed datagrams the server rightly sent.
    pub intact: bool,
}

/// Where an actor is.
#[derive(Debug)]
pub enum State {
    /// No session, no connection.
    Idle,
    /// Waiting for the TCRP answer on `conn`.
    Handshaking {
        /// The connection.
        conn: ConnId,
        /// The client state machine.
        handshake: Handshake,
        /// The room asked for.
        room: String,
    },
    /// In a room.
    Chatting {
        /// The client state machine.
        session: ChatSession,
        /// The room.
        room: String,
        /// The UDP address it sends from and listens on.
        addr: SocketAddr,
        /// Sends nothing any more.
        silent: bool,
        /// Index of this session's log.
        log: usize,
    },
}

/// One simulated client.
#[derive(Debug)]
pub struct Actor {
    /// The IP its TCP connections come from.
    pub tcp_ip: IpAddr,
    /// The IP its datagrams come from.
    pub udp_ip: IpAddr,
    next_port: u16,
    /// Where it is.
    pub state: State,
    /// Every session it had.
    pub sessions: Vec<SessionLog>,
    last: Option<(SocketAddr, Bytes)>,
    /// What it wrote as the port step on each connection.
    port_steps: BTreeMap<ConnId, Bytes>,
    /// The `port` it put in the JSON request on a connection, as other implementations
    /// do (with `user_name` for `username`).
    json_ports: BTreeMap<ConnId, u16>,
}

impl Actor {
    /// A client on `tcp_ip`, sending datagrams from `udp_ip`, using ports from `first_port`.
    pub fn new(tcp_ip: IpAddr, udp_ip: IpAddr, first_port: u16) -> Actor {
        Actor {
            tcp_ip,
            udp_ip,
            next_port: first_port,
            state: State::Idle,
            sessions: Vec::new(),
            last: None,
            port_steps: BTreeMap::new(),
            json_ports: BTreeMap::new(),
        }
    }

    /// The whole port step it wrote on `conn`, if it got that far.
    pub fn port_step(&self, conn: ConnId) -> Option<&Bytes> {
        self.port_steps.get(&conn)
    }

    /// The `port` its JSON request on `conn` named, if it sent the interop variant.
    pub fn json_port(&self, conn: ConnId) -> Option<u16> {
        self.json_ports.get(&conn).copied()
    }

    /// True when it can start a create or join.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// True when it is in a room and still sending.
    pub fn is_talking(&self) -> bool {
        matches!(self.state, State::Chatting { silent: false, .. })
    }

    /// True when it is in a room or on its way in.
    pub fn is_busy(&self) -> bool {
        !self.is_idle()
    }

    /// The address its live session sends from.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        match self.state {
            State::Chatting { addr, .. } => Some(addr),
            _ => None,
        }
    }

    /// The connection it is handshaking on.
    pub fn handshake_conn(&self) -> Option<ConnId> {
        match self.state {
            State::Handshaking { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The room and token of its live session.
    pub fn session(&self) -> Option<(&str, &Bytes)> {
        match &self.state {
            State::Chatting { room, log, .. } => Some((room, &self.sessions[*log].token)),
            _ => None,
        }
    }

    /// Starts a handshake on `conn` (already accepted): writes the request.
    pub fn start(&mut self, w: &mut Wire, conn: ConnId, handshake: Handshake, room: &str) {
        let mut request = Bytes::copy_from_slice(handshake.request());
        // One handshake in four speaks as other implementations do: `user_name`, an
        // `ip` the server must ignore, and the UDP port in the JSON.
        if below(w.rng, 4) == 0 {
            if let Some(interop) = interop_request(&request, self.next_port) {
                self.json_ports.insert(conn, self.next_port);
                request = interop;
            }
        }
        w.net.send_tcp(w.rng, w.now, conn, true, &request);
        self.state = State::Handshaking {
            conn,
            handshake,
            room: room.to_owned(),
        };
    }

    /// A TCP segment from the server. An answer no correct server sends is an error.
    pub fn on_tcp(&mut self, w: &mut Wire, conn: ConnId, segment: Segment) -> Result<(), String> {
        let State::Handshaking {
            conn: current,
            handshake,
            room,
        } = &mut self.state
        else {
            return Ok(());
        };
        if *current != conn {
            return Ok(());
        }
        let data = match segment {
            Segment::Data(data) => data,
            Segment::Fin => {
                w.net.send_fin(w.rng, w.now, conn, true);
                self.state = State::Idle;
                return Ok(());
            }
        };
        match handshake.handle_data(&data) {
            Ok(None) => Ok(()),
            Ok(Some(token)) => {
                let room = std::mem::take(room);
                self.begin_chat(w, conn, &room, token)
            }
            Err(HandshakeError::Refused(_)) => {
                w.net.send_fin(w.rng, w.now, conn, true);
                self.state = State::Idle;
                Ok(())
            }
            Err(e) => Err(format!("client got a bad TCRP answer: {e}")),
        }
    }

    fn begin_chat(
        &mut self,
        w: &mut Wire,
        conn: ConnId,
        room: &str,
        token: Bytes,
    ) -> Result<(), String> {
        let port = self.next_port;
        self.next_port += 1;
        let addr = SocketAddr::new(self.udp_ip, port);
        let session = ChatSession::room(w.instant(), room, &token, KEEPALIVE)
            .map_err(|e| format!("client refused its own session: {e}"))?;
        // The port step: usually the port, sometimes nothing, port 0 or 3 bytes, which
        // the server must ignore however TCP splits them.
        let step: &[u8] = match below(w.rng, 6) {
            3 => &[],
            4 => &[0, 0],
            5 => &[1, 2, 3],
            _ => &port_bytes(port),
        };
        self.port_steps.insert(conn, Bytes::copy_from_slice(step));
        if !step.is_empty() {
            w.net
                .send_tcp(w.rng, w.now, conn, true, &Bytes::copy_from_slice(step));
        }
        w.net.send_fin(w.rng, w.now, conn, true);
        self.sessions.push(SessionLog {
            token,
            received: Vec::new(),
            intact: true,
        });
        self.state = State::Chatting {
            session,
            room: room.to_owned(),
            addr,
            silent: false,
            log: self.sessions.len() - 1,
        };
        self.flush(w);
        Ok(())
    }

    /// A datagram for `to`. Returns false when nothing listens there (the port is closed).
    pub fn on_udp(&mut self, to: SocketAddr, payload: &Bytes) -> bool {
        let State::Chatting {
            session, addr, log, ..
        } = &mut self.state
        else {
            return false;
        };
        // A dual-stack socket gets datagrams sent to its IPv4 or IPv4-mapped form alike.
        if addr.port() != to.port() || canonical(addr.ip()) != canonical(to.ip()) {
            return false;
        }
        self.sessions[*log].received.push(payload.clone());
        session.handle_datagram(payload);
        if session.is_ended() {
            self.state = State::Idle;
        }
        true
    }

    /// Sends a chat line (skipped unless chatting and not silent).
    pub fn send(&mut self, w: &mut Wire, text: impl FnOnce(usize) -> String) {
        if let State::Chatting {
            session,
            silent: false,
            ..
        } = &mut self.state
        {
            let text = text(session.max_message_len());
            if session.send(w.instant(), &text).is_ok() {
                self.flush(w);
            }
        }
    }

    /// Sends `/exit` and stops listening.
    pub fn leave(&mut self, w: &mut Wire) {
        if let State::Chatting {
            session,
            silent: false,
            ..
        } = &mut self.state
        {
            session.leave(w.instant());
            self.flush(w);
            self.stop();
        }
    }

    /// Stops sending, keeps listening.
    pub fn go_silent(&mut self) {
        if let State::Chatting { silent, .. } = &mut self.state {
            *silent = true;
        }
    }

    /// Closes everything without a word. Returns the connection to reset, if any.
    pub fn vanish(&mut self) -> Option<ConnId> {
        let conn = self.handshake_conn();
        self.retire_json_port(conn);
        self.stop();
        conn
    }

    /// Abandons the handshake. Returns the connection to reset.
    pub fn drop_tcp(&mut self) -> Option<ConnId> {
        let conn = self.handshake_conn()?;
        self.retire_json_port(Some(conn));
        self.state = State::Idle;
        Some(conn)
    }

    /// A handshake abandoned after its JSON request named the next port: the server may
    /// hold a member at that port, so the next session must not take it (a new socket
    /// would get a stranger's datagrams; the cluster simulator tripped on it).
    fn retire_json_port(&mut self, conn: Option<ConnId>) {
        if conn.is_some_and(|c| self.json_ports.get(&c) == Some(&self.next_port)) {
            self.next_port += 1;
        }
    }

    /// Moves the session to a new port and says so with a keepalive.
    pub fn rebind(&mut self, w: &mut Wire) {
        let port = self.next_port;
        if let State::Chatting {
            session,
            addr,
            silent: false,
            log,
            ..
        } = &mut self.state
        {
            self.next_port += 1;
            *addr = SocketAddr::new(self.udp_ip, port);
            self.sessions[*log].intact = false;
            if session.send(w.instant(), "").is_ok() {
                self.flush(w);
            }
        }
    }

    /// Sends the last datagram again from where it went.
    pub fn resend_last(&mut self, w: &mut Wire) {
        if let Some((from, payload)) = self.last.clone() {
            w.send_udp(from, payload);
        }
    }

    /// When the session wants a keepalive.
    pub fn poll_timeout(&self, base: Instant) -> Option<Duration> {
        match &self.state {
            State::Chatting {
                session,
                silent: false,
                ..
            } => session
                .poll_timeout()
                .map(|at| at.saturating_duration_since(base)),
            _ => None,
        }
    }

    /// Sends a keepalive if one is due.
    pub fn handle_timeout(&mut self, w: &mut Wire) {
        if let State::Chatting {
            session,
            silent: false,
            ..
        } = &mut self.state
        {
            session.handle_timeout(w.instant());
            self.flush(w);
        }
    }

    fn stop(&mut self) {
        if let State::Chatting { log, .. } = self.state {
            self.sessions[log].intact = false;
        }
        self.state = State::Idle;
    }

    fn flush(&mut self, w: &mut Wire) {
        if let State::Chatting { session, addr, .. } = &mut self.state {
            while let Some(datagram) = session.poll_transmit() {
                self.last = Some((*addr, datagram.clone()));
                w.send_udp(*addr, datagram);
            }
        }
    }
}

/// The same request with its JSON payload rewritten the way other implementations
/// write it: `user_name` instead of `username`, an `ip` (of another host), and `port`.
fn interop_request(request: &[u8], port: u16) -> Option<Bytes> {
    let room_len = usize::from(*request.first()?);
    let (room, payload) = request.get(32..)?.split_at_checked(room_len)?;
    let mut object = match serde_json::from_slice(payload).ok()? {
        serde_json::Value::Object(object) => object,
        _ => return None,
    };
    let username = object.remove("username")?;
    object.insert("user_name".into(), username);
    object.insert("ip".into(), "198.51.100.7".into());
    object.insert("port".into(), port.into());
    let payload = serde_json::Value::Object(object).to_string();
    let frame =
        ocm_core::wire::tcrp::encode_frame(room, request[1], request[2], payload.as_bytes());
    Some(frame)
}
