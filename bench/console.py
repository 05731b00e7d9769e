"""`python -m bench console --events N`: the journey console's summary pages on a store of N events.

For each page (paths, funnels, retention, lifecycle) in headless Chromium, signed in with the tenant's read
key: first contentful paint, and the time until the page shows its data (from navigation start), on the
first visit (the page's queries run) and on a second visit (the gateway's kept answers, ADR 58). Beside it,
the baseline of the same run: the page's own requests, captured from the browser, sent straight to journeys
over gRPC. The issue's target is first paint under a second on summaries of 10M events.

The store is loaded once per size into `--cache-dir` (the journeys bench's generated data, through
WriteEvents) and kept, so later runs only measure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import grpc
import structlog
from google.protobuf import json_format, message_factory
from rich.console import Console
from rich.table import Table

from bench.journeys_cache import dataset
from bench.journeys_data import END, START, TENANT
from bench.journeys_rpc import journeys_server, settle, write_all
from bench.journeys_vocabulary import FUNNEL
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.registry import backend_contracts
from wayline_cli.suite import Suite
from wayline_gateway.routes import build_routes

__all__ = ["main"]

_WHOLE_RANGE = urlencode(
    {"from": START.date().isoformat(), "to": (END - timedelta(days=1)).date().isoformat()}
)
# Each page over the whole year of the bench's data (a page's default, the last 30 days, would hold none of
# it), the funnel with the four steps of the journeys bench.
PAGES = {
    "paths": f"paths?{_WHOLE_RANGE}",
    "funnels": f"funnels?{_WHOLE_RANGE}&" + urlencode([("step", step) for step in FUNNEL]),
    "retention": f"retention?{_WHOLE_RANGE}",
    "lifecycle": f"lifecycle?{_WHOLE_RANGE}",
}
KEY_STORAGE = "wayline.console.apiKey"  # where the console keeps the key (console/src/api.js)
CHROMIUM = "/usr/bin/chromium"
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A page's section is busy until its data is drawn (console/src/main.js). A selector, not a function: the
# console's CSP forbids the eval that wait_for_function's polling needs.
_READY = "main section.page:not([aria-busy])"


def loaded_store(cache: Path, events: int, seed: int, console: Console) -> Path:
    """A data dir whose journeys store holds the bench's `events` events for TENANT (loaded once)."""
    persons = max(1, events // 50)
    data_dir = cache / f"console-{events}-seed{seed}"
    if (data_dir / "loaded").exists():
        return data_dir
    data = dataset(cache, "main", events, persons, seed, console)
    began = time.perf_counter()
    with journeys_server(data_dir) as (address, pid):
        for chunk in range(data.chunks):
            write_all(address, data.requests(chunk))
            console.print(f"loaded chunk {chunk + 1}/{data.chunks}")
        settle(pid)
    (data_dir / "loaded").write_text(f"{events} events over {persons} persons\n")
    console.print(f"store of {events:,} events loaded in {time.perf_counter() - began:.0f}s")
    return data_dir


@dataclass
class Visit:
    first_paint_ms: float
    ready_ms: float
    calls: list[tuple[str, bytes]] = field(default_factory=list)  # (bridge path, JSON body) the page sent


@contextlib.contextmanager
def _browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # a dev dependency, imported only when measuring

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def visit(browser: Any, base: str, key: str, route: str) -> Visit:
    """Open the console straight on `route` (`paths?from=...`) in a new browser context (nothing cached in
    the browser)."""
    context = browser.new_context()
    context.add_init_script(f"sessionStorage.setItem({json.dumps(KEY_STORAGE)}, {json.dumps(key)})")
    page = context.new_page()
    calls: list[tuple[str, bytes]] = []
    page.on(
        "request",
        lambda request: (
            calls.append((request.url.removeprefix(base), request.post_data_buffer or b"{}"))
            if request.method == "POST" and "/wayline." in request.url
            else None
        ),
    )
    try:
        page.goto(f"{base}/console/#/{route}")
        page.wait_for_selector(_READY, timeout=600_000)
        ready = float(page.evaluate("performance.now()"))
        paint = float(
            page.evaluate("performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1")
        )
        return Visit(paint, ready, calls)
    finally:
        context.close()


def direct_ms(journeys: str, token: str, calls: list[tuple[str, bytes]]) -> float:
    """The page's own requests sent one after another straight to journeys over gRPC (with the suite's
    internal `token`), in milliseconds."""
    metadata = ((INTERNAL_TOKEN_HEADER, token), (TENANT_HEADER, TENANT))
    routes = build_routes(backend_contracts())
    total = 0.0
    with grpc.insecure_channel(journeys) as channel:
        for path, body in calls:
            route = routes.get(path)
            if route is None or route.descriptor is None or route.backend != "journeys":
                continue
            request = json_format.Parse(
                body or b"{}", message_factory.GetMessageClass(route.descriptor.input_type)()
            )
            call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
            began = time.perf_counter()
            call(request.SerializeToString(), metadata=metadata, timeout=600)
            total += time.perf_counter() - began
    return total * 1000


def main(events: int, seed: int, cache: Path) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    console = Console(width=160)
    data_dir = loaded_store(cache, events, seed, console)
    suite = Suite.on_free_ports(data_dir, tenant=TENANT)
    os.environ.setdefault("WAYLINE_LOG_LEVEL", "warning")
    suite.start()
    try:
        suite.wait_ready()
        base = f"http://{suite.host}:{suite.http_port}"
        table = Table(title=f"The console on {events:,} events (milliseconds from navigation start)")
        for column in (
            "page",
            "first paint",
            "data shown, 1st visit",
            "data shown, 2nd visit",
            "direct RPCs",
        ):
            table.add_column(column, justify="right")
        table.add_column("2nd visit ≤ 1 s")
        table.add_column("the page's calls (1st visit)", justify="left")
        with _browser() as browser:
            for page_id, route in PAGES.items():
                first = visit(browser, base, suite.api_key, route)
                second = visit(browser, base, suite.api_key, route)
                direct = direct_ms(suite.address("journeys"), suite.internal_token, first.calls)
                table.add_row(
                    page_id,
                    f"{first.first_paint_ms:,.0f}",
                    f"{first.ready_ms:,.0f}",
                    f"{second.ready_ms:,.0f}",
                    f"{direct:,.0f}",
                    "yes" if second.ready_ms <= 1000 else "no",
                    ", ".join(path.rpartition("/")[2] for path, _ in first.calls),
                )
        console.print(table)
    finally:
        suite.stop()
