//! The Redis store's Lua scripts: what must happen atomically in Redis. A
//! script checks everything before it writes anything (Redis does not undo a
//! script's writes when it fails half-way).

use redis::Script;

/// Takes a node's name for a new process: the next epoch becomes its lease.
/// A process still running under that name finds its lease taken at its
/// next renewal or write, and stops (docs/ARCHITECTURE.md, "Redis").
/// KEYS: epochs, nodes, lease. ARGV: node, lease ms. Returns the epoch.
pub(crate) fn claim() -> Script {
    Script::new(
        r"
local epoch = redis.call('INCR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], epoch, 'PX', ARGV[2])
return epoch
",
    )
}

/// Renews a lease. KEYS: lease. ARGV: epoch, lease ms. Returns 1 (renewed),
/// 0 (it lapsed: the node was taken for dead) or -1 (another process took
/// the name).
pub(crate) fn renew() -> Script {
    Script::new(
        r"
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if held then return -1 end
return 0
",
    )
}

/// Commits a batch of the writer, fenced by the node's lease.
/// KEYS: lease, owned, push_targets, the push-target stream, then one
/// invitation key per entry.
/// ARGV: epoch, node, n (entries), then per entry: op ('p' put / 'f'
/// forget), id, version, record ('' for a forget); then m (targets), then
/// per target: field, value ('' forgets it); then h (ended invitations for
/// history), and when h > 0: per_user, keep ms, u (users), then per
/// invitation: its summary's time to live, the summary, its parts, then per
/// part: the user's index (1..=u), its member (store/redis/history.rs).
/// After the invitation keys, KEYS has the u users' history keys, then the h
/// summary keys. Each target change is also
/// appended to the push-target stream (fields n: node, f, v), which every
/// node reads to keep its hub's copy as Redis has it (cluster/directory.rs).
/// Fails with `FENCED` when the lease is not this process's, `VERSION` when
/// a stored record is newer than the one written, `OWNED` when an
/// invitation is another node's. A record at the same version is written
/// again (a batch retried after a lost reply).
pub(crate) fn commit() -> Script {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED this node no longer holds its lease')
end
local n = tonumber(ARGV[3])
for i = 1, n do
  local at = 4 + (i - 1) * 4
  local key = KEYS[4 + i]
  local stored = redis.call('HMGET', key, 'v', 'o')
  if stored[1] and tonumber(stored[1]) > tonumber(ARGV[at + 2]) then
    return redis.error_reply('VERSION invitation ' .. ARGV[at + 1] .. ' is stored at version ' .. stored[1] .. ', newer than ' .. ARGV[at + 2])
  end
  if stored[2] and stored[2] ~= ARGV[2] then
    return redis.error_reply('OWNED invitation ' .. ARGV[at + 1] .. ' belongs to node ' .. stored[2])
  end
end
for i = 1, n do
  local at = 4 + (i - 1) * 4
  local key = KEYS[4 + i]
  if ARGV[at] == 'p' then
    redis.call('HSET', key, 'v', ARGV[at + 2], 'r', ARGV[at + 3], 'o', ARGV[2])
    redis.call('SADD', KEYS[2], ARGV[at + 1])
  else
    redis.call('DEL', key)
    redis.call('SREM', KEYS[2], ARGV[at + 1])
  end
end
local at = 4 + n * 4
local m = tonumber(ARGV[at])
for i = 1, m do
  local field = ARGV[at + 1 + (i - 1) * 2]
  local value = ARGV[at + 2 + (i - 1) * 2]
  if value == '' then
    redis.call('HDEL', KEYS[3], field)
  else
    redis.call('HSET', KEYS[3], field, value)
  end
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', 100000, '*', 'n', ARGV[2], 'f', field, 'v', value)
end
at = at + 1 + m * 2
local h = tonumber(ARGV[at] or '0')
if h > 0 then
  local per_user = tonumber(ARGV[at + 1])
  local keep = ARGV[at + 2]
  local u = tonumber(ARGV[at + 3])
  at = at + 4
  for i = 1, h do
    local parts = tonumber(ARGV[at + 2])
    redis.call('SET', KEYS[4 + n + u + i], ARGV[at + 1], 'PX', ARGV[at])
    at = at + 3
    for p = 1, parts do
      redis.call('ZADD', KEYS[4 + n + tonumber(ARGV[at])], 0, ARGV[at + 1])
      at = at + 2
    end
  end
  for k = 1, u do
    local key = KEYS[4 + n + k]
    local over = redis.call('ZCARD', key) - per_user
    if over > 0 then
      redis.call('ZREMRANGEBYRANK', key, 0, over - 1)
    end
    redis.call('PEXPIRE', key, keep)
  end
end
return n + m
",
    )
}

/// Takes the invitations of a node whose lease lapsed: each becomes this
/// node's (its `o` field too). KEYS: the dead node's lease, its owned set,
/// this node's lease, this node's owned set, nodes. ARGV: this node's epoch,
/// the dead node's name, this node's name, the prefix of invitation keys
/// (`{prefix}:inv:`). Returns the ids that moved, or nil when the other
/// node is alive after all.
pub(crate) fn adopt() -> Script {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return redis.error_reply('FENCED this node no longer holds its lease')
end
local ids = redis.call('SMEMBERS', KEYS[2])
for _, id in ipairs(ids) do
  local key = ARGV[4] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, 'o', ARGV[3])
  end
  redis.call('SADD', KEYS[4], id)
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[5], ARGV[2])
return ids
",
    )
}

/// Claims an invitation id for this node before the hub creates it (a send
/// with an idempotency key, whose id every node derives the same), fenced
/// by the node's lease like a commit (a node taken for dead claims nothing).
/// KEYS: the invitation's key, this node's owned set, this node's lease.
/// ARGV: node, id, epoch. Returns the owner: this node if the id was free
/// (or already this node's), else the node that has it.
pub fn claim_id() -> Script {
    Script::new(
        r"
if redis.call('GET', KEYS[3]) ~= ARGV[3] then
  return redis.error_reply('FENCED this node no longer holds its lease')
end
if redis.call('HSETNX', KEYS[1], 'o', ARGV[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[2])
  return ARGV[1]
end
return redis.call('HGET', KEYS[1], 'o')
",
    )
}

/// Gives a lease up at a clean stop. KEYS: lease. ARGV: epoch.
pub(crate) fn release() -> Script {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
",
    )
}
