"""The collector's request metrics (OpenTelemetry, like every other Wayline metric) and its `/metrics` page.

Instruments go through the process's meter provider, so they reach OTLP and the Prometheus reader the kit's
telemetry installs; `/metrics` renders the prometheus_client registry that reader feeds (the default one),
so one scrape of the HTTP port shows the gateway's RPC metrics beside the collector's. Routes are labelled
by their template, never by the raw path, so a scanner's random URLs cannot grow the label set.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from opentelemetry import metrics
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Instruments", "RequestMetrics", "metrics_endpoint", "metrics_page"]


class Instruments:
    """The collector's instruments: request durations (their count is the request count) and events."""

    def __init__(self, meter: metrics.Meter) -> None:
        self.duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Time to answer one HTTP request."
        )
        self._events = meter.create_counter(
            "wayline.collector.events",
            unit="{event}",
            description="Events the HTTP collector took or refused.",
        )

    def count_events(self, accepted: int, rejected: int) -> None:
        if accepted:
            self._events.add(accepted, {"outcome": "accepted"})
        if rejected:
            self._events.add(rejected, {"outcome": "rejected"})


class RequestMetrics:
    """ASGI middleware recording each request's duration by route template, method and status."""

    def __init__(self, app: ASGIApp, instruments: Instruments, routes: Collection[str]) -> None:
        self._app = app
        self._routes = frozenset(routes)
        self._duration = instruments.duration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees when the app fails before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, record_status)
        finally:
            path = scope["path"]
            self._duration.record(
                time.perf_counter() - started,
                {
                    "http.route": path if path in self._routes else "other",
                    "http.request.method": scope["method"],
                    "http.response.status_code": status,
                },
            )


def metrics_page(registry: CollectorRegistry = REGISTRY) -> Response:
    """The Prometheus text exposition of `registry`."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def metrics_endpoint(request: Request) -> Response:
    return metrics_page(request.app.state.metrics_registry)
