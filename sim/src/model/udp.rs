//! The model's UDP half: which datagrams are authorized, what a member's message makes
//! the server send, leaving, eviction (idle and failed sends) and closing rooms.

use super::{canonical, canonical_addr, Expected, Model, TokenHex, Verdict};
use bytes::Bytes;
use ocm_core::output::{DropReason, Event};
use ocm_core::wire::notice::{CloseReason, EvictReason};
use ocm_core::SendFailure;
use std::net::SocketAddr;
use std::time::Duration;

/// Most bytes a member may send in one datagram.
const MAX_DATAGRAM: usize = 4096;
/// Most bytes of a relayed line.
const MAX_LINE: usize = 4094;
/// Answers to strangers' probes a second, and at once (docs/PROTOCOL.md).
pub(crate) const STRANGER_ANSWERS: u32 = 64;
const NOT_A_MEMBER: &[u8] = b"* not a member";

#[derive(Clone, Copy)]
enum Removal {
    Left,
    Evicted(EvictReason),
}

fn reason_text(reason: EvictReason) -> String {
    match reason {
        EvictReason::Idle(d) => format!("idle for {} s", d.as_secs()),
        EvictReason::SendFailures(n) => format!("{n} failed sends"),
        EvictReason::NeverRegistered(d) => format!("no datagram within {} s", d.as_secs()),
    }
}

/// `NAME: message`, cut at a character boundary to at most 4094 bytes.
pub fn relayed_line(username: &str, message: &str) -> Bytes {
    let mut line = format!("{username}: {message}");
    let mut cut = line.len().min(MAX_LINE);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    line.truncate(cut);
    Bytes::from(line)
}

/// The token of a probe: a well-formed datagram with an empty room name and the
/// message `ping`.
fn probe_token(data: &[u8]) -> Option<&[u8]> {
    if data.len() > MAX_DATAGRAM {
        return None;
    }
    let [0, token_len, rest @ ..] = data else {
        return None;
    };
    let token_len = usize::from(*token_len);
    if rest.len() < token_len {
        return None;
    }
    let (token, message) = rest.split_at(token_len);
    (message == b"ping").then_some(token)
}

impl Model {
    /// Who, if anyone, a datagram from `from` speaks for.
    fn authorize<'a>(
        &self,
        from: SocketAddr,
        data: &'a [u8],
    ) -> Result<(u64, &'a str), DropReason> {
        if data.len() > MAX_DATAGRAM {
            return Err(DropReason::TooLarge);
        }
        let [room_len, token_len, rest @ ..] = data else {
            return Err(DropReason::Truncated);
        };
        let (room_len, token_len) = (usize::from(*room_len), usize::from(*token_len));
        if rest.len() < room_len + token_len {
            return Err(DropReason::Truncated);
        }
        let (room, rest) = rest.split_at(room_len);
        let (token, message) = rest.split_at(token_len);
        let room = std::str::from_utf8(room).map_err(|_| DropReason::UnknownRoom)?;
        if !self.rooms.contains_key(room) {
            return Err(DropReason::UnknownRoom);
        }
        let id = TokenHex::try_from(token)
            .ok()
            .and_then(|t| self.tokens.get(&t))
            .copied()
            .ok_or(DropReason::UnknownToken)?;
        let member = &self.members[&id];
        if member.room != room {
            return Err(DropReason::UnknownToken);
        }
        if member.ip != canonical(from.ip()) {
            return Err(DropReason::WrongAddress);
        }
        let message = std::str::from_utf8(message).map_err(|_| DropReason::NotUtf8)?;
        // docs/PROTOCOL.md: no control character but TAB in a message.
        if message.chars().any(|c| c.is_control() && c != '\t') {
            return Err(DropReason::ControlCharacter);
        }
        Ok((id, message))
    }

    /// A datagram arrived from `from`.
    pub fn datagram(
        &mut self,
        now: Duration,
        from: SocketAddr,
        data: &[u8],
    ) -> (Expected, Verdict) {
        let mut out = Expected::default();
        self.stats.datagrams_received += 1;
        // One member, one address: the server keys everything by the canonical form.
        let from = canonical_addr(from);
        if let Some(token) = probe_token(data) {
            return self.probe(now, from, token, data.len());
        }
        let (id, message) = match self.authorize(from, data) {
            Ok(found) => found,
            Err(reason) => {
                self.stats.dropped[reason.index()] += 1;
                out.events.push(Event::DatagramDropped { from, reason });
                return (out, Verdict::Refused);
            }
        };
        if !matches!(message, "" | "/exit") {
            let fanout = match message {
                "/who" => 1,
                _ => self.recipients(id),
            };
            if !self.charge(now, id, message.len(), fanout) {
                let reason = DropReason::RateLimited;
                self.stats.dropped[reason.index()] += 1;
                out.events.push(Event::DatagramDropped { from, reason });
                return (out, Verdict::Refused);
            }
        }
        self.set_udp(&mut out, id, from);
        let member = self.members.get_mut(&id).expect("authorized member exists");
        member.last_seen = now;
        member.failures = 0;
        member.unproven = None;
        let verdict = Verdict::Authorized {
            from,
            room: member.room.clone(),
            username: member.username.clone(),
            message: message.to_owned(),
        };
        match message {
            "" => self.stats.keepalives += 1,
            "/exit" => self.remove_member(&mut out, id, Removal::Left),
            "/who" => {
                let answer = self.member_list(id);
                self.send_to_member(&mut out, id, answer);
            }
            text => {
                self.stats.messages_relayed += 1;
                let line = relayed_line(&member.username, text);
                let room = member.room.clone();
                self.notify_room(&mut out, &room, Some(id), &line);
            }
        }
        (out, verdict)
    }

    /// The other members of `id`'s room with an address: what a message of its costs.
    fn recipients(&self, id: u64) -> usize {
        let room = &self.rooms[&self.members[&id].room];
        room.members
            .iter()
            .filter(|m| **m != id && self.members[m].udp.is_some())
            .count()
    }

    /// Takes a message of `bytes` making `fanout` datagrams from every bucket it draws
    /// on, or from none (false).
    fn charge(&mut self, now: Duration, id: u64, bytes: usize, fanout: usize) -> bool {
        let cfg = &self.cfg;
        let m = self.members.get_mut(&id).expect("a member");
        let key = super::source(m.ip, cfg.ipv6_source_prefix);
        let source = self.source_rates.entry(key).or_insert_with(|| {
            super::rates::Allowance::new(cfg.source_messages_per_sec, cfg.source_message_burst)
        });
        let room = &mut self.rooms.get_mut(&m.room).expect("its room").fanout;
        let enough = m.messages.has(now, 1)
            && m.bytes.has(now, bytes)
            && source.has(now, 1)
            && room.has(now, fanout);
        if enough {
            m.messages.take(1);
            m.bytes.take(bytes);
            source.take(1);
            room.take(fanout);
        }
        enough
    }

    /// `* members: host (host), b, c`, cut with `, and N more` to fit 4094 bytes.
    fn member_list(&self, id: u64) -> Bytes {
        let room = &self.rooms[&self.members[&id].room];
        let total = room.members.len();
        let head = "* members: ";
        let reserve = format!(", and {total} more").len();
        let mut text = head.to_owned();
        let mut shown = 0;
        for (i, m) in room.members.iter().enumerate() {
            let name = &self.members[m].username;
            let item = if i == 0 {
                format!("{name} (host)")
            } else {
                format!(", {name}")
            };
            if text.len() + item.len() + reserve > MAX_LINE {
                break;
            }
            text.push_str(&item);
            shown += 1;
        }
        if shown < total {
            let sep = if shown == 0 { "" } else { ", " };
            text.push_str(&format!("{sep}and {} more", total - shown));
        }
        Bytes::from(text)
    }

    /// A liveness probe: a member's refreshes it and is answered with the room's size;
    /// anyone else's is answered `not a member` if the answer is no larger and the
    /// 64-a-second allowance has one left, else dropped.
    fn probe(
        &mut self,
        now: Duration,
        from: SocketAddr,
        token: &[u8],
        len: usize,
    ) -> (Expected, Verdict) {
        let mut out = Expected::default();
        let found = TokenHex::try_from(token)
            .ok()
            .and_then(|t| self.tokens.get(&t))
            .copied();
        let refusal = match found {
            Some(id) if self.members[&id].ip == canonical(from.ip()) => None,
            Some(_) => Some(DropReason::WrongAddress),
            None => Some(DropReason::UnknownToken),
        };
        if let Some(reason) = refusal {
            if NOT_A_MEMBER.len() <= len && self.take_stranger_answer(now) {
                self.stats.probes_refused += 1;
                self.stats.datagrams_sent += 1;
                out.datagrams
                    .entry(from)
                    .or_default()
                    .push(Bytes::from_static(NOT_A_MEMBER));
            } else {
                self.stats.dropped[reason.index()] += 1;
                out.events.push(Event::DatagramDropped { from, reason });
            }
            return (out, Verdict::ProbeRefused { from, len });
        }
        let id = found.expect("a member");
        self.set_udp(&mut out, id, from);
        let member = self.members.get_mut(&id).expect("member exists");
        member.last_seen = now;
        member.failures = 0;
        member.unproven = None;
        self.stats.keepalives += 1;
        let verdict = Verdict::Authorized {
            from,
            room: member.room.clone(),
            username: member.username.clone(),
            message: String::new(),
        };
        let size = self.rooms[&member.room].members.len();
        self.send_to_member(
            &mut out,
            id,
            Bytes::from(format!("* alive: {size} members")),
        );
        (out, verdict)
    }

    fn take_stranger_answer(&mut self, now: Duration) -> bool {
        const ONE: u128 = 1_000_000_000;
        let full = u128::from(STRANGER_ANSWERS) * ONE;
        let (left, at) = self.stranger_allowance;
        let earned = now.saturating_sub(at).as_nanos() * u128::from(STRANGER_ANSWERS);
        let left = (left + earned).min(full);
        let at = at.max(now);
        if left >= ONE {
            self.stranger_allowance = (left - ONE, at);
            true
        } else {
            self.stranger_allowance = (left, at);
            false
        }
    }

    /// A send to `to` failed: each member there counts a failure, and goes at the limit.
    /// A send to `to` failed; an ICMP error counts only against a member silent for
    /// `icmp_grace` (docs/PROTOCOL.md, Eviction).
    pub fn send_failed(&mut self, now: Duration, to: SocketAddr, cause: SendFailure) -> Expected {
        let mut out = Expected::default();
        self.stats.send_failures += 1;
        let ids = self
            .by_addr
            .get(&canonical_addr(to))
            .cloned()
            .unwrap_or_default();
        let mut evict = Vec::new();
        for id in ids {
            let m = self.members.get_mut(&id).expect("indexed member exists");
            if cause == SendFailure::Icmp && now < m.last_seen + self.cfg.icmp_grace {
                self.stats.icmp_ignored += 1;
                continue;
            }
            m.failures += 1;
            if m.failures >= self.cfg.max_send_failures {
                evict.push(id);
            }
        }
        let reason = EvictReason::SendFailures(self.cfg.max_send_failures);
        for id in evict {
            self.remove_member(&mut out, id, Removal::Evicted(reason));
        }
        out
    }

    /// The timers due at `now`: connection deadlines first, then members in join order:
    /// one with no address `registration_timeout` after it joined is removed, one silent
    /// for `idle_timeout` is evicted.
    pub fn timeout(&mut self, now: Duration) -> Expected {
        let mut out = Expected::default();
        self.expire_conns(&mut out, now);
        let due: Vec<(u64, EvictReason)> = self
            .members
            .iter()
            .filter_map(|(id, m)| self.member_due(m, now).map(|reason| (*id, reason)))
            .collect();
        for (id, reason) in due {
            if self.members.contains_key(&id) {
                self.remove_member(&mut out, id, Removal::Evicted(reason));
            }
        }
        out
    }

    /// Why a member must go at `now`, if it must. Its last-seen time is its join time
    /// until its first datagram, which is also what gives it an address.
    fn member_due(&self, m: &super::Member, now: Duration) -> Option<EvictReason> {
        let (idle, registration) = (self.cfg.idle_timeout, self.cfg.registration_timeout);
        if m.udp.is_none() && m.last_seen + registration <= now {
            return Some(EvictReason::NeverRegistered(registration));
        }
        (m.last_seen + idle <= now).then_some(EvictReason::Idle(idle))
    }

    /// When a member's timer next has work: its idle deadline, or its registration
    /// deadline while it has no address.
    pub(crate) fn member_deadline(&self, m: &super::Member) -> Duration {
        let idle = m.last_seen + self.cfg.idle_timeout;
        match m.udp {
            None => idle.min(m.last_seen + self.cfg.registration_timeout),
            Some(_) => idle,
        }
    }

    /// The earliest instant at which a timer of the model has work to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        let members = self.members.values().map(|m| self.member_deadline(m));
        members.chain(self.conn_deadlines()).min()
    }

    fn remove_member(&mut self, out: &mut Expected, id: u64, how: Removal) {
        let Some(member) = self.forget(id) else {
            return;
        };
        let room = member.room.clone();
        let is_host = match self.rooms.get_mut(&room) {
            Some(entry) => {
                entry.members.retain(|m| *m != id);
                entry.host == id
            }
            None => false,
        };
        match how {
            Removal::Left => out.events.push(Event::MemberLeft {
                room: Some(room.as_str().into()),
                username: member.username.as_str().into(),
            }),
            Removal::Evicted(reason) => {
                self.stats.evictions += 1;
                let spent = member.unproven == Some(0);
                if spent && member.udp.is_some() {
                    self.stats.unproven_skipped += 1;
                }
                if let Some(to) = member.udp.filter(|_| !spent) {
                    self.stats.datagrams_sent += 1;
                    let text = Bytes::from(format!(
                        "* disconnected: {}, join again",
                        reason_text(reason)
                    ));
                    out.datagrams.entry(to).or_default().push(text.clone());
                    if let Some(token) = member.token {
                        self.inboxes.entry(token).or_default().push(text);
                    }
                }
                out.events.push(Event::MemberEvicted {
                    room: Some(room.as_str().into()),
                    username: member.username.as_str().into(),
                    reason,
                });
            }
        }
        if is_host {
            return self.close_room(out, &room, CloseReason::HostLeft);
        }
        let notice = match how {
            Removal::Left => format!("* {} left", member.username),
            Removal::Evicted(_) => format!("* {} was disconnected", member.username),
        };
        self.notify_room(out, &room, None, &Bytes::from(notice));
    }

    pub(super) fn close_room(&mut self, out: &mut Expected, room: &str, reason: CloseReason) {
        let text = match reason {
            CloseReason::HostLeft => "host left",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::HostServerShutdown => "host's server shut down",
            CloseReason::HostServerGone => "host's server is gone",
            CloseReason::ClusterUnreachable => "cluster unreachable",
        };
        let notice = Bytes::from(format!("* room closed: {text}"));
        self.notify_room(out, room, None, &notice);
        let Some(entry) = self.rooms.remove(room) else {
            return;
        };
        self.wrong_by_room.remove(room);
        for id in entry.members {
            self.forget(id);
        }
        self.closed_rooms.insert(room.to_owned());
        out.events.push(Event::RoomClosed {
            room: room.into(),
            reason,
        });
    }
}
