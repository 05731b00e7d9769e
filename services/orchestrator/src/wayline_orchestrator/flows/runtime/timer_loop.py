"""The timer loop: a thread that fires due timers every poll interval, and at once again while batches come
back full. Started and stopped with the server; an error is logged and retried at the next poll (the
database may be down for a moment), never fatal. Several replicas may run it: claims are disjoint."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

__all__ = ["TimerLoop"]

log = structlog.get_logger("wayline.orchestrator")


class TimerLoop:
    def __init__(
        self, fire: Callable[[int], int], interval_s: float, batch_size: int, name: str = "flow-timers"
    ) -> None:
        self._fire = fire
        self._name = name
        self._interval_s = interval_s
        self._batch_size = batch_size
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                fired = self._fire(self._batch_size)
            except Exception:
                log.exception("flows.loop_failed", loop=self._name)
                fired = 0
            if fired < self._batch_size:
                self._stopped.wait(self._interval_s)
