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
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;

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
    let Ok(Object(fields)) = serde_json::from_str::<Object<'_>>(text) else {
        let username = names::username(payload).map_err(PayloadError::BadUsername)?;
        return Ok(Credentials {
            username: username.to_owned(),
            password: None,
            port: None,
        });
    };
    // `username` wins; `user_name` only stands in when `username` is absent.
    let username = match fields.username.or(fields.user_name) {
        Some(Value::Str(name)) => name,
        _ => return Err(PayloadError::BadJson),
    };
    names::username(username.as_bytes()).map_err(PayloadError::BadUsername)?;
    let password = match fields.password {
        None | Some(Value::Null) => None,
        Some(Value::Str(pw)) if pw.is_empty() => None,
        Some(Value::Str(pw)) => Some(pw.into_owned()),
        Some(_) => return Err(PayloadError::BadJson),
    };
    let port = match fields.port {
        Some(Value::Int(port)) => u16::try_from(port).ok().filter(|port| *port != 0),
        _ => None,
    };
    Ok(Credentials {
        username: username.into_owned(),
        password,
        port,
    })
}

/// The fields of a JSON object payload that mean something, each the last of its key:
/// read straight from the payload, with no map of every value built and dropped. The
/// other keys' values are still parsed through [`Value`] and thrown away, not skipped
/// (`IgnoredAny` would skip them unchecked: a lone surrogate escape, a number out of
/// range or nesting past serde_json's depth limit must fail the parse, as they fail a
/// `serde_json::Value`, so that such a payload is the raw username it always was).
#[derive(Default)]
struct Fields<'a> {
    username: Option<Value<'a>>,
    user_name: Option<Value<'a>>,
    password: Option<Value<'a>>,
    port: Option<Value<'a>>,
}

/// A payload that is a JSON object; anything else fails to deserialize as one.
struct Object<'a>(Fields<'a>);

/// A JSON value, as far as the payload's rules tell them apart. (With serde_json's
/// `arbitrary_precision` feature, which nothing in the build turns on, numbers would come
/// as maps and a `port` would be ignored.)
enum Value<'a> {
    /// A string, borrowed from the payload unless it has escapes.
    Str(Cow<'a, str>),
    Null,
    /// A non-negative integer.
    Int(u64),
    /// Anything else: a negative or fractional number, a boolean, an array, an object.
    Other,
}

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Fields::default();
                while let Some(key) = map.next_key::<Value<'de>>()? {
                    let field = match &key {
                        Value::Str(key) if key == "username" => &mut fields.username,
                        Value::Str(key) if key == "user_name" => &mut fields.user_name,
                        Value::Str(key) if key == "password" => &mut fields.password,
                        Value::Str(key) if key == "port" => &mut fields.port,
                        _ => {
                            map.next_value::<Value>()?;
                            continue;
                        }
                    };
                    *field = Some(map.next_value()?);
                }
                Ok(Object(fields))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = Value<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Value::Str(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Value::Str(Cow::Owned(text.to_owned())))
            }
            fn visit_string<E>(self, text: String) -> Result<Self::Value, E> {
                Ok(Value::Str(Cow::Owned(text)))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Value::Null)
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Value::Int(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(u64::try_from(n).map_or(Value::Other, Value::Int))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Value::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Value::Other)
            }
            // What is inside is parsed too (and checked by serde_json), then dropped.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Value>()?.is_some() {}
                Ok(Value::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<Value, Value>()?.is_some() {}
                Ok(Value::Other)
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
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
    use proptest::prelude::*;

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
        // Not valid JSON anywhere in it (a lone surrogate, a number out of range, even
        // under a key that means nothing): the raw name too.
        for text in [
            r#"{"username":"alice","x":"\ud800"}"#,
            r#"{"username":"alice","x":[1e400]}"#,
        ] {
            assert_eq!(parse_payload(text.as_bytes()), Ok(creds(text, None)));
        }
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

    /// The parse as it was, over a `serde_json::Value` map: the reference the borrowed
    /// parse must agree with.
    fn parse_through_value(payload: &[u8]) -> Result<Credentials, PayloadError> {
        let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotUtf8)?;
        let object = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(object)) => object,
            _ => {
                let username = names::username(payload).map_err(PayloadError::BadUsername)?;
                return Ok(creds(username, None));
            }
        };
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

    /// JSON-ish payloads: objects of the keys that matter (escaped too), duplicated, with
    /// values of every type, nested, truncated or followed by junk, and plain text.
    fn payloads() -> impl Strategy<Value = Vec<u8>> {
        let key = prop_oneof![
            Just("username"),
            Just("user_name"),
            Just("password"),
            Just("port"),
            Just("user\\u006eame"),
            Just("x"),
        ];
        let leaf = prop_oneof![
            Just("\"alice\"".to_owned()),
            Just("\"bob\"".to_owned()),
            Just("0".to_owned()),
            Just("65535".to_owned()),
            Just("65536".to_owned()),
            Just("\"\"".to_owned()),
            Just("\"al\\\"ice\"".to_owned()),
            Just("\"*root\"".to_owned()),
            Just("\"a\\tb\"".to_owned()),
            Just("null".to_owned()),
            Just("true".to_owned()),
            (-70_000i64..70_000).prop_map(|n| n.to_string()),
            Just("18446744073709551616".to_owned()),
            Just("5000.0".to_owned()),
            Just("1e3".to_owned()),
            Just("1.0".to_owned()),
            Just("-0".to_owned()),
            Just("1e400".to_owned()),
            Just("\"\\ud800\"".to_owned()),
            Just("\"\\udc00x\"".to_owned()),
            Just("\"\\ud83d\\ude00\"".to_owned()),
            (120usize..136).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth))),
        ];
        let nested = leaf.clone().prop_recursive(3, 12, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(inner, 0..3).prop_map(|v| {
                    let entries: Vec<_> = v
                        .iter()
                        .enumerate()
                        .map(|(i, v)| format!("\"k{i}\":{v}"))
                        .collect();
                    format!("{{{}}}", entries.join(","))
                }),
            ]
        });
        let value = prop_oneof![4 => leaf, 1 => nested];
        // Usually a valid name under one of the name keys, somewhere among the rest.
        let name = prop_oneof![Just("username"), Just("user_name"), Just("user\\u006eame")];
        let named = prop::option::weighted(0.8, (name, prop_oneof![Just("alice"), Just("bob")]));
        let entries = prop::collection::vec((key, value), 0..5);
        let object =
            (entries, named, any::<prop::sample::Index>()).prop_map(|(mut entries, named, at)| {
                if let Some((key, name)) = named {
                    let at = at.index(entries.len() + 1);
                    entries.insert(at, (key, format!("\"{name}\"")));
                }
                let entries: Vec<_> = entries
                    .iter()
                    .map(|(k, v)| format!("\"{k}\": {v}"))
                    .collect();
                format!(" {{{}}} ", entries.join(","))
            });
        prop_oneof![
            4 => object.clone().prop_map(String::into_bytes),
            1 => (object.clone(), 0..40usize).prop_map(|(o, cut)| {
                o.into_bytes().into_iter().take(cut).collect()
            }),
            1 => object.prop_map(|o| format!("{o}x").into_bytes()),
            1 => prop::collection::vec(any::<u8>(), 0..40),
            1 => "[a-z\"{}:, ]{0,20}".prop_map(String::into_bytes),
        ]
    }

    proptest::proptest! {
        #[test]
        fn the_borrowed_parse_agrees_with_the_value_map(payload in payloads()) {
            proptest::prop_assert_eq!(parse_payload(&payload), parse_through_value(&payload));
        }
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
