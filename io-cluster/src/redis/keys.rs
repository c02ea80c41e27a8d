//! Names of the Redis keys and channels, for prefix `P` (default `ocm`):
//!
//! | name | type | holds | expires |
//! |---|---|---|---|
//! | `P:room:ROOM` | string | the lease: the holder's claim `NODE/EPOCH` | the lease; renewed by the holder |
//! | `P:record:ROOM` | string | the room's record (opaque: the password hash) | with the lease |
//! | `P:members:ROOM` | hash | username → the node serving that member | with the lease |
//! | `P:node:NODE` | string | the node's own lease (value: its id) | the lease; renewed by the node |
//! | `P:chat:ROOM` | pub/sub channel | envelopes for the room | — |
//!
//! Room names are bytes of UTF-8 and may contain `:`; the room is always the last
//! part, so no two rooms share a key.

/// The key names for one prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Names under `prefix`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    fn name(&self, kind: &str, last: &str) -> String {
        format!("{}:{kind}:{last}", self.prefix)
    }

    /// The room's lease.
    pub fn lease(&self, room: &str) -> String {
        self.name("room", room)
    }

    /// The room's record.
    pub fn record(&self, room: &str) -> String {
        self.name("record", room)
    }

    /// The room's members.
    pub fn members(&self, room: &str) -> String {
        self.name("members", room)
    }

    /// A node's lease.
    pub fn node(&self, node: &str) -> String {
        self.name("node", node)
    }

    /// What a node's lease key starts with (the scripts append the node id).
    pub fn node_prefix(&self) -> String {
        self.name("node", "")
    }

    /// The room's bus channel.
    pub fn channel(&self, room: &str) -> String {
        self.name("chat", room)
    }

    /// The room a channel name belongs to, if it is one of ours.
    pub fn room_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":chat:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_is_the_last_part_and_channels_map_back() {
        let keys = Keys::new("ocm");
        assert_eq!(keys.lease("a:b"), "ocm:room:a:b");
        assert_eq!(keys.node("n1"), format!("{}n1", keys.node_prefix()));
        let channel = keys.channel("lobby: 2");
        assert_eq!(channel, "ocm:chat:lobby: 2");
        assert_eq!(keys.room_of_channel(&channel), Some("lobby: 2"));
        assert_eq!(keys.room_of_channel("ocm:room:lobby"), None);
        assert_eq!(keys.room_of_channel("other:chat:lobby"), None);
    }
}
