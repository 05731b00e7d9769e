"""SIGTERM/SIGINT turned into a flag, safely.

A Python signal handler runs on the main thread between any two bytecodes — also while that thread holds
a lock (a log write, an Event's condition). A handler that logs or sets a threading.Event can therefore
deadlock the process it is trying to stop. These handlers only append to a list; the main thread polls.
"""

from __future__ import annotations

import signal
import time
from types import FrameType

__all__ = ["TerminationSignals"]


class TerminationSignals:
    def __init__(self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.received: list[int] = []
        for signum in signals:
            signal.signal(signum, self._record)

    def _record(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)  # list.append takes no lock

    @property
    def first(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else ""

    def wait(self, timeout: float, poll: float = 0.1) -> bool:
        """True once a signal arrived; False when `timeout` passed without one."""
        deadline = time.monotonic() + timeout
        while not self.received:
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True
