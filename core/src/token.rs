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
        let text: &[u8; TOKEN_HEX_LEN] = text.try_into().ok()?;
        // Eight digits at a time in one 64-bit word; one check at the end.
        let mut bytes = [0u8; 16];
        let mut valid = true;
        for (out, digits) in bytes.chunks_exact_mut(4).zip(text.chunks_exact(8)) {
            let (value, ok) = hex8(u64::from_le_bytes(digits.try_into().expect("8 bytes")));
            out.copy_from_slice(&value.to_le_bytes());
            valid &= ok;
        }
        valid.then_some(Token(bytes))
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

/// Eight ASCII characters, the first in the low byte of `x`, read as hex digits: the
/// four bytes they spell (the first digit the high nibble of the first byte), and
/// whether all eight are lowercase hex digits (when not, the bytes mean nothing).
fn hex8(x: u64) -> (u32, bool) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let ascii = x & HIGH == 0;
    // For bytes below 0x80 neither sum carries into the next byte; its top bit says
    // byte >= lo, or byte > hi.
    let at_least = |lo: u8| x.wrapping_add((0x80 - u64::from(lo)) * ONES) & HIGH;
    let above = |hi: u8| x.wrapping_add((0x7f - u64::from(hi)) * ONES) & HIGH;
    let digit = at_least(b'0') & !above(b'9');
    let letter = at_least(b'a') & !above(b'f');
    let valid = ascii & ((digit | letter) == HIGH);
    // '0'..'9' are 0..9 in their low nibble, 'a'..'f' 1..6: nine more.
    let nibbles = (x & (0x0f * ONES)) + (letter >> 7) * 9;
    // Each pair into the low byte of its 16 bits: first << 4 | second.
    const LOW_OF_PAIR: u64 = 0x00ff_00ff_00ff_00ff;
    let pairs = ((nibbles & LOW_OF_PAIR) << 4) | ((nibbles >> 8) & LOW_OF_PAIR);
    let p = pairs.to_le_bytes();
    (u32::from_le_bytes([p[0], p[2], p[4], p[6]]), valid)
}

/// Constant-time: every byte is compared whatever the earlier ones were (as two 64-bit
/// words, each compared by `subtle`).
impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        let (a, b) = (self.words(), other.words());
        (a[0].ct_eq(&b[0]) & a[1].ct_eq(&b[1])).into()
    }
}

impl Token {
    fn words(&self) -> [u64; 2] {
        let (high, low) = self.0.split_at(8);
        [
            u64::from_le_bytes(high.try_into().expect("8 bytes")),
            u64::from_le_bytes(low.try_into().expect("8 bytes")),
        ]
    }
}

impl Eq for Token {}

/// For sets and maps of tokens in tests and simulators (the server's token map is keyed
/// by [`TokenText`]).
impl Hash for Token {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b] = self.words();
        state.write_u64(a);
        state.write_u64(b);
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

/// A token's wire form, 32 lowercase hex characters, as a map key: a datagram's token
/// field is looked up as it came, without decoding it first. Text that is no token's
/// (uppercase, not hex) matches none, exactly what [`Token::parse`] refuses; the wrong
/// length makes no key at all. Compared in constant time like [`Token`].
#[derive(Clone, Copy)]
pub struct TokenText([u8; TOKEN_HEX_LEN]);

impl TokenText {
    /// `token`'s wire form.
    pub fn of(token: &Token) -> TokenText {
        TokenText(token.to_hex())
    }

    /// A datagram's token field, if it has a token's length.
    pub fn from_wire(text: &[u8]) -> Option<TokenText> {
        text.try_into().ok().map(TokenText)
    }

    fn words(&self) -> [u64; 4] {
        let mut words = [0; 4];
        for (word, bytes) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            *word = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        }
        words
    }
}

/// Constant-time, as [`Token`]'s: the words' differences are gathered into one, with
/// no branch, and only that one is compared (by `subtle`).
impl PartialEq for TokenText {
    fn eq(&self, other: &TokenText) -> bool {
        let (a, b) = (self.words(), other.words());
        let differ = a.iter().zip(&b).fold(0, |d, (x, y)| d | (x ^ y));
        differ.ct_eq(&0).into()
    }
}

impl Eq for TokenText {}

/// The four words folded into one (each hex digit carries 4 random bits in its low
/// nibble; rotations keep the words' digits from cancelling out), for an
/// [`crate::hash::IdMap`]: keys are the server's random tokens, never a peer's choice.
impl Hash for TokenText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d] = self.words();
        state.write_u64(a ^ b.rotate_left(1) ^ c.rotate_left(2) ^ d.rotate_left(3));
    }
}

impl std::fmt::Debug for TokenText {
    /// Never prints the secret itself, as [`Token`]'s.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = std::str::from_utf8(&self.0[..6]).unwrap_or("?");
        write!(f, "TokenText({prefix}…)")
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
    fn a_token_text_matches_its_token_wire_form_only() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let token = Token::generate(&mut rng);
        let text = TokenText::of(&token);
        assert_eq!(TokenText::from_wire(&token.to_hex()), Some(text));
        // the same digits in uppercase are no token's, as for parse
        let upper = token.to_hex().to_ascii_uppercase();
        assert_ne!(TokenText::from_wire(&upper), Some(text));
        assert!(TokenText::from_wire(&token.to_hex()[..31]).is_none());
        // one digit off anywhere is another key
        for i in 0..TOKEN_HEX_LEN {
            let mut other = token.to_hex();
            other[i] = if other[i] == b'0' { b'1' } else { b'0' };
            assert_ne!(TokenText::from_wire(&other), Some(text), "digit {i}");
        }
        assert!(!format!("{text:?}").contains(std::str::from_utf8(&token.to_hex()[6..]).unwrap()));
    }

    #[test]
    fn token_texts_spread_over_buckets_and_tags() {
        use std::hash::BuildHasher;
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        let hashes: Vec<u64> = (0..4096)
            .map(|_| crate::hash::IdState.hash_one(TokenText::of(&Token::generate(&mut rng))))
            .collect();
        let low: std::collections::HashSet<u64> = hashes.iter().map(|h| h & 4095).collect();
        let tags: std::collections::HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        // 4096 random keys into 4096 buckets fill about 63 % of them; all 128 tags show
        assert!(low.len() > 2400, "{} buckets", low.len());
        assert_eq!(tags.len(), 128);
    }

    #[test]
    fn to_hex_writes_what_format_writes() {
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let mut tokens: Vec<Token> = (0..200).map(|_| Token::generate(&mut rng)).collect();
        tokens.push(Token::from_bytes([0; 16]));
        tokens.push(Token::from_bytes([0xff; 16]));
        tokens.push(Token::from_bytes(std::array::from_fn(|i| (i * 17) as u8)));
        for token in tokens {
            let expected: String = token.0.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(std::str::from_utf8(&token.to_hex()).unwrap(), expected);
        }
    }

    #[test]
    fn parse_rejects_uppercase_short_long_and_non_hex() {
        assert!(Token::parse(b"ABABABABABABABABABABABABABABABAB").is_none());
        assert!(Token::parse(&[b'a'; 31]).is_none());
        assert!(Token::parse(&[b'a'; 33]).is_none());
        assert!(Token::parse(b"gbababababababababababababababab").is_none());
    }

    /// Digit by digit, the plain way.
    fn parse_plainly(text: &[u8]) -> Option<[u8; 16]> {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 16];
        if text.len() != TOKEN_HEX_LEN {
            return None;
        }
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
        }
        Some(out)
    }

    #[test]
    fn parse_agrees_with_a_digit_by_digit_reading_for_every_byte_at_every_place() {
        // Eight digits share a word: a byte in one place must not change another's.
        let bases: [&[u8; 32]; 3] = [
            b"0123456789abcdef0123456789abcdef",
            b"ffffffffffffffffffffffffffffffff",
            b"00000000000000000000000000000000",
        ];
        for base in bases {
            for place in 0..TOKEN_HEX_LEN {
                for c in 0..=255u8 {
                    let mut text = *base;
                    text[place] = c;
                    let parsed = Token::parse(&text).map(|t| t.0);
                    assert_eq!(parsed, parse_plainly(&text), "byte {c:#x} at {place}");
                }
            }
        }
    }

    #[test]
    fn parse_takes_exactly_the_lowercase_hex_digits() {
        for c in 0..=255u8 {
            let mut text = *b"0123456789abcdef0123456789abcdef";
            text[17] = c;
            let digit = c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
            assert_eq!(Token::parse(&text).is_some(), digit, "byte {c:#x}");
        }
        let token = Token::parse(b"00ff10a0b1c2d3e4f5060708090a0b0c").unwrap();
        assert_eq!(
            token,
            Token::from_bytes([
                0x00, 0xff, 0x10, 0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0x06, 0x07, 0x08, 0x09, 0x0a,
                0x0b, 0x0c
            ])
        );
    }

    #[test]
    fn tokens_differing_in_any_byte_are_different() {
        let base = Token::from_bytes([0x5a; 16]);
        for i in 0..16 {
            let mut bytes = [0x5a; 16];
            bytes[i] ^= 1;
            assert_ne!(Token::from_bytes(bytes), base, "byte {i}");
        }
        assert_eq!(Token::from_bytes([0x5a; 16]), base);
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
