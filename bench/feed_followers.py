"""What idle tenants cost the suite (ADR 95): each service's CPU, nothing sent, with `tenants` tenants of one
event each, beside the same suite before those tenants existed (the baseline, same run); and the calls a
second identity serves to the override feed's followers (journeys, decision, the orchestrator) meanwhile.

The suite runs as `wayline up` starts it (child processes, default settings: the followers poll every
second). Each tenant's event goes to ingest directly (its internal token and the tenant in metadata), so
every store that follows the feed knows the tenant; the idle window starts once ingest has delivered them
all to journeys and a few polls have passed.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from bench.harness import cpu_seconds, metric_sum
from bench.ingest import delivered
from bench.track import TRACK, track_requests
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.registry import SERVICES
from wayline_cli.suite import Suite

_FEED_METHODS = ("ListPersonOverrides", "GetOverrideFeedHeads", "AcknowledgePersonOverrides")


def _idle(suite: Suite, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    """Each service's CPU (% of a core) and identity's feed calls a second, over `seconds` of nothing."""
    pids = {name: process.pid for name, process in suite.processes.items()}
    identity_port = suite.metrics_ports["identity"]

    def calls() -> dict[str, float]:
        return {
            method: metric_sum(
                identity_port,
                "rpc_server_requests_total",
                rpc_method=f"/wayline.identity.v1.IdentityService/{method}",
            )
            for method in _FEED_METHODS
        }

    cpu_before, calls_before, began = {n: cpu_seconds(p) for n, p in pids.items()}, calls(), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - began
    cpu = {name: (cpu_seconds(pid) - cpu_before[name]) * 100 / elapsed for name, pid in pids.items()}
    rates = {method: (count - calls_before[method]) / elapsed for method, count in calls().items()}
    return cpu, rates


def _new_tenants(suite: Suite, count: int) -> None:
    """One event for each of `count` new tenants, through ingest; waits until journeys has them all."""
    run = uuid.uuid4().hex[:8]
    port = suite.metrics_ports["ingest"]
    before = delivered(port)
    with grpc.insecure_channel(suite.address("ingest")) as channel:
        track = channel.unary_unary(TRACK, request_serializer=None, response_deserializer=None)
        for index, request in enumerate(track_requests(count)):
            metadata = ((INTERNAL_TOKEN_HEADER, suite.internal_token), (TENANT_HEADER, f"idle-{run}-{index}"))
            track(request, metadata=metadata, timeout=30)
    deadline = time.monotonic() + 600
    while delivered(port) < before + count and time.monotonic() < deadline:
        time.sleep(0.5)


def main(tenants: int, seconds: float) -> None:
    console = Console()
    with tempfile.TemporaryDirectory() as scratch:
        suite = Suite.on_free_ports(Path(scratch), log_format="json", metrics=True)
        suite.start()
        try:
            suite.wait_ready()
            time.sleep(5)  # past the services' start-up work
            baseline = _idle(suite, seconds)
            began = time.monotonic()
            _new_tenants(suite, tenants)
            console.print(f"{tenants:,} tenants written and delivered in {time.monotonic() - began:.1f} s")
            time.sleep(10)  # a few polls: every follower has seen every tenant once
            loaded = _idle(suite, seconds)
        finally:
            suite.stop()
    table = Table(title=f"idle for {seconds:.0f} s: CPU, % of a core (baseline: no tenant of the bench's)")
    table.add_column("service")
    table.add_column("baseline", justify="right")
    table.add_column(f"{tenants:,} tenants", justify="right")
    table.add_column("added", justify="right")
    for service in (s.name for s in SERVICES):
        before, after = baseline[0][service], loaded[0][service]
        table.add_row(service, f"{before:.1f}", f"{after:.1f}", f"{after - before:+.1f}")
    total_before, total_after = sum(baseline[0].values()), sum(loaded[0].values())
    table.add_row("all", f"{total_before:.1f}", f"{total_after:.1f}", f"{total_after - total_before:+.1f}")
    console.print(table)
    calls = Table(title="identity's feed calls a second, idle")
    calls.add_column("method")
    calls.add_column("baseline", justify="right")
    calls.add_column(f"{tenants:,} tenants", justify="right")
    for method in _FEED_METHODS:
        calls.add_row(method, f"{baseline[1][method]:.1f}", f"{loaded[1][method]:.1f}")
    console.print(calls)
