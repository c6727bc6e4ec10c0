"""The Lua scripts of the Redis store (`bento_track.stores.redis`).

Each script is one atomic step on the server, timed by the server's own
`TIME` (so the clocks of the hosts that call it never matter), in integer
milliseconds (Lua numbers come back to Redis truncated to integers). Keys
(an account's all under one `{namespace:account}` hash tag, so a cluster
keeps them in one slot; `redis.py` names them):

- `q`: a Stream of chunks of encoded events (fields `d` the events joined by
  newlines, `n` how many, `b` their bytes, `o` the process that put them),
  read through the consumer group `ship`. A chunk is pending (in the group's
  PEL) while a process holds it, and deleted once settled.
- `tot`: a hash of totals: `n`/`b` events and bytes in `q`, `wn`/`wb` those
  waiting (not held by a live process), `reclaimed`, `dropped`, `sent` (when
  a batch last left), `limit`/`window` (the budget last used), `clock` (the
  latest server time seen: a server clock that steps back never shortens a
  wait).
- `log`: a sorted set of request completions (score: server ms; member: the
  permit); `fly`: permits of requests in flight (score: when granted).
- `pause`: server ms until which nobody sends (a 429).
- `epoch`: set on first use; its absence means the server lost its data.
- `rel`: chunks put back by a live process (pending, idle "forever").
- `out`: per process, how many of the events it put are still in `q`.
- `seq`: per process, the last write it applied (a write retried after a
  lost answer is applied once).
- `procs`: processes seen recently (score: when).

The scripts that read figures and hand unassigned events over (`STATS`,
`ADOPT`) are in `redis_scripts_reading`.
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE",
    "CLAIM",
    "COMPLETE",
    "ENQUEUE",
    "FORGET",
    "PAUSE",
    "RELEASE",
    "RENEW",
    "REWRITE",
    "SETTLE",
    "SWEEP",
    "script",
]

#: ms added to the window, for clock granularity between Redis and Bento
EPSILON_MS = 5
#: idle time given to a chunk put back, so any process takes it at once
RELEASED_IDLE_MS = 100_000_000_000

_PRELUDE = """
local EPS = @EPS@

local function now_ms(tot)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = tonumber(redis.call('HGET', tot, 'clock') or '0')
  if now <= last then return last end
  redis.call('HSET', tot, 'clock', now)
  return now
end

-- HINCRBY by a Lua number: never "-0", which Redis refuses as an integer.
local function incr(key, name, v)
  if v ~= 0 then return redis.call('HINCRBY', key, name, v) end
  return tonumber(redis.call('HGET', key, name) or '0')
end

local function fields(entry)
  local f, r = entry[2], {}
  for i = 1, #f, 2 do r[f[i]] = f[i + 1] end
  return r
end

-- The group's cursor: chunks after it were never handed to anyone.
local function cursor(q)
  local groups = redis.call('XINFO', 'GROUPS', q)
  for _, g in ipairs(groups) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == 'ship' then return last end
  end
  return '0-0'
end

local function settle_origin(out, origin, n)
  if incr(out, origin, -n) <= 0 then redis.call('HDEL', out, origin) end
end

-- A server that lost its data (restarted empty, flushed) may have granted
-- a whole window's worth just before: count `limit` requests as completed
-- when it started (INFO's uptime), so the first window after a restart is
-- not a second one. On a server up for longer than a window it costs nothing.
local function cold_start(tot, log, epoch, limit, now)
  if redis.call('EXISTS', epoch) == 1 then return end
  local info = redis.call('INFO', 'server')
  local up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
  local started = now - up * 1000
  for i = 1, limit do redis.call('ZADD', log, started, 'start:' .. i) end
  redis.call('SET', epoch, now)
end

-- ms until one more request may start (0: now; -1: only a request in
-- flight ending can free a slot). A sliding-window log of completions, in
-- flight requests counted as completing later (see _core/budget.py).
-- A permit in flight longer than the visibility timeout belongs to a process
-- that died or lost Redis: counted as completed now.
local function budget_wait(tot, log, fly, limit, win, vis, now)
  local stale = redis.call('ZRANGEBYSCORE', fly, '-inf', now - vis)
  for i = 1, #stale do
    redis.call('ZREM', fly, stale[i])
    redis.call('ZADD', log, now, stale[i])
  end
  local keep = math.max(win, tonumber(redis.call('HGET', tot, 'window') or '0'))
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - keep - EPS - 1000)
  local horizon = now - win - EPS
  local live = redis.call('ZCOUNT', log, '(' .. horizon, '+inf')
  local over = live + redis.call('ZCARD', fly) - limit + 1
  if over <= 0 then return 0 end
  if over > live then return -1 end
  local e = redis.call('ZRANGEBYSCORE', log, '(' .. horizon, '+inf', 'WITHSCORES',
    'LIMIT', over - 1, 1)
  return math.max(1, tonumber(e[2]) + win + EPS - now)
end
""".replace("@EPS@", str(EPSILON_MS))


def script(flags: str, body: str) -> str:
    """A script's text: the flags line, the shared functions, `body`."""
    return f"#!lua {flags}\n{_PRELUDE}\n{body}".replace("#!lua \n", "#!lua\n")


# KEYS: q tot out seq. ARGV: me, seq, cap, oldest (1/0), then (data, n, bytes)
# per chunk. Not allow-oom: a Redis out of memory refuses it before it runs,
# and the caller keeps the events locally.
# Returns {kept chunks (-1: this write was applied before), this process's
# events in the store, 1 if this write created the stream (a new or lost
# partition: the caller registers its account), data of waiting chunks
# deleted to make room...}.
ENQUEUE = script(
    "",
    """
local q, tot, out, seqs = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local me, seq, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local oldest = ARGV[4] == '1'
if seq <= tonumber(redis.call('HGET', seqs, me) or '0') then return {-1} end
local made = redis.pcall('XGROUP', 'CREATE', q, 'ship', '0', 'MKSTREAM')
local held = tonumber(redis.call('HGET', tot, 'b') or '0')
local add = 0
for i = 5, #ARGV, 3 do add = add + tonumber(ARGV[i + 2]) end
local result = {0, 0, 0}
if type(made) == 'table' and made.ok then result[3] = 1 end
local dropped = 0
if held + add > cap and oldest then
  -- Only waiting chunks: a pending one is being sent (trimming it would
  -- lose it silently, see scale-out.md).
  local need, freed, last = held + add - cap, 0, cursor(q)
  while freed < need do
    local cand = redis.call('XRANGE', q, '(' .. last, '+', 'COUNT', 100)
    if #cand == 0 then break end
    for i = 1, #cand do
      local id, f = cand[i][1], fields(cand[i])
      local n, b = tonumber(f.n), tonumber(f.b)
      last = id
      if redis.call('XDEL', q, id) == 1 then
        redis.call('HINCRBY', tot, 'n', -n)
        redis.call('HINCRBY', tot, 'b', -b)
        redis.call('HINCRBY', tot, 'wn', -n)
        redis.call('HINCRBY', tot, 'wb', -b)
        settle_origin(out, f.o, n)
        dropped = dropped + n
        freed = freed + b
        table.insert(result, f.d)
      end
      if freed >= need then break end
    end
  end
  held = held - freed
end
local kept, kn, kb = 0, 0, 0
for i = 5, #ARGV, 3 do
  local n, b = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if held + b > cap then
    dropped = dropped + n
  elseif kept == (i - 5) / 3 then
    redis.call('XADD', q, '*', 'd', ARGV[i], 'n', n, 'b', b, 'o', me)
    held = held + b
    kept, kn, kb = kept + 1, kn + n, kb + b
  else
    dropped = dropped + n
  end
end
if kn > 0 then
  redis.call('HINCRBY', tot, 'n', kn)
  redis.call('HINCRBY', tot, 'b', kb)
  redis.call('HINCRBY', tot, 'wn', kn)
  redis.call('HINCRBY', tot, 'wb', kb)
  redis.call('HINCRBY', out, me, kn)
end
if dropped > 0 then redis.call('HINCRBY', tot, 'dropped', dropped) end
redis.call('HSET', seqs, me, seq)
result[1] = kept
result[2] = tonumber(redis.call('HGET', out, me) or '0')
return result
""",
)

# KEYS: q tot log fly pause epoch rel procs. ARGV: me, permit, limit, window
# ms, visibility ms, max_count, max_bytes, flush_interval ms, force (1/0).
# The pause, the budget and whether a batch is due are checked, and a batch
# is taken (chunks a dead process held first, then waiting ones) with its
# permit, all at once: a permit is spent if and only if a batch leaves.
# Returns {0} (nothing waiting), {1, wait ms, waiting events, bytes, bound to
# the budget or a pause (1/0)}, or {2, waiting events, bytes, then (id, data,
# n, origin) per chunk}.
CLAIM = script(
    "flags=allow-oom",
    """
local q, tot, log, fly, pause, epoch, rel, procs =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local me, permit = ARGV[1], ARGV[2]
local limit, win, vis = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local max_count, max_bytes = tonumber(ARGV[6]), tonumber(ARGV[7])
local flush, force = tonumber(ARGV[8]), ARGV[9] == '1'
local now = now_ms(tot)
cold_start(tot, log, epoch, limit, now)
redis.pcall('XGROUP', 'CREATE', q, 'ship', '0', 'MKSTREAM')
redis.call('ZADD', procs, now, me)
local wn = tonumber(redis.call('HGET', tot, 'wn') or '0')
local wb = tonumber(redis.call('HGET', tot, 'wb') or '0')
local stale = #redis.call('XPENDING', q, 'ship', 'IDLE', vis, '-', '+', 1) > 0
if wn <= 0 and not stale then return {0} end
local hold = math.max(0, tonumber(redis.call('GET', pause) or '0') - now)
local wait = budget_wait(tot, log, fly, limit, win, vis, now)
if wait < 0 then wait = 50 end
hold = math.max(hold, wait)
local due = 0
if not force and not stale and wn < max_count and wb < max_bytes then
  local first = redis.call('XRANGE', q, '(' .. cursor(q), '+', 'COUNT', 1)
  if #first > 0 then
    local born = tonumber(string.match(first[1][1], '^(%d+)'))
    local since = math.max(born, tonumber(redis.call('HGET', tot, 'sent') or '0'))
    due = math.max(0, since + flush - now)
  end
end
if hold > 0 or due > 0 then
  local bound = 0
  if hold > 0 then bound = 1 end
  return {1, math.max(hold, due), wn, wb, bound}
end
local result = {2, wn, wb}
local count, bytes, back_n, back_b, taken, fresh_n, fresh_b = 0, 0, 0, 0, 0, 0, 0
-- A batch holds one kind of record (_core/kinds.py): a chunk's kind is
-- its data's first byte ('S' upsert, 'C' command, else an event), and the
-- batch is the first chunk's kind, commands at most 100 a request.
local kind = nil
local function same_kind(d)
  local k = string.sub(d, 1, 1)
  if k ~= 'S' and k ~= 'C' then k = '{' end
  if kind == nil then
    kind = k
    if k == 'C' then max_count = math.min(max_count, 100) end
    return true
  end
  return k == kind
end
if stale then
  local pend = redis.call('XPENDING', q, 'ship', 'IDLE', vis, '-', '+', max_count)
  for i = 1, #pend do
    local id = pend[i][1]
    local e = redis.call('XRANGE', q, id, id)
    if #e == 0 then
      redis.call('XACK', q, 'ship', id)
      redis.call('SREM', rel, id)
    else
      local f = fields(e[1])
      local n, b = tonumber(f.n), tonumber(f.b)
      if not same_kind(f.d) then break end
      if count > 0 and (count + n > max_count or bytes + b > max_bytes) then break end
      redis.call('XCLAIM', q, 'ship', me, 0, id, 'JUSTID')
      if redis.call('SREM', rel, id) == 1 then
        back_n, back_b = back_n + n, back_b + b
      else
        taken = taken + n
      end
      count, bytes = count + n, bytes + b
      table.insert(result, id)
      table.insert(result, f.d)
      table.insert(result, n)
      table.insert(result, f.o)
    end
  end
end
if count < max_count and bytes < max_bytes then
  local cand = redis.call('XRANGE', q, '(' .. cursor(q), '+', 'COUNT', max_count - count)
  local k = 0
  for i = 1, #cand do
    local f = fields(cand[i])
    local n, b = tonumber(f.n), tonumber(f.b)
    if not same_kind(f.d) then break end
    if count > 0 and (count + n > max_count or bytes + b > max_bytes) then break end
    k = k + 1
    count, bytes = count + n, bytes + b
    fresh_n, fresh_b = fresh_n + n, fresh_b + b
    table.insert(result, cand[i][1])
    table.insert(result, f.d)
    table.insert(result, n)
    table.insert(result, f.o)
  end
  if k > 0 then
    -- The same k chunks: nothing else runs between the XRANGE and this.
    redis.call('XREADGROUP', 'GROUP', 'ship', me, 'COUNT', k, 'STREAMS', q, '>')
  end
end
if count == 0 then return {0} end
incr(tot, 'wn', -(fresh_n + back_n))
incr(tot, 'wb', -(fresh_b + back_b))
incr(tot, 'reclaimed', taken)
redis.call('ZADD', fly, now, permit)
redis.call('HSET', tot, 'limit', limit, 'window', win)
return result
""",
)

# KEYS: tot log fly pause epoch. ARGV: permit, limit, window ms, visibility ms.
# Returns {0} (granted) or {1, wait ms, bound to a pause (1/0)}.
ACQUIRE = script(
    "flags=allow-oom",
    """
local tot, log, fly, pause, epoch = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local permit = ARGV[1]
local limit, win, vis = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms(tot)
cold_start(tot, log, epoch, limit, now)
local paused = math.max(0, tonumber(redis.call('GET', pause) or '0') - now)
local wait = budget_wait(tot, log, fly, limit, win, vis, now)
if wait < 0 then wait = 50 end
if paused > 0 or wait > 0 then return {1, math.max(paused, wait)} end
redis.call('ZADD', fly, now, permit)
redis.call('HSET', tot, 'limit', limit, 'window', win)
return {0}
""",
)

# KEYS: tot log fly. ARGV: permit. The request ended: its completion time
# enters the log (even for a permit the server forgot in a restart).
COMPLETE = script(
    "flags=allow-oom",
    """
local tot, log, fly = KEYS[1], KEYS[2], KEYS[3]
local now = now_ms(tot)
redis.call('ZREM', fly, ARGV[1])
redis.call('ZADD', log, now, ARGV[1])
return now
""",
)

# KEYS: tot pause. ARGV: ms. Never shortens a pause. Returns its end (ms).
PAUSE = script(
    "flags=allow-oom",
    """
local tot, pause = KEYS[1], KEYS[2]
local now = now_ms(tot)
local till = now + tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', pause) or '0')
if till > cur then redis.call('SET', pause, till) else till = cur end
return till
""",
)

# KEYS: q tot out rel. ARGV: sent (1/0), then chunk ids. Delete settled
# chunks (delivered or refused). Idempotent: a chunk already gone (settled by
# a retry, or by a process that took it over) is not counted twice.
# Returns the events deleted.
SETTLE = script(
    "flags=allow-oom",
    """
local q, tot, out, rel = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_ms(tot)
local gone = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local e = redis.call('XRANGE', q, id, id)
  redis.pcall('XACK', q, 'ship', id)
  if #e > 0 and redis.call('XDEL', q, id) == 1 then
    local f = fields(e[1])
    local n, b = tonumber(f.n), tonumber(f.b)
    redis.call('HINCRBY', tot, 'n', -n)
    redis.call('HINCRBY', tot, 'b', -b)
    if redis.call('SREM', rel, id) == 1 then
      redis.call('HINCRBY', tot, 'wn', -n)
      redis.call('HINCRBY', tot, 'wb', -b)
    end
    settle_origin(out, f.o, n)
    gone = gone + n
  end
end
if ARGV[1] == '1' then redis.call('HSET', tot, 'sent', now) end
return gone
""",
)

# KEYS: q tot rel. ARGV: me, then chunk ids. Put chunks this process holds
# back for any process to take at once (and first, in order): they stay
# pending, idle "forever", and are counted as waiting again.
RELEASE = script(
    "flags=allow-oom",
    """
local q, tot, rel = KEYS[1], KEYS[2], KEYS[3]
local me = ARGV[1]
for i = 2, #ARGV do
  local id = ARGV[i]
  local p = redis.pcall('XPENDING', q, 'ship', id, id, 1)
  if type(p) == 'table' and #p > 0 and p[1][2] == me then
    local e = redis.call('XRANGE', q, id, id)
    if #e > 0 then
      redis.call('XCLAIM', q, 'ship', me, 0, id, 'IDLE', @IDLE@, 'JUSTID')
      if redis.call('SADD', rel, id) == 1 then
        local f = fields(e[1])
        redis.call('HINCRBY', tot, 'wn', tonumber(f.n))
        redis.call('HINCRBY', tot, 'wb', tonumber(f.b))
      end
    end
  end
end
return 1
""".replace("@IDLE@", str(RELEASED_IDLE_MS)),
)

# KEYS: q tot out rel. ARGV: me, a chunk id to delete ('' for none), its
# origin, then (data, n, bytes) per new chunk. Part of a chunk goes back
# as a new waiting chunk (a bisection half put back), the rest of it being
# settled already or still held: one step, so a crash repeats nothing.
REWRITE = script(
    "flags=allow-oom",
    """
local q, tot, out, rel = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local old, origin = ARGV[2], ARGV[3]
redis.pcall('XGROUP', 'CREATE', q, 'ship', '0', 'MKSTREAM')
for i = 4, #ARGV, 3 do
  local n, b = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  redis.call('XADD', q, '*', 'd', ARGV[i], 'n', n, 'b', b, 'o', origin)
  redis.call('HINCRBY', tot, 'n', n)
  redis.call('HINCRBY', tot, 'b', b)
  redis.call('HINCRBY', tot, 'wn', n)
  redis.call('HINCRBY', tot, 'wb', b)
  redis.call('HINCRBY', out, origin, n)
end
if old ~= '' then
  local e = redis.call('XRANGE', q, old, old)
  redis.pcall('XACK', q, 'ship', old)
  if #e > 0 and redis.call('XDEL', q, old) == 1 then
    local f = fields(e[1])
    redis.call('HINCRBY', tot, 'n', -tonumber(f.n))
    redis.call('HINCRBY', tot, 'b', -tonumber(f.b))
    if redis.call('SREM', rel, old) == 1 then
      redis.call('HINCRBY', tot, 'wn', -tonumber(f.n))
      redis.call('HINCRBY', tot, 'wb', -tonumber(f.b))
    end
    settle_origin(out, f.o, tonumber(f.n))
  end
end
return 1
""",
)

# KEYS: q. ARGV: me, chunk ids. Still working on them: reset their idle time
# (only those still ours).
RENEW = script(
    "flags=allow-oom",
    """
local q, me = KEYS[1], ARGV[1]
for i = 2, #ARGV do
  local p = redis.pcall('XPENDING', q, 'ship', ARGV[i], ARGV[i], 1)
  if type(p) == 'table' and #p > 0 and p[1][2] == me then
    redis.call('XCLAIM', q, 'ship', me, 0, ARGV[i], 'JUSTID')
  end
end
return 1
""",
)

# KEYS: q procs seq out. ARGV: me. A process leaves: forgotten as a consumer
# when it holds nothing, and its counters when nothing of it is left.
FORGET = script(
    "flags=allow-oom",
    """
local q, procs, seqs, out = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local me = ARGV[1]
redis.call('ZREM', procs, me)
local pending = redis.pcall('XPENDING', q, 'ship', '-', '+', 1, me)
if type(pending) == 'table' and #pending == 0 then
  redis.pcall('XGROUP', 'DELCONSUMER', q, 'ship', me)
end
redis.call('HDEL', seqs, me)
if tonumber(redis.call('HGET', out, me) or '0') <= 0 then redis.call('HDEL', out, me) end
return 1
""",
)

# KEYS: q procs seq. ARGV: age ms. Forget processes not seen for that long
# that hold nothing (their consumers and write counters), bounding the group.
SWEEP = script(
    "flags=allow-oom",
    """
local q, procs, seqs = KEYS[1], KEYS[2], KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', procs, '-inf', now - tonumber(ARGV[1]))
local cons = redis.pcall('XINFO', 'CONSUMERS', q, 'ship')
if type(cons) == 'table' then
  for _, c in ipairs(cons) do
    local name, pending
    for i = 1, #c, 2 do
      if c[i] == 'name' then name = c[i + 1] end
      if c[i] == 'pending' then pending = c[i + 1] end
    end
    if pending == 0 and not redis.call('ZSCORE', procs, name) then
      redis.call('XGROUP', 'DELCONSUMER', q, 'ship', name)
    end
  end
end
for _, name in ipairs(redis.call('HKEYS', seqs)) do
  if not redis.call('ZSCORE', procs, name) then redis.call('HDEL', seqs, name) end
end
return 1
""",
)
