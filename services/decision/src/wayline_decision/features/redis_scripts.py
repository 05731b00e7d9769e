"""The Lua scripts of the Redis-backed online state: what must happen atomically on the server, where two
replicas may consume copies of one event at the same moment. They run by EVALSHA (redis-py's Script loads
them again after a server restart). Numbers are µs since the epoch, below 2^53, so Lua's doubles hold them
exactly; they are written back with `%.0f`, never `tostring` (which would print 14 significant digits).

OBSERVE (KEYS: the tenant's meta hash, the person's hash; ARGV: event id, timestamp, received_at,
settle_after, settle step, expiry margin, compaction interval, compaction record count, the encoded log
record, then the hex digests of the slots the event goes into) does what InProcessFeatureState.observe does,
the folding of settled events aside, and answers `{status, compact}`: status 0 late (refused), 1 a copy
already counted, 2 nothing kept, 3 changed; compact 1 when the replica should fold the person now.
- refuse an event received before the person's horizon, and a copy received no later than the one kept
  (a receipt before the horizon is forgotten, as settling forgets it);
- move the tenant's watermark;
- append the record (marked as replacing when an earlier copy is recent), remember the copy's receipt;
- move the person's horizon when the tenant's is a settle step ahead (at once for a new person), as
  InProcess settles. Folding is deferred: reads at or after the horizon give the same values whether the
  settled events are folded or still listed (a fold is exact; a windowed read excludes them either way),
  so the replica folds (compacts) only when something is foldable (`m`, the earliest time an entry may
  fold, is behind the horizon) and either the horizon moved by the compaction interval since the last
  (`c`) or the compaction record count of records was appended since (`n`);
- expiry: a person whose slots all have windows may go once every event it keeps is out of its slot's
  longest window and settled (`u`, an event time, plus the margin, counted from the watermark); a person
  with an event in a slot that keeps all history (or a slot no replica registered a plan for) persists.

MERGE_PLANS (KEYS: the meta hash; ARGV: digest, plan pairs) merges the registering replica's slot plans into
the shared ones: the longest window, and "keeps all" if any replica's specs need it.

ADVANCE (KEYS: the meta hash; ARGV: a clock reading) moves the watermark forward and answers it.
"""

from __future__ import annotations

__all__ = ["ADVANCE", "MERGE_PLANS", "OBSERVE"]

LATE, COPY, UNUSED, CHANGED = 0, 1, 2, 3

OBSERVE = r"""
local meta, person = KEYS[1], KEYS[2]
local received, timestamp = tonumber(ARGV[3]), tonumber(ARGV[2])
local horizon = redis.call('HGET', person, 'h')
if horizon then horizon = tonumber(horizon) end
if horizon and received < horizon then return {0, 0} end
local recent = 'r:' .. ARGV[1]
local earlier = redis.call('HGET', person, recent)
-- a receipt before the horizon is forgotten, as settling forgets it (compaction deletes the field)
if earlier and horizon and tonumber(earlier) < horizon then earlier = false end
if earlier and received <= tonumber(earlier) then return {1, 0} end
local watermark = redis.call('HGET', meta, 'watermark')
if not watermark or received > tonumber(watermark) then
  watermark = ARGV[3]
  redis.call('HSET', meta, 'watermark', watermark)
end
local used = #ARGV > 9
local status = 3
if not used and not earlier then
  if not horizon then return {2, 0} end
  status = 2
else
  local record = ARGV[9]
  if earlier then record = '\149\195' .. string.sub(record, 3) end
  redis.call('HSET', person, 'log', (redis.call('HGET', person, 'log') or '') .. record)
  redis.call('HINCRBY', person, 'n', 1)
  if not used then
    redis.call('HDEL', person, recent)
  else
    redis.call('HSET', person, recent, ARGV[3])
    local latest = redis.call('HGET', person, 'x')
    if not latest or received > tonumber(latest) then redis.call('HSET', person, 'x', ARGV[3]) end
    local keep = redis.call('HGET', person, 'u')
    local until_us = tonumber(keep or '') or received
    local foldable = tonumber(redis.call('HGET', person, 'm') or '')
    for i = 10, #ARGV do
      local plan = redis.call('HGET', meta, 'plan:' .. ARGV[i])
      if not plan then
        keep = 'all'
      else
        local keeps, window = string.match(plan, '^(%d):([^:]+):')
        local at = math.max(timestamp + (tonumber(window) or 0), received)
        if not foldable or at < foldable then foldable = at end
        if keeps == '1' then keep = 'all' elseif at > until_us then until_us = at end
      end
    end
    if foldable then redis.call('HSET', person, 'm', string.format('%.0f', foldable)) end
    if keep == 'all' then
      redis.call('HSET', person, 'u', 'all')
      redis.call('PERSIST', person)
    else
      redis.call('HSET', person, 'u', string.format('%.0f', until_us))
      local ttl_ms = (until_us + tonumber(ARGV[6]) - tonumber(watermark)) / 1000
      redis.call('PEXPIRE', person, string.format('%.0f', math.max(ttl_ms, 1000)))
    end
  end
end
local tenant_horizon = tonumber(watermark) - tonumber(ARGV[4])
if not horizon or tenant_horizon - horizon >= tonumber(ARGV[5]) then
  horizon = tenant_horizon
  redis.call('HSET', person, 'h', string.format('%.0f', horizon))
end
local foldable = tonumber(redis.call('HGET', person, 'm') or '')
if not foldable or foldable >= horizon then return {status, 0} end
local compacted = tonumber(redis.call('HGET', person, 'c') or '')
local appended = tonumber(redis.call('HGET', person, 'n') or '0')
if not compacted or horizon - compacted >= tonumber(ARGV[7]) or appended >= tonumber(ARGV[8]) then
  return {status, 1}
end
return {status, 0}
"""

MERGE_PLANS = r"""
for i = 1, #ARGV, 2 do
  local field = 'plan:' .. ARGV[i]
  local plan = ARGV[i + 1]
  local old = redis.call('HGET', KEYS[1], field)
  if old then
    local old_keeps, old_window, kind = string.match(old, '^(%d):([^:]+):(.+)$')
    local keeps, window = string.match(plan, '^(%d):([^:]+):')
    if old_keeps == '1' then keeps = '1' end
    if window == '-' or (old_window ~= '-' and tonumber(old_window) > tonumber(window)) then
      window = old_window
    end
    plan = keeps .. ':' .. window .. ':' .. kind
  end
  redis.call('HSET', KEYS[1], field, plan)
end
return #ARGV / 2
"""

ADVANCE = r"""
local watermark = redis.call('HGET', KEYS[1], 'watermark')
if not watermark or tonumber(ARGV[1]) > tonumber(watermark) then
  watermark = ARGV[1]
  redis.call('HSET', KEYS[1], 'watermark', watermark)
end
return watermark
"""
