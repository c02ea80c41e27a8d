//! The rules for room names and usernames.
//!
//! Both are 1..=255 bytes of UTF-8 without control characters. A username must not
//! start with `*`: server notices start with `* `, so no relayed line can be mistaken
//! for one. Names compare byte for byte (no case folding, no normalization).

/// Why a name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Zero bytes.
    Empty,
    /// More than 255 bytes.
    TooLong,
    /// Not valid UTF-8.
    NotUtf8,
    /// Contains a control character (C0, DEL or C1).
    ControlCharacter,
    /// A username starting with `*`.
    StartsWithStar,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameError::Empty => "name is empty",
            NameError::TooLong => "name is longer than 255 bytes",
            NameError::NotUtf8 => "name is not valid UTF-8",
            NameError::ControlCharacter => "name contains a control character",
            NameError::StartsWithStar => "username starts with '*'",
        })
    }
}

impl std::error::Error for NameError {}

/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Checks a room name.
pub fn room_name(bytes: &[u8]) -> Result<&str, NameError> {
    if bytes.is_empty() {
        return Err(NameError::Empty);
    }
    if bytes.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| NameError::NotUtf8)?;
    if text.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(text)
}

/// Checks a username: a room name's rules, and no leading `*`.
pub fn username(bytes: &[u8]) -> Result<&str, NameError> {
    let text = room_name(bytes)?;
    if text.starts_with('*') {
        return Err(NameError::StartsWithStar);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_multibyte_names() {
        assert_eq!(room_name("lobby".as_bytes()), Ok("lobby"));
        assert_eq!(username("さくら".as_bytes()), Ok("さくら"));
        assert_eq!(room_name(&[b'a'; 255]).map(str::len), Ok(255));
        assert_eq!(username("a*b".as_bytes()), Ok("a*b"));
    }

    #[test]
    fn refuses_each_bad_name() {
        assert_eq!(room_name(b""), Err(NameError::Empty));
        assert_eq!(room_name(&[b'a'; 256]), Err(NameError::TooLong));
        assert_eq!(room_name(&[0xff, 0xfe]), Err(NameError::NotUtf8));
        assert_eq!(room_name(b"a\nb"), Err(NameError::ControlCharacter));
        assert_eq!(room_name(b"a\x7fb"), Err(NameError::ControlCharacter));
        assert_eq!(
            room_name("a\u{85}".as_bytes()),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(username(b"*admin"), Err(NameError::StartsWithStar));
        assert_eq!(room_name(b"*room"), Ok("*room"));
    }
}
