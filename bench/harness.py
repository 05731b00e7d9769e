"""A small closed-loop load harness: N concurrent callers on one asyncio loop, latency percentiles and
throughput, and a table that prints each scenario beside its baseline with the ratio.

Callers are grpc.aio stubs, so the client costs the same for every scenario and does not hold the GIL
across waits; the servers under test run in their own processes.
"""

from __future__ import annotations

import asyncio
import gc
import os
import re
import statistics
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

__all__ = [
    "Measurement",
    "collector_frozen",
    "context_switches",
    "cpu_seconds",
    "full_collections",
    "idle",
    "measure",
    "measure_paced",
    "measure_paced_futures",
    "metric_sum",
    "percentile",
    "print_comparison",
]

Call = Callable[[], Awaitable[object]]
_TICK = os.sysconf("SC_CLK_TCK")
_SWITCH_FIELDS = ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (fields 14 and 15 of /proc/<pid>/stat): on 2 shared
    cores the figure other work moves least."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def idle(pids: Sequence[int], share: float = 0.1, window: float = 0.5, timeout: float = 60.0) -> float:
    """Wait until the processes together use under `share` of a core over `window` seconds (the merges and
    deliveries a previous row set off are over), at most `timeout` seconds; the seconds it took."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(window)
        if sum(cpu_seconds(pid) for pid in pids) - before < share * window:
            break
    return time.perf_counter() - began


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of all of a process's threads so far: how often its
    threads gave up a core (a wake-up handed to another thread, a wait) or had it taken."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            lines = status.read_text().splitlines()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended while we read
        total += sum(int(line.split()[1]) for line in lines if line.split(":")[0] in _SWITCH_FIELDS)
    return total


@dataclass(frozen=True)
class Measurement:
    scenario: str
    concurrency: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


@contextmanager
def collector_frozen() -> Iterator[None]:
    """While timing, keep the bench's own data out of the garbage collector: a bench process holds hundreds
    of thousands of objects (generated people, encoded requests), and a full collection of them held the
    load generator 230 ms in the middle of a paced row, a 100 ms p99 that was the client's, not the
    server's (docs/benchmarks.md, "The collector's pauses"). Frozen before the timed calls (as every service
    freezes what its start built, ADR 69), back in the collector's care after them, so nothing leaks."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def measure(
    scenario: str, call: Call, concurrency: int, requests: int, warmup: int = 50
) -> Measurement:
    """Run `requests` calls with `concurrency` callers in a closed loop, after `warmup` untimed calls."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    remaining = requests

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append((time.perf_counter() - started) * 1000)

    with collector_frozen():
        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return Measurement(
        scenario=scenario,
        concurrency=concurrency,
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
    )


def _starts(began: float, interval: float, requests: int) -> Iterator[tuple[float, float]]:
    """Each paced call's scheduled start, and the seconds until it when the caller asks (≤ 0: due)."""
    for i in range(requests):
        scheduled = began + i * interval
        yield scheduled, scheduled - time.perf_counter()


async def measure_paced(
    scenario: str, call: Call, rate: float, requests: int, warmup: int = 50, max_in_flight: int = 256
) -> Measurement:
    """Run `requests` calls started at a fixed `rate` per second (an open loop: a slow answer does not slow
    the next start, so queueing shows in the latencies, as it does for real traffic), after `warmup` untimed
    calls. Latency is measured from each call's scheduled start, so a late start counts against the
    server (no coordinated omission). `max_in_flight` bounds the calls outstanding; reaching it means the
    server cannot keep the rate, and the measurement's throughput shows it."""
    for _ in range(warmup):
        await call()
    latencies: list[float] = []
    slots = asyncio.Semaphore(max_in_flight)
    interval = 1.0 / rate

    async def one(scheduled: float) -> None:
        try:
            await call()
        finally:
            latencies.append((time.perf_counter() - scheduled) * 1000)
            slots.release()

    tasks = []
    with collector_frozen():
        began = time.perf_counter()
        for scheduled, delay in _starts(began, interval, requests):
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            tasks.append(asyncio.ensure_future(one(scheduled)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - began
    return _open_loop(scenario, latencies, seconds)


def print_comparison(
    title: str, rows: Sequence[Measurement], baseline: str, console: Console | None = None
) -> None:
    """One row per measurement; `ratio` is the scenario's throughput over the baseline's at the same
    concurrency, `p50 x` its median latency over the baseline's."""
    console = console or Console(width=120)
    base = {m.concurrency: m for m in rows if m.scenario == baseline}
    table = Table(title=title, title_justify="left")
    for column in ("scenario", "conc.", "req/s", "p50 ms", "p99 ms", "req/s ÷ baseline", "p50 x baseline"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for m in sorted(rows, key=lambda r: (r.concurrency, r.scenario != baseline, r.scenario)):
        b = base.get(m.concurrency)
        table.add_row(
            m.scenario + (" (baseline)" if m.scenario == baseline else ""),
            str(m.concurrency),
            f"{m.rps:,.0f}",
            f"{m.p50_ms:.2f}",
            f"{m.p99_ms:.2f}",
            f"{m.rps / b.rps:.2f}" if b else "-",
            f"{m.p50_ms / b.p50_ms:.2f}" if b else "-",
        )
    console.print(table)


def measure_paced_futures(
    scenario: str, start: Callable[[], Future[object]], rate: float, requests: int, warmup: int = 50
) -> Measurement:
    """`measure_paced` with a synchronous gRPC client: `start` begins one call and returns its future (a
    `grpc.Future`, e.g. `multicallable.future(request)`), from one pacing thread; each call's latency runs
    from its scheduled start to its completion callback. This is how the services call one another (sync
    channels from threads), and it costs the client less than grpc.aio, whose own scheduling adds about
    0.6 ms at p50 to every paced call on this machine."""
    for _ in range(warmup):
        start().result()
    latencies: list[float] = []
    lock = threading.Lock()
    finished = threading.Event()
    interval = 1.0 / rate

    def done_at(scheduled: float) -> Callable[[Future[object]], None]:
        def record(_: Future[object]) -> None:
            elapsed = (time.perf_counter() - scheduled) * 1000
            with lock:
                latencies.append(elapsed)
                if len(latencies) == requests:
                    finished.set()

        return record

    with collector_frozen():
        began = time.perf_counter()
        for scheduled, delay in _starts(began, interval, requests):
            if delay > 0:
                time.sleep(delay)
            start().add_done_callback(done_at(scheduled))
        if not finished.wait(600):
            raise TimeoutError(f"{scenario}: {requests - len(latencies)} calls never completed")
        seconds = time.perf_counter() - began
    return _open_loop(scenario, latencies, seconds)


def _open_loop(scenario: str, latencies: list[float], seconds: float) -> Measurement:
    """An open loop's measurement (concurrency 0 in the tables) from its calls' latencies."""
    latencies.sort()
    return Measurement(
        scenario=scenario,
        concurrency=0,
        requests=len(latencies),
        seconds=seconds,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
    )


def metric_sum(port: int, name: str, **labels: str) -> float:
    """The sum of a metric's samples on a service's Prometheus endpoint, over the label sets that carry
    `labels`. `name` is a regular expression: exporters differ in the unit suffixes they add."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    samples = re.findall(rf"^(?:{name})(?:\{{([^}}]*)\}})? ([0-9.e+-]+)$", text, re.M)
    return sum(float(value) for found, value in samples if all(w in found for w in wanted))


def full_collections(port: int) -> tuple[int, float, int]:
    """A service's full garbage collections so far (ADR 69): how many, their milliseconds in all, and how
    many held the process over 50 ms (from the histogram `process_gc_pause_milliseconds`)."""
    count = metric_sum(port, "process_gc_pause_milliseconds_count", generation="2")
    total_ms = metric_sum(port, "process_gc_pause_milliseconds_sum", generation="2")
    within_50 = metric_sum(port, "process_gc_pause_milliseconds_bucket", generation="2", le="50")
    return int(count), total_ms, int(count - within_50)
