"""The Redis bus's one Lua script: every operation a node sends, in batches, atomically.

A node's writer task sends whatever has queued up as **one** ``EVALSHA`` of this script (a
batch of operations, executed in order, atomically: Redis runs one script at a time). That is
what makes presence and retention exact: "look up presence, else append to the buffer"
(``S``) and "register presence" (``R``) / "take the buffer" (``T``) can never interleave
half-way, on one node or across nodes. The argument is in docs/cluster.md.

Keys (``P`` = the bus URL's prefix):

``P nodes``              zset: node instance → lease deadline (Redis ms); alive while in the future
``P names``              hash: node instance → its ``--node-id``
``P b:{inst}``           the last batch number a node's batches were applied up to (a batch sent
                         again after a lost reply is not applied twice)
``P p:{arn}``            hash: ``h:{key}`` → ``inst \\t token \\t virtual`` (who holds the key);
                         ``o:{key}`` → ``inst \\t token`` of the older holder that must hand over
``P np:{inst}``          set of ``arn|key`` a node holds (for reaping a dead node)
``P q:{arn}|{key}``      list: retained/undelivered messages of a key, oldest first; each entry
                         ``seq \\t type \\t sender \\t expires \\t envelope``; ``seq`` grows
                         (``max(previous + 1, Redis time in µs)``), so it never repeats for a key
``P k:{arn}``            set of keys with a list (for DeleteSignalingChannel)
``P r:{arn}|{m|v}``      hash: the channel's connect token bucket per role (tokens, stamp)
``P n:{inst}``           the node's inbox (Pub/Sub): ``m`` (a message for a holder, with the seq
                         of the entry before it), ``x`` (taken over), ``r`` (handed over)

Operations (``ARGV`` after ``prefix, inst, batch, now``; ``now`` is the node's clock, used for
message expiry and the connect bucket, so both follow the application's clock):

``P channel data``                               PUBLISH (topic messages, wake-ups, trace) → listeners
``S arn key type sender expires envelope``       post: → ``{live, replaced, expired 'type\\tsender'…}``
``R arn key token virtual max_viewers rate``     register → ``{'ok', replaced}`` | ``{'viewers'}`` | ``{'rate'}``
``T arn key token ack max``                      take → ``{'ok', {expired 'type\\tsender'}, entries…}`` | ``{'wait', ms}`` | ``{'gone'}``
``A arn key token written final``                ack (``final`` 1: unregister) → 1
``D arn``                                        drop a deleted channel → 1
``L name lease_ms``                              renew this node's lease → whether it was alive
``X``                                            reap dead nodes' presence → how many entries
``E arn``                                        drop the expired entries of a channel's keys nobody
                                                 holds → ``{'key\\ttype\\tsender'…}`` (only for a
                                                 followed channel: the trace shows them)
``Q arn key``                                    peek at a key's unexpired entries
``H arn key``                                    whether a live node holds the key → 1 | 0
"""

from __future__ import annotations

from .base import MAX_RETAINED_PER_RECIPIENT

LUA = r"""
local P, inst, bseq, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lastk = P .. 'b:' .. inst
local last = tonumber(redis.call('GET', lastk) or '0')
if bseq <= last then return {'dup'} end
redis.call('SET', lastk, ARGV[3], 'PX', 86400000)
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local NODES = P .. 'nodes'
local CAP = __CAP__
local alive_cache = {}
local function alive(i)
  local v = alive_cache[i]
  if v == nil then
    local s = redis.call('ZSCORE', NODES, i)
    v = (s and tonumber(s) > nowms) or false
    alive_cache[i] = v
  end
  return v
end
local function fmt(n) return string.format('%.0f', n) end
local function qkey(arn, key) return P .. 'q:' .. arn .. '|' .. key end
local function entry_seq(e) return tonumber(string.match(e, '^(%d+)')) end
local function parse(e)
  local s, ty, se, ex = string.match(e, '^(%d+)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t')
  return tonumber(s), ty, se, tonumber(ex)
end
local function holder(h) return string.match(h, '^([^\t]*)\t([^\t]*)\t([^\t]*)$') end
local GT = (redis.REDIS_VERSION_NUM or 0) >= 0x070000  -- PEXPIRE ... GT (Redis 7)
local function extend(k, ms, fresh)
  if fresh then redis.call('PEXPIRE', k, ms) return end  -- a key just made has no TTL yet
  -- One command when it lengthens the TTL (the usual case: each message expires after the last);
  -- GT leaves a key without a TTL alone, and a longer TTL must stay: both checked the old way.
  if GT and redis.call('PEXPIRE', k, ms, 'GT') == 1 then return end
  if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, ms) end
end
local TRIM_CHUNK = 8
local function trim(qk, upto)
  -- Entries are in seq order: count those <= upto in the head, drop them with one LTRIM.
  while true do
    local items = redis.call('LRANGE', qk, 0, TRIM_CHUNK - 1)
    local n = 0
    for _, e in ipairs(items) do
      if entry_seq(e) > upto then break end
      n = n + 1
    end
    if n == 0 then return end
    redis.call('LTRIM', qk, n, -1)
    if n < TRIM_CHUNK then return end
  end
end
local function notify(i, text) redis.call('PUBLISH', P .. 'n:' .. i, text) end

local function op_send(arn, key, typ, sender, exps, env)
  local expires = tonumber(exps)
  if expires <= now then return {-1, 0, typ .. '\t' .. sender} end
  local qk = qkey(arn, key)
  local h = redis.call('HGET', P .. 'p:' .. arn, 'h:' .. key)
  local hi, ht
  local live = false
  if h then hi, ht = holder(h); live = alive(hi) end
  local out = {0, 0}
  if not live and (typ == 'SDP_OFFER' or typ == 'SDP_ANSWER') then
    for _, item in ipairs(redis.call('LRANGE', qk, 0, -1)) do
      local _, ty, se = parse(item)
      if ty == typ and se == sender then
        redis.call('LREM', qk, 1, item)
        out[2] = 1
        break
      end
    end
  end
  local empty = false
  while true do
    local head = redis.call('LINDEX', qk, 0)
    if not head then empty = true break end
    local _, ty, se, ex = parse(head)
    if ex > now then break end
    redis.call('LPOP', qk)
    out[#out + 1] = ty .. '\t' .. se
  end
  local prev = 0
  if not empty then prev = entry_seq(redis.call('LINDEX', qk, -1)) end
  local seq = math.max(prev + 1, nowus)
  local entry = fmt(seq) .. '\t' .. typ .. '\t' .. sender .. '\t' .. exps .. '\t' .. env
  local len = redis.call('RPUSH', qk, entry)
  if len > CAP then
    local _, ty, se = parse(redis.call('LPOP', qk))
    out[#out + 1] = ty .. '\t' .. se
  end
  local ms = math.ceil((expires - now) * 1000) + 1000
  extend(qk, ms, len == 1)
  local kk = P .. 'k:' .. arn
  redis.call('SADD', kk, key)
  extend(kk, ms, false)
  if live then
    out[1] = 1
    notify(hi, 'm\t' .. ht .. '\t' .. fmt(prev) .. '\t' .. arn .. '\t' .. key .. '\t' .. entry)
  end
  return out
end

local function op_register(arn, key, tok, virt, maxv, rate)
  maxv = tonumber(maxv)
  rate = tonumber(rate)
  local pk = P .. 'p:' .. arn
  local hk = 'h:' .. key
  local cur = redis.call('HGET', pk, hk)
  local ci, ct
  local clive = false
  if cur then ci, ct = holder(cur); clive = alive(ci) end
  if virt == '0' then
    if key ~= '' and maxv >= 0 then
      local count = 0
      local all = redis.call('HGETALL', pk)
      for i = 1, #all, 2 do
        local f = all[i]
        if string.sub(f, 1, 2) == 'h:' and f ~= 'h:' and f ~= hk then
          local vi, _, vv = holder(all[i + 1])
          if vv == '0' and alive(vi) then count = count + 1 end
        end
      end
      if count >= maxv then return {'viewers'} end
    end
    if rate > 0 then
      local rk = P .. 'r:' .. arn .. (key == '' and '|m' or '|v')  -- a bucket per role, as AWS
      local b = redis.call('HMGET', rk, 't', 's')
      local cap = math.max(rate, 1)
      local tokens = cap
      if b[1] then tokens = math.min(cap, tonumber(b[1]) + (now - tonumber(b[2])) * rate) end
      local ok = tokens >= 1
      if ok then tokens = tokens - 1 end
      redis.call('HSET', rk, 't', string.format('%.17g', tokens), 's', ARGV[4])
      redis.call('PEXPIRE', rk, math.ceil(cap / rate * 1000) + 1000)
      if not ok then return {'rate'} end
    end
  end
  redis.call('HSET', pk, hk, inst .. '\t' .. tok .. '\t' .. virt)
  redis.call('SADD', P .. 'np:' .. inst, arn .. '|' .. key)
  local replaced = 0
  if cur and clive then
    replaced = 1
    local o = redis.call('HGET', pk, 'o:' .. key)
    local keep = false
    if o then keep = alive(string.match(o, '^([^\t]*)')) end
    if not keep then redis.call('HSET', pk, 'o:' .. key, ci .. '\t' .. ct) end
    if ci ~= inst then notify(ci, 'x\t' .. ct .. '\t' .. arn .. '\t' .. key) end
  elseif cur then
    redis.call('SREM', P .. 'np:' .. ci, arn .. '|' .. key)
  end
  return {'ok', replaced}
end

local function op_take(arn, key, tok, ack, max)
  ack = tonumber(ack)
  max = tonumber(max)
  local pk = P .. 'p:' .. arn
  local ho = redis.call('HMGET', pk, 'h:' .. key, 'o:' .. key)
  local h, o = ho[1], ho[2]
  if not h then return {'gone'} end
  local hi, ht = holder(h)
  if hi ~= inst or ht ~= tok then return {'gone'} end
  if o then
    local oi = string.match(o, '^([^\t]*)')
    if oi ~= inst and alive(oi) then
      return {'wait', tonumber(redis.call('ZSCORE', NODES, oi)) - nowms}
    end
    redis.call('HDEL', pk, 'o:' .. key)
  end
  local qk = qkey(arn, key)
  trim(qk, ack)
  local out = {'ok', {}}
  if max > 0 then
    for _, item in ipairs(redis.call('LRANGE', qk, 0, max - 1)) do
      local _, ty, se, ex = parse(item)
      if ex <= now then
        redis.call('LREM', qk, 1, item)
        table.insert(out[2], ty .. '\t' .. se)
      else
        out[#out + 1] = item
      end
    end
  end
  return out
end

local function op_ack(arn, key, tok, written, final)
  written = tonumber(written)
  local pk = P .. 'p:' .. arn
  local me = inst .. '\t' .. tok
  local ho = redis.call('HMGET', pk, 'h:' .. key, 'o:' .. key)
  local h, o = ho[1], ho[2]
  local mine = h and string.sub(h, 1, #me + 1) == me .. '\t'
  local pend = o and o == me
  if (mine or pend) and written > 0 then trim(qkey(arn, key), written) end
  if final == '1' then
    if mine then
      redis.call('HDEL', pk, 'h:' .. key)
      redis.call('SREM', P .. 'np:' .. inst, arn .. '|' .. key)
    end
    if pend then
      redis.call('HDEL', pk, 'o:' .. key)
      if h then
        local ni, nt = holder(h)
        notify(ni, 'r\t' .. nt .. '\t' .. arn .. '\t' .. key)
      end
    end
  end
  return 1
end

local function op_drop(arn)
  local kk = P .. 'k:' .. arn
  for _, key in ipairs(redis.call('SMEMBERS', kk)) do redis.call('DEL', qkey(arn, key)) end
  redis.call('DEL', kk, P .. 'p:' .. arn, P .. 'r:' .. arn)
  return 1
end

local function op_lease(name, ms)
  local was = alive(inst)
  redis.call('ZADD', NODES, nowms + tonumber(ms), inst)
  redis.call('HSET', P .. 'names', inst, name)
  alive_cache[inst] = true
  if was then return 1 end
  return 0
end

local function op_reap()
  local n = 0
  for _, di in ipairs(redis.call('ZRANGEBYSCORE', NODES, '-inf', nowms, 'LIMIT', 0, 16)) do
    if di ~= inst then
      local mark = di .. '\t'
      for _, m in ipairs(redis.call('SMEMBERS', P .. 'np:' .. di)) do
        local arn, key = string.match(m, '^(.*)|([^|]*)$')
        local pk = P .. 'p:' .. arn
        local h = redis.call('HGET', pk, 'h:' .. key)
        if h and string.sub(h, 1, #mark) == mark then
          redis.call('HDEL', pk, 'h:' .. key)
          n = n + 1
        end
        local o = redis.call('HGET', pk, 'o:' .. key)
        if o and string.sub(o, 1, #mark) == mark then
          redis.call('HDEL', pk, 'o:' .. key)
          local h2 = redis.call('HGET', pk, 'h:' .. key)
          if h2 then
            local ni, nt = holder(h2)
            notify(ni, 'r\t' .. nt .. '\t' .. arn .. '\t' .. key)
          end
        end
      end
      redis.call('DEL', P .. 'np:' .. di)
      redis.call('ZREM', NODES, di)
      redis.call('HDEL', P .. 'names', di)
    end
  end
  return n
end

local function op_expire(arn)
  local out = {}
  local pk = P .. 'p:' .. arn
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'k:' .. arn)) do
    local h = redis.call('HGET', pk, 'h:' .. key)
    local held = false
    if h then held = alive((holder(h))) end
    if not held then  -- a live holder's node delivers (and trims) what is in its list
      local qk = qkey(arn, key)
      for _, item in ipairs(redis.call('LRANGE', qk, 0, CAP - 1)) do
        local _, ty, se, ex = parse(item)
        if ex <= now then
          redis.call('LREM', qk, 1, item)
          out[#out + 1] = key .. '\t' .. ty .. '\t' .. se
        end
      end
    end
  end
  return out
end

local function op_holds(arn, key)
  local h = redis.call('HGET', P .. 'p:' .. arn, 'h:' .. key)
  if h then
    local hi = holder(h)
    if alive(hi) then return 1 end
  end
  return 0
end

local function op_peek(arn, key)
  local out = {}
  for _, item in ipairs(redis.call('LRANGE', qkey(arn, key), 0, -1)) do
    local _, _, _, ex = parse(item)
    if ex > now then out[#out + 1] = item end
  end
  return out
end

local results = {}
local i = 5
local n = #ARGV
while i <= n do
  local op = ARGV[i]
  local r
  if op == 'P' then
    r = redis.call('PUBLISH', ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'S' then
    r = op_send(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
    i = i + 7
  elseif op == 'T' then
    r = op_take(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
    i = i + 6
  elseif op == 'A' then
    r = op_ack(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
    i = i + 6
  elseif op == 'R' then
    r = op_register(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
    i = i + 7
  elseif op == 'D' then
    r = op_drop(ARGV[i + 1])
    i = i + 2
  elseif op == 'L' then
    r = op_lease(ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'X' then
    r = op_reap()
    i = i + 1
  elseif op == 'E' then
    r = op_expire(ARGV[i + 1])
    i = i + 2
  elseif op == 'Q' then
    r = op_peek(ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  elseif op == 'H' then
    r = op_holds(ARGV[i + 1], ARGV[i + 2])
    i = i + 3
  else
    return redis.error_reply('signalite: unknown operation ' .. tostring(op))
  end
  results[#results + 1] = r
end
return results
""".replace("__CAP__", str(MAX_RETAINED_PER_RECIPIENT))

ARITY = {"P": 2, "S": 6, "T": 5, "A": 5, "R": 6, "D": 1, "L": 2, "X": 0, "E": 1, "Q": 2, "H": 2}
"""Fields after each operation code (the writer checks what it queues against this)."""
