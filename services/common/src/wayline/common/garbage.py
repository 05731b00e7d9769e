"""CPython's cyclic garbage collector in a service process: what start built is frozen out of its scans, and
every collection's pause is measured.

A full collection scans every container object the process holds and keeps the GIL while it does, so every
call in flight waits for it. A service holds 70-120k such objects once started (modules, protobuf
descriptors, gRPC, OpenTelemetry, pydantic, chDB's and ONNX Runtime's Python sides, loaded models), almost
all of them for its whole life, and a full collection of them took 50-260 ms here, several times a minute
in a busy journeys or orchestrator process (docs/benchmarks.md, "The collector's pauses"; ADR 69). So once
a service's start has returned, `freeze` collects once and moves every object alive into the collector's
permanent generation, which later collections skip. Reference counting still frees those objects; only a
reference cycle among them that is dropped later stays until the process ends (`gc.freeze`'s documented
trade; start builds few such cycles, and they are never rebuilt).

`PauseMetrics` times the collections of the older generations from the interpreter's own callbacks into the
histogram `process.gc.pause` by generation, so a pause shows in the metrics beside the latencies it
lengthens. Young collections are not timed: they take tens of microseconds each and come hundreds of times
a second under load, and recording one costs the metrics SDK about 20 microseconds.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import deque
from typing import Any

from opentelemetry import metrics

__all__ = ["PauseMetrics", "freeze"]

_MAX_PENDING = 10_000


def freeze() -> int:
    """Collect once, then freeze every object still alive out of later collections; how many were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class PauseMetrics:
    """Times this process's collections of generations 1 and 2 (a full one) into `process.gc.pause` (ms, by
    `generation`) until closed.

    The interpreter calls back at the start and the stop of every collection, on whichever thread allocated
    last, under the GIL; for a young one the callback returns at once. The callback never records into the
    histogram itself: a collection can start on a thread that holds the metrics SDK's locks (a scrape
    allocates while it aggregates), and recording there would wait for that lock forever. It leaves the
    pause on a queue, and a thread of its own records what is queued every `interval` seconds.
    """

    def __init__(self, meter: metrics.Meter, interval: float = 1.0) -> None:
        self._pause_ms = meter.create_histogram(
            "process.gc.pause",
            unit="ms",
            description="Time the interpreter's cyclic garbage collector held the process, by generation "
            "(2 is a full collection).",
        )
        self._attributes = {generation: {"generation": str(generation)} for generation in (1, 2)}
        self._interval = interval
        self._started = 0.0
        # Appends and pops of a deque are atomic under the GIL: no lock in the callback. Bounded in case
        # the recording thread is starved; the oldest pauses go first.
        self._pending: deque[tuple[int, float]] = deque(maxlen=_MAX_PENDING)
        self._closed = threading.Event()
        gc.callbacks.append(self._on_collection)
        self._recorder = threading.Thread(target=self._record_pending, name="gc-pauses", daemon=True)
        self._recorder.start()

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        generation = info["generation"]
        if generation == 0:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pending.append((generation, (time.perf_counter() - self._started) * 1000))

    def _record_pending(self) -> None:
        while not self._closed.wait(self._interval):
            self._record_queued()
        self._record_queued()

    def _record_queued(self) -> None:
        while self._pending:
            generation, pause_ms = self._pending.popleft()
            self._pause_ms.record(pause_ms, self._attributes[generation])

    def close(self) -> None:
        """Stop timing collections, once what is queued is recorded."""
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
        self._closed.set()
        self._recorder.join()
