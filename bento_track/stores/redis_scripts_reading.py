"""The Redis store's scripts for figures and for an operator: `STATS`
reads a partition's figures (read only: `stats()`, `bento-track store`),
`ADOPT` hands the unassigned events to an account (`bento-track store URL
--adopt`). Keys and shared functions: `redis_scripts`.

`ADOPT` alone spans two accounts' keys: the unassigned events written
before stores knew accounts (`bt:{namespace}:...`) and the account that
adopts them.
"""

from __future__ import annotations

from .redis_scripts import script

__all__ = ["ADOPT", "STATS"]

# KEYS: legacy q tot rel out seq procs log fly pause epoch, then the
# adopting account's q tot out. ARGV: visibility ms, most chunks to look at,
# the id to start after ('-': the first). Moves the unassigned chunks no live
# process holds (waiting ones, released ones, those of holders quiet for the
# visibility timeout) into the account's queue, as waiting chunks; chunks a
# live process of the old version holds stay (a later call takes them).
# Once nothing is left, the old keys are deleted. Not allow-oom: it adds.
# Returns {events moved, chunks moved, the last id looked at ('' : the end),
# events left behind}.
ADOPT = script(
    "",
    """
local lq, ltot, lrel, lout = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local q, tot, out = KEYS[11], KEYS[12], KEYS[13]
local vis, most, start = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
if redis.call('EXISTS', lq) == 0 then
  for i = 2, 10 do redis.call('DEL', KEYS[i]) end
  return {0, 0, '', 0}
end
redis.pcall('XGROUP', 'CREATE', q, 'ship', '0', 'MKSTREAM')
local entries = redis.call('XRANGE', lq, start, '+', 'COUNT', most)
local moved, chunks, last = 0, 0, ''
for i = 1, #entries do
  local id, f = entries[i][1], fields(entries[i])
  local n, b = tonumber(f.n), tonumber(f.b)
  last = id
  local p = redis.pcall('XPENDING', lq, 'ship', id, id, 1)
  local pending = type(p) == 'table' and #p > 0
  local released = redis.call('SISMEMBER', lrel, id) == 1
  if not pending or released or tonumber(p[1][3]) >= vis then
    redis.call('XADD', q, '*', 'd', f.d, 'n', n, 'b', b, 'o', 'adopted')
    redis.call('HINCRBY', tot, 'n', n)
    redis.call('HINCRBY', tot, 'b', b)
    redis.call('HINCRBY', tot, 'wn', n)
    redis.call('HINCRBY', tot, 'wb', b)
    redis.call('HINCRBY', out, 'adopted', n)
    if pending then redis.call('XACK', lq, 'ship', id) end
    redis.call('XDEL', lq, id)
    redis.call('SREM', lrel, id)
    redis.call('HINCRBY', ltot, 'n', -n)
    redis.call('HINCRBY', ltot, 'b', -b)
    if not pending or released then
      redis.call('HINCRBY', ltot, 'wn', -n)
      redis.call('HINCRBY', ltot, 'wb', -b)
    end
    settle_origin(lout, f.o, n)
    moved, chunks = moved + n, chunks + 1
  end
end
if #entries < most then last = '' end
local left = tonumber(redis.call('HGET', ltot, 'n') or '0')
if redis.call('XLEN', lq) == 0 then
  for i = 1, 10 do redis.call('DEL', KEYS[i]) end
  left = 0
end
return {moved, chunks, last, left}
""",
)

# KEYS: q tot log fly pause procs rel. Read only. Returns {now ms, n, b, wn,
# wb, reclaimed, dropped, limit, window ms, budget used, paused until ms,
# oldest chunk's ms (-1: none), consumers holding chunks, processes seen in
# the last minute, pending chunks}. A released chunk stays pending under the
# consumer that released it until another claims it, but nobody holds it:
# it counts for neither.
STATS = script(
    "flags=no-writes,allow-oom",
    """
local q, tot, log, fly, pause, procs, rel = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = {}
local raw = redis.call('HGETALL', tot)
for i = 1, #raw, 2 do h[raw[i]] = tonumber(raw[i + 1]) end
local function get(k) return h[k] or 0 end
local win = get('window')
local used = redis.call('ZCOUNT', log, '(' .. (now - win), '+inf') + redis.call('ZCARD', fly)
local oldest, holders, pending = -1, 0, 0
if redis.call('EXISTS', q) == 1 then
  local first = redis.call('XRANGE', q, '-', '+', 'COUNT', 1)
  if #first > 0 then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
  local cons = redis.pcall('XINFO', 'CONSUMERS', q, 'ship')
  if type(cons) == 'table' then
    for _, c in ipairs(cons) do
      local name, count = nil, 0
      for i = 1, #c, 2 do
        if c[i] == 'name' then name = c[i + 1] end
        if c[i] == 'pending' then count = c[i + 1] end
      end
      if count > 0 and redis.call('SCARD', rel) > 0 then
        count = 0
        local ids = redis.call('XPENDING', q, 'ship', '-', '+', 1000000, name)
        for _, e in ipairs(ids) do
          if redis.call('SISMEMBER', rel, e[1]) == 0 then count = count + 1 end
        end
      end
      if count > 0 then
        holders = holders + 1
        pending = pending + count
      end
    end
  end
end
return {now, get('n'), get('b'), get('wn'), get('wb'), get('reclaimed'), get('dropped'),
  get('limit'), win, used, tonumber(redis.call('GET', pause) or '0'), oldest, holders,
  redis.call('ZCOUNT', procs, now - 60000, '+inf'), pending}
""",
)
