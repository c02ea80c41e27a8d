//! Logs of what the core reports: info for rooms, joins, leaves and evictions; debug for
//! handshakes, refused connections and dropped datagrams (with their reasons).

use ocm_core::Event;

/// Writes one core event to the log.
pub fn log_event(event: &Event) {
    match event {
        Event::RoomCreated { room, host } => tracing::info!(%room, %host, "room created"),
        Event::RoomClosed { room, reason } => tracing::info!(%room, %reason, "room closed"),
        Event::MemberJoined { room, username } => tracing::info!(%room, %username, "joined"),
        Event::MemberLeft { room, username } => tracing::info!(%room, %username, "left"),
        Event::MemberAddress {
            room,
            username,
            addr,
        } => tracing::debug!(%room, %username, %addr, "member address"),
        Event::MemberEvicted {
            room,
            username,
            reason,
        } => {
            tracing::info!(%room, %username, %reason, "evicted")
        }
        Event::Handshake {
            peer,
            operation,
            status,
        } => {
            tracing::debug!(%peer, ?operation, %status, "handshake answered")
        }
        Event::ConnectionRefused { peer } => {
            tracing::debug!(%peer, "connection refused: limit reached")
        }
        Event::HandshakeTimedOut { peer } => tracing::debug!(%peer, "handshake timed out"),
        Event::DatagramDropped { from, reason } => {
            tracing::debug!(%from, %reason, "datagram dropped")
        }
    }
}
