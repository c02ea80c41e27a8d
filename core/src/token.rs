//! Room tokens: 128 random bits, sent on the wire as 32 lowercase hex characters.
//!
//! A token is what a member shows with every datagram. It is drawn from the server's
//! ChaCha20 generator (seeded by the shell), and compared in constant time so that
//! the time a comparison takes says nothing about how many bytes matched.

use rand_core::RngCore;
use std::hash::{Hash, Hasher};
use subtle::ConstantTimeEq;

/// Length of a token on the wire, in ASCII hex characters.
pub const TOKEN_HEX_LEN: usize = 32;

/// A member's secret: 16 random bytes.
#[derive(Clone, Copy)]
pub struct Token([u8; 16]);

impl Token {
    /// Draws a fresh token from `rng`.
    pub fn generate(rng: &mut impl RngCore) -> Token {
        let mut bytes = [0u8; 16];
        rng.fill_bytes(&mut bytes);
        Token(bytes)
    }

    /// Builds a token from raw bytes (tests and simulators).
    pub fn from_bytes(bytes: [u8; 16]) -> Token {
        Token(bytes)
    }

    /// Parses the wire form: exactly 32 lowercase hex characters, nothing else.
    pub fn parse(text: &[u8]) -> Option<Token> {
        if text.len() != TOKEN_HEX_LEN {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(Token(bytes))
    }

    /// The wire form: 32 lowercase hex characters.
    pub fn to_hex(&self) -> [u8; TOKEN_HEX_LEN] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; TOKEN_HEX_LEN];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        out
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Constant-time: every byte is compared whatever the earlier ones were.
impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Token {}

/// Tokens live in maps whose hasher is keyed from the server's seed, so bucket
/// placement reveals nothing an outsider could use.
impl Hash for Token {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl std::fmt::Debug for Token {
    /// Never prints the secret itself: only a short prefix, enough to tell tokens apart in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = self.to_hex();
        write!(
            f,
            "Token({}…)",
            std::str::from_utf8(&hex[..6]).unwrap_or("?")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn hex_round_trip() {
        let token = Token::from_bytes([0xab; 16]);
        assert_eq!(&token.to_hex(), b"abababababababababababababababab");
        assert_eq!(Token::parse(&token.to_hex()), Some(token));
    }

    #[test]
    fn parse_rejects_uppercase_short_long_and_non_hex() {
        assert!(Token::parse(b"ABABABABABABABABABABABABABABABAB").is_none());
        assert!(Token::parse(&[b'a'; 31]).is_none());
        assert!(Token::parse(&[b'a'; 33]).is_none());
        assert!(Token::parse(b"gbababababababababababababababab").is_none());
    }

    #[test]
    fn generated_tokens_differ_and_follow_the_seed() {
        let mut a = ChaCha20Rng::from_seed([7; 32]);
        let mut b = ChaCha20Rng::from_seed([7; 32]);
        let first = Token::generate(&mut a);
        assert_eq!(first, Token::generate(&mut b));
        assert_ne!(first, Token::generate(&mut a));
    }

    #[test]
    fn debug_does_not_leak_the_whole_token() {
        let token = Token::from_bytes([0xcd; 16]);
        let shown = format!("{token:?}");
        assert!(!shown.contains("cdcdcdcdcdcd"));
    }
}
