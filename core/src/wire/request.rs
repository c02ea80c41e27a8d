//! The request payload of a TCRP create or join (state 0).
//!
//! The payload is either a JSON object `{"username": "...", "password": "..."}` or, when
//! it is not a JSON object, the raw UTF-8 username. In the object, `password` may be
//! missing, `null` or `""` (all mean "no password"); unknown keys are ignored; if a key
//! appears twice the last one counts. Anything else in the object (a `username` that is
//! not a string, a `password` that is neither string nor null) is an invalid request.

use crate::names;

/// What a client asked for, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The username, valid by [`names::username`].
    pub username: String,
    /// The room password; `None` when absent, null or empty.
    pub password: Option<String>,
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
            });
        }
    };
    let username = match object.get("username") {
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
    Ok(Credentials {
        username: username.clone(),
        password,
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
