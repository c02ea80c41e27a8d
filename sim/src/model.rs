//! The reference model: what the server should hold and say, computed from the
//! protocol rules and the inputs alone.
//!
//! The model never reads the server's tables. It is fed the same inputs as the server,
//! at the same instants, and for each one it answers with an [`Expected`]: the datagrams
//! (per receiver, in order), the TCP outputs (per connection) and the events the server
//! must produce. The only things it learns from the server are the random tokens, taken
//! from the `complete` frames once the expected shape has been confirmed.
//!
//! Syntax checks that are not about rooms (is this a legal name, a parsable payload)
//! reuse `ocm_core::names` and `ocm_core::wire::request`, which core tests on their own; every
//! rule about rooms, members, tokens, addresses, relaying and eviction is written
//! again here, from `docs/PROTOCOL.md`. The TCP half is in `model/tcp.rs`, the UDP half
//! and eviction in `model/udp.rs`.

mod rates;
mod tcp;
mod udp;

pub use tcp::frame as tcp_frame;
pub use udp::relayed_line;

use bytes::Bytes;
use ocm_core::output::{ConnId, Event};
use ocm_core::wire::notice::CloseReason;
use ocm_core::{Config, Stats};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A token in its wire form (32 lowercase hex characters).
pub type TokenHex = [u8; 32];

/// One TCP output the server must produce, in order per connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOut {
    /// Exactly these bytes.
    Send(Bytes),
    /// A `complete` frame: this header and room, then 32 lowercase hex characters of a
    /// fresh token.
    SendComplete(Bytes),
    /// Shut down the write side.
    ShutdownWrite,
    /// Close.
    Close,
}

/// What one input must make the server do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Datagrams per receiver, in the order the receiver must get them.
    pub datagrams: BTreeMap<SocketAddr, Vec<Bytes>>,
    /// TCP outputs per connection, in order.
    pub tcp: BTreeMap<ConnId, Vec<TcpOut>>,
    /// Events, in order.
    pub events: Vec<Event>,
    /// A member was admitted and waits for the token the server drew.
    pub admitted: Option<u64>,
}

/// How the model judged a datagram (for the explicit invariants and coverage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Dropped: nothing may change and nothing may be sent.
    Refused,
    /// A liveness probe from no member: nothing may change; at most one answer, to
    /// `from`, no larger than the probe's `len` bytes.
    ProbeRefused {
        /// The probe's source.
        from: SocketAddr,
        /// The probe's size.
        len: usize,
    },
    /// From a member of `room` called `username` at `from`, carrying `message` (for a
    /// liveness probe: empty).
    Authorized {
        /// The sender's (now verified) address.
        from: SocketAddr,
        /// The room of the sender.
        room: String,
        /// The sender's username.
        username: String,
        /// The message text (empty for a keepalive).
        message: String,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Room {
    pub(crate) host: u64,
    pub(crate) password: Option<String>,
    /// Join order, host first.
    pub(crate) members: Vec<u64>,
    /// The datagrams its chat may make the server send.
    pub(crate) fanout: rates::Allowance,
}

#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) room: String,
    pub(crate) username: String,
    pub(crate) token: Option<TokenHex>,
    pub(crate) ip: IpAddr,
    pub(crate) udp: Option<SocketAddr>,
    pub(crate) last_seen: Duration,
    pub(crate) failures: u32,
    /// Its message and byte buckets.
    pub(crate) messages: rates::Allowance,
    pub(crate) bytes: rates::Allowance,
    /// Sends left to an address no datagram proved (`None`: proven).
    pub(crate) unproven: Option<u32>,
}

/// Every member, room, token and connection the server should hold.
#[derive(Clone, Debug)]
pub struct Model {
    pub(crate) cfg: Config,
    pub(crate) rooms: BTreeMap<String, Room>,
    pub(crate) members: BTreeMap<u64, Member>,
    tokens: BTreeMap<TokenHex, u64>,
    by_addr: BTreeMap<SocketAddr, Vec<u64>>,
    next_member: u64,
    conns: BTreeMap<ConnId, tcp::Conn>,
    /// Tokens that were valid once and are not any more (left, evicted, room closed).
    pub(crate) retired: BTreeSet<TokenHex>,
    /// Rooms closed and not created again since.
    pub(crate) closed_rooms: BTreeSet<String>,
    /// Everything the server should have sent to each token's member, in order.
    pub(crate) inboxes: BTreeMap<TokenHex, Vec<Bytes>>,
    /// The counters the server should show.
    pub(crate) stats: Stats,
    /// Creates and joins refused only for the per-IP member limit (coverage).
    pub(crate) per_ip_refusals: std::cell::Cell<u64>,
    /// Answers left for probes from strangers, in billionths, and when it was counted.
    pub(crate) stranger_allowance: (u128, Duration),
    /// Wrong passwords per source (its network address) and per room: (count, time of the last).
    pub(crate) wrong_by_ip: BTreeMap<IpAddr, (u32, Duration)>,
    pub(crate) wrong_by_room: BTreeMap<String, (u32, Duration)>,
    /// The message bucket of each source with members.
    pub(crate) source_rates: BTreeMap<IpAddr, rates::Allowance>,
    /// Creates refused only for the rooms-per-source limit (coverage).
    pub(crate) rooms_per_source_refusals: u64,
    /// Lingering connections released at the linger deadline, and by the peer's close
    /// (coverage).
    pub(crate) lingers: (u64, u64),
}

impl Model {
    /// An empty server with these limits.
    pub fn new(cfg: Config) -> Model {
        Model {
            cfg,
            rooms: BTreeMap::new(),
            members: BTreeMap::new(),
            tokens: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            next_member: 0,
            conns: BTreeMap::new(),
            retired: BTreeSet::new(),
            closed_rooms: BTreeSet::new(),
            inboxes: BTreeMap::new(),
            stats: Stats::default(),
            per_ip_refusals: std::cell::Cell::new(0),
            stranger_allowance: (
                u128::from(udp::STRANGER_ANSWERS) * 1_000_000_000,
                Duration::ZERO,
            ),
            wrong_by_ip: BTreeMap::new(),
            wrong_by_room: BTreeMap::new(),
            source_rates: BTreeMap::new(),
            rooms_per_source_refusals: 0,
            lingers: (0, 0),
        }
    }

    /// The server shuts down: every room closes (sorted by name), then every connection.
    pub fn shutdown(&mut self) -> Expected {
        let mut out = Expected::default();
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            self.close_room(&mut out, &name, CloseReason::ServerShutdown);
        }
        self.close_all_conns(&mut out);
        out
    }

    /// Records the token the server drew for an admitted member. Fails if the token is
    /// already held by another live member.
    pub fn learn_token(&mut self, member: u64, token: TokenHex) -> Result<(), String> {
        if self.tokens.contains_key(&token) {
            return Err("server handed out a token that a live member already holds".into());
        }
        if let Some(m) = self.members.get_mut(&member) {
            m.token = Some(token);
            self.tokens.insert(token, member);
            self.inboxes.entry(token).or_default();
        }
        Ok(())
    }

    /// Members alive.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// Rooms alive.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Connections the server should hold open.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Every address the server may send to now: the verified addresses of members.
    pub fn known_addresses(&self) -> BTreeSet<SocketAddr> {
        self.by_addr.keys().copied().collect()
    }

    /// The room and username of the members reachable at `addr`.
    pub fn members_at(&self, addr: SocketAddr) -> Vec<(String, String)> {
        self.by_addr
            .get(&addr)
            .into_iter()
            .flatten()
            .map(|id| {
                let m = &self.members[id];
                (m.room.clone(), m.username.clone())
            })
            .collect()
    }

    /// When the member `username` of `room` was last heard from (or joined).
    pub fn last_seen(&self, room: &str, username: &str) -> Option<Duration> {
        let r = self.rooms.get(room)?;
        r.members
            .iter()
            .map(|id| &self.members[id])
            .find(|m| m.username == username)
            .map(|m| m.last_seen)
    }

    /// True if `token` belongs to a live member.
    pub fn token_is_live(&self, token: &[u8]) -> bool {
        <TokenHex>::try_from(token).is_ok_and(|t| self.tokens.contains_key(&t))
    }

    /// Sends `payload` to every member of `room` with a known address except `skip`.
    fn notify_room(&mut self, out: &mut Expected, room: &str, skip: Option<u64>, payload: &Bytes) {
        let Some(entry) = self.rooms.get(room) else {
            return;
        };
        let targets: Vec<u64> = entry
            .members
            .iter()
            .copied()
            .filter(|id| Some(*id) != skip)
            .collect();
        for id in targets {
            self.send_to_member(out, id, payload.clone());
        }
    }

    fn send_to_member(&mut self, out: &mut Expected, id: u64, payload: Bytes) {
        let m = self.members.get_mut(&id).expect("a member");
        if m.udp.is_some() {
            match &mut m.unproven {
                Some(0) => {
                    self.stats.unproven_skipped += 1;
                    return;
                }
                Some(left) => *left -= 1,
                None => {}
            }
        }
        let m = &self.members[&id];
        if let Some(to) = m.udp {
            self.stats.datagrams_sent += 1;
            out.datagrams.entry(to).or_default().push(payload.clone());
            if let Some(token) = m.token {
                self.inboxes.entry(token).or_default().push(payload);
            }
        }
    }

    /// The member now receives at `addr` (already in canonical form); a change is an event.
    fn set_udp(&mut self, out: &mut Expected, id: u64, addr: SocketAddr) {
        let m = self.members.get_mut(&id).expect("member exists");
        if m.udp == Some(addr) {
            return;
        }
        if let Some(old) = m.udp.replace(addr) {
            unindex(&mut self.by_addr, old, id);
        }
        self.by_addr.entry(addr).or_default().push(id);
        out.events.push(Event::MemberAddress {
            room: m.room.as_str().into(),
            username: m.username.as_str().into(),
            addr,
        });
    }

    /// Drops a member's token and address; returns it.
    fn forget(&mut self, id: u64) -> Option<Member> {
        let m = self.members.remove(&id)?;
        let prefix = self.cfg.ipv6_source_prefix;
        let gone = source(m.ip, prefix);
        if !self.members.values().any(|o| source(o.ip, prefix) == gone) {
            self.source_rates.remove(&gone);
        }
        if let Some(token) = m.token {
            self.tokens.remove(&token);
            self.retired.insert(token);
        }
        if let Some(addr) = m.udp {
            unindex(&mut self.by_addr, addr, id);
        }
        Some(m)
    }
}

fn unindex(by_addr: &mut BTreeMap<SocketAddr, Vec<u64>>, addr: SocketAddr, id: u64) {
    if let Some(ids) = by_addr.get_mut(&addr) {
        ids.retain(|m| *m != id);
        if ids.is_empty() {
            by_addr.remove(&addr);
        }
    }
}

/// A socket address with its IP in [`canonical`] form: the one key the server uses.
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical(addr.ip()), addr.port())
}

/// What the per-source limits count `ip` under, as docs/PROTOCOL.md says: an IPv4
/// address is itself; an IPv6 address is its first `ipv6_prefix` bits (the rest zero).
pub fn source(ip: IpAddr, ipv6_prefix: u8) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let keep = u32::from(ipv6_prefix.min(128));
            let bits = u128::from(v6);
            let masked = if keep == 0 {
                0
            } else {
                bits >> (128 - keep) << (128 - keep)
            };
            IpAddr::V6(masked.into())
        }
        v4 => v4,
    }
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}
