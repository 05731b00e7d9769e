"""What the HTTP port answers when a handler fails in a way no one foresaw: a JSON 500 in the route's own
error shape, with a request id to quote, as the gRPC port answers INTERNAL (`interceptors.py`).

Without it Starlette answers `Internal Server Error` as plain text and uvicorn prints the traceback outside
the process's JSON logs: a Segment library or a Connect client cannot read the body, and the operator cannot
find the request the caller reports. A 500 tells Segment's libraries to retry the batch, which is safe: ingest
keeps one event per message id.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wayline.common.context import REQUEST_ID_HEADER
from wayline.common.interceptors import caller_request_id

__all__ = ["UnhandledErrors"]

log = structlog.get_logger("wayline.gateway.http")


class UnhandledErrors:
    """ASGI middleware: an exception out of the app becomes a logged JSON 500 (when nothing was sent yet).
    `segment_paths` answer Segment's `{"success": false, "message": ...}`, every other path Connect's
    `{"code": "internal", "message": ...}`, as the JSON bridge answers its errors."""

    def __init__(self, app: ASGIApp, segment_paths: Collection[str]) -> None:
        self._app = app
        self._segment_paths = frozenset(segment_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, watch)
        except Exception as error:
            headers = {
                key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]
            }
            request_id = caller_request_id(headers)
            path = scope["path"]
            log.error(
                "http.unhandled_exception", path=path, request_id=request_id, answered=started, exc_info=error
            )
            if started:  # the status line is out: the connection closes short, which the client sees
                return
            message = f"internal error; quote request id {request_id} when reporting it"
            body = (
                {"success": False, "message": message}
                if path in self._segment_paths
                else {"code": "internal", "message": message}
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"cache-control", b"no-store"),
                        (REQUEST_ID_HEADER.encode(), request_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})
