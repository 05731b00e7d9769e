"""The Lua scripts of the Redis-backed online state: what must happen atomically on the server, where two
replicas may consume copies of one event at the same moment. They run by EVALSHA (redis-py's Script loads
them again after a server restart). Numbers are µs since the epoch, below 2^53, so Lua's doubles hold them
exactly; they are written back with `%.0f`, never `tostring` (which would print 14 significant digits).

OBSERVE (KEYS: the tenant's meta hash, the person's hash; ARGV: event id, timestamp, received_at,
settle_after, expiry margin, the encoded log record, then the hex digests of the slots the event goes into)
does what InProcessFeatureState.observe does short of settling, and answers `{status, person horizon or '',
watermark or ''}` with status 0 late (refused), 1 a copy already counted, 2 nothing to keep, 3 changed:
- refuse an event received before the person's horizon, and a copy received no later than the one kept;
- move the tenant's watermark;
- append the record (marked as replacing when an earlier copy is recent), remember the copy's receipt;
- a person new to the state with nothing to settle takes the tenant's horizon at once (InProcess would
  settle it right away, folding nothing);
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
local received = tonumber(ARGV[3])
local horizon = redis.call('HGET', person, 'h')
if horizon and received < tonumber(horizon) then return {0, horizon, ''} end
local recent = 'r:' .. ARGV[1]
local earlier = redis.call('HGET', person, recent)
if earlier and received <= tonumber(earlier) then return {1, horizon or '', ''} end
local watermark = redis.call('HGET', meta, 'watermark')
if not watermark or received > tonumber(watermark) then
  watermark = ARGV[3]
  redis.call('HSET', meta, 'watermark', watermark)
end
local used = #ARGV > 6
if not used and not earlier then return {2, horizon or '', watermark} end
local record = ARGV[6]
if earlier then record = '\149\195' .. string.sub(record, 3) end
local log = redis.call('HGET', person, 'log')
redis.call('HSET', person, 'log', (log or '') .. record)
if not used then
  redis.call('HDEL', person, recent)
  return {3, horizon or '', watermark}
end
redis.call('HSET', person, recent, ARGV[3])
local latest = redis.call('HGET', person, 'x')
if not latest or received > tonumber(latest) then redis.call('HSET', person, 'x', ARGV[3]) end
if not horizon and not log then
  local now = tonumber(watermark) - tonumber(ARGV[4])
  if received >= now then
    horizon = string.format('%.0f', now)
    redis.call('HSET', person, 'h', horizon)
  end
end
local keep = redis.call('HGET', person, 'u')
if keep == 'all' then return {3, horizon or '', watermark} end
local timestamp = tonumber(ARGV[2])
local until_us = tonumber(keep or '') or received
for i = 7, #ARGV do
  local plan = redis.call('HGET', meta, 'plan:' .. ARGV[i])
  if not plan or string.sub(plan, 1, 1) == '1' then
    keep = 'all'
    break
  end
  local window = tonumber(string.match(plan, '^%d:(%-?%d+):'))
  local candidate = math.max(timestamp + window, received)
  if candidate > until_us then until_us = candidate end
end
if keep == 'all' then
  redis.call('HSET', person, 'u', 'all')
  redis.call('PERSIST', person)
else
  redis.call('HSET', person, 'u', string.format('%.0f', until_us))
  local ttl_ms = (until_us + tonumber(ARGV[5]) - tonumber(watermark)) / 1000
  redis.call('PEXPIRE', person, string.format('%.0f', math.max(ttl_ms, 1000)))
end
return {3, horizon or '', watermark}
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
