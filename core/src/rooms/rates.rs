//! How fast a room's chat may go, so that no one member, host or room can make the
//! server send without bound: every chat message (and `/who`) is charged to token
//! buckets ([`crate::rate::TokenBucket`], on the input's clock) of its member
//! (messages and bytes a second), of its source (all members from one IP together) and
//! of its room (the datagrams its fan-out makes: a message to N members costs N). One
//! bucket short and the message is dropped (`DropReason::RateLimited`), nothing
//! charged, nothing changed.
//!
//! And an address nobody proved: one learnt from the port step alone may be pointed at
//! any port of the member's IP, so it gets at most `unproven_datagrams` sends before a
//! datagram from it proves it.

use super::membership::MemberId;
use super::RoomServer;
use crate::config::Config;
use crate::rate::{source_bucket, TokenBucket};
use crate::source_members::{SourceKey, SourceMembers};
use std::time::Instant;

/// The message bucket of the source of a member whose source key is `key`, made at the
/// source's first message. A free function, so that a caller can hold its member and
/// room while it charges the bucket.
pub(crate) fn source_bucket_of<'a>(
    sources: &'a mut SourceMembers,
    config: &Config,
    key: SourceKey,
) -> &'a mut TokenBucket {
    let bucket = sources.bucket_mut(key, || source_bucket(config));
    bucket.expect("a member's source has members")
}

/// Whether a member's address was proven by a datagram from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// A datagram came from it: send freely.
    Proven,
    /// Learnt from the port step only: this many sends left until a datagram proves it.
    Unproven(u32),
}

impl Reach {
    /// Whether one more datagram may go to this address now, spending one of an
    /// unproven address's sends.
    pub(crate) fn spend(&mut self) -> bool {
        match self {
            Reach::Proven => true,
            Reach::Unproven(0) => false,
            Reach::Unproven(left) => {
                *left -= 1;
                true
            }
        }
    }
}

/// How many datagrams a message makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fanout {
    /// One (`/who`: the answer to the asker).
    One,
    /// One per other member of the room with an address.
    Room,
}

impl RoomServer {
    /// Charges member `id` for a message of `bytes` bytes that makes `fanout`
    /// datagrams: all or nothing. False (and nothing charged) when a bucket is short.
    pub(crate) fn charge_message(
        &mut self,
        now: Instant,
        id: MemberId,
        bytes: usize,
        fanout: Fanout,
    ) -> bool {
        let member = self.members.get_mut(&id).expect("a member");
        let room = self
            .rooms
            .by_key_mut(&member.room)
            .expect("the member's room");
        let fanout = match fanout {
            Fanout::One => 1,
            // every other member with an address
            Fanout::Room => {
                room.addressed
                    .saturating_sub(u32::from(member.udp.is_some())) as usize
            }
        };
        let key = member.source_key;
        let source = source_bucket_of(&mut self.members_per_source, &self.config, key);
        let room = &mut room.fanout;
        let rates = (&mut member.rates, &self.member_limits);
        crate::rate::charge_message(now, rates, source, room, bytes, fanout)
    }
}
