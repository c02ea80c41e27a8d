//! The request payload of a TCRP create or join (state 0).
//!
//! The payload is either a JSON object `{"username": "...", "password": "..."}` or, when
//! it is not a JSON object, the raw UTF-8 username. In the object, `password` may be
//! missing, `null` or `""` (all mean "no password"); unknown keys are ignored; if a key
//! appears twice the last one counts. Anything else in the object (a `username` that is
//! not a string, a `password` that is neither string nor null) is an invalid request.
//!
//! Two variants other implementations send are accepted (docs/PROTOCOL.md,
//! "Compatibility"): `user_name` stands for `username` when `username` is absent, and
//! an integer `port` in 1..=65535 is the member's UDP port when no port step sets one
//! (any other `port`, and any `ip`, is ignored: the address is always the TCP peer's).

use crate::names;

/// What a client asked for, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The username, valid by [`names::username`].
    pub username: String,
    /// The room password; `None` when absent, null or empty.
    pub password: Option<String>,
    /// The UDP port the JSON `port` names, if it is an integer in 1..=65535.
    pub port: Option<u16>,
}

/// Why a payload was refused (all answered with status 5, INVALID_REQUEST).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Not UTF-8.
    NotUtf8,
    /// A JSON object without a string `username`, or with a `password` of another type.
    BadJson,
    /// The username breaks a name rule.
    BadUsername(names::NameError),
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::NotUtf8 => f.write_str("payload is not valid UTF-8"),
            PayloadError::BadJson => f.write_str("JSON payload needs a string \"username\""),
            PayloadError::BadUsername(e) => write!(f, "bad username: {e}"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// Parses a request payload.
pub fn parse_payload(payload: &[u8]) -> Result<Credentials, PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotUtf8)?;
    let object = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => {
            let username = names::username(payload).map_err(PayloadError::BadUsername)?;
            return Ok(Credentials {
                username: username.to_owned(),
                password: None,
                port: None,
            });
        }
    };
    // `username` wins; `user_name` only stands in when `username` is absent.
    let username = match object.get("username").or_else(|| object.get("user_name")) {
        Some(serde_json::Value::String(name)) => name,
        _ => return Err(PayloadError::BadJson),
    };
    names::username(username.as_bytes()).map_err(PayloadError::BadUsername)?;
    let password = match object.get("password") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(pw)) if pw.is_empty() => None,
        Some(serde_json::Value::String(pw)) => Some(pw.clone()),
        Some(_) => return Err(PayloadError::BadJson),
    };
    let port = object
        .get("port")
        .and_then(serde_json::Value::as_u64)
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0);
    Ok(Credentials {
        username: username.clone(),
        password,
        port,
    })
}

/// Builds the JSON payload the ocm client sends. Other clients may send the raw name.
pub fn encode_payload(username: &str, password: Option<&str>) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    object.insert("username".into(), username.into());
    if let Some(pw) = password.filter(|pw| !pw.is_empty()) {
        object.insert("password".into(), pw.into());
    }
    serde_json::Value::Object(object).to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use names::NameError;

    fn creds(username: &str, password: Option<&str>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.map(Into::into),
            port: None,
        }
    }

    #[test]
    fn user_name_stands_for_a_missing_username_and_username_wins() {
        assert_eq!(
            parse_payload(br#"{"user_name":"alice","password":"pw"}"#),
            Ok(creds("alice", Some("pw")))
        );
        assert_eq!(
            parse_payload(br#"{"user_name":"mallory","username":"alice"}"#),
            Ok(creds("alice", None))
        );
        // `username` present but not a string is still refused, whatever `user_name` says.
        assert_eq!(
            parse_payload(br#"{"username":7,"user_name":"alice"}"#),
            Err(PayloadError::BadJson)
        );
        assert_eq!(
            parse_payload(br#"{"user_name":"*root"}"#),
            Err(PayloadError::BadUsername(NameError::StartsWithStar))
        );
    }

    #[test]
    fn an_integer_port_in_range_is_kept_anything_else_ignored() {
        let port = |json: &[u8]| parse_payload(json).map(|c| c.port);
        assert_eq!(
            port(br#"{"username":"a","ip":"10.9.9.9","port":5000}"#),
            Ok(Some(5000))
        );
        assert_eq!(port(br#"{"username":"a","port":65535}"#), Ok(Some(65535)));
        for ignored in [
            &br#"{"username":"a","port":0}"#[..],
            br#"{"username":"a","port":65536}"#,
            br#"{"username":"a","port":-1}"#,
            br#"{"username":"a","port":5000.5}"#,
            br#"{"username":"a","port":"5000"}"#,
            br#"{"username":"a","port":null}"#,
            br#"{"username":"a"}"#,
        ] {
            assert_eq!(
                port(ignored),
                Ok(None),
                "{}",
                String::from_utf8_lossy(ignored)
            );
        }
    }

    #[test]
    fn raw_username() {
        assert_eq!(parse_payload(b"alice"), Ok(creds("alice", None)));
        // Not a JSON object, so it is the raw name, quotes and all.
        assert_eq!(parse_payload(b"\"bob\""), Ok(creds("\"bob\"", None)));
        assert_eq!(parse_payload(b"{broken"), Ok(creds("{broken", None)));
    }

    #[test]
    fn json_object_with_and_without_password() {
        assert_eq!(
            parse_payload(br#"{"username":"alice","password":"pw"}"#),
            Ok(creds("alice", Some("pw")))
        );
        assert_eq!(
            parse_payload(br#"{"username":"alice","password":""}"#),
            Ok(creds("alice", None))
        );
        assert_eq!(
            parse_payload(br#"{"username":"alice","password":null,"x":[1]}"#),
            Ok(creds("alice", None))
        );
    }

    #[test]
    fn bad_payloads() {
        assert_eq!(parse_payload(&[0xc3]), Err(PayloadError::NotUtf8));
        assert_eq!(
            parse_payload(br#"{"name":"alice"}"#),
            Err(PayloadError::BadJson)
        );
        assert_eq!(
            parse_payload(br#"{"username":7}"#),
            Err(PayloadError::BadJson)
        );
        assert_eq!(
            parse_payload(br#"{"username":"a","password":1}"#),
            Err(PayloadError::BadJson)
        );
        assert_eq!(
            parse_payload(br#"{"username":"*root"}"#),
            Err(PayloadError::BadUsername(NameError::StartsWithStar))
        );
        assert_eq!(
            parse_payload(b""),
            Err(PayloadError::BadUsername(NameError::Empty))
        );
        assert_eq!(
            parse_payload(b"a\tb"),
            Err(PayloadError::BadUsername(NameError::ControlCharacter))
        );
    }

    #[test]
    fn encoded_payload_parses_back() {
        let bytes = encode_payload("al\"ice", Some("p w"));
        assert_eq!(parse_payload(&bytes), Ok(creds("al\"ice", Some("p w"))));
        assert_eq!(
            parse_payload(&encode_payload("bob", Some(""))),
            Ok(creds("bob", None))
        );
    }
}
