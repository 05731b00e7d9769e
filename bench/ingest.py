"""Ingest throughput and latency through the gateway, beside bare gRPC echo servers in the same run.

Rows:
- sustained events/s with StreamEvents (batches of 500, the server's credit window) through the gateway
  and direct to ingest, beside a bare thread-pool streaming echo that returns each batch (same client);
- events/s with TrackBatch (500 per call, 4 callers) through the gateway, beside the bare unary echo;
- single Track p50/p99 through the gateway at concurrency 1, beside the echo;
- p99 acknowledgement latency of a paced stream at 10,000 events/s (batches of 100, 100 a second);
- the drain rate into the journey store (chDB), read from ingest's `ingest_sink_delivered` counter;
- the resident memory of ingest before and after (a long run: `--minutes 10`);
- CPU and context switches per single Track in the gateway and ingest, from /proc (noise moves these least);
- each service's full garbage collections over the run, from its `process_gc_pause_milliseconds` (ADR 69);
- in one process first: the checks' cost per event, the C path (`Pipeline.check_wire`) beside the Python
  checks it stands in for (`Pipeline.check`), on the same batches.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from bench.echo_server import ECHO_METHOD, STREAM_METHOD
from bench.harness import (
    Measurement,
    collector_frozen,
    context_switches,
    cpu_seconds,
    full_collections,
    metric_sum,
    print_comparison,
)
from bench.track import TRACK, echo_server, run_scenario, track_requests
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline_cli.suite import Suite
from wayline_ingest.batches import batch_path
from wayline_ingest.dedup import DedupWindow
from wayline_ingest.pipeline import Pipeline
from wayline_ingest.spool import Spool
from wayline_ingest.validation import EventLimits
from wayline_ingest.wire import WireBatch, read_stream_request

STREAM = "/wayline.ingest.v1.IngestService/StreamEvents"
TRACK_BATCH = "/wayline.ingest.v1.IngestService/TrackBatch"
Metadata = tuple[tuple[str, str], ...]


def events(count: int, run: str) -> list[event_pb2.Event]:
    parsed = []
    for raw in track_requests(count):
        request = ingest_pb.TrackRequest.FromString(raw)
        request.event.identifiers[0].value += f"-{run}"
        parsed.append(request.event)
    return parsed


def stream_batches(batch_size: int, batches: int, run: str) -> list[bytes]:
    pool = events(batch_size * min(batches, 40), run)
    out = []
    for sequence in range(1, batches + 1):
        start = (sequence - 1) % 40 * batch_size
        chunk = pool[start : start + batch_size]
        for event in chunk:  # a fresh id per event: nothing is acknowledged from the window
            event.event_id = str(uuid.uuid4())
        out.append(ingest_pb.StreamEventsRequest(sequence=sequence, events=chunk).SerializeToString())
    return out


def run_stream(
    address: str, method: str, metadata: Metadata, payloads: list[bytes], echo: bool, pace: float = 0.0
) -> tuple[float, list[float]]:
    """Send every payload on one stream within the window; (seconds, per-batch ack latencies in ms)."""
    granted = {"max": 8 if echo else 1}
    sent_at: dict[int, float] = {}
    window = threading.Condition()
    latencies: list[float] = []

    def requests() -> Iterator[bytes]:
        began = time.perf_counter()
        for index, payload in enumerate(payloads, start=1):
            if pace:
                delay = began + (index - 1) * pace - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            with window:
                window.wait_for(lambda i=index: granted["max"] >= i)  # type: ignore[misc]
            sent_at[index] = time.perf_counter()
            yield payload

    with (
        grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel,
        collector_frozen(),
    ):
        call = channel.stream_stream(method, request_serializer=None, response_deserializer=None)
        started = time.perf_counter()
        received = 0
        for raw in call(requests(), metadata=metadata, timeout=600):
            if echo:
                received += 1
                sequence = received
                with window:
                    granted["max"] = received + 8
                    window.notify_all()
            else:
                response = ingest_pb.StreamEventsResponse.FromString(raw)
                sequence = int(response.sequence)
                with window:
                    granted["max"] = max(granted["max"], int(response.max_sequence))
                    window.notify_all()
            if sequence:
                latencies.append((time.perf_counter() - sent_at[sequence]) * 1000)
        return time.perf_counter() - started, latencies


def delivered(metrics_port: int) -> float:
    """Distinct events ingest delivered to the journey store."""
    return metric_sum(metrics_port, "ingest_sink_delivered(?:_events)?_total", sink="journeys")


def held(metrics_port: int) -> float:
    """Seconds the sinks held back during bursts, summed over the sinks (ADR 65)."""
    return metric_sum(metrics_port, "ingest_sink_burst_held_seconds_total")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def settle(port: int, total: int, timeout: float = 600) -> float:
    """Wait until ingest delivered `total` distinct events to journeys; the seconds it took."""
    began = time.perf_counter()
    while delivered(port) < total and time.perf_counter() - began < timeout:
        time.sleep(0.2)
    return time.perf_counter() - began


def latency_rows(
    table: Table,
    rows: list[Measurement],
    echo: str,
    gateway: tuple[Metadata, str],
    requests: int,
    port: int,
    pids: dict[str, int],
) -> tuple[int, dict[str, tuple[float, float]], dict[str, float]]:
    """Single Track and the paced stream, each on a settled suite (nothing left to drain); distinct events.
    Also the CPU ms and context switches per single Track of the gateway and ingest, and the CPU µs per
    event of the paced stream of every process in `pids` (each the work the calls set off, deliveries to the
    sinks included, counted once the suite settled)."""
    singles = track_requests(max(requests, 1000))
    rows.append(asyncio.run(run_scenario("bare unary echo", echo, ECHO_METHOD, (), singles, 1, requests)))
    track_pids = {name: pids[name] for name in ("gateway", "ingest")}
    before = {name: (cpu_seconds(pid), context_switches(pid)) for name, pid in track_pids.items()}
    rows.append(
        asyncio.run(run_scenario("Track via gateway", gateway[1], TRACK, gateway[0], singles, 1, requests))
    )
    settle(port, len(singles))
    calls = requests + 50  # run_scenario's untimed warm-up calls count too
    costs = {
        name: (
            (cpu_seconds(pid) - before[name][0]) * 1000 / calls,
            (context_switches(pid) - before[name][1]) / calls,
        )
        for name, pid in track_pids.items()
    }
    paced = stream_batches(100, 1000, "paced")
    before_paced = {name: cpu_seconds(pid) for name, pid in pids.items()}
    seconds, lat = run_stream(gateway[1], STREAM, gateway[0], paced, echo=False, pace=0.01)
    table.add_row(
        "StreamEvents via gateway paced at 10k events/s, batches of 100",
        f"{100_000 / seconds:,.0f}",
        "-",
        f"{statistics.median(lat):.1f}",
        f"{percentile(lat, 0.99):.1f}",
    )
    total = len(singles) + 100_000
    settle(port, total)
    per_event = {name: (cpu_seconds(pid) - before_paced[name]) * 1e6 / 100_000 for name, pid in pids.items()}
    return total, costs, per_event


def throughput_rows(
    table: Table,
    rows: list[Measurement],
    echo: str,
    gateway: tuple[Metadata, str],
    direct: tuple[Metadata, str],
    requests: int,
    batches: int,
) -> int:
    """Full-speed streams and TrackBatch beside the echoes; the distinct events sent."""
    seconds, lat = run_stream(echo, STREAM_METHOD, (), stream_batches(500, batches, "echo"), echo=True)
    echo_rate = batches * 500 / seconds
    table.add_row(
        "bare streaming echo, batches of 500 (baseline)",
        f"{echo_rate:,.0f}",
        "1.00",
        f"{statistics.median(lat):.1f}",
        f"{percentile(lat, 0.99):.1f}",
    )
    for name, (metadata, address) in (("StreamEvents via gateway", gateway), ("StreamEvents direct", direct)):
        payloads = stream_batches(500, batches, name.split()[-1])
        seconds, lat = run_stream(address, STREAM, metadata, payloads, echo=False)
        rate = batches * 500 / seconds
        table.add_row(
            f"{name}, batches of 500",
            f"{rate:,.0f}",
            f"{rate / echo_rate:.2f}",
            f"{statistics.median(lat):.1f}",
            f"{percentile(lat, 0.99):.1f}",
        )
    batch_payloads = [
        ingest_pb.TrackBatchRequest(
            events=ingest_pb.StreamEventsRequest.FromString(p).events
        ).SerializeToString()
        for p in stream_batches(500, 40, "tb")
    ]
    calls = requests // 20
    rows.append(asyncio.run(run_scenario("bare unary echo", echo, ECHO_METHOD, (), batch_payloads, 4, calls)))
    rows.append(
        asyncio.run(
            run_scenario(
                "TrackBatch of 500 via gateway", gateway[1], TRACK_BATCH, gateway[0], batch_payloads, 4, calls
            )
        )
    )
    return 2 * batches * 500 + len(batch_payloads) * 500


def check_costs(console: Console, batches: int = 40, rounds: int = 5) -> None:
    """µs per event of the checks alone (no gRPC, no spool write), best of `rounds`, same batches."""
    payloads = stream_batches(500, batches, "checks")
    wire_batches = [read_stream_request(p) for p in payloads]
    limits = EventLimits(
        max_event_bytes=32 * 1024,
        max_future_skew=timedelta(hours=1),
        min_timestamp=datetime(2000, 1, 1, tzinfo=UTC),
        backfill_min_timestamp=datetime(1900, 1, 1, tzinfo=UTC),
    )
    events = batches * 500
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as scratch:
        spool = Spool(Path(scratch), ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 30)

        def best(check: Callable[[Pipeline, WireBatch], object]) -> float:
            timings = []
            for _ in range(rounds):
                pipeline = Pipeline(limits, spool, DedupWindow(250_000))  # an empty window each round
                began = time.perf_counter()
                for batch in wire_batches:
                    check(pipeline, batch)
                timings.append(time.perf_counter() - began)
            return min(timings) / events * 1e6

        def python(pipeline: Pipeline, batch: WireBatch) -> object:
            parsed = [event_pb2.Event.FromString(e) for e in batch.events]  # what the servicer got before
            return pipeline.check("bench", parsed, batch_path, batch.backfill)

        def native(pipeline: Pipeline, batch: WireBatch) -> object:
            return pipeline.check_wire("bench", batch.events, batch_path, batch.backfill)

        baseline, fast = best(python), best(native)
        spool.close()
    console.print(
        f"checks and stamps, in one process ({events:,} events in batches of 500): Python checks "
        f"(Pipeline.check, with the parse) {baseline:.2f} µs an event; C path (Pipeline.check_wire) "
        f"{fast:.2f} µs; {baseline / fast:.1f}x"
    )


def main(requests: int, batches: int = 200, minutes: float = 0.0) -> None:
    console = Console(width=130)
    check_costs(console)
    table = Table(title="Ingest: events/s and acknowledgement latency (2 shared cores)", title_justify="left")
    for column in ("scenario", "events/s", "÷ echo", "ack p50 ms", "ack p99 ms"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="wayline-bench-") as scratch:
        suite = Suite.on_free_ports(Path(scratch), log_format="json", metrics=True)
        suite.start()
        try:
            suite.wait_ready()
            gateway = ((("authorization", f"Bearer {suite.api_key}"),), suite.address("gateway"))
            direct = (
                ((INTERNAL_TOKEN_HEADER, suite.internal_token), (TENANT_HEADER, suite.tenant)),
                suite.address("ingest"),
            )
            ingest_pid = suite.processes["ingest"].pid
            rss_before = rss_mib(ingest_pid)
            port = suite.metrics_ports["ingest"]
            with echo_server("threadpool") as echo:
                pids = {name: process.pid for name, process in suite.processes.items()}
                settled, costs, paced_costs = latency_rows(table, rows, echo, gateway, requests, port, pids)
                held_paced = held(port)
                load_began, journeys_cpu = time.perf_counter(), cpu_seconds(pids["journeys"])
                sent = throughput_rows(table, rows, echo, gateway, direct, requests, batches)
            load_ended, backlog = time.perf_counter(), settled + sent - delivered(port)
            settle(port, settled + sent)
            held_full_speed = held(port) - held_paced
            done, journeys_cpu = time.perf_counter(), cpu_seconds(pids["journeys"]) - journeys_cpu
            console.print(table)
            print_comparison(
                "Single Track (1 caller, on a settled suite) and TrackBatch (500 events a call, 4 callers)",
                rows,
                "bare unary echo",
                console,
            )
            console.print(
                "per single Track: "
                + "; ".join(
                    f"{name} {cpu:.2f} ms CPU, {switches:.1f} context switches"
                    for name, (cpu, switches) in costs.items()
                )
            )
            console.print(
                "per event of the paced stream, until every sink had it: "
                + "; ".join(f"{name} {micros:.0f} µs CPU" for name, micros in paced_costs.items())
                + f"; {sum(paced_costs.values()):.0f} µs in all"
            )
            for m in rows:
                if m.scenario.startswith("TrackBatch"):
                    console.print(f"TrackBatch via gateway: {m.rps * 500:,.0f} events/s")
            drained = delivered(port) - settled
            console.print(
                "drain into journeys (chDB) during and after the full-speed rows: "
                f"{drained:,.0f} of {sent:,} distinct events; {backlog:,.0f} were still in the spool when "
                f"the load ended and took {done - load_ended:.1f} s more; "
                f"{drained / (done - load_began):,.0f} events/s from the first send to the last delivery; "
                f"journeys' CPU {journeys_cpu * 1e6 / drained:.0f} µs an event"
            )
            console.print(
                f"sinks held back in bursts (summed over the four): {held_paced:.1f} s up to the end of the "
                f"paced row, {held_full_speed:.1f} s in the full-speed rows and their drain"
            )
            collections = {name: full_collections(p) for name, p in suite.metrics_ports.items()}
            console.print(
                "the garbage collector's full collections since start, each holding its process (ADR 69; the "
                "freeze's own, before the service served, among them): "
                + "; ".join(
                    f"{name} {count} ({total_ms:,.0f} ms, {over_50} over 50 ms)"
                    for name, (count, total_ms, over_50) in collections.items()
                )
            )
            if minutes:
                soak(gateway, minutes, ingest_pid, console)
            console.print(
                f"ingest RSS: {rss_before:.0f} MiB at start, {rss_mib(ingest_pid):.0f} MiB at the end"
            )
        finally:
            suite.stop()


def soak(gateway: tuple[Metadata, str], minutes: float, pid: int, console: Console) -> None:
    """Paced streams (5k events/s) for `minutes`, RSS sampled every minute. Each stream lasts 15 s, as a
    client's would: one stream may live at most the gateway's maximum deadline (60 s)."""
    metadata, address = gateway
    per_stream, streams_per_minute = 75, 4
    samples = [rss_mib(pid)]
    for minute in range(int(minutes)):
        for stream in range(streams_per_minute):
            payloads = stream_batches(1000, per_stream, f"soak{minute}-{stream}")
            run_stream(address, STREAM, metadata, payloads, echo=False, pace=15 / per_stream)
        samples.append(rss_mib(pid))
    console.print("ingest RSS each minute (MiB): " + ", ".join(f"{s:.0f}" for s in samples))
