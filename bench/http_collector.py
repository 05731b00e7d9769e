"""The Segment-compatible HTTP collector: events/s through /v1/batch into ingest (durable in its spool when
answered), beside a bare ASGI echo on the same server stack, in the same run.

Each request is a distinct batch of 100 Segment track messages (about 40 KB of JSON) with fresh messageIds,
sent by httpx from one asyncio loop with several concurrent callers; the collector runs in its own process
against the suite's ingest (which also runs identity, journeys and the rest, on the same 2 cores)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path

import httpx
from rich.console import Console

from bench.harness import Measurement, measure, print_comparison
from wayline_cli.suite import Suite, free_port

BATCH = 100


def batches(count: int, run: str) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        json.dumps(
            {
                "batch": [
                    {
                        "type": "track",
                        "messageId": f"ajs-next-{run}-{b}-{i}",
                        "userId": f"user-{run}-{i % 50}",
                        "anonymousId": str(uuid.uuid4()),
                        "event": "Product Viewed",
                        "properties": {"sku": f"A-{i}", "price": 9.5, "currency": "EUR"},
                        "context": {
                            "library": {"name": "analytics.js", "version": "next-1.70.0"},
                            "page": {"path": "/p", "url": "https://shop.example/p", "title": "P"},
                            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
                            "ip": "203.0.113.9",
                        },
                        "timestamp": now,
                        "sentAt": now,
                    }
                    for i in range(BATCH)
                ]
            }
        ).encode()
        for b in range(count)
    ]


@contextmanager
def http_server(kind: str, *args: str) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.http_server", kind, str(port), *args], stdin=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz" if kind == "collector" else url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {kind} server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


async def run_row(
    scenario: str, url: str, echo_url: str, key: str, bodies: list[bytes], concurrency: int
) -> Measurement:
    next_body = cycle(bodies).__next__
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, auth=(key, ""), limits=limits, timeout=60) as client:

        async def call() -> None:
            response = await client.post("/v1/batch", content=next_body())
            # The echo sends the batch back; the collector answers {"success":true} when all were taken.
            if response.status_code != 200 or (url != echo_url and response.content != b'{"success":true}'):
                raise RuntimeError(f"{scenario}: {response.status_code} {response.text[:300]}")

        return await measure(scenario, call, concurrency, len(bodies) - 20, warmup=20)


def main(requests: int) -> None:
    console = Console(width=130)
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as scratch:
        suite = Suite.on_free_ports(Path(scratch), log_format="json")
        suite.start()
        try:
            suite.wait_ready()
            args = (suite.address("ingest"), suite.internal_token, suite.api_key, suite.tenant)
            with http_server("echo") as echo, http_server("collector", *args) as collector:
                for concurrency in (1, 4):
                    bodies = batches(requests + 20, uuid.uuid4().hex[:8])
                    for scenario, url in (("bare ASGI echo", echo), ("collector → ingest", collector)):
                        rows.append(
                            asyncio.run(run_row(scenario, url, echo, suite.api_key, bodies, concurrency))
                        )
                        bodies = batches(requests + 20, uuid.uuid4().hex[:8])  # no retry: fresh ids
        finally:
            suite.stop()
    print_comparison(f"HTTP /v1/batch, {BATCH} events a request", rows, "bare ASGI echo", console)
    for m in rows:
        console.print(f"{m.scenario}, {m.concurrency} callers: {m.rps * BATCH:,.0f} events/s")
