"""Where Decide's traces go: the seam between Decide and the trace writer (journey store, via ingest)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from wayline.decision.v1 import decision_pb2

__all__ = ["PendingTrace", "TraceSink"]


class PendingTrace:
    """A decision's trace, built into its message on first use rather than on Decide's request thread:
    the sink's writer thread builds it, or a GetDecision that comes first. `build` must read only what no
    one changes after the decision (the decision's own result). Two threads asking at once may both build
    it; they build equal messages, and the first one kept is the one every later caller gets."""

    __slots__ = ("_build", "_message", "decision_id", "person_id")

    def __init__(self, decision_id: str, person_id: str, build: Callable[[], decision_pb2.Decision]) -> None:
        self.decision_id = decision_id
        self.person_id = person_id
        self._build: Callable[[], decision_pb2.Decision] | None = build
        self._message: decision_pb2.Decision | None = None

    @classmethod
    def built(cls, message: decision_pb2.Decision) -> PendingTrace:
        """A trace whose message exists already."""
        pending = cls(message.decision_id, message.person_id, lambda: message)
        pending.message()
        return pending

    def message(self) -> decision_pb2.Decision:
        found = self._message
        if found is not None:
            return found
        build = self._build
        if build is None:  # another thread built it between the two reads
            assert self._message is not None
            return self._message
        made = build()
        if self._message is None:
            self._message = made
            self._build = None  # the result it holds can go
        return self._message


class TraceSink(Protocol):
    def record(self, tenant: str, trace: decision_pb2.Decision | PendingTrace) -> None:
        """Keep a decision's full trace. Must not block the decision: implementations buffer and write in
        the background (building a pending trace there), and flush what they hold when the service stops."""
        ...
