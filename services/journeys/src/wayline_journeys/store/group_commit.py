"""Group commit: concurrent writers share one INSERT.

ClickHouse (and chDB even more) pays per INSERT, not per row: each makes a part, and many small parts cost
merges. When several WriteEvents calls arrive together, the first caller becomes the leader and inserts
every batch queued so far in one statement; the others wait for that statement's outcome. The next waiter
in line then leads the next group. A caller returns only after the INSERT that holds its rows succeeded,
and gets its error otherwise, so acknowledgement semantics are unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["GroupCommitWriter"]

Row = Sequence[Any]


class _Pending:
    __slots__ = ("done", "error", "leads", "rows", "wakeup")

    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows
        self.wakeup = threading.Event()
        self.done = False
        self.leads = False
        self.error: BaseException | None = None


class GroupCommitWriter:
    def __init__(self, insert: Callable[[list[Row]], None]) -> None:
        self._insert = insert
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._busy = False

    def write(self, rows: Sequence[Row]) -> None:
        """Return once `rows` are stored; raise what the INSERT that carried them raised."""
        pending = _Pending(rows)
        with self._lock:
            self._queue.append(pending)
            if not self._busy:
                self._busy = pending.leads = True
        if not pending.leads:
            pending.wakeup.wait()
        if not pending.done:
            self._lead()
        if pending.error is not None:
            raise pending.error

    def _lead(self) -> None:
        with self._lock:
            group, self._queue = self._queue, []
        try:
            self._insert([row for member in group for row in member.rows])
        except BaseException as error:  # noqa: BLE001 - handed to every member of the group
            for member in group:
                member.error = error
        for member in group:
            member.done = True
            member.wakeup.set()
        with self._lock:
            if self._queue:
                successor = self._queue[0]
                successor.leads = True
                successor.wakeup.set()
            else:
                self._busy = False
