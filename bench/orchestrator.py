"""The orchestrator (issue 12) against a real server in its own process, over real gRPC, on SQLite (embedded)
and, when asked, on PostgreSQL, each figure beside a bare echo of the same request bytes in the same run:

1. CheckContact (on Decide's path; target p99 ≤ 2 ms): a policy with every kind of rule and a ledger
   pre-filled for `persons` persons (bench/orchestrator_ledger.py), random persons checked at 1 and 16
   callers; beside it, the ledger's own `check` in this process on the same database (no gRPC), without and
   with the check cache (ADR 60, warm); paced at 500/s from a synchronous client with the server's cache as
   the rows before left it and then warm (every person checked once); and at 1 caller again while a second
   caller keeps the flows writing (after part 2).
2. Customers inside flows: `flow_persons` distinct persons enter the shipped abandoned-cart flow through
   ObserveEvents batches; then events that concern no flow (filtered before any write transaction), events of
   persons inside (a write transaction each); the live entries counted, the database's size.
3. Timer lag: `timers` timers due evenly over `window` seconds while the entries above wait
   (bench/orchestrator_flows.py), fired by the server's timer loop (restarted on the same database for each
   poll interval asked; 1 s is the default); lag p50/p99/max and timers fired per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from rich.console import Console
from rich.table import Table

from bench.echo_server import ECHO_METHOD
from bench.harness import Measurement, measure_paced, measure_paced_futures, print_comparison
from bench.orchestrator_flows import (
    OBSERVE,
    TIMER_FLOW,
    BatchFigures,
    LagFigures,
    StateReader,
    event_batches,
    publish,
    send_batches,
    send_paced,
    timer_flow,
)
from bench.orchestrator_ledger import CHECKS, check_requests, database_path, fill_ledger, person_id
from bench.track import echo_server, process_server, run_scenario
from tests.orchestrator.flow_samples import abandoned_cart
from tools.postgres_server import create_database, temporary_postgres
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.sql import Database, open_database
from wayline.orchestrator.v1 import contact_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.suite import free_port
from wayline_orchestrator.connectors import ConnectorStore
from wayline_orchestrator.contacts import ContactLedger, ContactStore
from wayline_orchestrator.contacts.check_cache import CheckCache
from wayline_orchestrator.contacts.invalidation import PostgresChangeListener, SqliteChangeWatch
from wayline_orchestrator.flows import FlowStore
from wayline_orchestrator.flows.runtime import RuntimeStore

__all__ = ["Sizes", "main"]

TENANT = "bench"
TOKEN = "bench-internal-token"
METADATA = ((INTERNAL_TOKEN_HEADER, TOKEN), (TENANT_HEADER, TENANT))
CHECK_CONTACT = "/wayline.orchestrator.v1.OrchestratorService/CheckContact"
CHECK_RATE = 500.0  # CheckContact calls per second in the paced row: Decide's target rate (issue 11)
CART_FLOW = "abandoned-cart"


@dataclass(frozen=True)
class Sizes:
    persons: int = 20_000  # persons in the contact ledger
    requests: int = 2_000  # timed CheckContact calls per row
    flow_persons: int = 10_000  # persons entering the abandoned-cart flow
    batch: int = 1_000  # events per ObserveEvents call
    timers: int = 2_000  # timers due over the window
    window_s: float = 60.0
    timer_lead_s: float = 5.0  # between the last entry and the first due timer: the phases do not overlap
    timer_polls: tuple[float, ...] = (1.0,)  # the timer loop's poll intervals to run (1 s: the default)


def migrate(db: Database) -> None:
    """The orchestrator's tables, made before its server starts (it migrates again, finding nothing to do)."""
    for store in (ContactStore(db), FlowStore(db), ConnectorStore(db), RuntimeStore(db)):
        store.migrate()


@contextlib.contextmanager
def orchestrator_server(
    data_dir: Path, url: str | None, timer_poll_s: float, check_cache_entries: int | None = None
) -> Iterator[str]:
    """`python -m wayline_orchestrator` on `data_dir` (or PostgreSQL at `url`), with no peers (and the check
    cache's size when given; 0 turns it off)."""
    port = free_port()
    env = {
        **os.environ,
        "WAYLINE_DATA_DIR": str(data_dir),
        "WAYLINE_INTERNAL_TOKEN": TOKEN,
        "WAYLINE_LOG_LEVEL": "warning",
        "WAYLINE_ORCHESTRATOR_PORT": str(port),
        "WAYLINE_ORCHESTRATOR_METRICS_PORT": "0",
        "WAYLINE_ORCHESTRATOR_JOURNEYS_ADDRESS": "",
        "WAYLINE_ORCHESTRATOR_DECISION_ADDRESS": "",
        "WAYLINE_ORCHESTRATOR_IDENTITY_ADDRESS": "",
        "WAYLINE_ORCHESTRATOR_INGEST_ADDRESS": "",
        "WAYLINE_ORCHESTRATOR_TIMER_POLL_INTERVAL_SECONDS": str(timer_poll_s),
    }
    if url:
        env["WAYLINE_ORCHESTRATOR_DATABASE_URL"] = url
    if check_cache_entries is not None:
        env["WAYLINE_ORCHESTRATOR_CHECK_CACHE_ENTRIES"] = str(check_cache_entries)
    with process_server([sys.executable, "-m", "wayline_orchestrator"], port, env) as address:
        yield address


def _in_process_checks(
    db: Database, persons: int, count: int, cache: CheckCache | None = None
) -> tuple[float, float]:
    """p50 and p99 (ms) of the ledger's `check` in this process: the domain and the database, no RPC. With
    `cache`, every person is checked once first: each check is a hit."""
    ledger = ContactLedger(ContactStore(db, cache))
    if cache is not None:
        for i in range(persons):
            ledger.check(TENANT, person_id(i), CHECKS, None)
    rng = random.Random(3)
    latencies = []
    for i in range(count + 200):
        began = time.perf_counter()
        ledger.check(TENANT, person_id(rng.randrange(persons)), CHECKS, None)
        if i >= 200:
            latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    return statistics.median(latencies), latencies[
        min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))
    ]


@contextlib.contextmanager
def _invalidation(url: str | None, path: Path, cache: CheckCache) -> Iterator[None]:
    """The cache's invalidation source, as the server runs it (ADR 60), from listening to stopped."""
    source = PostgresChangeListener(url, cache) if url else SqliteChangeWatch(path, cache)
    source.start()
    try:
        deadline = time.monotonic() + 30
        while not cache.in_use and time.monotonic() < deadline:
            time.sleep(0.01)
        yield
    finally:
        source.stop()


def _answers(address: str, payloads: list[bytes]) -> dict[str, int]:
    """What CheckContact answers for a sample of the timed requests: checks made, allowed, and the
    violations by reason (so the figures are known to exercise every kind of rule)."""
    counts: Counter[str] = Counter()
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        for payload in payloads[:200]:
            request = pb.CheckContactRequest.FromString(payload)
            for result in stub.CheckContact(request, metadata=METADATA, timeout=30).results:
                counts["checked"] += 1
                counts["allowed"] += result.allowed
                counts.update(contact_pb2.ContactBlockReason.Name(v.reason) for v in result.violations)
    return dict(counts)


def _check_contact_rows(address: str, echo: str, sizes: Sizes) -> tuple[list[Measurement], dict[str, int]]:
    payloads = check_requests(sizes.persons, max(sizes.requests, 1000))
    answers = _answers(address, payloads)
    rows = []
    for concurrency in (1, 16):
        for name, target, method, metadata in (
            ("bare thread-pool echo", echo, ECHO_METHOD, ()),
            ("CheckContact", address, CHECK_CONTACT, METADATA),
        ):
            run = run_scenario(name, target, method, metadata, payloads, concurrency, sizes.requests)
            rows.append(asyncio.run(run))
    # Open loop at Decide's target rate (issue 11: 500 decisions/s), the rate CheckContact sees on the
    # decision path; conc. 0 in the table. Latency counts from each call's scheduled start.
    for name, target, method, metadata in (
        ("bare thread-pool echo", echo, ECHO_METHOD, ()),
        ("CheckContact", address, CHECK_CONTACT, METADATA),
    ):
        rows.append(asyncio.run(_paced(name, target, method, metadata, payloads, sizes.requests)))
    return rows, answers


def _paced_sync_rows(address: str, echo: str, sizes: Sizes, uncached: str) -> tuple[list[Measurement], float]:
    """The paced row again with a synchronous client (futures from one pacing thread): the kind of client
    decision's CheckContact calls come from, and one whose own overhead hides less of the server's. Three
    times: on `uncached` (a second server on the same database with the check cache off: every check reads
    the database, as before ADR 60), then with the server's check cache as the rows before left it (persons
    drawn anew: mostly not kept), then after every person was checked once (each one kept). And the share of
    the second run's calls whose person had been checked before (its hits, the cache being large enough and
    nobody writing)."""
    payloads = check_requests(sizes.persons, max(sizes.requests, 1000), seed=9)
    # The persons the rows before checked (_check_contact_rows' requests).
    earlier = check_requests(sizes.persons, max(sizes.requests, 1000))
    seen = {pb.CheckContactRequest.FromString(p).person_id for p in earlier}
    repeats = 0
    for payload in payloads[: sizes.requests]:
        person = pb.CheckContactRequest.FromString(payload).person_id
        repeats += person in seen
        seen.add(person)
    rows = [
        _paced_sync("bare thread-pool echo", echo, ECHO_METHOD, (), payloads, sizes.requests),
        _paced_sync("CheckContact, no cache", uncached, CHECK_CONTACT, METADATA, payloads, sizes.requests),
        _paced_sync("CheckContact, as left", address, CHECK_CONTACT, METADATA, payloads, sizes.requests),
    ]
    _check_everyone(address, sizes.persons)
    rows.append(_paced_sync("CheckContact, warm", address, CHECK_CONTACT, METADATA, payloads, sizes.requests))
    return rows, repeats / max(1, min(len(payloads), sizes.requests))


def _check_everyone(address: str, persons: int) -> None:
    """One CheckContact of every person of the ledger, 16 at a time: each one's inputs kept by the server."""
    checks = pb.CheckContactRequest.FromString(check_requests(1, 1)[0]).checks
    payloads = [
        pb.CheckContactRequest(person_id=person_id(i), checks=checks).SerializeToString()
        for i in range(persons)
    ]
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(CHECK_CONTACT, request_serializer=None, response_deserializer=None)
        for start in range(0, len(payloads), 16):
            futures = [call.future(p, metadata=METADATA, timeout=30) for p in payloads[start : start + 16]]
            for future in futures:
                future.result()


def _paced_sync(
    name: str, address: str, method: str, metadata: tuple[tuple[str, str], ...], payloads: list[bytes], n: int
) -> Measurement:
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        source = itertools.cycle(payloads)

        def start() -> Any:
            return call.future(next(source), metadata=metadata, timeout=30)

        return measure_paced_futures(name, start, CHECK_RATE, n)


async def _paced(
    name: str, address: str, method: str, metadata: tuple[tuple[str, str], ...], payloads: list[bytes], n: int
) -> Measurement:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        source = itertools.cycle(payloads)

        async def one() -> object:
            return await call(next(source), metadata=metadata, timeout=30)

        return await measure_paced(name, one, CHECK_RATE, n)


@dataclass(frozen=True)
class FlowFigures:
    rows: list[tuple[BatchFigures, BatchFigures]]  # (orchestrator, echo of the same bytes)
    live_entries: int
    timers: int
    size_mb: float


def _flow_rows(address: str, echo: str, sizes: Sizes, state: StateReader) -> FlowFigures:
    publish(address, METADATA, CART_FLOW, abandoned_cart()["definition"])
    inside = [f"cart-{i:07d}" for i in range(sizes.flow_persons)]
    outside = [f"other-{i:07d}" for i in range(sizes.flow_persons)]
    cart = {"cart_value": 120, "cart_url": "https://shop.test/cart"}
    workloads = (
        (
            "entries: Cart Abandoned, each person enters",
            event_batches("Cart Abandoned", inside, sizes.batch, cart),
        ),
        ("events concerning no flow (filtered)", event_batches("Product Viewed", outside, sizes.batch)),
        ("events of persons inside (wake-ups)", event_batches("Product Viewed", inside, sizes.batch)),
    )
    rows = []
    for what, requests in workloads:
        served = send_batches(what, address, OBSERVE, METADATA, requests, sizes.flow_persons)
        echoed = send_batches(what, echo, ECHO_METHOD, (), requests, sizes.flow_persons)
        rows.append((served, echoed))
    return FlowFigures(rows, state.live_entries(TENANT, CART_FLOW), state.timers(TENANT), state.size_mb())


def _timer_lag(address: str, sizes: Sizes, state: StateReader, flow_id: str) -> LagFigures:
    publish(address, METADATA, flow_id, timer_flow(sizes.window_s + sizes.timer_lead_s))
    persons = [f"{flow_id}-{i:07d}" for i in range(sizes.timers)]
    # Small batches at an even pace: the timers come due as evenly as the entries were made.
    per_call = max(1, round(sizes.timers / (sizes.window_s * 20)))
    send_paced(address, METADATA, event_batches("Timer Started", persons, per_call), sizes.window_s)
    # The last entry's timer is due `window + lead` after it; a minute more for the loop to fire the rest.
    deadline = time.monotonic() + sizes.timer_lead_s + sizes.window_s + 60.0
    while state.ended_entries(TENANT, flow_id) < sizes.timers and time.monotonic() < deadline:
        time.sleep(min(1.0, sizes.window_s / 10))
    return state.timer_lags(TENANT, flow_id, sizes.timers)


def _checks_during_writes(
    address: str, echo: str, sizes: Sizes, persons: list[str], writes_to: str | None = None, where: str = ""
) -> list[Measurement]:
    """CheckContact and the echo at one caller while another caller keeps sending ObserveEvents batches of
    persons inside the flow (a write transaction per person): Decide's calls beside the flows' writes. The
    writes go to `writes_to` when given (a second orchestrator process on the same database), else to the
    process that answers the checks."""
    stop = threading.Event()

    def writer() -> None:
        with grpc.insecure_channel(writes_to or address) as channel:
            call = channel.unary_unary(OBSERVE, request_serializer=None, response_deserializer=None)
            for start in itertools.cycle(range(0, len(persons), sizes.batch)):
                if stop.is_set():
                    return
                [request] = event_batches("Product Viewed", persons[start : start + sizes.batch], sizes.batch)
                call(request, metadata=METADATA, timeout=600)

    payloads = check_requests(sizes.persons, max(sizes.requests, 1000), seed=8)
    thread = threading.Thread(target=writer, name="bench-writes", daemon=True)
    thread.start()
    try:
        return [
            asyncio.run(run_scenario(name, target, method, metadata, payloads, 1, sizes.requests))
            for name, target, method, metadata in (
                (f"bare thread-pool echo, writes {where or 'alongside'}", echo, ECHO_METHOD, ()),
                (f"CheckContact, writes {where or 'alongside'}", address, CHECK_CONTACT, METADATA),
            )
        ]
    finally:
        stop.set()
        thread.join(timeout=600)


def _timer_flow_id(poll: float) -> str:
    return f"{TIMER_FLOW}-{poll:g}".replace(".", "-")


def run_engine(engine: str, url: str | None, sizes: Sizes, console: Console) -> dict[str, Any]:
    """Every part on one engine, one database, one server; the figures, printed as tables as they come."""
    with tempfile.TemporaryDirectory(prefix="wayline-bench-orchestrator-") as scratch:
        data_dir = Path(scratch)
        path = database_path(data_dir)
        db = open_database(url, path)
        try:
            migrate(db)
            began = time.perf_counter()
            contacts = fill_ledger(db, url, TENANT, sizes.persons)
            console.print(
                f"{engine}: {sizes.persons:,} persons, {contacts:,} contacts written in "
                f"{time.perf_counter() - began:.1f}s"
            )
            local = _in_process_checks(db, sizes.persons, sizes.requests)
            cache = CheckCache(sizes.persons)
            with _invalidation(url, path, cache):
                local_warm = _in_process_checks(db, sizes.persons, sizes.requests, cache)
        finally:
            db.close()
        state = StateReader(url, path)
        with (
            orchestrator_server(data_dir, url, sizes.timer_polls[0]) as address,
            echo_server("threadpool") as echo,
        ):
            checks, answers = _check_contact_rows(address, echo, sizes)
            console.print(f"{engine}: CheckContact's answers for 200 of the requests: {answers}")
            print_comparison(
                f"{engine}: CheckContact (2 checks: email and push marketing) for random persons of "
                f"{sizes.persons:,}, {sizes.requests} requests per row; ledger.check in-process, no gRPC: "
                f"p50 {local[0]:.2f} ms, p99 {local[1]:.2f} ms; with the check cache, warm: "
                f"p50 {local_warm[0]:.3f} ms, p99 {local_warm[1]:.3f} ms",
                checks,
                "bare thread-pool echo",
                console,
            )
            with orchestrator_server(data_dir, url, sizes.timer_polls[0], check_cache_entries=0) as uncached:
                paced_sync, repeated = _paced_sync_rows(address, echo, sizes, uncached)
            print_comparison(
                f"{engine}: CheckContact paced at {CHECK_RATE:g}/s from a synchronous client (call futures "
                "from one pacing thread, as the services call each other): a server with the check cache "
                f"off, then with it as the rows before left it ({repeated:.0%} of the calls' persons checked "
                "before: its hits), then warm (every person checked once)",
                paced_sync,
                "bare thread-pool echo",
                console,
            )
            flows = _flow_rows(address, echo, sizes, state)
            _print_flows(engine, sizes, flows, console)
            inside = [f"cart-{i:07d}" for i in range(sizes.flow_persons)]
            beside = _checks_during_writes(address, echo, sizes, inside)
            print_comparison(
                f"{engine}: CheckContact at 1 caller while a second caller sends ObserveEvents of persons "
                "inside the flow",
                beside,
                "bare thread-pool echo, writes alongside",
                console,
            )
            # The same writes sent to a second orchestrator on the same database: what running the flows'
            # event intake in processes of their own would give CheckContact (no shared interpreter).
            with orchestrator_server(data_dir, url, sizes.timer_polls[0]) as writer_address:
                apart = _checks_during_writes(
                    address, echo, sizes, inside, writer_address, "in a second process"
                )
            print_comparison(
                f"{engine}: CheckContact at 1 caller while a second caller sends the same ObserveEvents to "
                "another orchestrator process on the same database",
                apart,
                "bare thread-pool echo, writes in a second process",
                console,
            )
            first = sizes.timer_polls[0]
            lags = {first: _timer_lag(address, sizes, state, _timer_flow_id(first))}
            _print_lag(engine, sizes, first, lags[first], console)
        for poll in sizes.timer_polls[1:]:
            # The same database, every entry above still waiting; a server with this poll interval.
            with orchestrator_server(data_dir, url, poll) as address:
                lags[poll] = _timer_lag(address, sizes, state, _timer_flow_id(poll))
            _print_lag(engine, sizes, poll, lags[poll], console)
    return {
        "checks": checks,
        "paced_sync": paced_sync,
        "paced_sync_repeated": repeated,
        "answers": answers,
        "in_process": local,
        "in_process_warm": local_warm,
        "flows": flows,
        "beside_writes": beside,
        "writes_apart": apart,
        "lags": lags,
    }


def _print_flows(engine: str, sizes: Sizes, flows: FlowFigures, console: Console) -> None:
    table = Table(
        title=f"{engine}: ObserveEvents, {sizes.flow_persons:,} persons, {sizes.batch:,} events per call, "
        f"one caller; after it: {flows.live_entries:,} live entries, {flows.timers:,} timers, "
        f"database {flows.size_mb:,.0f} MB",
        title_justify="left",
    )
    for column in ("workload", "events", "events/s", "call p50 ms", "call p99 ms", "echo events/s", "÷ echo"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for served, echoed in flows.rows:
        table.add_row(
            served.what,
            f"{served.events:,}",
            f"{served.events_per_s:,.0f}",
            f"{served.call_p50_ms:.1f}",
            f"{served.call_p99_ms:.1f}",
            f"{echoed.events_per_s:,.0f}",
            f"{served.events_per_s / echoed.events_per_s:.3f}",
        )
    console.print(table)


def _print_lag(engine: str, sizes: Sizes, poll: float, lag: LagFigures, console: Console) -> None:
    table = Table(
        title=f"{engine}: timer lag, {sizes.timers:,} timers due over {sizes.window_s:g}s "
        f"(timer loop: poll {poll:g}s, batch 100)",
        title_justify="left",
    )
    for column in ("timers", "fired", "due /min", "fired /s", "lag p50 ms", "lag p99 ms", "lag max ms"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{lag.timers:,}",
        f"{lag.fired:,}",
        f"{lag.due_per_minute:,.0f}",
        f"{lag.fired_per_s:,.0f}",
        f"{lag.p50_ms:,.0f}",
        f"{lag.p99_ms:,.0f}",
        f"{lag.max_ms:,.0f}",
    )
    console.print(table)


def main(sizes: Sizes, database_url: str = "", postgres: bool = False) -> dict[str, dict[str, Any]]:
    """SQLite always; PostgreSQL too with `postgres` (a throwaway server) or `database_url` (a server to
    create a fresh database on)."""
    console = Console(width=200)
    console.print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    figures = {"sqlite": run_engine("sqlite", None, sizes, console)}
    if database_url or postgres:
        with contextlib.ExitStack() as stack:
            server = database_url or stack.enter_context(temporary_postgres())
            figures["postgresql"] = run_engine("postgresql", create_database(server), sizes, console)
    console.print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    return figures
