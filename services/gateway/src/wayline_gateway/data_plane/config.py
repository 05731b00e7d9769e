"""The data plane's configuration, rendered by the control plane from what it already knows (ADR 105): the
route table (routes.py, from the contracts), the backends' addresses, the ports, TLS files, deadlines and the
key cache window from the gateway's settings. Two files in the data plane's directory: `nginx.conf` and
`wayline_edge_config.lua` (the values `wayline_edge.lua` reads), so that nothing is written twice.
"""

from __future__ import annotations

import getpass
import grp
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wayline.common.context import INTERNAL_TOKEN_HEADER, PRINCIPAL_HEADER, REQUEST_ID_HEADER, TENANT_HEADER
from wayline.common.errors import ERROR_DOMAIN
from wayline.common.quotas import EVENT_PACING_HEADER
from wayline.common.registry import PUBLIC_SCOPE
from wayline_gateway.quotas import CONCURRENCY_RETRY_SECONDS
from wayline_gateway.routes import Route

__all__ = [
    "LUA_MODULES",
    "EdgeConfig",
    "admin_socket",
    "data_plane_directory",
    "edge_routes",
    "make_socket_directory",
    "render",
    "socket_directory",
]

# Where Debian's packages put nginx's dynamic modules (libnginx-mod-http-lua and the NDK it needs).
LUA_MODULES = Path("/usr/lib/nginx/modules")
PACKAGE = Path(__file__).parent

# The caller's headers a passed call keeps: gRPC's own, the trace context, and what nginx needs for the
# request itself. Everything else the caller sent stays at the edge, as with the Python pass-through.
KEPT_HEADERS = (
    "host",
    "content-type",
    "content-length",
    "te",
    "user-agent",
    "grpc-encoding",
    "grpc-accept-encoding",
    "traceparent",
    "tracestate",
)


def data_plane_directory(service_dir: Path) -> Path:
    """Where the gateway renders the data plane's files and nginx keeps its pid, sockets and buffers."""
    return service_dir / "data-plane"


def socket_directory(directory: Path) -> Path:
    """Where the data plane's Unix sockets are: a short folder of its own under the temporary directory,
    linked from the data plane's directory as `run` (a socket's path may not pass 107 bytes, and data dirs
    are often long), resolved here so that its users connect by the short path."""
    return (directory / "run").resolve()


def make_socket_directory(directory: Path) -> Path:
    """A new short folder for the sockets (only this user may enter it), linked as `run`; the old one's link
    replaced."""
    sockets = Path(tempfile.mkdtemp(prefix="wayline-edge-"))
    link = directory / "run"
    staged = directory / "run.new"
    staged.unlink(missing_ok=True)
    staged.symlink_to(sockets)
    staged.replace(link)
    return sockets


def admin_socket(directory: Path) -> Path:
    """nginx's own socket for the control plane: `/flush` after a change, `/metrics`."""
    return socket_directory(directory) / "admin.sock"


@dataclass(frozen=True)
class EdgeConfig:
    """Everything the rendered files hold. `backends` maps a backend's name to its host:port."""

    directory: Path
    listen: str  # host:port of the public gRPC port
    control_address: str  # host:port of the Python gateway's gRPC server
    sockets: Path  # a short folder for the Unix sockets (`make_socket_directory`)
    backends: Mapping[str, str]
    routes: Mapping[str, Route]
    internal_token: str
    key_cache_seconds: float
    default_deadline_seconds: float
    max_deadline_seconds: float
    max_message_bytes: int
    # How long a message of a stream the service paces may wait for its events' quota (the gateway's own).
    stream_quota_wait_seconds: float = 5.0
    workers: int = 1
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None
    # TLS to the services: the CA to trust, a client certificate for mutual TLS, the name to check.
    backend_ca_file: Path | None = None
    backend_cert_file: Path | None = None
    backend_key_file: Path | None = None
    backend_server_name: str | None = None
    max_cached_keys: int = 100_000
    # A line per call on the gateway's stdout, as the kit logs every call at level info; JSON or console.
    log_calls: bool = True
    log_json: bool = True

    @property
    def admin_socket(self) -> Path:
        """nginx's own socket for the control plane: `/flush` after a change, `/metrics`."""
        return self.sockets / "admin.sock"

    @property
    def lookup_socket(self) -> Path:
        """The control plane's key lookups (lookup.py)."""
        return self.sockets / "lookup.sock"


def _lua_string(text: str) -> str:
    """`text` as a Lua string literal: printable ASCII as it is, every other byte as a decimal escape."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def _lua_number(value: float) -> str:
    return repr(float(value))


def _events(route: Route) -> str:
    """What a call costs of the events quota, as `wayline_edge.lua` reads it: nil (nothing), "one" (a
    singular event field: Track), "paced" (a stream the service paces to the limits the data plane passes
    it), or the number of the repeated field it counts in the message."""
    if route.paced_by_backend:
        return '"paced"'
    if not route.event_field or route.descriptor is None:
        return "nil"
    field = route.descriptor.input_type.fields_by_number[route.event_field]
    if not field.is_repeated:
        return '"one"'
    return str(route.event_field)


def _control(route: Route) -> bool:
    """Calls the data plane leaves to the control plane: streams (their events are paced message by message,
    quotas.py) but those the service paces itself (routes.PACED_BY_BACKEND, ADR 106), erasures (they drop the
    HTTP bridge's kept answers, ADR 73) and probes without a key."""
    if route.paced_by_backend:
        return False
    return route.client_streaming or route.server_streaming or route.erases or route.scope == PUBLIC_SCOPE


def edge_routes(routes: Mapping[str, Route]) -> str:
    """The route table as a Lua table constructor."""
    lines = []
    for path, route in sorted(routes.items()):
        if _control(route):
            lines.append(f"    [{_lua_string(path)}] = {{ control = true }},")
        else:
            lines.append(
                f"    [{_lua_string(path)}] = {{ backend = {_lua_string('wayline_' + route.backend)}, "
                f"scope = {_lua_string(route.scope)}, events = {_events(route)} }},"
            )
    return "{\n" + "\n".join(lines) + "\n  }"


def _lua_config(config: EdgeConfig) -> str:
    kept = ", ".join(f"[{_lua_string(name)}] = true" for name in KEPT_HEADERS)
    return f"""-- Rendered by the gateway's control plane (data_plane/config.py); rewritten at every start.
return {{
  routes = {edge_routes(config.routes)},
  kept_headers = {{ {kept} }},
  internal_token = {_lua_string(config.internal_token)},
  tenant_header = {_lua_string(TENANT_HEADER)},
  principal_header = {_lua_string(PRINCIPAL_HEADER)},
  internal_token_header = {_lua_string(INTERNAL_TOKEN_HEADER)},
  request_id_header = {_lua_string(REQUEST_ID_HEADER)},
  event_pacing_header = {_lua_string(EVENT_PACING_HEADER)},
  stream_quota_wait_seconds = {_lua_number(config.stream_quota_wait_seconds)},
  error_domain = {_lua_string(ERROR_DOMAIN)},
  key_cache_seconds = {_lua_number(config.key_cache_seconds)},
  max_cached_keys = {config.max_cached_keys},
  lookup_socket = {_lua_string("unix:" + str(config.lookup_socket))},
  lookup_timeout_ms = 2000,
  default_deadline_seconds = {_lua_number(config.default_deadline_seconds)},
  max_deadline_seconds = {_lua_number(config.max_deadline_seconds)},
  concurrency_retry_seconds = {_lua_number(CONCURRENCY_RETRY_SECONDS)},
  log_calls = {"true" if config.log_calls else "false"},
  log_json = {"true" if config.log_json else "false"},
}}
"""


def _quoted(path: Path | str) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _user() -> str:
    """nginx started by root hands its workers to `nobody`, who could not read the data plane's directory
    nor reach the control plane's socket: they run as the gateway's own user instead."""
    if os.geteuid() != 0:
        return ""
    return f"user {getpass.getuser()} {grp.getgrgid(os.getegid()).gr_name};"


def _backend_tls(config: EdgeConfig) -> str:
    if config.backend_ca_file is None:
        return ""
    lines = [
        f"grpc_ssl_trusted_certificate {_quoted(config.backend_ca_file)};",
        "grpc_ssl_verify on;",
        "grpc_ssl_server_name on;",
        f"grpc_ssl_name {config.backend_server_name or '$wayline_backend_host'};",
    ]
    if config.backend_cert_file is not None and config.backend_key_file is not None:
        lines += [
            f"grpc_ssl_certificate {_quoted(config.backend_cert_file)};",
            f"grpc_ssl_certificate_key {_quoted(config.backend_key_file)};",
        ]
    return "\n      ".join(lines)


def _public_tls(config: EdgeConfig) -> tuple[str, str]:
    if config.tls_cert_file is None or config.tls_key_file is None:
        return "", ""
    lines = [
        f"ssl_certificate {_quoted(config.tls_cert_file)};",
        f"ssl_certificate_key {_quoted(config.tls_key_file)};",
        "ssl_protocols TLSv1.2 TLSv1.3;",
    ]
    if config.tls_client_ca_file is not None:
        lines += [f"ssl_client_certificate {_quoted(config.tls_client_ca_file)};", "ssl_verify_client on;"]
    return " ssl", "\n    ".join(lines)


def _nginx_conf(config: EdgeConfig) -> str:
    directory = config.directory
    scheme = "grpcs" if config.backend_ca_file is not None else "grpc"
    upstreams = "\n  ".join(
        f"upstream wayline_{name} {{ server {address}; keepalive 64; keepalive_requests 1000000; }}"
        for name, address in sorted(config.backends.items())
    )
    backend_hosts = "\n    ".join(
        f"wayline_{name} {address.rpartition(':')[0].strip('[]')};"
        for name, address in config.backends.items()
    )
    ssl, public_tls = _public_tls(config)
    # A unary call's message is held in memory to count its events (gRPC's 5-byte frame header on top);
    # bigger ones go to a file and on to the control plane. Bodies are not limited here: the services'
    # message limits answer with gRPC's own status.
    body_in_memory = config.max_message_bytes + 5
    call_timeout = int(config.max_deadline_seconds) + 5
    return f"""# Rendered by the gateway's control plane (data_plane/config.py); rewritten at every start.
load_module {LUA_MODULES}/ndk_http_module.so;
load_module {LUA_MODULES}/ngx_http_lua_module.so;
{_user()}
daemon off;
worker_processes {config.workers};
pid {_quoted(directory / "nginx.pid")};
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  server_tokens off;
  client_body_temp_path {_quoted(directory / "body")};
  proxy_temp_path {_quoted(directory / "proxy")};
  fastcgi_temp_path {_quoted(directory / "fastcgi")};
  uwsgi_temp_path {_quoted(directory / "uwsgi")};
  scgi_temp_path {_quoted(directory / "scgi")};
  lua_package_path "{PACKAGE}/?.lua;{directory}/?.lua;;";
  lua_shared_dict wayline_state 64k;
  lua_shared_dict wayline_buckets 32m;
  lua_shared_dict wayline_in_flight 4m;
  lua_shared_dict wayline_metrics 4m;
  init_by_lua_block {{ require "wayline_edge" }}
  map $wayline_backend $wayline_backend_host {{
    default "";
    {backend_hosts}
  }}
  upstream wayline_control {{ server {config.control_address}; keepalive 32; keepalive_requests 1000000; }}
  {upstreams}
  server {{
    listen {config.listen}{ssl} http2;
    {public_tls}
    client_max_body_size 0;
    client_body_buffer_size {body_in_memory};
    http2_body_preread_size 65536;
    # Set by the Lua of a call; variables, unlike ngx.ctx, survive the redirect to @unreachable.
    set $wayline_backend "";
    set $wayline_subjects "";
    set $wayline_status "";
    set $wayline_reason "";
    set $wayline_tenant "";
    body_filter_by_lua_block {{ require("wayline_edge").body_filter() }}
    log_by_lua_block {{ require("wayline_edge").log() }}
    location / {{
      access_by_lua_block {{ require("wayline_edge").access() }}
      error_page 502 504 = @unreachable;
      grpc_read_timeout {call_timeout}s;
      grpc_send_timeout {call_timeout}s;
      {_backend_tls(config)}
      grpc_pass {scheme}://$wayline_backend;
    }}
    location @unreachable {{
      content_by_lua_block {{ require("wayline_edge").unreachable() }}
    }}
    location @control {{
      # Streams stay open as long as their callers like; the control plane ends them on its drain.
      grpc_read_timeout 3600s;
      grpc_send_timeout 3600s;
      grpc_pass grpc://wayline_control;
    }}
  }}
  server {{
    listen unix:{config.admin_socket};
    location = /flush {{ content_by_lua_block {{ require("wayline_edge").flush() }} }}
    location = /metrics {{ content_by_lua_block {{ require("wayline_edge").metrics() }} }}
  }}
}}
"""


def render(config: EdgeConfig) -> Path:
    """Write both files into `config.directory` (made if missing); the path of nginx.conf."""
    config.directory.mkdir(parents=True, exist_ok=True)
    (config.directory / "wayline_edge_config.lua").write_text(_lua_config(config))
    conf = config.directory / "nginx.conf"
    conf.write_text(_nginx_conf(config))
    return conf
