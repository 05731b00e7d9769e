"""A prototype of the gateway's data plane in nginx + Lua, for `bench gateway`'s hop rows (issue 9, item 7).

Not product code: it measures what a hop costs when the per-call work runs in nginx instead of gRPC Python,
the Kong / APISIX shape, with the Python gateway left as the control plane (keys, quotas, admin, the HTTP
collector). Per call it does what the Python gateway does per call on its hot path, in Lua:
- the API key from `authorization: Bearer …` (or `x-api-key`), looked up by its SHA-1 in a shared dictionary
  (what the control plane would answer for a known key, cached; seeded here at start);
- the method's scope, from a method → scope map (the registry's, seeded here for the bench's two methods);
- a token bucket per tenant and one per key for requests, and a per-tenant count of calls in flight (the
  concurrency cap), released when the call ends;
- the trust boundary: the caller's tenant, principal and internal-token headers dropped, the authenticated
  tenant and the internal token added, a request id kept when it is a plain token, else made;
then `grpc_pass` over kept-alive HTTP/2 connections to the backend. Refusals are trailers-only gRPC answers.
What it does not do, and the real one would have to: count events for the events quota (it would have to
read the protobuf), `google.rpc` details on its refusals, spans and metrics, TLS. ADR 103 has the figures
and the rest.

Needs Debian's `nginx-extras` (nginx with the Lua module); `unavailable()` says why it cannot run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from string import Template

from bench.track import server_process
from wayline.common.context import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, REQUEST_ID_HEADER, TENANT_HEADER
from wayline_cli.suite import free_port

__all__ = ["nginx_data_plane", "unavailable"]

_LUA_MODULES = Path("/usr/lib/nginx/modules")
_INSTALL = "apt-get install nginx-extras (nginx with the Lua module)"

# One process (no master), so the bench reads its CPU from the pid it started. `$$` is a literal `$`.
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
  lua_shared_dict wl_keys 10m;
  lua_shared_dict wl_scopes 1m;
  lua_shared_dict wl_buckets 10m;
  lua_shared_dict wl_inflight 1m;
  init_by_lua_block {
    ngx.shared.wl_keys:set(${key_hash}, ${key_entry})
    for method, scope in pairs(${scopes}) do ngx.shared.wl_scopes:set(method, scope) end
  }
  upstream backend { server ${backend}; keepalive 64; }
  server {
    listen 127.0.0.1:${port} http2;
    grpc_read_timeout 600s;
    grpc_send_timeout 600s;
    client_max_body_size 16m;
    location / {
      access_by_lua_block {
        local function refuse(code, message)
          ngx.header["content-type"] = "application/grpc"
          ngx.header["grpc-status"] = code
          ngx.header["grpc-message"] = message
          return ngx.exit(204)  -- headers only, ending the stream: gRPC's trailers-only answer
        end
        local key = (ngx.var.http_authorization or ""):match("^[Bb]earer%s+(%S+)$$") or ngx.var.http_x_api_key
        if not key then return refuse(16, "an API key is required") end
        local entry = ngx.shared.wl_keys:get(ngx.encode_base64(ngx.sha1_bin(key)))
        if not entry then return refuse(16, "the API key is not recognised") end
        local tenant, scopes = entry:match("^([^|]*)|(.*)$$")
        local needed = ngx.shared.wl_scopes:get(ngx.var.uri)
        if not needed then return refuse(12, "no such public method") end
        if not scopes:find(needed, 1, true) then return refuse(7, "this API key lacks the scope") end
        local buckets, now = ngx.shared.wl_buckets, ngx.now()
        local function take(name, rate, burst)
          local tokens = buckets:get(name .. ":t") or burst
          local last = buckets:get(name .. ":l") or now
          tokens = math.min(burst, tokens + (now - last) * rate)
          if tokens < 1 then return false end
          buckets:set(name .. ":t", tokens - 1)
          buckets:set(name .. ":l", now)
          return true
        end
        if not take("t:" .. tenant, 100000, 200000) or not take("k:" .. key, 100000, 200000) then
          return refuse(8, "over the request quota")
        end
        local inflight = ngx.shared.wl_inflight
        if inflight:incr(tenant, 1, 0) > 1024 then
          inflight:incr(tenant, -1)
          return refuse(8, "too many calls in flight for the tenant")
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
    backend: str, *, api_key: str, tenant: str, scopes: dict[str, str], internal_token: str
) -> Iterator[tuple[str, int]]:
    """nginx in front of `backend`, knowing one key (`api_key` of `tenant`, every scope) and `scopes`' methods
    (method path → the scope it needs); its address and pid while it runs."""
    key_hash = base64.b64encode(hashlib.sha1(api_key.encode()).digest()).decode()
    lua_scopes = "{" + ", ".join(f"[{_lua(m)}] = {_lua(s)}" for m, s in scopes.items()) + "}"
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
                key_entry=_lua(f"{tenant}|{','.join(sorted(set(scopes.values())))}"),
                scopes=lua_scopes,
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
