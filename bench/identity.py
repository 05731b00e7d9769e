"""Identity resolution: batched and single-call `ResolveIdentities` over gRPC against a real identity server
(its own process), on SQLite and on PostgreSQL, at several profile counts, each beside the raw indexed
lookups of the same database in the same run.

The database is filled directly (profiles with an anonymous id and a device id, a third with a user id, and
their edges) before the server starts, so that 1M profiles take seconds, not a resolution run. The batched
workload is what the forwarder sends: 1,000 identifier sets per call, 80% of known devices, 10% new devices,
10% logins adding a user id to a known device. Half the filled people were last seen at the run's time, the
other half a day before (identity keeps seen times to `WAYLINE_IDENTITY_SEEN_GRANULARITY_SECONDS`, so the
first sight of one of those writes a new last seen time to each of their identifiers and to their profile,
in the batch's transaction). "First sight" batches draw people evenly (nothing cached yet): "seen now" from
the first half, "a day later" from every other one of the second; "again" replays the "seen now" batches
(returning people: on SQLite identity's read cache then answers, and nothing is written). "A stream of
sessions" replays what a running stream sends (`bench.identity_stream`): visits of several events each by
the rest of the second half and by new visitors, interleaved in time order, beside the share of its sets
whose resolution writes (seen times, new identifiers) under the server's granularity. The single call
resolves one known device: in a closed loop, then in an open loop paced at `PACED_RATE` calls/s from a
synchronous client (futures from one thread, as ingest's identity sink calls), each beside the bare echo
measured by the same client. The server's CPU per 1,000 sets (from /proc) is printed beside the wall-clock
rates: on a shared machine it moves much less.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import psycopg
from rich.console import Console
from rich.table import Table

from bench.echo_server import ECHO_METHOD
from bench.harness import cpu_seconds, measure_paced_futures
from bench.identity_stream import TYPICAL_VISITS, Stream, Visits, session_stream
from bench.track import server_process
from tools.postgres_server import create_database, temporary_postgres
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.sql import open_database
from wayline.common.timestamps import from_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as pb
from wayline_cli.suite import free_port
from wayline_identity.identity import Identity
from wayline_identity.settings import IdentitySettings

TENANT = "bench"
TOKEN = "bench-internal-token"
BATCH = 1000
DAY_MICROS = 86_400 * 1_000_000
PACED_RATE = 200.0  # single calls per second in the paced rows
RESOLVE = "/wayline.identity.v1.IdentityService/ResolveIdentities"

Row = tuple[object, ...]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def populate(url: str | None, path: Path, profiles: int, now: int) -> None:
    """Write `profiles` profiles straight into identity's tables (after its migrations): the even ones last
    seen at `now` (microseconds), the odd ones a day before."""
    db = open_database(url, path)
    Identity(db).migrate()
    chunk = 50_000
    for start in range(0, profiles, chunk):
        people: list[Row] = []
        identifiers: list[Row] = []
        edges: list[Row] = []
        for i in range(start, min(profiles, start + chunk)):
            person = str(uuid.UUID(int=i + 1))
            seen = now - (i % 2) * DAY_MICROS
            people.append((TENANT, person, i + 1, now, now, seen, seen))
            keys = [("anonymous_id", f"a{i}"), ("device_id", f"d{i}")] + (
                [("user_id", f"u{i}")] if i % 3 == 0 else []
            )
            identifiers.extend((TENANT, k, v, person, person, seen, seen, "seed") for k, v in keys)
            edges.extend(
                (TENANT, f"e{i}-{n}", *keys[0], *key, person, "seed", "", now)
                for n, key in enumerate(keys[1:])
            )
        _bulk(db, url, people, identifiers, edges)
    with db.transaction() as tx:
        tx.execute(
            "INSERT INTO tenant_state (tenant, next_seq, override_version) VALUES (?, ?, 0)",
            (TENANT, profiles),
        )
        if db.engine == "sqlite":
            tx.execute("ANALYZE")
    if url:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
    db.close()


def _bulk(db: object, url: str | None, people: list[Row], identifiers: list[Row], edges: list[Row]) -> None:
    tables = (
        ("profiles (tenant, person_id, seq, create_time, update_time, first_seen, last_seen)", people),
        (
            "identifiers (tenant, type, value, person_id, origin_person_id, first_seen, last_seen,"
            " first_event_id)",
            identifiers,
        ),
        (
            "edges (tenant, edge_id, a_type, a_value, b_type, b_value, person_id, event_id, merge_id,"
            " create_time)",
            edges,
        ),
    )
    if url:  # COPY: the fast path into PostgreSQL
        with psycopg.connect(url) as connection, connection.cursor() as cursor:
            for table, rows in tables:
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        return
    with db.transaction() as tx:  # type: ignore[attr-defined]
        for table, rows in tables:
            marks = ", ".join("?" for _ in rows[0])
            tx.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)


@contextlib.contextmanager
def identity_server(data_dir: Path, url: str | None) -> Iterator[tuple[str, int]]:
    """A real identity server in its own process: its address and process id (to count its CPU)."""
    port = free_port()
    env = {
        **os.environ,
        "WAYLINE_DATA_DIR": str(data_dir),
        "WAYLINE_INTERNAL_TOKEN": TOKEN,
        "WAYLINE_LOG_LEVEL": "warning",
        "WAYLINE_IDENTITY_PORT": str(port),
        "WAYLINE_IDENTITY_METRICS_PORT": "0",
        "WAYLINE_IDENTITY_JOURNEYS_ADDRESS": "",
        "WAYLINE_IDENTITY_INGEST_ADDRESS": "",
    }
    if url:
        env["WAYLINE_IDENTITY_DATABASE_URL"] = url
    with server_process([sys.executable, "-m", "wayline_identity"], port, env) as (address, process):
        yield address, process.pid


@contextlib.contextmanager
def bare_echo() -> Iterator[tuple[str, int]]:
    """The bare thread-pool gRPC echo (32 workers, as the identity server): its address and process id."""
    port = free_port()
    command = [sys.executable, "-m", "bench.echo_server", "threadpool", str(port), "32"]
    with server_process(command, port) as (address, process):
        yield address, process.pid


def _input(
    kind: str, rng: random.Random, profiles: int, n: int, now: int, half: int
) -> pb.IdentityResolutionInput:
    """Event `n` of the run (at `now` + n µs), of a person of the even (`half` 0) profiles or (1) of every
    fourth odd one (the others are the stream's visitors, `_stream_people`)."""
    k = rng.randrange(profiles // 2) * 2 if half == 0 else rng.randrange(profiles // 4) * 4 + 3
    if kind == "known":
        ids = [("anonymous_id", f"a{k}"), ("device_id", f"d{k}")]
    elif kind == "new":
        ids = [("anonymous_id", f"new-{n}"), ("device_id", f"new-{n}")]
    else:
        ids = [("user_id", f"login-{n}"), ("anonymous_id", f"a{k}")]
    return pb.IdentityResolutionInput(
        event_id=f"ev-{n}",
        timestamp=to_timestamp(from_micros(now + n)),
        event_type=event_pb2.EVENT_TYPE_IDENTIFY if kind == "login" else event_pb2.EVENT_TYPE_TRACK,
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in ids],
    )


class Workload(NamedTuple):
    """Serialised requests: single calls (a known device each: 50 to warm up, then `requests` for the
    closed-loop row, then `requests` for the paced row), 12 batches of people seen at the run's time (the
    first warms up) and 11 of people last seen a day before, and the stream of sessions."""

    single: list[bytes]
    seen_now: list[bytes]
    day_later: list[bytes]
    stream: Stream


def _workload(profiles: int, requests: int, now: int, visits: Visits) -> Workload:
    rng = random.Random(profiles)
    counter = iter(range(10**9))
    single = [
        pb.ResolveIdentitiesRequest(
            inputs=[_input("known", rng, profiles, next(counter), now, 0)]
        ).SerializeToString()
        for _ in range(2 * requests + 50)
    ]
    kinds = ("known", "new", "login")

    def batches(count: int, half: int) -> list[bytes]:
        return [
            pb.ResolveIdentitiesRequest(
                inputs=[
                    _input(rng.choices(kinds, (8, 1, 1))[0], rng, profiles, next(counter), now, half)
                    for _ in range(BATCH)
                ]
            ).SerializeToString()
            for _ in range(count)
        ]

    granularity = IdentitySettings().seen_granularity_seconds
    stream = session_stream(_stream_people(profiles), now, 11, granularity, visits)
    return Workload(single, batches(12, 0), batches(11, 1), stream)


def _stream_people(profiles: int) -> range:
    """The stream's visitors: the odd profiles the day-later batches leave (last seen a day before)."""
    return range(1, profiles, 4)


def measure_calls(address: str, pid: int, method: str, workload: Workload) -> dict[str, float]:
    """Single-call latency (after 50 untimed), closed loop then paced at `PACED_RATE` calls/s, and batched
    throughput of `method` at `address`, one synchronous caller; the batches' server CPU (process `pid`)
    per 1,000 sets, a figure that other work on the machine disturbs much less than wall time."""
    metadata = ((INTERNAL_TOKEN_HEADER, TOKEN), (TENANT_HEADER, TENANT))
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        single = workload.single
        requests = (len(single) - 50) // 2
        latencies = []
        for i, request in enumerate(single[: 50 + requests]):
            began = time.perf_counter()
            call(request, metadata=metadata, timeout=30)
            if i >= 50:
                latencies.append((time.perf_counter() - began) * 1000)
        # Open loop from one pacing thread, each call's future completing on gRPC's thread: how the
        # services call identity (ingest's identity sink holds a synchronous channel).
        paced_requests = iter(single[50 + requests :])

        def start() -> Any:  # a grpc.Future
            return call.future(next(paced_requests), metadata=metadata, timeout=30)

        paced = measure_paced_futures(method, start, PACED_RATE, requests, warmup=0)
        call(workload.seen_now[0], metadata=metadata, timeout=60)  # warm up
        rates = []
        cpu = []
        # First sight of people seen now, of people last seen a day ago, then the first ones again.
        for batches in (workload.seen_now[1:], workload.day_later, workload.seen_now[1:]):
            began, cpu_began = time.perf_counter(), cpu_seconds(pid)
            for request in batches:
                call(request, metadata=metadata, timeout=60)
            rates.append(len(batches) * BATCH / (time.perf_counter() - began))
            cpu.append((cpu_seconds(pid) - cpu_began) * 1000 / len(batches))
        # The stream: its warm-up window untimed, then the timed one.
        for request in workload.stream.warmup:
            call(request, metadata=metadata, timeout=60)
        sets = workload.stream.measured_sets
        began, cpu_began = time.perf_counter(), cpu_seconds(pid)
        for request in workload.stream.measured:
            call(request, metadata=metadata, timeout=60)
        rates.append(sets / (time.perf_counter() - began))
        cpu.append((cpu_seconds(pid) - cpu_began) * 1000 * 1000 / sets)
    return {
        "single_p50": statistics.median(latencies),
        "single_p99": _percentile(latencies, 0.99),
        "paced_p50": paced.p50_ms,
        "paced_p99": paced.p99_ms,
        "batched_sets_per_s": rates[0],
        "day_later_sets_per_s": rates[1],
        "returning_sets_per_s": rates[2],
        "batched_cpu_ms": cpu[0],
        "day_later_cpu_ms": cpu[1],
        "returning_cpu_ms": cpu[2],
        "stream_sets_per_s": rates[3],
        "stream_cpu_ms": cpu[3],
    }


def measure_raw(url: str | None, path: Path, profiles: int, requests: int) -> dict[str, float]:
    """The same database's indexed lookups, without identity: one key per query, and 1,000 per query."""
    rng = random.Random(profiles + 1)
    db = open_database(url, path)
    sql = "SELECT person_id FROM identifiers WHERE tenant = ? AND type = ? AND value = ?"
    single = []
    try:
        with db.transaction() as tx:
            for _ in range(requests):
                began = time.perf_counter()
                tx.execute(sql, (TENANT, "anonymous_id", f"a{rng.randrange(profiles)}"))
                single.append((time.perf_counter() - began) * 1000)
            keys = [f"a{rng.randrange(profiles)}" for _ in range(20 * BATCH)]
            began = time.perf_counter()
            for start in range(0, len(keys), 400):
                chunk = keys[start : start + 400]
                tx.execute(
                    "SELECT value, person_id FROM identifiers WHERE tenant = ? AND type = ?"
                    f" AND value IN ({', '.join('?' for _ in chunk)})",
                    (TENANT, "anonymous_id", *chunk),
                )
            batched = len(keys) / (time.perf_counter() - began)
    finally:
        db.close()
    return {
        "single_p50": statistics.median(single),
        "single_p99": _percentile(single, 0.99),
        "keys_per_s": batched,
    }


def main(
    requests: int,
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    engines: tuple[str, ...] = ("sqlite", "postgresql"),
    visits: Visits = TYPICAL_VISITS,
) -> None:
    console = Console(width=320)
    table = Table(
        title="ResolveIdentities over gRPC vs raw indexed lookups (same database, same run)",
        title_justify="left",
    )
    for column in (
        "engine",
        "profiles",
        "first sight sets/s: seen now / a day later",
        "again sets/s",
        "stream of sessions sets/s (writing sets per 1,000)",
        "echo sets/s",
        "raw keys/s (IN 400)",
        "server CPU ms per 1,000: now / day later / again / stream / echo",
        "single p50 ms",
        "single p99 ms",
        "echo p50 / p99 ms",
        f"paced sync ({PACED_RATE:.0f}/s) p50 / p99 ms",
        "paced sync echo p50 / p99 ms",
        "raw lookup p50 / p99 ms",
    ):
        table.add_column(column, justify="right")
    with contextlib.ExitStack() as stack:
        server_url = stack.enter_context(temporary_postgres()) if "postgresql" in engines else ""
        for engine in engines:
            for profiles in sizes:
                scratch = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="wayline-bench-identity-"))
                )
                url = create_database(server_url) if engine == "postgresql" else None
                path = scratch / "identity" / "identity.db"
                began = time.perf_counter()
                now = int(time.time() * 1e6)
                populate(url, path, profiles, now)
                console.print(
                    f"{engine}: {profiles:,} profiles written in {time.perf_counter() - began:.1f}s"
                )
                raw = measure_raw(url, path, profiles, requests)
                workload = _workload(profiles, requests, now, visits)
                with identity_server(scratch, url) as (address, pid):
                    served = measure_calls(address, pid, RESOLVE, workload)
                with bare_echo() as (address, pid):
                    echo = measure_calls(address, pid, ECHO_METHOD, workload)
                table.add_row(
                    engine,
                    f"{profiles:,}",
                    f"{served['batched_sets_per_s']:,.0f} / {served['day_later_sets_per_s']:,.0f}",
                    f"{served['returning_sets_per_s']:,.0f}",
                    f"{served['stream_sets_per_s']:,.0f}"
                    f" ({1000 * workload.stream.measured_writes / workload.stream.measured_sets:.0f})",
                    f"{echo['batched_sets_per_s']:,.0f}",
                    f"{raw['keys_per_s']:,.0f}",
                    f"{served['batched_cpu_ms']:.1f} / {served['day_later_cpu_ms']:.1f}"
                    f" / {served['returning_cpu_ms']:.1f} / {served['stream_cpu_ms']:.1f}"
                    f" / {echo['batched_cpu_ms']:.1f}",
                    f"{served['single_p50']:.2f}",
                    f"{served['single_p99']:.2f}",
                    f"{echo['single_p50']:.2f} / {echo['single_p99']:.2f}",
                    f"{served['paced_p50']:.2f} / {served['paced_p99']:.2f}",
                    f"{echo['paced_p50']:.2f} / {echo['paced_p99']:.2f}",
                    f"{raw['single_p50']:.3f} / {raw['single_p99']:.3f}",
                )
    console.print(table)
