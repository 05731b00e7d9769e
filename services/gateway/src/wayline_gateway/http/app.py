"""The gateway's ASGI app (Starlette): Segment's endpoints, the JSON bridge to every public unary RPC, the
journey console, `/healthz` and `/metrics`.

Thin by design: it reads the body within its limit and hands it to `Collector` or `JsonBridge` in a worker
thread (mapping a 500 KB batch and the blocking gRPC call must not hold the event loop). Browsers send
analytics.js's calls cross-origin (as `text/plain`, so any content type is read as JSON), hence CORS on
Segment's paths, open to every origin and never with credentials. Every other path (the JSON bridge, the
console, `/healthz`, `/metrics`) answers same-origin only: no CORS header, and a preflight is refused, so a
page of another origin can neither call the bridge from a browser nor read what the gateway answers (ADR 74).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from opentelemetry import metrics
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wayline.common.auth import Authenticator
from wayline.common.interceptors import caller_request_id
from wayline_gateway.console.assets import SECURITY_HEADERS, Asset, ConsoleAssets
from wayline_gateway.http.body import BodyError, too_large
from wayline_gateway.http.bridge import JsonBridge
from wayline_gateway.http.collector import Admit, Collector, Limits, Reply
from wayline_gateway.http.delivery import BatchSender
from wayline_gateway.http.metrics import Instruments, RequestMetrics, metrics_endpoint
from wayline_gateway.http.segment import KINDS
from wayline_gateway.http.unhandled import UnhandledErrors
from wayline_gateway.settings import GatewaySettings

__all__ = ["ROUTES", "CollectorCors", "gateway_http_app"]

# Segment's paths, and the one-letter ones analytics.js posts to (`/v1/t`, `/v1/b`, ...).
ROUTES: dict[str, str | None] = {
    **{f"/v1/{kind}": kind for kind in KINDS},
    **{f"/v1/{kind[0]}": kind for kind in KINDS if kind != "alias"},
    "/v1/a": "alias",
    "/v1/batch": None,
    "/v1/b": None,
    "/v1/import": None,  # Segment's old name for batch
}
_GZIP_ALLOWANCE = 1024  # a compressed body may exceed the JSON it holds by its header and incompressibility


def gateway_http_app(
    authenticator: Authenticator,
    sender: BatchSender,
    settings: GatewaySettings,
    *,
    bridge: JsonBridge | None = None,
    console: ConsoleAssets | None = None,
    ready: Callable[[], bool] | None = None,
    admit: Admit | None = None,
    meter: metrics.Meter | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> ASGIApp:
    """The gateway's ASGI app. `bridge` answers `POST /<package.Service>/<Method>` and `console` serves
    `/console/` (each absent when None); `ready` (default: `sender.ready`) decides `/healthz`; `meter`
    defaults to the process's meter provider; `/metrics` renders `registry`; `admit` holds each request's
    place in the caller's quotas (none when unset)."""
    collector = Collector(
        authenticator,
        sender,
        Limits(
            settings.http_max_message_bytes, settings.http_max_batch_bytes, settings.http_ingest_batch_events
        ),
        **({"admit": admit} if admit is not None else {}),
    )
    is_ready = ready or sender.ready
    instruments = Instruments(meter or metrics.get_meter("wayline.gateway.http"))

    def endpoint(kind: str | None) -> Callable[[Request], Awaitable[Response]]:
        limit = collector.limits.max_batch_bytes if kind is None else collector.limits.max_message_bytes

        async def collect(request: Request) -> Response:
            encoding = request.headers.get("content-encoding", "")
            try:
                raw = await _read(request, limit + (_GZIP_ALLOWANCE if encoding else 0))
            except BodyError as error:
                return JSONResponse({"success": False, "message": error.message, "reason": error.reason}, 400)
            reply: Reply = await run_in_threadpool(
                collector.handle,
                kind,
                raw,
                encoding,
                request.headers.get("authorization", ""),
                caller_request_id(request.headers),
            )
            instruments.count_events(reply.accepted, reply.rejected)
            return JSONResponse(reply.body, reply.status, headers=reply.headers)

        return collect

    async def healthz(request: Request) -> Response:
        if await run_in_threadpool(is_ready):
            return JSONResponse({"status": "SERVING"})
        return JSONResponse({"status": "NOT_SERVING"}, 503)

    routes = [Route(path, endpoint(kind), methods=["POST"]) for path, kind in ROUTES.items()]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    labelled = [r.path for r in routes]
    if console is not None:
        routes += _console_routes(console)
        labelled += ["/console/", *(f"/console/assets/{name}" for name in console.names())]
    if bridge is not None:
        routes.append(Route("/{service}/{method}", _bridge_endpoint(bridge), methods=["POST"]))
        labelled += sorted(bridge.paths)

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(RequestMetrics, instruments=instruments, routes=labelled),
            Middleware(CollectorCors, paths=frozenset(ROUTES)),
            Middleware(UnhandledErrors, segment_paths=frozenset(ROUTES)),
        ],
    )
    app.state.metrics_registry = registry
    return app


class CollectorCors:
    """CORS for Segment's endpoints only (`paths`): any origin may POST events with a write key, as
    analytics.js does from a shop's pages, and no answer is ever shared with credentials (no
    `Access-Control-Allow-Credentials`), so no cookie or cached login can ride a cross-origin call.
    Other paths pass straight to the app: no CORS header, so a browser keeps them to the gateway's own
    origin (the console's), and a preflight gets the route's 405."""

    def __init__(self, app: ASGIApp, paths: frozenset[str]) -> None:
        self._app = app
        self._paths = paths
        self._cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["POST"],
            allow_headers=["*"],
            allow_credentials=False,
            max_age=86_400,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self._paths:
            await self._cors(scope, receive, send)
        else:
            await self._app(scope, receive, send)


async def _read(request: Request, limit: int) -> bytes:
    """The raw body, refused (400, as Segment does) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


_BRIDGE_BODY_LIMIT = 4 * 1024 * 1024  # a request message as JSON; the gRPC port's own limit is the real one


def _bridge_endpoint(bridge: JsonBridge) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        try:
            raw = await _read(request, _BRIDGE_BODY_LIMIT)
        except BodyError as error:
            return JSONResponse({"code": "resource_exhausted", "message": error.message}, 413)
        reply = await run_in_threadpool(
            bridge.handle,
            request.url.path,
            raw,
            {key.lower(): value for key, value in request.headers.items()},
        )
        # Answers hold one tenant's data: never stored by a browser or a shared cache.
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **reply.headers}
        if request.url.scheme == "https":
            headers.update(_HSTS)
        return JSONResponse(reply.body, reply.status, headers=headers)

    return call


def _accepts_gzip(request: Request) -> bool:
    for coding in request.headers.get("accept-encoding", "").split(","):
        name, _, quality = coding.strip().partition(";")
        if name.strip().lower() == "gzip":
            return quality.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


# Over HTTPS (TLS configured on the port) a browser that has seen the console once never tries it over plain
# HTTP again, where a network attacker could answer for the gateway and read the key as it is typed.
_HSTS = {"Strict-Transport-Security": "max-age=31536000"}


def _security_headers(request: Request) -> dict[str, str]:
    return {**SECURITY_HEADERS, **_HSTS} if request.url.scheme == "https" else SECURITY_HEADERS


def _serve(asset: Asset, request: Request) -> Response:
    packed = asset.gzipped is not None and _accepts_gzip(request)
    # Each encoding is its own representation, with its own strong validator (RFC 9110, 8.8.3).
    etag = asset.etag[:-1] + '-gzip"' if packed else asset.etag
    headers = {
        **_security_headers(request),
        "ETag": etag,
        "Cache-Control": "no-cache",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if packed:
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _console_routes(console: ConsoleAssets) -> list[Route]:
    async def index(request: Request) -> Response:
        if console.index is None:
            return JSONResponse({"message": "the console is not built: run `make console`"}, 503)
        return _serve(console.index, request)

    async def asset(request: Request) -> Response:
        found = console.get(request.path_params.get("name", ""))
        if found is None:
            return Response("not found", 404, headers=_security_headers(request), media_type="text/plain")
        return _serve(found, request)

    async def to_index(request: Request) -> Response:
        return RedirectResponse("/console/", 308)

    return [
        Route("/console", to_index, methods=["GET"]),
        Route("/console/", index, methods=["GET"]),
        Route("/console/assets/{name:path}", asset, methods=["GET"]),
        Route("/console/{other:path}", asset, methods=["GET"]),  # a 404 under the console's policy too
    ]
