"""Recent traces, in this process, until the journey store has them.

A trace reaches the store asynchronously (the sink's batch, ingest's spool, the forwarder, journeys' insert:
about a second, longer while a service is down), yet GetDecision and Feedback must find a decision the moment
Decide has returned it. So every recorded trace is also kept here, per tenant, for `keep_seconds`, and at
most `per_tenant` of them (the oldest go first); the same for the feedback this process recorded, so that
GetDecision shows it at once. Readers merge this with the store (reads.py). Another replica does not see
this process's recent traces: there, a decision is found once the store has it (ADR 0029). A trace is kept
as Decide recorded it (a PendingTrace) and built into its message by whoever needs it first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from wayline.decision.v1 import decision_pb2
from wayline_decision.decide.traces import PendingTrace

__all__ = ["RecentTraces"]


@dataclass
class _Entry:
    trace: PendingTrace | None  # None: only feedback is known here (the trace came from the store)
    at: float
    feedback: dict[str, decision_pb2.FeedbackRecord] = field(default_factory=dict)


class RecentTraces:
    """Thread-safe; every operation is O(1) but the expiry sweep, which removes what it visits."""

    def __init__(
        self, per_tenant: int, keep_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_tenant = per_tenant
        self._keep = keep_seconds
        self._clock = clock
        self._tenants: dict[str, OrderedDict[str, _Entry]] = {}
        self._lock = threading.Lock()

    def _entries(self, tenant: str) -> OrderedDict[str, _Entry]:
        entries = self._tenants.setdefault(tenant, OrderedDict())
        horizon = self._clock() - self._keep
        while entries:
            oldest = next(iter(entries.values()))
            if oldest.at >= horizon and len(entries) <= self._per_tenant:
                break
            entries.popitem(last=False)
        return entries

    def add(self, tenant: str, trace: PendingTrace) -> None:
        with self._lock:
            entries = self._tenants.setdefault(tenant, OrderedDict())
            entries[trace.decision_id] = _Entry(trace, self._clock())
            entries.move_to_end(trace.decision_id)
            self._entries(tenant)

    def add_feedback(self, tenant: str, decision_id: str, feedback: decision_pb2.FeedbackRecord) -> None:
        with self._lock:
            entries = self._entries(tenant)
            entry = entries.get(decision_id)
            if entry is None:
                entry = entries[decision_id] = _Entry(None, self._clock())
                self._entries(tenant)
            entry.feedback[feedback.feedback_id] = feedback

    def get(
        self, tenant: str, decision_id: str
    ) -> tuple[decision_pb2.Decision | None, list[decision_pb2.FeedbackRecord]]:
        """The trace kept here (None when none), and the feedback recorded here, oldest first."""
        with self._lock:
            entry = self._entries(tenant).get(decision_id)
            if entry is None:
                return None, []
            trace = entry.trace
            feedback = sorted(entry.feedback.values(), key=lambda f: f.time.ToNanoseconds())
        return (trace.message() if trace is not None else None), feedback  # built outside the lock

    def size(self, tenant: str) -> int:
        with self._lock:
            return len(self._entries(tenant))
