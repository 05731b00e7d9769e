"""Group commit: concurrent writers share one INSERT.

ClickHouse (and chDB even more) pays per INSERT, not per row: each makes a part, and many small parts cost
merges. When several WriteEvents calls arrive together, the first caller becomes the leader and inserts
every batch queued so far in one statement; the others wait for that statement's outcome. The next waiter
in line then leads the next group. A caller returns only after the INSERT that holds its rows succeeded,
and gets its error otherwise, so acknowledgement semantics are unchanged.

A batch is a list of rows by default (the group's rows are concatenated); a writer with another batch form
(the events writer's Arrow tables) passes the function that merges a group's batches into one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, overload

__all__ = ["GroupCommitWriter"]

Row = Sequence[Any]
Batch = TypeVar("Batch")


def _concatenate(batches: list[Sequence[Row]]) -> list[Row]:
    return [row for batch in batches for row in batch]


class _Pending(Generic[Batch]):
    __slots__ = ("batch", "done", "error", "leads", "wakeup")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.wakeup = threading.Event()
        self.done = False
        self.leads = False
        self.error: BaseException | None = None


class GroupCommitWriter(Generic[Batch]):
    @overload
    def __init__(self: GroupCommitWriter[Sequence[Row]], insert: Callable[[list[Row]], None]) -> None: ...

    @overload
    def __init__(self, insert: Callable[[Batch], None], merge: Callable[[list[Batch]], Batch]) -> None: ...

    def __init__(
        self, insert: Callable[[Any], None], merge: Callable[[list[Any]], Any] = _concatenate
    ) -> None:
        self._insert = insert
        self._merge = merge
        self._lock = threading.Lock()
        self._queue: list[_Pending[Batch]] = []
        self._busy = False

    def write(self, batch: Batch) -> None:
        """Return once `batch` is stored; raise what the INSERT that carried it raised."""
        pending = _Pending(batch)
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
            self._insert(self._merge([member.batch for member in group]))
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
