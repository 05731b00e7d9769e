"""Timing helpers of the journeys benchmark for blocking calls (the raw chDB queries and sync stubs)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

from bench.harness import Measurement, measure

__all__ = ["latencies", "measure_blocking", "median_ms", "percentile"]


def measure_blocking(
    name: str, query: Callable[[str], object], persons: list[str], concurrency: int, requests: int
) -> Measurement:
    """The harness's closed loop (the same as for gRPC calls) over a blocking `query` of one person, on
    `concurrency` threads."""

    async def run() -> Measurement:
        loop = asyncio.get_running_loop()
        source = cycle(persons)
        with ThreadPoolExecutor(concurrency) as pool:
            return await measure(
                name, lambda: loop.run_in_executor(pool, query, next(source)), concurrency, requests
            )

    return asyncio.run(run())


def latencies(read: Callable[[], object], going: Callable[[int], bool]) -> list[float]:
    """Call `read` while `going(calls so far)`; the sorted latencies in milliseconds."""
    out: list[float] = []
    while going(len(out)):
        began = time.perf_counter()
        read()
        out.append((time.perf_counter() - began) * 1000)
    return sorted(out)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def median_ms(call: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` calls, in milliseconds."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)
