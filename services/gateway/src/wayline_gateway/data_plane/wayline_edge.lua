-- The gateway's data plane in nginx (ADR 105): per public gRPC call, in nginx's worker, what the Python
-- gateway would do on its hot path, then `grpc_pass` straight to the service. Every call it cannot answer
-- exactly as the Python gateway would goes to the Python gateway (the control plane) instead, unchanged:
-- AdminService, streams (but StreamEvents, which ingest paces to the limits passed to it here: ADR 106),
-- erasures, health and reflection, unknown methods, a key that is missing, unknown, revoked, expired, of a
-- suspended tenant or without the method's scope (the control plane answers each with its own refusal), a
-- compressed batch or one too big to hold in memory (its events are counted there).
-- What it answers itself: the quotas (the same buckets and messages as quotas.py), and the calls it passes.
--
-- The per-instance values (routes, backends, limits, the internal token) come from `wayline_edge_config`,
-- which the control plane renders beside nginx.conf (config.py).

local ffi = require "ffi"
local lrucache = require "resty.lrucache"
local config = require "wayline_edge_config"

local _M = {}

ffi.cdef [[unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);]]
local digest_buffer = ffi.new("unsigned char[32]")
local HEX = {}
for byte = 0, 255 do HEX[byte] = string.format("%02x", byte) end

-- SHA-256 in hex, as keys.py's `digest` (OpenSSL's, which nginx links).
local function sha256_hex(text)
  ffi.C.SHA256(text, #text, digest_buffer)
  local out = {}
  for i = 0, 31 do out[i + 1] = HEX[digest_buffer[i]] end
  return table.concat(out)
end

-- Keys the control plane answered, for `config.key_cache_seconds` (the revocation window the gateway states):
-- a table per usable key, REFER for one the control plane must answer. A change made through this replica's
-- control plane bumps the shared generation (`flush`), and every worker drops what it holds.
local REFER = {}
local keys = assert(lrucache.new(config.max_cached_keys))
local seen_generation = 0
local state = ngx.shared.wayline_state
local buckets = ngx.shared.wayline_buckets
local in_flight = ngx.shared.wayline_in_flight
local metrics = ngx.shared.wayline_metrics

local function fields(line)
  local out = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do out[#out + 1] = field end
  return out
end

-- A limit the control plane leaves empty is unlimited.
local function limit(text) return tonumber(text) or math.huge end

local function limits(values, first)
  return {
    quota = values[first],
    requests_per_second = limit(values[first + 1]),
    requests_burst = limit(values[first + 2]),
    events_per_second = limit(values[first + 3]),
    events_burst = limit(values[first + 4]),
    max_concurrent_requests = limit(values[first + 5]),
  }
end

-- The kit's event-pacing header (wayline/common/quotas.py) for a stream the service paces: the longest wait
-- per message, then each limited quota's name, events a second and burst; nil when no event limit is set.
local function event_pacing(subject_limits)
  local parts = { string.format("%.17g", config.stream_quota_wait_seconds) }
  for _, limit in ipairs(subject_limits) do
    local rate, burst = limit.events_per_second, limit.events_burst
    if rate ~= math.huge and burst ~= math.huge then
      parts[#parts + 1] = string.format("%s %.17g %.17g", limit.quota, rate, burst)
    end
  end
  if #parts == 1 then return nil end
  return table.concat(parts, " ")
end

-- lookup.py's answer: one line of tab-separated fields (see `usable_key_line` there).
local function parse_key(body)
  local values = fields((body:gsub("\n$", "")))
  local scopes = {}
  for scope in values[4]:gmatch("[^,]+") do scopes[scope] = true end
  local entry = {
    tenant = values[1],
    principal = values[2],
    key_id = values[3],
    scopes = scopes,
    expires = tonumber(values[5]),
    tenant_limits = limits(values, 12),
  }
  if entry.key_id ~= "" then
    entry.key_limits = limits(values, 6)
    entry.subjects = { "k|" .. entry.tenant .. "|" .. entry.key_id, "t|" .. entry.tenant }
    entry.subject_limits = { entry.key_limits, entry.tenant_limits }
  else
    entry.subjects = { "t|" .. entry.tenant }
    entry.subject_limits = { entry.tenant_limits }
  end
  entry.event_pacing = event_pacing(entry.subject_limits)
  return entry
end

-- One HTTP/1.1 GET to the control plane's lookup socket (lookup.py), on a kept-alive connection: nginx's
-- subrequests are not available to HTTP/2 requests, cosockets are. Status and body; nil on any failure.
local function ask_control_plane(path)
  local sock = ngx.socket.tcp()
  sock:settimeout(config.lookup_timeout_ms)
  local ok, err = sock:connect(config.lookup_socket)
  if not ok then
    ngx.log(ngx.WARN, "wayline: the control plane's lookups cannot be reached: ", err)
    return nil
  end
  local sent = sock:send("GET " .. path .. " HTTP/1.1\r\nHost: control-plane\r\n\r\n")
  local status_line = sent and sock:receive("*l")
  local status = status_line and tonumber(status_line:match("^HTTP/1%.1 (%d%d%d)"))
  if not status then
    sock:close()
    return nil
  end
  local length, keep = nil, true
  while true do
    local line = sock:receive("*l")
    if not line then
      sock:close()
      return nil
    end
    if line == "" then break end
    local name, value = line:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      if name == "content-length" then length = tonumber(value) end
      if name == "connection" and value:lower() == "close" then keep = false end
    end
  end
  local body = length and length > 0 and sock:receive(length) or ""
  if not body then
    sock:close()
    return nil
  end
  if keep then sock:setkeepalive(60000, 8) else sock:close() end
  return status, body
end

local function key_entry(key_digest)
  local generation = state:get("generation") or 0
  if generation ~= seen_generation then
    keys:flush_all()
    seen_generation = generation
  end
  local entry = keys:get(key_digest)
  if entry then return entry end
  local status, body = ask_control_plane("/keys/" .. key_digest)
  if status == 200 then
    entry = parse_key(body)
  elseif status == 404 then
    entry = REFER
  else
    return REFER -- the control plane could not answer: it answers the call itself, or fails it; not kept
  end
  keys:set(key_digest, entry, config.key_cache_seconds)
  return entry
end

local function presented_key()
  local authorization = ngx.var.http_authorization
  if authorization then
    local scheme, token = authorization:match("^(%S+)%s+(.-)%s*$")
    if scheme and scheme:lower() == "bearer" and token ~= "" then return token end
  end
  local key = ngx.var.http_x_api_key
  if key then
    key = key:match("^%s*(.-)%s*$")
    if key ~= "" then return key end
  end
  return nil
end

-- The number of top-level occurrences of length-delimited field `field` in the request's one gRPC message
-- (a walk over tags and lengths, as admission.py's `count_field`); nil when the body is not in memory.
local function count_field(body, field)
  local count, at, size = 0, 6, #body -- past the gRPC frame's 5-byte header
  local function varint()
    local value, scale = 0, 1
    repeat
      local byte = body:byte(at)
      if not byte then return nil end
      at = at + 1
      value = value + (byte % 128) * scale
      scale = scale * 128
    until byte < 128
    return value
  end
  while at <= size do
    local tag = varint()
    if not tag then break end
    local wire, number = tag % 8, (tag - tag % 8) / 8
    if wire == 2 then
      local length = varint()
      if not length then break end
      if number == field then count = count + 1 end
      at = at + length
    elseif wire == 0 then
      if not varint() then break end
    elseif wire == 1 then
      at = at + 8
    elseif wire == 5 then
      at = at + 4
    else
      break -- groups and invalid wire types: the service refuses the message
    end
  end
  return count
end

-- Protobuf, as much as a google.rpc.Status needs.
local function varint(n)
  local out = {}
  repeat
    local low = n % 128
    n = (n - low) / 128
    out[#out + 1] = string.char(n > 0 and low + 128 or low)
  until n == 0
  return table.concat(out)
end
local function bytes_field(number, value) return varint(number * 8 + 2) .. varint(#value) .. value end
local function varint_field(number, value)
  if value == 0 then return "" end
  return varint(number * 8) .. varint(value)
end
local function any(type_name, value)
  return bytes_field(1, "type.googleapis.com/" .. type_name) .. bytes_field(2, value)
end
local function map_entry(number, key, value) return bytes_field(number, bytes_field(1, key) .. bytes_field(2, value)) end

-- gRPC's percent-encoding of grpc-message: printable ASCII but '%' stays, the rest is escaped.
local function grpc_message(text)
  return (text:gsub("[^\32-\36\38-\126]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- A refusal as the kit's errors make it (errors.py): the code, the message, ErrorInfo (the reason, the
-- domain, the service and `metadata`), RetryInfo, QuotaFailure when a quota is named; as a trailers-only
-- answer (headers only, which ends the stream).
local function answer_error(code, message, reason, metadata, retry_after, quota)
  local info = bytes_field(1, reason) .. bytes_field(2, config.error_domain) .. map_entry(3, "service", "gateway")
  for i = 1, #metadata, 2 do info = info .. map_entry(3, metadata[i], metadata[i + 1]) end
  local nanos = math.floor(retry_after * 1e9)
  local seconds = math.floor(nanos / 1e9)
  local delay = varint_field(1, seconds) .. varint_field(2, nanos - seconds * 1e9)
  local status = varint_field(1, code) .. bytes_field(2, message)
    .. bytes_field(3, any("google.rpc.ErrorInfo", info))
    .. bytes_field(3, any("google.rpc.RetryInfo", bytes_field(1, delay)))
  if quota then
    local violation = bytes_field(1, quota) .. bytes_field(2, message)
    status = status .. bytes_field(3, any("google.rpc.QuotaFailure", bytes_field(1, violation)))
  end
  ngx.header["content-type"] = "application/grpc"
  ngx.header["grpc-status"] = tostring(code)
  ngx.header["grpc-message"] = grpc_message(message)
  ngx.header["grpc-status-details-bin"] = ngx.encode_base64(status, true)
  ngx.var.wayline_status = tostring(code)
  ngx.var.wayline_reason = reason
  return ngx.exit(204) -- no body: the HEADERS frame ends the stream, gRPC's trailers-only answer
end

-- quotas.py's refusal: RESOURCE_EXHAUSTED naming the quota and the limit, with the delay after which the same
-- call would pass.
local function refuse_quota(quota, limit, why, retry_after)
  local message = string.format("quota '%s' (%s): %s; retry after %.3g s", quota, limit, why, retry_after)
  return answer_error(8, message, "QUOTA_EXCEEDED", { "quota", quota, "limit", limit }, retry_after, quota)
end

-- Token buckets in shared memory, as quotas.py's TokenBucket: full at first, refilled at `rate` up to `size`;
-- a charge passes when min(charge, size) tokens are there and may leave the bucket in debt.
local function bucket_wait(name, amount, rate, size, now)
  if rate == math.huge then return 0, size end
  local tokens = buckets:get(name .. "|t")
  if tokens == nil then return 0, size end
  tokens = math.min(size, tokens + (now - (buckets:get(name .. "|u") or now)) * rate)
  local needed = math.min(amount, size)
  if tokens >= needed then return 0, tokens end
  return (needed - tokens) / rate, tokens
end

local function bucket_take(name, tokens, amount, now)
  buckets:set(name .. "|t", tokens - amount)
  buckets:set(name .. "|u", now)
end

local KINDS = {
  requests = { "r", "requests_per_second", "requests_burst", "call" },
  events = { "e", "events_per_second", "events_burst", "event" },
}

local function check(entry, kind, amount, now, found)
  local letter, rate_name, size_name, noun = unpack(KINDS[kind])
  for i, subject in ipairs(entry.subjects) do
    local limit = entry.subject_limits[i]
    local rate, size = limit[rate_name], limit[size_name]
    local wait, tokens = bucket_wait(subject .. "|" .. letter, amount, rate, size, now)
    if wait > 0 then
      return refuse_quota(limit.quota, kind .. "_per_second",
        string.format("the %s rate is over %g a second (burst %g)", noun, rate, size), wait)
    end
    found[#found + 1] = { subject .. "|" .. letter, tokens, amount }
  end
end

-- quotas.py's `admit`: the concurrency caps, then a request, then the events, against the key's limits and
-- the tenant's; all taken only when all pass.
local function admit(entry, events)
  ngx.var.wayline_tenant = entry.tenant
  local now = ngx.now()
  for i, subject in ipairs(entry.subjects) do
    local limit = entry.subject_limits[i]
    local cap = limit.max_concurrent_requests
    if (in_flight:get(subject) or 0) >= cap then
      return refuse_quota(limit.quota, "max_concurrent_requests",
        string.format("%d calls are already in progress", cap), config.concurrency_retry_seconds)
    end
  end
  local takes = {}
  check(entry, "requests", 1, now, takes)
  if events > 0 then check(entry, "events", events, now, takes) end
  for _, take in ipairs(takes) do bucket_take(take[1], take[2], take[3], now) end
  for _, subject in ipairs(entry.subjects) do in_flight:incr(subject, 1, 0) end
  ngx.var.wayline_subjects = table.concat(entry.subjects, "\n")
end

-- The caller's deadline (grpc-timeout), given the default when there is none and cut to the maximum.
local UNIT_SECONDS = { H = 3600, M = 60, S = 1, m = 1e-3, u = 1e-6, n = 1e-9 }
local function deadline_header()
  local asked = ngx.var.http_grpc_timeout
  local seconds = config.default_deadline_seconds
  if asked then
    local amount, unit = asked:match("^(%d+)([HMSmun])$")
    if amount then seconds = tonumber(amount) * UNIT_SECONDS[unit] end
  end
  seconds = math.min(seconds, config.max_deadline_seconds)
  return string.format("%dm", math.max(1, math.ceil(seconds * 1000)))
end

local KEPT_HEADERS = config.kept_headers

-- The trust boundary: nothing of the caller's metadata but gRPC's own and the trace context goes on; the
-- authenticated tenant and key, the internal token and a request id are added.
local function pass_as(entry)
  local request_id = ngx.var.http_x_request_id
  local headers = ngx.req.get_headers(0)
  for name in pairs(headers) do
    if not KEPT_HEADERS[name] then ngx.req.clear_header(name) end
  end
  ngx.req.set_header(config.tenant_header, entry.tenant)
  ngx.req.set_header(config.principal_header, entry.principal)
  ngx.req.set_header(config.internal_token_header, config.internal_token)
  ngx.req.set_header("grpc-timeout", deadline_header())
  if not request_id or #request_id > 128 or not request_id:match("^[%w][%w._:-]*$") then
    request_id = ngx.var.request_id -- nginx's own: 32 random hex digits
  end
  ngx.req.set_header(config.request_id_header, request_id)
end

local function to_control_plane()
  return ngx.exec("@control")
end

function _M.access()
  local route = config.routes[ngx.var.uri]
  if not route or route.control then return to_control_plane() end
  local key = presented_key()
  if not key then return to_control_plane() end
  local entry = key_entry(sha256_hex(key))
  if entry == REFER or not entry.scopes[route.scope] or (entry.expires and ngx.now() >= entry.expires) then
    return to_control_plane()
  end
  local events = 0 -- a stream the service paces ("paced") pays its events there, message by message
  if route.events == "one" then
    events = 1
  elseif route.events and route.events ~= "paced" then
    local encoding = ngx.var.http_grpc_encoding
    if encoding and encoding ~= "identity" then return to_control_plane() end
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if not body then return to_control_plane() end -- empty, or past what is kept in memory
    events = count_field(body, route.events)
  end
  admit(entry, events)
  pass_as(entry)
  if route.events == "paced" and entry.event_pacing then
    ngx.req.set_header(config.event_pacing_header, entry.event_pacing)
  end
  ngx.var.wayline_backend = route.backend
end

-- gRPC's status codes by number, for the log line (the names the kit logs).
local STATUS_NAMES = {
  [0] = "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
  "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
}

local function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

if config.log_calls then io.stdout:setvbuf("line") end -- the gateway's stdout: one write per line

-- One line per call nginx passed or answered, as the kit's interceptor logs every call (event `rpc`, the
-- method, the request id, the tenant, the status and its reason, the latency; the trace id from
-- `traceparent`), in the gateway's log format, on the gateway's stdout.
local function log_call(status, latency_ms)
  local now = ngx.now()
  local fields = {
    { "event", "rpc" }, { "level", "info" }, { "service", "gateway" }, { "plane", "nginx" },
    { "method", ngx.var.uri }, { "request_id", ngx.var.http_x_request_id or "" },
    { "tenant", ngx.var.wayline_tenant }, { "status", STATUS_NAMES[tonumber(status)] or status },
  }
  local reason = ngx.var.wayline_reason
  if reason ~= "" then fields[#fields + 1] = { "reason", reason } end
  local trace_id = (ngx.var.http_traceparent or ""):match("^%x%x%-(%x+)%-")
  if trace_id then fields[#fields + 1] = { "trace_id", trace_id } end
  local stamp = ngx.utctime():gsub(" ", "T") .. string.format(".%03dZ", math.floor((now % 1) * 1000))
  local out = {}
  if config.log_json then
    for i, field in ipairs(fields) do out[i] = json_string(field[1]) .. ": " .. json_string(field[2]) end
    out[#out + 1] = '"latency_ms": ' .. string.format("%.3f", latency_ms)
    out[#out + 1] = '"timestamp": ' .. json_string(stamp)
    io.stdout:write("{", table.concat(out, ", "), "}\n")
  else
    for i = 5, #fields do out[#out + 1] = fields[i][1] .. "=" .. fields[i][2] end
    out[#out + 1] = string.format("latency_ms=%.3f", latency_ms)
    io.stdout:write(stamp, " [info     ] rpc                            ", table.concat(out, " "), "\n")
  end
end

-- A call's places under the concurrency caps, given back once: when its answer's last bytes pass nginx's
-- body filter (as the Python gateway frees them when the service has answered, before the caller reads the
-- answer, so that a caller's next call does not find its previous one still counted), or at the latest when
-- the call ends (an error page, a caller gone).
local function release()
  local subjects = ngx.var.wayline_subjects
  if subjects == "" then return end
  ngx.var.wayline_subjects = ""
  for subject in subjects:gmatch("[^\n]+") do in_flight:incr(subject, -1, 0) end
end

function _M.body_filter()
  if ngx.arg[2] then release() end
end

-- Every call's end (the server's log phase, whichever location answered): its places released if not yet,
-- and the calls passed or answered here counted (not those the control plane answered).
function _M.log()
  release()
  if ngx.var.wayline_backend == "" and ngx.var.wayline_status == "" then return end
  local status = ngx.var.wayline_status
  if status == "" then
    status = ngx.var.upstream_trailer_grpc_status or ngx.var.upstream_http_grpc_status or "2"
  end
  local labels = ngx.var.uri .. "\t" .. status
  local seconds = tonumber(ngx.var.request_time) or 0
  metrics:incr(labels .. "\tcount", 1, 0)
  metrics:incr(labels .. "\tseconds", seconds, 0)
  if config.log_calls then log_call(status, seconds * 1000) end
end

-- A service nginx could not reach (or that went away mid-call): proxy.py's answer, UNAVAILABLE with a delay.
function _M.unreachable()
  local backend = ngx.var.wayline_backend:gsub("^wayline_", "")
  return answer_error(14, "the " .. backend .. " service cannot be reached; retry with backoff",
    "BACKEND_UNAVAILABLE", { "backend", backend }, 1.0, nil)
end

-- A change made through the control plane (a key revoked, a tenant suspended, a limit set): every worker
-- drops the keys it holds at its next call.
function _M.flush()
  state:incr("generation", 1, 0)
  ngx.say("flushed")
end

-- Calls passed or answered here, by method and grpc-status: count and seconds, tab-separated lines.
function _M.metrics()
  for _, name in ipairs(metrics:get_keys(0)) do
    ngx.say(name, "\t", metrics:get(name))
  end
end

return _M
