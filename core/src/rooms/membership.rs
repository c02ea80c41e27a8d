//! Rooms and their members: create, join, the UDP chat itself, leave, eviction and
//! room closing.
//!
//! A member is known by its token, bound to the IP that obtained it. A datagram is
//! authorized when its room exists, its token belongs to that room and it comes from
//! that IP; only then does it change anything (address, last-seen time, failure count).

use super::cluster::RoomCluster;
use super::rates::{Fanout, Reach};
use super::table::RoomKey;
use super::{canonical_addr, canonical_ip, RoomServer, TimerKey};
use crate::cluster::envelope::{Body, ClosedBy};
use crate::liveness::Liveness;
use crate::names;
use crate::output::{DropReason, Event};
use crate::password::PasswordHash;
use crate::rate::TokenBucket;
use crate::rate::{room_bucket, MemberRates};
use crate::source_members::SourceKey;
use crate::token::{Token, TokenText};
use crate::wire::notice::{CloseReason, EvictReason, Notice};
use crate::wire::request::Credentials;
use crate::wire::room_datagram::{relayed_line, RoomDatagram, MAX_RELAYED_LEN};
use crate::wire::tcrp::Status;
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

pub(crate) use super::member_table::MemberId;

#[derive(Debug)]
pub(crate) struct Member {
    /// Its room's name and key (see [`super::table`]), for the lookups of every message.
    pub(crate) room: RoomKey,
    /// The key of the source of `ip` (see [`crate::source_members`]), likewise.
    pub(crate) source_key: SourceKey,
    pub(crate) username: Arc<str>,
    /// Its token (the token map holds its wire form: 16 bytes here, 32 there).
    pub(crate) token: Token,
    pub(crate) ip: IpAddr,
    pub(crate) udp: Option<SocketAddr>,
    /// Whether a datagram proved `udp` (see [`super::rates`]).
    pub(crate) reach: Reach,
    pub(crate) liveness: Liveness,
    pub(crate) rates: MemberRates,
}

#[derive(Debug)]
pub(crate) struct Room {
    /// Boxed, like `cluster`: most rooms have neither, and a room's size is much of a
    /// small room's cost.
    pub(crate) password: Option<Box<PasswordHash>>,
    /// The source of its host's token: the room counts toward its rooms-per-source
    /// limit. `None` for a cluster mirror of a room hosted on another node.
    pub(crate) source: Option<crate::source::Source>,
    /// In join order: the host is always the first (its going closes the room),
    /// except in a cluster mirror, which holds only the members served here.
    pub(crate) members: Vec<MemberId>,
    /// How many of `members` have a known address: what a message fans out to, the
    /// sender apart, counted without looking at each member.
    pub(crate) addressed: u32,
    /// The datagrams its chat may make the server send.
    pub(crate) fanout: TokenBucket,
    /// Cluster mode: the room's claim, and whether its host is served here.
    pub(crate) cluster: Option<Box<RoomCluster>>,
}

impl Room {
    /// Whether `id` is the room's host.
    pub(crate) fn is_host(&self, id: MemberId) -> bool {
        self.members.first() == Some(&id) && !matches!(&self.cluster, Some(c) if !c.owned)
    }
}

/// How a member goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Removal {
    Left,
    Evicted(EvictReason),
}

impl RoomServer {
    pub(crate) fn create_room(
        &mut self,
        now: Instant,
        room: &str,
        credentials: Credentials,
        ip: IpAddr,
    ) -> Result<(MemberId, Token), Status> {
        if self.rooms.contains_key(room) {
            return Err(Status::RoomExists);
        }
        if self.rooms.len() >= self.config.max_rooms || !self.may_host(ip) {
            return Err(Status::ServerFull);
        }
        let source = self.source(ip);
        self.rooms_per_source.add(source);
        let name: Arc<str> = room.into();
        let password = credentials
            .password
            .map(|pw| Box::new(PasswordHash::new(&pw, &mut self.rng)));
        let username: Arc<str> = credentials.username.into();
        let room = Room {
            password,
            source: Some(source),
            members: Vec::new(),
            addressed: 0,
            fanout: room_bucket(&self.config),
            cluster: None,
        };
        let Some(key) = self.rooms.insert(name.clone(), room) else {
            self.rooms_per_source.remove(source);
            return Err(Status::RoomExists); // checked above: not reached
        };
        let (id, token) = self.add_member(now, key, username.clone(), ip);
        self.out.emit(Event::RoomCreated {
            room: name,
            host: username,
        });
        Ok((id, token))
    }

    pub(crate) fn join_room(
        &mut self,
        now: Instant,
        room: &str,
        credentials: Credentials,
        ip: IpAddr,
    ) -> Result<(MemberId, Token), Status> {
        let Some((name, entry)) = self.rooms.get_key_value(room) else {
            return Err(Status::RoomNotFound);
        };
        if let Some(stored) = entry.password.clone() {
            let name = name.clone();
            self.check_password(now, &name, &stored, credentials.password.as_deref(), ip)?;
        }
        let entry = &self.rooms[room];
        let taken = entry
            .members
            .iter()
            .any(|id| *self.members[id].username == *credentials.username);
        if taken {
            return Err(Status::UsernameTaken);
        }
        if entry.members.len() >= self.config.max_members_per_room || !self.has_seat_for(ip) {
            return Err(Status::ServerFull);
        }
        let key = self.rooms.key_of(room).expect("room exists");
        let name = key.name().clone();
        let username: Arc<str> = credentials.username.into();
        let (id, token) = self.add_member(now, key, username.clone(), ip);
        let notice = Bytes::from(Notice::Joined(username.to_string()).room_text());
        self.notify_room(&name, Some(id), notice);
        self.out.emit(Event::MemberJoined {
            room: Some(name),
            username,
        });
        Ok((id, token))
    }

    /// A join's password against room `name`'s hash, through the wrong-password
    /// throttle (see [`crate::throttle`]): while this source or this room is made to
    /// wait, the password is not even looked at (TRY_LATER), so guessing faster than the
    /// backoff learns nothing; a wrong one counts against both, a right one clears the
    /// source's count. Every mode and path checks passwords here.
    pub(crate) fn check_password(
        &mut self,
        now: Instant,
        name: &Arc<str>,
        stored: &PasswordHash,
        given: Option<&str>,
        ip: IpAddr,
    ) -> Result<(), Status> {
        let source = self.source(ip);
        if self.password_sources.blocked(now, &source) || self.password_rooms.blocked(now, name) {
            return Err(Status::TryLater);
        }
        if !stored.verify(given.unwrap_or("")) {
            self.password_sources.failed(now, &source);
            self.password_rooms.failed(now, name);
            return Err(Status::InvalidPassword);
        }
        self.password_sources.forget(&source);
        Ok(())
    }

    /// Cluster mode: the checks a create or join passes before the registry is asked,
    /// in the order of `docs/PROTOCOL.md` (a join of a room not served here is checked
    /// once the registry has found it).
    pub(crate) fn local_checks(
        &mut self,
        now: Instant,
        room: &str,
        credentials: &Credentials,
        ip: IpAddr,
        create: bool,
    ) -> Result<(), Status> {
        let entry = self.rooms.get_key_value(room);
        if create {
            if entry.is_some() {
                return Err(Status::RoomExists);
            }
            if self.rooms.len() >= self.config.max_rooms || !self.may_host(ip) {
                return Err(Status::ServerFull);
            }
            return Ok(());
        }
        let Some((name, entry)) = entry else {
            return Ok(());
        };
        if let Some(stored) = entry.password.clone() {
            let name = name.clone();
            self.check_password(now, &name, &stored, credentials.password.as_deref(), ip)?;
        }
        let entry = &self.rooms[room];
        let taken = entry
            .members
            .iter()
            .any(|id| *self.members[id].username == *credentials.username);
        if taken {
            return Err(Status::UsernameTaken);
        }
        if !self.has_seat_for(ip) {
            return Err(Status::ServerFull);
        }
        Ok(())
    }

    /// True while both the total member limit and the per-source limit leave room for
    /// one more.
    pub(crate) fn has_seat_for(&self, ip: IpAddr) -> bool {
        let source = self.source(ip);
        self.members.len() < self.config.max_members
            && self.members_per_source.get(source) < self.config.max_members_per_ip
    }

    /// True while a create from `ip` is under every limit of members and of rooms per
    /// source (the total room limit apart).
    pub(crate) fn may_host(&self, ip: IpAddr) -> bool {
        self.has_seat_for(ip)
            && self.rooms_per_source.get(self.source(ip)) < self.config.max_rooms_per_source
    }

    /// A new member of the room of `room`, added to its member list last.
    pub(crate) fn add_member(
        &mut self,
        now: Instant,
        room: RoomKey,
        username: Arc<str>,
        ip: IpAddr,
    ) -> (MemberId, Token) {
        let (token, text) = loop {
            let token = Token::generate(&mut self.rng);
            let text = TokenText::of(&token);
            if !self.tokens.contains_key(&text) {
                break (token, text);
            }
        };
        let source_key = self.members_per_source.add(self.source(ip));
        let entry = self.rooms.by_key_mut(&room).expect("the member's room");
        let id = self.members.insert(Member {
            room,
            source_key,
            username,
            token,
            ip,
            udp: None,
            reach: Reach::Proven,
            liveness: Liveness::new(now),
            rates: MemberRates::new(&self.member_limits),
        });
        entry.members.push(id);
        self.tokens.insert(text, id);
        self.timers
            .schedule(now + self.first_deadline(), TimerKey::Member(id));
        (id, token)
    }

    /// The port step of the handshake gave an address; a datagram, if one came first,
    /// wins. Nothing came from it yet: it gets `unproven_datagrams` sends until one does.
    pub(crate) fn set_udp_from_port_step(&mut self, id: MemberId, addr: SocketAddr) {
        if self.members.get(&id).is_some_and(|m| m.udp.is_none()) {
            self.set_udp(id, addr);
            let left = self.config.unproven_datagrams;
            self.members.get_mut(&id).expect("member exists").reach = Reach::Unproven(left);
        }
    }

    fn set_udp(&mut self, id: MemberId, addr: SocketAddr) {
        let member = self.members.get_mut(&id).expect("member exists");
        if member.udp == Some(addr) {
            return;
        }
        let old = member.udp.replace(addr);
        let (room, username) = (member.room.name().clone(), member.username.clone());
        match old {
            Some(old) => self.by_addr.remove(old, id),
            None => {
                let entry = self.rooms.by_key_mut(&member.room);
                entry.expect("the member's room").addressed += 1;
            }
        }
        self.by_addr.add(addr, id);
        self.out.emit(Event::MemberAddress {
            room,
            username,
            addr,
        });
    }

    /// A datagram arrived on the UDP socket.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.out.stats.datagrams_received += 1;
        let from = canonical_addr(from);
        if let Some(token) = crate::probe::room_probe_token(data) {
            return self.answer_probe(now, from, token, data.len());
        }
        let (id, message, known) = match self.authorize(from, data) {
            Ok(found) => found,
            Err(reason) => return self.out.drop_datagram(from, reason),
        };
        let chat = !matches!(message, b"" | b"/exit" | b"/who");
        if chat && self.cluster.is_none() && known {
            return self.relay_chat(now, id, from, message);
        }
        if !matches!(message, b"" | b"/exit") {
            let fanout = match message {
                b"/who" => Fanout::One,
                _ => Fanout::Room,
            };
            if !self.charge_message(now, id, message.len(), fanout) {
                return self.out.drop_datagram(from, DropReason::RateLimited);
            }
        }
        let member = self.members.get_mut(&id).expect("authorized member exists");
        member.reach = Reach::Proven;
        member.liveness.heard(now);
        if member.udp != Some(from) {
            self.set_udp(id, from);
        }
        match message {
            b"" => self.out.stats.keepalives += 1,
            b"/exit" => self.remove_member(id, Removal::Left),
            b"/who" => self.answer_who(id, from),
            text => {
                self.out.stats.messages_relayed += 1;
                let member = &self.members[&id];
                // A single node writes the line into its arena (sent and dropped this
                // turn); a cluster node's line is also queued for Redis, in a buffer
                // of its own.
                let line = match self.cluster {
                    None => self.lines.relayed_line(&member.username, text),
                    Some(_) => relayed_line(&member.username, text),
                };
                let room = member.room.name().clone();
                let published = self.cluster.is_some().then(|| line.clone());
                self.notify_room(&room, Some(id), line);
                if let Some(line) = published {
                    self.publish(&room, Body::Deliver(line));
                }
            }
        }
    }

    /// A chat message on a single node from a member's known address, the common case,
    /// in one look at the room: charged (or dropped, nothing changed, as
    /// [`RoomServer::charge_message`] does), the member heard, the line written into
    /// the arena and sent to every other member with an address, as the general path
    /// does (`notify_room`).
    fn relay_chat(&mut self, now: Instant, id: MemberId, from: SocketAddr, text: &[u8]) {
        let member = self.members.get_mut(&id).expect("authorized member exists");
        let Some(room) = self.rooms.by_key_mut(&member.room) else {
            return;
        };
        // every other member with an address: the sender has one (it is `from`)
        debug_assert!(room.addressed >= 1, "the sender has an address");
        let fanout = room.addressed.saturating_sub(1) as usize;
        let key = member.source_key;
        let source =
            super::rates::source_bucket_of(&mut self.members_per_source, &self.config, key);
        let (rates, bucket) = ((&mut member.rates, &self.member_limits), &mut room.fanout);
        if !crate::rate::charge_message(now, rates, source, bucket, text.len(), fanout) {
            return self.out.drop_datagram(from, DropReason::RateLimited);
        }
        member.reach = Reach::Proven;
        member.liveness.heard(now);
        self.out.stats.messages_relayed += 1;
        let line = self.lines.relayed_line(&member.username, text);
        let mut unreachable = 0;
        let to = recipients(&mut self.members, &room.members, Some(id), &mut unreachable);
        self.out.fan_out(to, line);
        self.out.stats.unproven_skipped += unreachable;
    }

    /// `/who`: the member list, to the asker only (its address was just verified).
    fn answer_who(&mut self, id: MemberId, from: SocketAddr) {
        let room = self
            .rooms
            .by_key(&self.members[&id].room)
            .expect("the member's room");
        let names = room
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| (&*self.members[m].username, i == 0));
        let notice = crate::wire::notice::member_list(names, 2, MAX_RELAYED_LEN);
        self.out.datagram(from, Bytes::from(notice.room_text()));
    }

    /// A liveness probe (see [`crate::probe`]): a member's counts as its keepalive and
    /// is answered `alive: N members`; any other is answered `not a member` when that
    /// is no larger than the probe and within the global rate, else dropped. Either way
    /// nothing else changes.
    fn answer_probe(&mut self, now: Instant, from: SocketAddr, token: &[u8], len: usize) {
        let member = TokenText::from_wire(token)
            .and_then(|t| self.tokens.get(&t).copied())
            .ok_or(DropReason::UnknownToken)
            .and_then(|id| match self.members[&id].ip == canonical_ip(from.ip()) {
                true => Ok(id),
                false => Err(DropReason::WrongAddress),
            });
        let id = match member {
            Ok(id) => id,
            Err(reason) => {
                let answer = Notice::NotMember.room_text();
                if crate::probe::may_answer_unverified(len, answer.len())
                    && self.unverified_answers.try_take(now)
                {
                    self.out.stats.probes_refused += 1;
                    self.out.datagram(from, Bytes::from(answer));
                    return;
                }
                return self.out.drop_datagram(from, reason);
            }
        };
        self.set_udp(id, from);
        let member = self.members.get_mut(&id).expect("authorized member exists");
        member.reach = Reach::Proven;
        member.liveness.heard(now);
        self.out.stats.keepalives += 1;
        let size = self
            .rooms
            .by_key(&member.room)
            .map_or(0, |r| r.members.len());
        self.out
            .datagram(from, Bytes::from(Notice::Alive(size).room_text()));
    }

    /// Finds the member a datagram speaks for, or why it must be dropped: the member,
    /// the message, and whether `from` is the member's known address already.
    fn authorize<'a>(
        &self,
        from: SocketAddr,
        data: &'a [u8],
    ) -> Result<(MemberId, &'a [u8], bool), DropReason> {
        let datagram = RoomDatagram::decode(data)?;
        // The token first: a member's room exists (and its name is UTF-8), so the room
        // is looked up only to say why a datagram without a member of it is dropped.
        let member = TokenText::from_wire(datagram.token)
            .and_then(|token| self.tokens.get(&token))
            .map(|id| (*id, &self.members[id]))
            .filter(|(_, member)| member.room.name().as_bytes() == datagram.room);
        let Some((id, member)) = member else {
            return Err(match self.rooms.contains_bytes(datagram.room) {
                true => DropReason::UnknownToken,
                false => DropReason::UnknownRoom,
            });
        };
        if member.ip != canonical_ip(from.ip()) {
            return Err(DropReason::WrongAddress);
        }
        let message = datagram.message;
        names::check_message(message)?;
        Ok((id, message, member.udp == Some(from)))
    }

    /// Sends `payload` to every member of `room` with a known address, except `skip`.
    pub(crate) fn notify_room(&mut self, room: &str, skip: Option<MemberId>, payload: Bytes) {
        let Some(entry) = self.rooms.get(room) else {
            return;
        };
        let members = &mut self.members;
        let mut unreachable = 0;
        let to = recipients(members, &entry.members, skip, &mut unreachable);
        self.out.fan_out(to, payload);
        self.out.stats.unproven_skipped += unreachable;
    }

    /// How long a new member may go before its timer first looks at it: the idle
    /// timeout, or the registration deadline if that comes first.
    fn first_deadline(&self) -> std::time::Duration {
        self.config
            .idle_timeout
            .min(self.config.registration_timeout)
    }

    /// A member's timer came due: a member with no known UDP address after the
    /// registration deadline is removed (it holds a name and a seat, and nobody can
    /// reach it); one silent for the idle timeout is evicted; otherwise look again later.
    pub(crate) fn member_timer(&mut self, now: Instant, id: MemberId) {
        let Some(member) = self.members.get(&id) else {
            return;
        };
        let (idle, registration) = (self.config.idle_timeout, self.config.registration_timeout);
        let mut registration_due = None;
        if member.udp.is_none() {
            match member.liveness.idle_check(now, registration) {
                Some(due) => registration_due = Some(due),
                None => {
                    let reason = EvictReason::NeverRegistered(registration);
                    return self.remove_member(id, Removal::Evicted(reason));
                }
            }
        }
        match member.liveness.idle_check(now, idle) {
            Some(due) => {
                let due = registration_due.map_or(due, |r| r.min(due));
                self.timers.schedule(due, TimerKey::Member(id));
            }
            None => self.remove_member(id, Removal::Evicted(EvictReason::Idle(idle))),
        }
    }

    /// Removes a member with its token; the host's going closes the room.
    pub(crate) fn remove_member(&mut self, id: MemberId, how: Removal) {
        let Some(member) = self.forget_member(id) else {
            return;
        };
        let room = member.room.name().clone();
        let mut is_host = false;
        if let Some(entry) = self.rooms.by_key_mut(&member.room) {
            is_host = entry.is_host(id);
            entry.members.retain(|m| *m != id);
            entry.addressed -= u32::from(member.udp.is_some());
        }
        match how {
            Removal::Left => {
                self.out.emit(Event::MemberLeft {
                    room: Some(room.clone()),
                    username: member.username.clone(),
                });
            }
            Removal::Evicted(reason) => {
                self.out.stats.evictions += 1;
                if let Some(to) = member.udp {
                    if member.reach == Reach::Unproven(0) {
                        self.out.stats.unproven_skipped += 1;
                    } else {
                        let text = Notice::Disconnected(reason.to_string()).room_text();
                        self.out.datagram(to, Bytes::from(text));
                    }
                }
                self.out.emit(Event::MemberEvicted {
                    room: Some(room.clone()),
                    username: member.username.clone(),
                    reason,
                });
            }
        }
        if is_host {
            self.cluster_host_gone(&room, ClosedBy::HostLeft);
            self.close_room(&room, CloseReason::HostLeft);
            return;
        }
        let notice = match how {
            Removal::Left => Notice::Left(member.username.to_string()),
            Removal::Evicted(_) => Notice::WasDisconnected(member.username.to_string()),
        };
        let notice = Bytes::from(notice.room_text());
        self.notify_room(&room, None, notice.clone());
        self.publish(&room, Body::Deliver(notice));
        self.cluster_member_gone(&room, &member.username);
    }

    /// Closes a room: every remaining member is told and loses its token.
    pub(crate) fn close_room(&mut self, room: &str, reason: CloseReason) {
        let notice = Bytes::from(Notice::RoomClosed(reason.to_string()).room_text());
        self.notify_room(room, None, notice);
        let Some((name, entry)) = self.rooms.remove_entry(room) else {
            return;
        };
        self.password_rooms.forget(&name);
        self.cluster_room_closed(&entry);
        if let Some(source) = entry.source {
            self.rooms_per_source.remove(source);
        }
        for id in entry.members {
            self.forget_member(id);
        }
        self.out.emit(Event::RoomClosed { room: name, reason });
    }

    /// Drops a member's token and address index entry.
    fn forget_member(&mut self, id: MemberId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.tokens.remove(&TokenText::of(&member.token));
        let source = self.source(member.ip);
        self.members_per_source.remove(member.source_key, source);
        if let Some(addr) = member.udp {
            self.by_addr.remove(addr, id);
        }
        self.sweep_timers();
        Some(member)
    }
}

/// The addresses a room's fan-out goes to: each of `room`'s members but `skip` with an
/// address that may be sent to now (an unproven address spends one of its sends);
/// `unreachable` counts those whose unproven address has no send left.
fn recipients<'a>(
    members: &'a mut super::member_table::MemberTable<Member>,
    room: &'a [MemberId],
    skip: Option<MemberId>,
    unreachable: &'a mut u64,
) -> impl Iterator<Item = SocketAddr> + 'a {
    room.iter().filter_map(move |id| {
        if Some(*id) == skip {
            return None;
        }
        let member = members.get_mut(id)?;
        let to = member.udp?;
        let reached = member.reach.spend();
        *unreachable += u64::from(!reached);
        reached.then_some(to)
    })
}
