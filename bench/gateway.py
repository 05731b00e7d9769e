"""The gateway hop: the same calls through the gateway and straight to the backend, in the same run.

Rows, each beside its direct figure:
- unary, three calls that store nothing, so the hop is most of what differs: Track refused by ingest's
  validation (an error with google.rpc details, which the hop forwards as it came), Track of an event
  ingest acknowledged before (answered OK from its deduplication window, the cheapest successful call), and
  TrackBatch of 500 such events (the hop counts a batch's events for the events quota); each at 1 caller
  (p50, p99: the hop's added milliseconds) and 16 callers (req/s: the throughput the hop costs);
- streaming: StreamEvents, batches of 500 valid events within ingest's flow-control window, on one stream
  and on 16 at once, events/s (the throughput the hop costs), and one stream at one caller's pace, a batch
  of 50 events every 10 ms, each timed to its acknowledgement (the hop's added milliseconds per message), of
  new events and of events acknowledged before (which store nothing, so that the hop is most of what
  differs); each stream starts on a quiet suite (the previous row's events delivered and the store's merges
  of them over);
- the bare grpc.aio echo, the floor any gRPC server of ours stands on, and a bare Python proxy in front of it
  (`bench/echo_server.py proxy`: a thread-pool server forwarding bytes through a plain channel, nothing
  else), the floor of any hop in Python: its cost over the echo is what no gateway of this kind can go below;
- the gateway's CPU per call (user + system, from /proc/<pid>/stat before and after the row): on 2 shared
  cores it is the figure that noise moves least;
- with nginx and its Lua module installed (Debian: nginx, libnginx-mod-http-lua), the same rows through a
  second gateway with the nginx data plane (ADR 105): nginx passes the unary calls and StreamEvents to
  ingest itself (ingest paces a stream's events to the caller's quota, ADR 106); its CPU is nginx's
  worker's.

Rounds repeat every row, interleaved, so a noisy minute hits all of them.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from bench.echo_server import ECHO_METHOD
from bench.extra_gateway import extra_gateway, nginx_unavailable
from bench.harness import Measurement, cpu_seconds, idle, percentile
from bench.ingest import STREAM, TRACK_BATCH, run_stream, settle, stream_batches
from bench.track import TRACK, run_scenario, server_process, track_requests
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline_cli.suite import Suite, free_port

__all__ = ["main"]

Metadata = tuple[tuple[str, str], ...]
REFUSED = "refused"
REPEATED = "repeated"
BATCH = "batch"
NEW = "new"

# A stream's row sends 200k events (about a second at ingest's pace): shorter streams (100 batches, a fifth
# of a second) measured mostly their start and the host's moment, their ratios 0.5 to 1.3 in one run.
STREAM_BATCHES = 400
# Streams at once in the many-callers stream row (the "at 16"), sharing STREAM_BATCHES between them.
STREAMS = 16
# A stream at one caller's pace, where the hop's latency per message shows (as at 1 caller for unary calls):
# a batch of 50 events every 10 ms, 3 s.
PACED_SIZE = 50
PACED_BATCHES = 300
PACED_SECONDS = 0.01


@dataclass(frozen=True)
class Target:
    """Somewhere to send the calls: the backend itself or a gateway in front of it."""

    name: str
    address: str
    metadata: Metadata
    pid: int | None = None  # the gateway's process, whose CPU is counted; None for direct


@dataclass(frozen=True)
class UnaryCall:
    """One kind of unary call the rows send: its label, its requests and the status it must answer."""

    name: str
    payloads: list[bytes]
    expected: grpc.StatusCode
    method: str = TRACK


@dataclass
class Row:
    kind: str  # "unary 1", "unary 16", "stream", "stream paced"
    target: str
    call: str  # the UnaryCall's name; for streams, how many at once ("1", "16") or which events (paced)
    value: Measurement | float  # a Measurement for unary and paced stream rows, events/s for streams
    cpu_ms_per_call: float | None
    beside: Measurement | None = None  # the direct call measured at the same moment (paced stream rows)


def unary_row(target: Target, call: UnaryCall, concurrency: int, requests: int) -> Row:
    before = cpu_seconds(target.pid) if target.pid else 0.0
    scenario = run_scenario(
        target.name,
        target.address,
        call.method,
        target.metadata,
        call.payloads,
        concurrency,
        requests,
        call.expected,
    )
    measured = asyncio.run(scenario)
    cpu = (cpu_seconds(target.pid) - before) * 1000 / (requests + 50) if target.pid else None
    return Row(f"unary {concurrency}", target.name, call.name, measured, cpu)


def stream_row(
    target: Target,
    batches: int,
    tag: str,
    metrics_port: int,
    sent: list[int],
    suite_pids: Sequence[int],
    streams: int = 1,
) -> Row:
    """`batches` batches of 500 over `streams` streams at once (a thread each, as many callers would), timed
    from the first stream's start to the last one's end: events/s."""
    # A quiet start: the previous row's events are in journeys, and its merges there are over (a stream
    # that followed another met its merges and ran up to a third slower than one that followed unary rows).
    settle(metrics_port, sent[0], timeout=120)
    idle(suite_pids)
    each = batches // streams
    payloads = [stream_batches(500, each, f"{tag}-{n}") for n in range(streams)]
    before = cpu_seconds(target.pid) if target.pid else 0.0
    began = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        for finished in [
            pool.submit(run_stream, target.address, STREAM, target.metadata, mine, False) for mine in payloads
        ]:
            finished.result()
    seconds = time.perf_counter() - began
    cpu = (cpu_seconds(target.pid) - before) * 1000 / (each * streams) if target.pid else None
    sent[0] += each * streams * 500
    return Row("stream", target.name, str(streams), each * streams * 500 / seconds, cpu)


def _paced(target: Target, payloads: list[bytes], delay: float) -> Measurement:
    time.sleep(delay)
    seconds, latencies = run_stream(
        target.address, STREAM, target.metadata, payloads, echo=False, pace=PACED_SECONDS
    )
    timed = sorted(latencies[10:])  # the first ten left out: the stream's start
    return Measurement(target.name, 1, len(timed), seconds, percentile(timed, 0.5), percentile(timed, 0.99))


def paced_stream_row(
    target: Target,
    direct: Target,
    call: str,
    payloads: tuple[list[bytes], list[bytes]],
    metrics_port: int,
    sent: list[int],
    suite_pids: Sequence[int],
) -> Row:
    """One stream at one caller's pace through `target`, PACED_BATCHES batches of PACED_SIZE events, one
    every PACED_SECONDS, each timed from its send to its acknowledgement; beside it, at the same moment, the
    same stream straight to the backend (`direct`), its sends half a period apart, so that what the host does
    meanwhile slows both alike (a direct row run alone before or after met other moments: 1.6 to 5.0 ms p50
    in one run). `call` says which events: NEW (stored, an fsync each batch) or REPEATED (acknowledged
    before: answered from ingest's deduplication window, so that the hop is most of what differs, as for the
    unary rows). `payloads`: the target's stream, the direct one's."""
    settle(metrics_port, sent[0], timeout=120)
    idle(suite_pids)
    before = cpu_seconds(target.pid) if target.pid else 0.0
    with ThreadPoolExecutor(2) as pool:
        beside = pool.submit(_paced, direct, payloads[1], 0.0)
        measured = pool.submit(_paced, target, payloads[0], PACED_SECONDS / 2).result()
        base = beside.result()
    cpu = (cpu_seconds(target.pid) - before) * 1000 / PACED_BATCHES if target.pid else None
    if call == NEW:
        sent[0] += 2 * PACED_SIZE * PACED_BATCHES
    return Row("stream paced", target.name, call, measured, cpu, base)


def _track_batches(count: int) -> list[bytes]:
    """`count` TrackBatch requests of 500 distinct valid events each."""
    return [
        ingest_pb.TrackBatchRequest(
            events=ingest_pb.StreamEventsRequest.FromString(p).events
        ).SerializeToString()
        for p in stream_batches(500, count, "gateway-batch")
    ]


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="left" if column in ("round", "target") else "right")
    return table


def _latencies(measured: Measurement, base: Measurement) -> tuple[str, str, str, str]:
    """p50, p99, and each one's difference from `base`'s (ms)."""
    return (
        f"{measured.p50_ms:.2f}",
        f"{measured.p99_ms:.2f}",
        f"{measured.p50_ms - base.p50_ms:+.2f}",
        f"{measured.p99_ms - base.p99_ms:+.2f}",
    )


def report(
    rows: list[tuple[int, Row]],
    echo: dict[int, dict[int, Measurement]],
    echo_cpu: dict[tuple[int, int], float],
    console: Console,
    floor: dict[int, dict[int, Measurement]],
) -> None:
    def direct(round_: int, kind: str, call: str) -> Row:
        return next(
            r for n, r in rows if n == round_ and r.kind == kind and r.call == call and r.target == "direct"
        )

    one = _table(
        "Unary, 1 caller: Track refused / Track repeated / TrackBatch of 500 repeated (p50/p99 ms; "
        "added = via gateway - direct)",
        ("round", "call", "target", "p50", "p99", "added p50", "added p99", "gateway CPU ms/call"),
    )
    many = _table(
        "Unary, 16 callers: Track refused / Track repeated / TrackBatch of 500 repeated (req/s; "
        "ratio = via gateway / direct)",
        ("round", "call", "target", "req/s", "ratio", "loss", "p50", "gateway CPU ms/call"),
    )
    streams = _table(
        "Streaming: StreamEvents, batches of 500, one stream or 16 at once (events/s; ratio = via gateway "
        "/ direct)",
        ("round", "streams", "target", "events/s", "ratio", "loss", "gateway CPU ms/batch"),
    )
    paced = _table(
        f"Streaming at one caller's pace: StreamEvents, a batch of {PACED_SIZE} every "
        f"{PACED_SECONDS * 1000:.0f} ms, each timed to its acknowledgement, beside a direct stream at the "
        "same moment (ms; added = via gateway - direct); events new (stored) or repeated (answered from the "
        "window)",
        ("round", "events", "target", "p50", "p99", "direct p50", "added p50", "added p99", "CPU ms/batch"),
    )
    for round_, row in rows:
        cpu = f"{row.cpu_ms_per_call:.2f}" if row.cpu_ms_per_call is not None else "-"
        if row.kind == "stream paced":
            m, beside = row.value, row.beside
            assert isinstance(m, Measurement)
            assert isinstance(beside, Measurement)
            p50, p99, added_p50, added_p99 = _latencies(m, beside)
            paced.add_row(
                str(round_), row.call, row.target, p50, p99, f"{beside.p50_ms:.2f}", added_p50, added_p99, cpu
            )
            continue
        if row.kind == "stream":
            assert isinstance(row.value, float)
            base = direct(round_, "stream", row.call).value
            assert isinstance(base, float)
            ratio = row.value / base
            streams.add_row(
                str(round_),
                row.call,
                row.target,
                f"{row.value:,.0f}",
                f"{ratio:.2f}",
                f"{1 - ratio:.0%}",
                cpu,
            )
            continue
        m = row.value
        assert isinstance(m, Measurement)
        b = direct(round_, row.kind, row.call).value
        assert isinstance(b, Measurement)
        if row.kind == "unary 1":
            e = echo[round_][1]
            if row.target == "direct" and row.call == REFUSED:
                f = floor[round_][1]
                one.add_row(
                    str(round_),
                    "",
                    "bare grpc.aio echo",
                    f"{e.p50_ms:.2f}",
                    f"{e.p99_ms:.2f}",
                    "",
                    "",
                    f"echo {echo_cpu[(round_, 1)]:.2f}",
                )
                one.add_row(str(round_), "", "bare proxy → echo", *_latencies(f, e), "")
            one.add_row(str(round_), row.call, row.target, *_latencies(m, b), cpu)
        else:
            e = echo[round_][16]
            if row.target == "direct" and row.call == REFUSED:
                f = floor[round_][16]
                many.add_row(
                    str(round_),
                    "",
                    "bare grpc.aio echo",
                    f"{e.rps:,.0f}",
                    "",
                    "",
                    f"{e.p50_ms:.2f}",
                    f"echo {echo_cpu[(round_, 16)]:.2f}",
                )
                many.add_row(
                    str(round_),
                    "",
                    "bare proxy → echo",
                    f"{f.rps:,.0f}",
                    f"{f.rps / e.rps:.2f}",
                    f"{1 - f.rps / e.rps:.0%}",
                    f"{f.p50_ms:.2f}",
                    "",
                )
            ratio = m.rps / b.rps
            many.add_row(
                str(round_),
                row.call,
                row.target,
                f"{m.rps:,.0f}",
                f"{ratio:.2f}",
                f"{1 - ratio:.0%}",
                f"{m.p50_ms:.2f}",
                cpu,
            )
    for table in (one, many, streams, paced):
        console.print(table)
    console.print(targets_table(rows))


# Issue 9's targets for the hop: added p50 at one caller (unary calls, a stream's message) and the share of a
# direct call's throughput kept at 16 callers (and by streams).
MAX_ADDED_P50_MS = 0.5
MIN_KEPT = 0.70


def _measured(value: Measurement | float | None) -> Measurement:
    assert isinstance(value, Measurement)
    return value


def _events_per_second(value: Measurement | float) -> float:
    assert isinstance(value, float)
    return value


def hop_figures(rows: list[tuple[int, Row]]) -> dict[tuple[str, str], list[float]]:
    """Per (target, measure), one figure per round: added p50 ms for the 1-caller and paced stream rows,
    the ratio to direct for the 16-caller and stream rows."""
    direct = {(n, r.kind, r.call): r.value for n, r in rows if r.target == "direct"}
    figures: dict[tuple[str, str], list[float]] = {}
    for round_, row in rows:
        if row.target == "direct":
            continue
        if row.kind == "stream paced":
            measure = f"stream message ({row.call}), added p50"
            figure = _measured(row.value).p50_ms - _measured(row.beside).p50_ms
        elif row.kind == "unary 1":
            measure = f"{row.call}, 1 caller, added p50"
            figure = _measured(row.value).p50_ms - _measured(direct[(round_, row.kind, row.call)]).p50_ms
        elif row.kind == "unary 16":
            measure = f"{row.call}, 16 callers, kept"
            figure = _measured(row.value).rps / _measured(direct[(round_, row.kind, row.call)]).rps
        else:
            streams = "1 stream" if row.call == "1" else f"{row.call} streams"
            measure = f"StreamEvents, {streams}, kept"
            base = _events_per_second(direct[(round_, row.kind, row.call)])
            figure = _events_per_second(row.value) / base
        figures.setdefault((row.target, measure), []).append(figure)
    return figures


def targets_table(rows: list[tuple[int, Row]]) -> Table:
    """Each target judged on its median over the rounds (one round's figure moves with the host's moment),
    beside the worst round's."""
    table = _table(
        f"Issue 9's targets, median of the rounds (added p50 ≤ +{MAX_ADDED_P50_MS} ms; kept ≥ {MIN_KEPT:.0%} "
        "of direct)",
        ("target", "measure", "median", "worst round", "rounds", "met"),
    )
    # By target (a stable sort: each target's measures in the order the rows ran).
    for (target, measure), values in sorted(hop_figures(rows).items(), key=lambda item: item[0][0]):
        added = measure.endswith("added p50")
        middle = statistics.median(values)
        worst = max(values) if added else min(values)
        met = middle <= MAX_ADDED_P50_MS if added else middle >= MIN_KEPT
        shape = "+.2f" if added else ".2f"
        table.add_row(
            target,
            measure,
            format(middle, shape),
            format(worst, shape),
            str(len(values)),
            "yes" if met else "no",
        )
    return table


def main(requests: int, batches: int = STREAM_BATCHES, rounds: int = 1) -> None:
    console = Console(width=130)
    refused = track_requests(1000, valid=False)
    repeated = track_requests(1000)
    calls = (
        UnaryCall(REFUSED, refused, grpc.StatusCode.INVALID_ARGUMENT),
        UnaryCall(REPEATED, repeated, grpc.StatusCode.OK),
        UnaryCall(BATCH, _track_batches(20), grpc.StatusCode.OK, TRACK_BATCH),
    )
    rows: list[tuple[int, Row]] = []
    echo: dict[int, dict[int, Measurement]] = {}
    echo_cpu: dict[tuple[int, int], float] = {}  # the echo server's CPU per call: the floor of one gRPC leg
    floor: dict[int, dict[int, Measurement]] = {}  # a bare Python proxy in front of the echo
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as scratch, ExitStack() as stack:
        suite = Suite.on_free_ports(Path(scratch), log_format="json")
        suite.metrics_ports["ingest"] = free_port()
        suite.start()
        stack.callback(suite.stop)
        suite.wait_ready()
        targets = [
            Target(
                "direct",
                suite.address("ingest"),
                ((INTERNAL_TOKEN_HEADER, suite.internal_token), (TENANT_HEADER, suite.tenant)),
            ),
            Target(
                "via gateway",
                suite.address("gateway"),
                (("authorization", f"Bearer {suite.api_key}"),),
                suite.processes["gateway"].pid,
            ),
        ]
        nginx_missing = nginx_unavailable()
        if nginx_missing is None:
            edge = stack.enter_context(extra_gateway(suite, Path(scratch) / "edge", data_plane="nginx"))
            targets.append(
                Target("via nginx data plane", edge.address, targets[1].metadata, edge.nginx_worker())
            )
        else:
            console.print(f"no nginx data-plane rows: {nginx_missing}")
        sent = [0]
        # Every repeated event is acknowledged once first, so each timed call is answered from the window.
        direct = targets[0]
        for first in (call for call in calls if call.expected is grpc.StatusCode.OK):
            asyncio.run(
                run_scenario(
                    "first sight",
                    direct.address,
                    first.method,
                    direct.metadata,
                    first.payloads,
                    1,
                    len(first.payloads),
                )
            )
        # The paced stream of repeated events: acknowledged once here, then answered from the window.
        repeated_stream = stream_batches(PACED_SIZE, PACED_BATCHES, "gateway-paced-repeated")
        run_stream(direct.address, STREAM, direct.metadata, repeated_stream, echo=False)
        sent[0] += PACED_SIZE * PACED_BATCHES
        echo_port = free_port()
        echo_command = [sys.executable, "-m", "bench.echo_server", "aio", str(echo_port)]
        aio_echo, echo_process = stack.enter_context(server_process(echo_command, echo_port))
        proxy_port = free_port()
        proxy_command = [sys.executable, "-m", "bench.echo_server", "proxy", str(proxy_port), aio_echo]
        bare_proxy, _ = stack.enter_context(server_process(proxy_command, proxy_port))
        suite_pids = [process.pid for process in suite.processes.values()]
        for round_ in range(1, rounds + 1):
            echo[round_] = {}
            floor[round_] = {}
            for concurrency in (1, 16):
                before = cpu_seconds(echo_process.pid)
                echo[round_][concurrency] = asyncio.run(
                    run_scenario(
                        "bare grpc.aio echo", aio_echo, ECHO_METHOD, (), refused, concurrency, requests
                    )
                )
                spent = cpu_seconds(echo_process.pid) - before
                echo_cpu[(round_, concurrency)] = spent * 1000 / (requests + 50)
                floor[round_][concurrency] = asyncio.run(
                    run_scenario("bare proxy", bare_proxy, ECHO_METHOD, (), refused, concurrency, requests)
                )
                for call in calls:
                    for target in targets:
                        rows.append((round_, unary_row(target, call, concurrency, requests)))
            # Each round starts the streams at another target: none always follows the same one. The
            # streams that store nothing go first, while the store has no merges of the round's events to do.
            rotated = targets[round_ % len(targets) :] + targets[: round_ % len(targets)]
            port = suite.metrics_ports["ingest"]
            for target in (t for t in rotated if t is not direct):
                both = (repeated_stream, repeated_stream)
                rows.append(
                    (round_, paced_stream_row(target, direct, REPEATED, both, port, sent, suite_pids))
                )
            for target in rotated:
                tag = f"{round_}-{target.name}"
                rows.append((round_, stream_row(target, batches, tag, port, sent, suite_pids)))
                rows.append(
                    (round_, stream_row(target, batches, f"{tag}-16", port, sent, suite_pids, STREAMS))
                )
                if target is direct:
                    continue
                fresh = (
                    stream_batches(PACED_SIZE, PACED_BATCHES, f"{tag}-paced"),
                    stream_batches(PACED_SIZE, PACED_BATCHES, f"{tag}-paced-direct"),
                )
                rows.append((round_, paced_stream_row(target, direct, NEW, fresh, port, sent, suite_pids)))
    console.print(
        f"The gateway hop: {requests} unary calls per row (after 50 warm-up calls), {batches} stream batches "
        f"of 500 per row, {rounds} round(s); 2 cores shared by the client and every server"
    )
    report(rows, echo, echo_cpu, console, floor)
