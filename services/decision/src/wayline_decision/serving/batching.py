"""Micro-batching: concurrent `score` calls from the gRPC thread pool coalesced into one session run.

Each ONNX Runtime run pays a fixed toll before the trees do any work, and under load many handler threads
each run a handful of rows. With batching on, a call's rows join the open batch; the call that opened it
(the leader) waits up to the window for company (or until the batch reaches `max_rows`), then for its turn
to run (one run per model at a time: while one batch runs, the next one keeps filling), closes its batch,
runs the rows of every member in one session run and hands each member its slice. So batches form
naturally under load even with a window of zero, and a lone call pays at most the window.

There is no background thread: every batch is run by one of its own callers, so stopping cannot strand a
waiting caller. `close()` wakes leaders still waiting out their window (they run at once) and sends later
calls straight to the session. A failed run raises its error in every member of the batch, not just one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["MicroBatcher", "RunRows"]

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
RunRows = Callable[[Float32Array], tuple[Float64Array, Float64Array]]


@dataclass(eq=False)
class _Batch:
    parts: list[Float32Array] = field(default_factory=list)
    rows: int = 0
    full: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[Float64Array, Float64Array] | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Coalesces concurrent `run(rows)` calls into one call of the wrapped `run`; thread-safe."""

    def __init__(self, run: RunRows, *, window_s: float, max_rows: int) -> None:
        if window_s < 0 or max_rows < 1:
            raise ValueError("window_s must be >= 0 and max_rows >= 1")
        self._run = run
        self._window_s = window_s
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._turn = threading.Lock()  # one batch runs at a time; the next one fills meanwhile
        self._open: _Batch | None = None
        self._closed = False
        self.batches = 0  # runs made, for the benchmark's rows-per-run figure
        self.rows = 0

    def run(self, rows: Float32Array) -> tuple[Float64Array, Float64Array]:
        """The wrapped run's outputs for `rows`, computed in a batch with whatever calls arrive meanwhile."""
        with self._lock:
            if self._closed:
                batch = None
            else:
                batch = self._open
                leader = batch is None
                if batch is None:
                    batch = self._open = _Batch()
                start = batch.rows
                batch.parts.append(rows)
                batch.rows += len(rows)
                if batch.rows >= self._max_rows:
                    self._open = None  # no one else joins; the leader need not wait out the window
                    batch.full.set()
        if batch is None:
            return self._run(rows)
        if leader:
            self._lead(batch)
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        assert batch.result is not None  # set before done, with error unset
        first, second = batch.result
        end = start + len(rows)
        return first[start:end], second[start:end]

    def close(self) -> None:
        """Wake every leader waiting for company and send later calls straight to the session."""
        with self._lock:
            self._closed = True
            batch, self._open = self._open, None
        if batch is not None:
            batch.full.set()

    def _lead(self, batch: _Batch) -> None:
        if self._window_s > 0:
            batch.full.wait(self._window_s)
        with self._turn:
            with self._lock:
                if self._open is batch:
                    self._open = None
            try:
                rows = batch.parts[0] if len(batch.parts) == 1 else np.concatenate(batch.parts)
                batch.result = self._run(rows)
                self.batches += 1
                self.rows += batch.rows
            except BaseException as error:  # noqa: BLE001 - whatever it is, every member of the batch raises it
                batch.error = error
            finally:
                batch.done.set()
