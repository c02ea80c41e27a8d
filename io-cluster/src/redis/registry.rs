//! [`RedisRegistry`]: each [`RegistryRequest`] as one script (or one `MGET`) on a
//! multiplexed connection.

use super::keys::Keys;
use super::{scripts, Link, RedisConfig};
use crate::backend::Registry;
use bytes::Bytes;
use ocm_core::cluster::registry::{LeaseState, RegistryAnswer, RegistryRequest, Unavailable};
use ocm_core::cluster::{Claim, NodeId};
use redis::{Script, ScriptInvocation, Value};
use std::sync::Arc;
use std::time::Duration;

/// Most rooms one renewal script touches: a node with more sends several scripts, so
/// that none blocks Redis for long.
pub const RENEW_CHUNK: usize = 500;

/// The registry on Redis.
pub struct RedisRegistry {
    link: Link,
    keys: Keys,
    scripts: Scripts,
}

struct Scripts {
    create: Script,
    join: Script,
    leave: Script,
    release: Script,
    renew: Script,
    restore: Script,
}

impl RedisRegistry {
    /// A registry for `config`; it connects on first use.
    pub fn new(config: &RedisConfig) -> RedisRegistry {
        RedisRegistry {
            link: Link::new(config),
            keys: Keys::new(&config.prefix),
            scripts: Scripts {
                create: Script::new(scripts::CREATE),
                join: Script::new(scripts::JOIN),
                leave: Script::new(scripts::LEAVE),
                release: Script::new(scripts::RELEASE),
                renew: Script::new(scripts::RENEW),
                restore: Script::new(scripts::RESTORE),
            },
        }
    }

    async fn lookup(&mut self, room: &str) -> Result<RegistryAnswer, Unavailable> {
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.keys.lease(room)).arg(self.keys.record(room));
        let conn = self.link.get().await?;
        let values: Vec<Option<Vec<u8>>> = match cmd.query_async(conn).await {
            Ok(values) => values,
            Err(error) => return Err(self.link.failed(&error)),
        };
        let mut values = values.into_iter();
        match (values.next().flatten(), values.next().flatten()) {
            (None, _) => Ok(RegistryAnswer::NotFound),
            (Some(claim), record) => Ok(RegistryAnswer::Found {
                claim: claim_of(&claim)?,
                record: Bytes::from(record.unwrap_or_default()),
            }),
        }
    }

    async fn renew(
        &mut self,
        node: &NodeId,
        lease: Duration,
        owned: &[(Arc<str>, Claim)],
        mirrored: &[(Arc<str>, Claim)],
    ) -> Result<RegistryAnswer, Unavailable> {
        let mut node_was_missing = None;
        let (mut owned_states, mut mirrored_states) = (Vec::new(), Vec::new());
        // At least one script, so that an idle node still renews its own lease.
        let chunks = (owned.len() + mirrored.len()).div_ceil(RENEW_CHUNK).max(1);
        let (mut o, mut m) = (owned, mirrored);
        for _ in 0..chunks {
            let take_o = o.len().min(RENEW_CHUNK);
            let take_m = m.len().min(RENEW_CHUNK - take_o);
            let (these_o, rest_o) = o.split_at(take_o);
            let (these_m, rest_m) = m.split_at(take_m);
            (o, m) = (rest_o, rest_m);
            let mut inv = self.scripts.renew.prepare_invoke();
            inv.key(self.keys.node(node.as_str()))
                .arg(node.as_str())
                .arg(millis(lease))
                .arg(these_o.len());
            for (room, claim) in these_o {
                inv.key(self.keys.lease(room))
                    .key(self.keys.record(room))
                    .key(self.keys.members(room))
                    .arg(claim.to_value());
            }
            for (room, claim) in these_m {
                inv.key(self.keys.lease(room)).arg(claim.to_value());
            }
            let value = run(&mut self.link, &inv).await?;
            let flags = integers(&value)?;
            if flags.len() != 1 + these_o.len() + these_m.len() {
                return Err(malformed("renew", &value));
            }
            node_was_missing.get_or_insert(flags[0] == 0);
            owned_states.extend(flags[1..=these_o.len()].iter().map(|f| match f {
                1 => LeaseState::Held,
                2 => LeaseState::Lost,
                _ => LeaseState::Missing,
            }));
            mirrored_states.extend(flags[1 + these_o.len()..].iter().map(|f| *f == 1));
        }
        Ok(RegistryAnswer::Renewed {
            node_was_missing: node_was_missing.unwrap_or(true),
            owned: owned_states,
            mirrored: mirrored_states,
        })
    }
}

impl Registry for RedisRegistry {
    async fn execute(&mut self, request: &RegistryRequest) -> Result<RegistryAnswer, Unavailable> {
        match request {
            RegistryRequest::Create {
                room,
                claim,
                lease,
                record,
                host,
            } => {
                let mut inv = self.scripts.create.prepare_invoke();
                inv.key(self.keys.lease(room))
                    .key(self.keys.record(room))
                    .key(self.keys.members(room))
                    .arg(claim.to_value())
                    .arg(millis(*lease))
                    .arg(record.as_ref())
                    .arg(host.as_ref())
                    .arg(claim.node.as_str());
                let value = run(&mut self.link, &inv).await?;
                match value_items(&value) {
                    Some([Value::Int(1)]) => Ok(RegistryAnswer::Created),
                    Some([Value::Int(0), Value::BulkString(holder)]) => {
                        Ok(RegistryAnswer::Exists(claim_of(holder)?))
                    }
                    _ => Err(malformed("create", &value)),
                }
            }
            RegistryRequest::Lookup { room } => self.lookup(room).await,
            RegistryRequest::Join {
                room,
                claim,
                node,
                username,
                max_members,
            } => {
                let mut inv = self.scripts.join.prepare_invoke();
                inv.key(self.keys.lease(room))
                    .key(self.keys.members(room))
                    .arg(claim.to_value())
                    .arg(username.as_ref())
                    .arg(node.as_str())
                    .arg(*max_members)
                    .arg(self.keys.node_prefix());
                let value = run(&mut self.link, &inv).await?;
                match text(&value) {
                    Some("ok") => Ok(RegistryAnswer::Joined),
                    Some("taken") => Ok(RegistryAnswer::UsernameTaken),
                    Some("full") => Ok(RegistryAnswer::RoomFull),
                    Some("gone") => Ok(RegistryAnswer::RoomGone),
                    _ => Err(malformed("join", &value)),
                }
            }
            RegistryRequest::Leave {
                room,
                claim,
                node,
                username,
            } => {
                let mut inv = self.scripts.leave.prepare_invoke();
                inv.key(self.keys.lease(room))
                    .key(self.keys.members(room))
                    .arg(claim.to_value())
                    .arg(username.as_ref())
                    .arg(node.as_str());
                let value = run(&mut self.link, &inv).await?;
                Ok(RegistryAnswer::Left(flag(&value, "leave")?))
            }
            RegistryRequest::Release { room, claim } => {
                let mut inv = self.scripts.release.prepare_invoke();
                inv.key(self.keys.lease(room))
                    .key(self.keys.record(room))
                    .key(self.keys.members(room))
                    .arg(claim.to_value());
                let value = run(&mut self.link, &inv).await?;
                Ok(RegistryAnswer::Released(flag(&value, "release")?))
            }
            RegistryRequest::Renew {
                node,
                lease,
                owned,
                mirrored,
            } => self.renew(node, *lease, owned, mirrored).await,
            RegistryRequest::Restore {
                room,
                claim,
                lease,
                record,
                node,
                usernames,
            } => {
                let mut inv = self.scripts.restore.prepare_invoke();
                inv.key(self.keys.lease(room))
                    .key(self.keys.record(room))
                    .key(self.keys.members(room))
                    .arg(claim.to_value())
                    .arg(millis(*lease))
                    .arg(u8::from(record.is_some()))
                    .arg(record.as_deref().unwrap_or_default())
                    .arg(node.as_str())
                    .arg(self.keys.node_prefix());
                for name in usernames {
                    inv.arg(name.as_ref());
                }
                let value = run(&mut self.link, &inv).await?;
                let items = value_items(&value).ok_or_else(|| malformed("restore", &value))?;
                match items.split_first() {
                    Some((Value::Int(0), [])) => Ok(RegistryAnswer::Restored {
                        held: false,
                        taken: Vec::new(),
                    }),
                    Some((Value::Int(1), refused)) => {
                        let taken = refused
                            .iter()
                            .map(|v| match v {
                                Value::BulkString(name) => std::str::from_utf8(name)
                                    .map(Arc::from)
                                    .map_err(|_| malformed("restore", &value)),
                                _ => Err(malformed("restore", &value)),
                            })
                            .collect::<Result<_, _>>()?;
                        Ok(RegistryAnswer::Restored { held: true, taken })
                    }
                    _ => Err(malformed("restore", &value)),
                }
            }
        }
    }
}

async fn run(link: &mut Link, invocation: &ScriptInvocation<'_>) -> Result<Value, Unavailable> {
    let conn = link.get().await?;
    match invocation.invoke_async::<Value>(conn).await {
        Ok(value) => Ok(value),
        Err(error) => Err(link.failed(&error)),
    }
}

fn millis(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn value_items(value: &Value) -> Option<&[Value]> {
    match value {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

fn integers(value: &Value) -> Result<Vec<i64>, Unavailable> {
    let items = value_items(value).ok_or_else(|| malformed("renew", value))?;
    items
        .iter()
        .map(|v| match v {
            Value::Int(n) => Ok(*n),
            _ => Err(malformed("renew", value)),
        })
        .collect()
}

fn text(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn flag(value: &Value, what: &str) -> Result<bool, Unavailable> {
    match value {
        Value::Int(0) => Ok(false),
        Value::Int(1) => Ok(true),
        _ => Err(malformed(what, value)),
    }
}

/// A lease holding something that is not a claim: another program's data under our
/// prefix. Reported as unavailable (and logged), never taken over.
fn claim_of(value: &[u8]) -> Result<Claim, Unavailable> {
    Claim::parse(value).ok_or_else(|| {
        tracing::warn!(value = %String::from_utf8_lossy(value), "redis: a lease holds no claim");
        Unavailable::Down
    })
}

fn malformed(what: &str, value: &Value) -> Unavailable {
    tracing::warn!(?value, "redis: unexpected answer to {what}");
    Unavailable::Down
}
