"""A handler failing in a way no one foresaw: the HTTP port answers a JSON 500 in the route's error shape
with a request id to quote, logs it in the process's JSON logs, and keeps serving (real sockets, uvicorn)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from structlog.testing import capture_logs

from tests.conftest import INTERNAL_TOKEN, common_settings
from tests.gateway.test_http_collector import authenticator
from wayline_cli.suite import free_port
from wayline_gateway.http.app import gateway_http_app
from wayline_gateway.http.delivery import IngestSender
from wayline_gateway.http.server import HttpServer
from wayline_gateway.http.unhandled import UnhandledErrors
from wayline_gateway.settings import GatewaySettings


class ReadinessProbeBroke(RuntimeError):
    pass


def test_a_failing_handler_answers_json_500_with_the_request_id_and_the_port_keeps_serving(
    tmp_path: Path,
) -> None:
    broken = True

    def ready() -> bool:
        if broken:
            raise ReadinessProbeBroke("the probe's own bug")
        return True

    settings = GatewaySettings(**common_settings(tmp_path))  # type: ignore[arg-type]
    sender = IngestSender.connect(
        f"127.0.0.1:{free_port()}",
        internal_token=INTERNAL_TOKEN,
        timeout_seconds=5,
        max_message_bytes=1 << 20,
    )
    registry = CollectorRegistry()
    server = HttpServer(
        gateway_http_app(authenticator(), sender, settings, ready=ready, registry=registry), "127.0.0.1", 0
    )
    server.start()
    try:
        with httpx.Client(base_url=server.address, timeout=30) as client, capture_logs() as logs:
            response = client.get("/healthz", headers={"x-request-id": "probe-42"})
            assert response.status_code == 500
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-request-id"] == "probe-42"
            assert response.json() == {
                "code": "internal",
                "message": "internal error; quote request id probe-42 when reporting it",
            }
            broken = False
            assert client.get("/healthz").json() == {"status": "SERVING"}  # same connection, still served
        failures = [entry for entry in logs if entry["event"] == "http.unhandled_exception"]
        assert len(failures) == 1
        assert failures[0]["request_id"] == "probe-42"
        assert failures[0]["path"] == "/healthz"
        assert isinstance(failures[0]["exc_info"], ReadinessProbeBroke)
    finally:
        server.stop(1)
        sender.close()


async def _fails(request: Request) -> Response:
    raise ZeroDivisionError("a bug")


async def _fine(request: Request) -> Response:
    return JSONResponse({"success": True})


@pytest.fixture
def failing_app() -> HttpServer:
    app = Starlette(
        routes=[Route("/v1/track", _fails, methods=["POST"]), Route("/v1/ok", _fine, methods=["POST"])],
        middleware=[Middleware(UnhandledErrors, segment_paths={"/v1/track", "/v1/ok"})],
    )
    return HttpServer(app, "127.0.0.1", 0)


def test_segment_paths_answer_segment_s_error_shape(failing_app: HttpServer) -> None:
    failing_app.start()
    try:
        with httpx.Client(base_url=failing_app.address, timeout=30) as client, capture_logs():
            # No plain-token request id of the caller's: a new one, the same in the header and the message.
            response = client.post("/v1/track", json={}, headers=[(b"x-request-id", b"\xe9t\xe9")])
            assert response.status_code == 500
            request_id = response.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", request_id)
            assert response.json() == {
                "success": False,
                "message": f"internal error; quote request id {request_id} when reporting it",
            }
            assert client.post("/v1/ok", json={}).json() == {"success": True}
    finally:
        failing_app.stop(1)
