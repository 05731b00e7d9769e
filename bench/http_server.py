"""`python -m bench.http_server collector|echo PORT [INGEST TOKEN KEY TENANT]`: one ASGI app on uvicorn, as
the gateway serves its collector (wayline_gateway.http.server), in its own process for the HTTP benchmark.

`echo` is the baseline: a bare ASGI callable that reads the body and sends it back, with no framework and
nothing of ours, on the same server stack (uvicorn, httptools, uvloop)."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from wayline_gateway.http.app import gateway_http_app
from wayline_gateway.http.delivery import TRACK_BATCH, IngestSender
from wayline_gateway.http.server import HttpServer
from wayline_gateway.keys import ApiKey, ApiKeyAuthenticator, digest
from wayline_gateway.settings import GatewaySettings


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def collector(ingest: str, token: str, key: str, tenant: str) -> ASGIApp:
    settings = GatewaySettings(data_dir=Path(tempfile.gettempdir()), internal_token=SecretStr(token))
    keys = {digest(key): ApiKey(tenant, frozenset({"write"}), f"tenants/{tenant}/apiKeys/bench")}
    sender = IngestSender.connect(
        ingest, internal_token=token, timeout_seconds=30, max_message_bytes=settings.max_message_bytes
    )
    return gateway_http_app(ApiKeyAuthenticator({TRACK_BATCH: "write"}, memory_keys=keys), sender, settings)


def main() -> None:
    kind, port = sys.argv[1], int(sys.argv[2])
    app = echo if kind == "echo" else collector(*sys.argv[3:7])
    server = HttpServer(app, "127.0.0.1", port)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(1)


if __name__ == "__main__":
    main()
