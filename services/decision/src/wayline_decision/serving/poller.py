"""The background poll that keeps a replica serving the shared traffic table: every `period` seconds it
syncs (reads every model's generation, loads and swaps what changed). A failed round is logged and the next
one tries again; stopping wakes it at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

__all__ = ["TrafficPoller"]

log = structlog.get_logger("wayline.decision.serving")


class TrafficPoller:
    def __init__(self, sync: Callable[[], None], period: float) -> None:
        self._sync = sync
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="decision-traffic-poll", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self._sync()
            except Exception as error:  # noqa: BLE001 - a down database must not end the poll: logged, retried
                log.warning("model.traffic_poll_failed", error=str(error))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
