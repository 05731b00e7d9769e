"""Work a journeys process repeats in the background: one daemon thread per kind of work."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

__all__ = ["Periodic"]

log = structlog.get_logger("wayline.journeys.background")


class Periodic:
    """Runs `work` every `interval` seconds in a thread named `name`, from `start` until `stop` (an interval
    of 0: never). An exception of `work` is logged as `failure` and the next round tries again."""

    def __init__(self, name: str, interval: float, work: Callable[[], object], failure: str) -> None:
        self._name = name
        self._interval = interval
        self._work = work
        self._failure = failure
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._interval and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the round under way, if any."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._work()
            except Exception:  # the store is down, say: the next round tries again
                log.warning(self._failure, exc_info=True)
