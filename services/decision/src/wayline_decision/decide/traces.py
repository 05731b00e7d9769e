"""Where Decide's traces go: the seam between Decide and the trace writer (journey store, via ingest)."""

from __future__ import annotations

from typing import Protocol

from wayline.decision.v1 import decision_pb2

__all__ = ["TraceSink"]


class TraceSink(Protocol):
    def record(self, tenant: str, trace: decision_pb2.Decision) -> None:
        """Keep a decision's full trace. Must not block the decision: implementations buffer and write in
        the background, and flush what they hold when the service stops."""
        ...
