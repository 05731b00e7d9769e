"""A prototype of the gateway's data plane in nginx + Lua for the benches' hop rows (issue 9, ADR 103).

Not product code: it measures what a hop costs when the per-call work runs in nginx instead of gRPC Python,
the Kong / APISIX shape, with the Python gateway left as the control plane (keys, quotas, admin, the HTTP
collector). Per call it does in Lua what the Python gateway does per call on its hot path:
- the API key from `authorization: Bearer …` (or `x-api-key`), looked up by its SHA-256 in a shared
  dictionary (what the control plane would answer for a known key, cached; seeded here at start);
- the method's scope, from a method → scope map (the registry's, given here for the bench's methods);
- a token bucket per tenant and one per key for requests, one per tenant for events (a Track costs one, a
  batch as many as its `events` field holds, counted from the buffered message), and the tenant's calls in
  flight (the concurrency cap), released when the call ends; the limits are the gateway's defaults;
- the trust boundary: the caller's tenant, principal and internal-token headers replaced, the authenticated
  tenant and the internal token added, a request id kept when it is a plain token, else made;
- refusals as trailers-only gRPC answers carrying a `google.rpc.Status` with `ErrorInfo` (the kit's reasons
  and domain) and `RetryInfo` for quotas;
then `grpc_pass` over kept-alive HTTP/2 connections to the backend. What it leaves to the real data plane:
asking the control plane for a key it does not hold, counting a stream's events, compressed messages,
metrics and access logs, TLS (ADR 103's list).

Needs Debian's `nginx-extras` (nginx with the Lua module); `unavailable()` says why it cannot run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from bench.track import server_process
from wayline.common.context import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, REQUEST_ID_HEADER, TENANT_HEADER
from wayline_cli.suite import free_port
from wayline_gateway.settings import GatewaySettings

__all__ = ["PublicMethod", "Quotas", "nginx_data_plane", "unavailable"]

_LUA_MODULES = Path("/usr/lib/nginx/modules")
_INSTALL = "apt-get install nginx-extras (nginx with the Lua module)"

# One process (no master), so the bench reads its CPU from the pid it started. `$$` is a literal `$`. The
# request body is kept in memory (a batch's events are counted from it), up to gRPC's message limit.
_CONFIG = Template(r"""
load_module ${modules}/ndk_http_module.so;
load_module ${modules}/ngx_http_lua_module.so;
daemon off;
master_process off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  client_body_buffer_size 16m;
  client_max_body_size 16m;
  lua_shared_dict wl_keys 10m;
  lua_shared_dict wl_methods 1m;
  lua_shared_dict wl_buckets 10m;
  lua_shared_dict wl_inflight 1m;
  init_by_lua_block {
    ngx.shared.wl_keys:set(${key_hash}, ${key_entry})
    for method, rule in pairs(${methods}) do ngx.shared.wl_methods:set(method, rule) end
    local ffi = require "ffi"
    ffi.cdef[[unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);]]
    local digest = ffi.new("unsigned char[32]")
    -- The gateway stores a key's SHA-256 in hex (keys.py); OpenSSL's, which nginx links.
    function wl_sha256_hex(text)
      ffi.C.SHA256(text, #text, digest)
      return (ffi.string(digest, 32):gsub(".", function(c) return string.format("%02x", c:byte()) end))
    end
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
    local function any(type_name, value)
      return bytes_field(1, "type.googleapis.com/" .. type_name) .. bytes_field(2, value)
    end
    -- A google.rpc.Status as the kit's errors make it: code, message, ErrorInfo (reason, domain, the
    -- service), and RetryInfo when the caller should come back later.
    function wl_refuse(code, message, reason, retry_seconds)
      local info = bytes_field(1, reason) .. bytes_field(2, "wayline.dev")
        .. bytes_field(3, bytes_field(1, "service") .. bytes_field(2, "gateway"))
      local details = bytes_field(3, any("google.rpc.ErrorInfo", info))
      if retry_seconds then
        local delay = varint(1 * 8) .. varint(retry_seconds)
        details = details .. bytes_field(3, any("google.rpc.RetryInfo", bytes_field(1, delay)))
      end
      local status = varint(1 * 8) .. varint(code) .. bytes_field(2, message) .. details
      ngx.header["content-type"] = "application/grpc"
      ngx.header["grpc-status"] = code
      ngx.header["grpc-message"] = message
      ngx.header["grpc-status-details-bin"] = ngx.encode_base64(status)
      return ngx.exit(204)  -- headers only, ending the stream: gRPC's trailers-only answer
    end
    -- The events a unary batch carries: its top-level field `field` (length-delimited) counted in the
    -- gRPC frame's message (a walk over the tags and lengths, not a decode).
    function wl_count_field(body, field)
      local count, at, size = 0, 6, #body
      local function read_varint()
        local value, scale = 0, 1
        repeat
          local b = body:byte(at)
          at = at + 1
          value = value + (b % 128) * scale
          scale = scale * 128
        until b < 128
        return value
      end
      while at <= size do
        local tag = read_varint()
        local wire, number = tag % 8, (tag - tag % 8) / 8
        if wire == 2 then
          local length = read_varint()
          if number == field then count = count + 1 end
          at = at + length
        elseif wire == 0 then read_varint()
        elseif wire == 1 then at = at + 8
        elseif wire == 5 then at = at + 4
        else return count end
      end
      return count
    end
  }
  upstream backend { server ${backend}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} http2;
    grpc_read_timeout 600s;
    grpc_send_timeout 600s;
    location / {
      access_by_lua_block {
        local key = (ngx.var.http_authorization or ""):match("^[Bb]earer%s+(%S+)$$") or ngx.var.http_x_api_key
        if not key then
          return wl_refuse(16, "no API key: send `authorization: Bearer <key>` (or `x-api-key`) metadata",
            "API_KEY_MISSING")
        end
        local entry = ngx.shared.wl_keys:get(wl_sha256_hex(key))
        if not entry then return wl_refuse(16, "the API key is not recognised", "API_KEY_INVALID") end
        local tenant, scopes = entry:match("^([^|]*)|(.*)$$")
        local rule = ngx.shared.wl_methods:get(ngx.var.uri)
        if not rule then return wl_refuse(12, "no such public method", "METHOD_UNKNOWN") end
        local needed, counting = rule:match("^([^|]*)|(.*)$$")
        if not scopes:find(needed, 1, true) then
          return wl_refuse(7, "this API key lacks the '" .. needed .. "' scope", "SCOPE_MISSING")
        end
        local buckets, now = ngx.shared.wl_buckets, ngx.now()
        local function take(name, cost, rate, burst)
          local tokens = buckets:get(name .. ":t") or burst
          local last = buckets:get(name .. ":l") or now
          tokens = math.min(burst, tokens + (now - last) * rate)
          if tokens < cost then return false end
          buckets:set(name .. ":t", tokens - cost)
          buckets:set(name .. ":l", now)
          return true
        end
        local events = 0
        if counting == "one" then
          events = 1
        elseif counting ~= "" then
          ngx.req.read_body()
          events = wl_count_field(ngx.req.get_body_data() or "", tonumber(counting))
        end
        if not take("t:" .. tenant, 1, ${requests_per_second}, ${requests_burst})
            or not take("k:" .. key, 1, ${requests_per_second}, ${requests_burst})
            or (events > 0 and not take("e:" .. tenant, events, ${events_per_second}, ${events_burst})) then
          return wl_refuse(8, "over the tenant's quota; retry later", "QUOTA_EXCEEDED", 1)
        end
        local inflight = ngx.shared.wl_inflight
        if inflight:incr(tenant, 1, 0) > ${max_concurrent} then
          inflight:incr(tenant, -1)
          return wl_refuse(8, "too many calls in flight for the tenant", "CONCURRENCY_EXCEEDED", 1)
        end
        ngx.ctx.tenant = tenant
        ngx.req.clear_header("${principal}")
        ngx.req.set_header("${tenant_header}", tenant)
        ngx.req.set_header("${token_header}", ${token})
        local request_id = ngx.var.http_x_request_id
        if not request_id or not request_id:match("^[%w._-]+$$") or #request_id > 64 then
          ngx.req.set_header("${request_id}", ngx.var.request_id)  -- nginx's own: 32 random hex digits
        end
      }
      log_by_lua_block {
        if ngx.ctx.tenant then ngx.shared.wl_inflight:incr(ngx.ctx.tenant, -1) end
      }
      grpc_pass grpc://backend;
    }
  }
}
""")


@dataclass(frozen=True)
class PublicMethod:
    """What the data plane knows of a method: the scope it needs and what one call costs of the events
    quota: nothing (""), one event ("one"), or as many as the request's top-level field of that number holds
    (a batch's `events`)."""

    scope: str
    events: str = ""


def _default(field: str) -> Any:
    return GatewaySettings.model_fields[field].default


@dataclass(frozen=True)
class Quotas:
    """A tenant's limits, as the gateway's settings name them (their defaults unless given)."""

    requests_per_second: float = _default("quota_requests_per_second")
    requests_burst: int = _default("quota_requests_burst")
    events_per_second: float = _default("quota_events_per_second")
    events_burst: int = _default("quota_events_burst")
    max_concurrent_requests: int = _default("quota_max_concurrent_requests")


def unavailable() -> str | None:
    """Why the prototype cannot run here; None when it can."""
    if shutil.which("nginx") is None or not (_LUA_MODULES / "ngx_http_lua_module.so").exists():
        return f"nginx with the Lua module is not installed ({_INSTALL})"
    return None


def _lua(text: str) -> str:
    """`text` as a Lua string literal (JSON's escapes for the ASCII these values are made of)."""
    if not text.isascii():
        raise ValueError("the prototype's Lua literals take ASCII only")
    return json.dumps(text)


@contextmanager
def nginx_data_plane(
    backend: str,
    *,
    api_key: str,
    tenant: str,
    methods: dict[str, PublicMethod],
    internal_token: str,
    quotas: Quotas | None = None,
) -> Iterator[tuple[str, int]]:
    """nginx in front of `backend`, knowing one key (`api_key` of `tenant`, with every scope `methods` name)
    and `methods` (path → what it needs), `quotas` per tenant (the gateway's defaults unless given); its
    address and pid while it runs."""
    quotas = quotas or Quotas()
    key_hash = hashlib.sha256(api_key.encode()).hexdigest()
    scopes = ",".join(sorted({m.scope for m in methods.values()}))
    lua_methods = (
        "{" + ", ".join(f"[{_lua(p)}] = {_lua(f'{m.scope}|{m.events}')}" for p, m in methods.items()) + "}"
    )
    with tempfile.TemporaryDirectory(prefix="wayline-bench-nginx-") as prefix:
        port = free_port()
        config = Path(prefix) / "nginx.conf"
        config.write_text(
            _CONFIG.substitute(
                modules=_LUA_MODULES,
                prefix=prefix,
                port=port,
                backend=backend,
                key_hash=_lua(key_hash),
                key_entry=_lua(f"{tenant}|{scopes}"),
                methods=lua_methods,
                requests_per_second=quotas.requests_per_second,
                requests_burst=quotas.requests_burst,
                events_per_second=quotas.events_per_second,
                events_burst=quotas.events_burst,
                max_concurrent=quotas.max_concurrent_requests,
                token=_lua(internal_token),
                principal=PRINCIPAL_HEADER,
                tenant_header=TENANT_HEADER,
                token_header=INTERNAL_TOKEN_HEADER,
                request_id=REQUEST_ID_HEADER,
            )
        )
        subprocess.run(["nginx", "-t", "-q", "-c", str(config), "-p", prefix], check=True)
        with server_process(["nginx", "-c", str(config), "-p", prefix], port) as (address, process):
            yield address, process.pid
