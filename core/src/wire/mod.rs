//! The wire formats, as pure codecs: what goes over TCP and UDP, byte for byte.
//!
//! - [`tcrp`]: TCRP frames (the 32-byte header, room name, payload) and the incremental
//!   stream decoder.
//! - [`request`]: the JSON payload of a create or join request.
//! - [`room_datagram`]: what a room member sends over UDP, and the text it receives.
//! - [`relay_datagram`]: relay mode's `usernamelen | username | message`.
//! - [`notice`]: the server's notices (`* bob joined`, `* room closed: host left`, ...).
//!
//! Nothing here holds state beyond one decoder; the servers decide what bytes mean.

pub mod notice;
pub mod relay_datagram;
pub mod request;
pub mod room_datagram;
pub mod tcrp;

/// Largest datagram a client may send, in either format.
pub const MAX_DATAGRAM_LEN: usize = 4096;

/// Why a datagram could not be split into its fields (either format).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatagramError {
    /// More than 4096 bytes.
    TooLarge,
    /// Shorter than its size fields say (or empty).
    Truncated,
}

impl std::fmt::Display for DatagramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DatagramError::TooLarge => "datagram larger than 4096 bytes",
            DatagramError::Truncated => "datagram shorter than its header says",
        })
    }
}

impl std::error::Error for DatagramError {}
