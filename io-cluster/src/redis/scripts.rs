//! The Lua scripts that make each registry request one atomic step in Redis (a script
//! runs alone, and keys do not expire while it runs). Each implements one request of
//! [`ocm_core::cluster::registry::RegistryRequest`]; the key names are in
//! [`super::keys`]. `MS` is the lease in milliseconds.
//!
//! A member's node is alive while its node lease (`P:node:NODE`) exists: `JOIN` and
//! `RESTORE` take over a username held by a dead node, and `JOIN` drops a dead node's
//! members only when the room would otherwise be full (so a join costs O(1) unless
//! the room is at its limit). These scripts compute the node keys they read, so ocm
//! needs a single Redis (or a replicated one), not a Redis Cluster.

/// KEYS: lease, record, members. ARGV: claim, MS, record, host, node.
/// The lease is taken with `SET NX PX`. Returns `{1}`, or `{0, holder}`.
pub const CREATE: &str = r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {0, redis.call('GET', KEYS[1])}
end
redis.call('DEL', KEYS[3])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return {1}
";

/// KEYS: lease, members. ARGV: claim, username, node, max members, node key prefix.
/// Returns `ok`, `taken`, `full` or `gone`.
pub const JOIN: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'gone' end
local function alive(node)
  return node == ARGV[3] or redis.call('EXISTS', ARGV[5] .. node) == 1
end
local holder = redis.call('HGET', KEYS[2], ARGV[2])
if holder then
  if alive(holder) then return 'taken' end
  redis.call('HDEL', KEYS[2], ARGV[2])
end
local max = tonumber(ARGV[4])
if redis.call('HLEN', KEYS[2]) >= max then
  local flat = redis.call('HGETALL', KEYS[2])
  local live = {}
  for i = 1, #flat, 2 do
    local node = flat[i + 1]
    if live[node] == nil then live[node] = alive(node) end
    if not live[node] then redis.call('HDEL', KEYS[2], flat[i]) end
  end
  if redis.call('HLEN', KEYS[2]) >= max then return 'full' end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 'ok'
";

/// KEYS: lease, members. ARGV: claim, username, node. Returns 1 if removed, else 0.
pub const LEAVE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then
  return redis.call('HDEL', KEYS[2], ARGV[2])
end
return 0
";

/// KEYS: lease, record, members. ARGV: claim. Check-and-delete: returns 1 if released.
pub const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
";

/// KEYS: the node's lease, then lease, record, members for each owned room, then the
/// lease of each mirrored room. ARGV: node, MS, number of owned rooms, then one claim
/// per owned room and one per mirrored room.
///
/// Returns `{node lease existed (0/1), one per owned room: 1 held and extended,
/// 0 missing, 2 held by another claim, then one per mirrored room: 1 held by its claim,
/// else 0}`. Only the holder's claim extends a lease: renewal by anyone else is refused.
pub const RENEW: &str = r"
local existed = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET')
local owned = tonumber(ARGV[3])
local out = {existed and 1 or 0}
for i = 1, owned do
  local k = 2 + (i - 1) * 3
  local value = redis.call('GET', KEYS[k])
  if value == ARGV[3 + i] then
    redis.call('PEXPIRE', KEYS[k], ARGV[2])
    redis.call('PEXPIRE', KEYS[k + 1], ARGV[2])
    redis.call('PEXPIRE', KEYS[k + 2], ARGV[2])
    out[#out + 1] = 1
  elseif value then
    out[#out + 1] = 2
  else
    out[#out + 1] = 0
  end
end
local first = 2 + owned * 3
for k = first, #KEYS do
  out[#out + 1] = (redis.call('GET', KEYS[k]) == ARGV[3 + owned + k - first + 1]) and 1 or 0
end
return out
";

/// KEYS: lease, record, members. ARGV: claim, MS, has record (0/1), record, node,
/// node key prefix, usernames... With a record, takes the lease again with `SET NX PX`
/// if nobody holds it. Then, if the claim holds it, puts back each username that is
/// free or held by a dead node. Returns `{0}` (not held), or `{1, names refused...}`.
pub const RESTORE: &str = r"
if ARGV[3] == '1' then
  if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[2])
  end
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local out = {1}
for i = 7, #ARGV do
  local holder = redis.call('HGET', KEYS[3], ARGV[i])
  if not holder or holder == ARGV[5] or redis.call('EXISTS', ARGV[6] .. holder) == 0 then
    redis.call('HSET', KEYS[3], ARGV[i], ARGV[5])
  else
    out[#out + 1] = ARGV[i]
  end
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[3], ttl) end
return out
";
