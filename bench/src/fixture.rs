//! Servers filled with rooms and members for the core benchmarks, built through the
//! real protocol (TCRP handshakes and registration datagrams), so a benchmark measures
//! the same state a live server would hold.

use ocm_core::client::{ChatSession, Handshake};
use ocm_core::wire::room_datagram::RoomDatagram;
use ocm_core::{Config, ConnId, Machine, Output, RoomServer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// A server under test, its clock, and the tokens it handed out.
pub struct Fixture {
    /// The server.
    pub server: RoomServer,
    /// The fake clock.
    pub now: Instant,
    /// `(room, username, udp address, token)` of every member, in creation order.
    pub members: Vec<(String, String, SocketAddr, Vec<u8>)>,
    next_conn: u64,
}

/// The UDP address of member number `i` (a distinct IP per member, as on a real network).
pub fn member_addr(i: usize) -> SocketAddr {
    let i = i as u32 + 1;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)), 4000)
}

impl Fixture {
    /// An empty server with limits high enough for any benchmark here. The message
    /// rates are lifted too: a benchmark repeats one member's message millions of times
    /// (with the default rates every message after the burst would be measured being
    /// dropped as rate-limited).
    pub fn new() -> Fixture {
        let config = Config {
            max_rooms: 1_000_000,
            max_members_per_room: 100_000,
            max_members: 10_000_000,
            idle_timeout: Duration::from_secs(3600),
            member_messages_per_sec: u32::MAX,
            member_message_burst: u32::MAX,
            member_bytes_per_sec: u32::MAX,
            member_byte_burst: u32::MAX,
            source_messages_per_sec: u32::MAX,
            source_message_burst: u32::MAX,
            room_fanout_per_sec: u32::MAX,
            room_fanout_burst: u32::MAX,
            ..Config::default()
        };
        Fixture {
            server: RoomServer::new(config, [9; 32]).expect("valid config"),
            now: Instant::now(),
            members: Vec::new(),
            next_conn: 0,
        }
    }

    /// A server holding `rooms` rooms of `per_room` members each, all registered over UDP.
    pub fn with_rooms(rooms: usize, per_room: usize) -> Fixture {
        let mut fixture = Fixture::new();
        for r in 0..rooms {
            let room = format!("room-{r}");
            for m in 0..per_room {
                fixture.add_member(&room, &format!("user-{m}"), m == 0);
            }
        }
        fixture
    }

    /// Runs one create (host) or join over TCRP and registers the member's UDP address.
    pub fn add_member(&mut self, room: &str, username: &str, create: bool) {
        let index = self.members.len();
        let ip = member_addr(index).ip();
        let token = self.handshake(ip, room, username, create);
        let udp = member_addr(index);
        let registration = ChatSession::room(self.now, room, &token, Duration::from_secs(60))
            .expect("valid names")
            .poll_transmit()
            .expect("registration datagram");
        self.server.handle_datagram(self.now, udp, &registration);
        self.drain();
        self.members
            .push((room.to_owned(), username.to_owned(), udp, token));
    }

    /// A full TCRP exchange; returns the token.
    pub fn handshake(&mut self, ip: IpAddr, room: &str, username: &str, create: bool) -> Vec<u8> {
        let mut hs = if create {
            Handshake::create(room, username, None)
        } else {
            Handshake::join(room, username, None)
        }
        .expect("valid names");
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.server
            .handle_tcp_accept(self.now, conn, SocketAddr::new(ip, 50_000));
        self.server.handle_tcp_data(self.now, conn, hs.request());
        let mut token = None;
        while let Some(output) = self.server.poll_output() {
            if let Output::TcpSend { data, .. } = output {
                if let Ok(Some(t)) = hs.handle_data(&data) {
                    token = Some(t.to_vec());
                }
            }
        }
        self.server.handle_tcp_closed(self.now, conn);
        self.drain();
        token.expect("handshake accepted")
    }

    /// The datagram member `i` sends to say `message`.
    pub fn datagram(&self, i: usize, message: &str) -> bytes::Bytes {
        let (room, _, _, token) = &self.members[i];
        RoomDatagram {
            room: room.as_bytes(),
            token,
            message: message.as_bytes(),
        }
        .encode()
        .expect("fits in a datagram")
    }

    /// Drops every queued output; returns how many datagrams were among them.
    pub fn drain(&mut self) -> usize {
        let mut datagrams = 0;
        while let Some(output) = self.server.poll_output() {
            datagrams += usize::from(matches!(output, Output::Datagram { .. }));
        }
        datagrams
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}
