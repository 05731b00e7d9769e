"""Recent traces, in this process, until the journey store has them.

A trace reaches the store asynchronously (the sink's batch, ingest's spool, the forwarder, journeys' insert:
about a second, longer while a service is down), yet GetDecision and Feedback must find a decision the moment
Decide has returned it. So every recorded trace is also kept here, per tenant, for `keep_seconds`, and at
most `per_tenant` of them (the oldest go first); the same for the feedback this process recorded, so that
GetDecision shows it at once. Readers merge this with the store (reads.py). Another replica does not see
this process's recent traces: there, a decision is found once the store has it (ADR 0029). A trace is kept
as Decide recorded it (a PendingTrace) and built into its message by whoever needs it first. An erased
person's traces and feedback are forgotten at once (`forget_person`, from identity's override feed:
forgetting.py).
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
    person_id: str
    trace: PendingTrace | None  # None: only feedback is known here (the trace came from the store)
    at: float
    feedback: dict[str, decision_pb2.FeedbackRecord] = field(default_factory=dict)


@dataclass
class _Tenant:
    entries: OrderedDict[str, _Entry] = field(default_factory=OrderedDict)
    by_person: dict[str, set[str]] = field(default_factory=dict)  # person → their decision ids kept here

    def put(self, decision_id: str, entry: _Entry) -> None:
        self.drop(decision_id)
        self.entries[decision_id] = entry
        self.by_person.setdefault(entry.person_id, set()).add(decision_id)

    def drop(self, decision_id: str) -> None:
        entry = self.entries.pop(decision_id, None)
        if entry is not None:
            self._unindex(decision_id, entry.person_id)

    def drop_oldest(self) -> None:
        decision_id, entry = self.entries.popitem(last=False)
        self._unindex(decision_id, entry.person_id)

    def _unindex(self, decision_id: str, person_id: str) -> None:
        ids = self.by_person.get(person_id)
        if ids is not None:
            ids.discard(decision_id)
            if not ids:
                del self.by_person[person_id]


class RecentTraces:
    """Thread-safe; every operation is O(1) but the expiry sweep, which removes what it visits."""

    def __init__(
        self, per_tenant: int, keep_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_tenant = per_tenant
        self._keep = keep_seconds
        self._clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()

    def _tenant(self, tenant: str) -> _Tenant:
        """The tenant's entries, the expired and those beyond the bound removed."""
        kept = self._tenants.setdefault(tenant, _Tenant())
        horizon = self._clock() - self._keep
        while kept.entries:
            oldest = next(iter(kept.entries.values()))
            if oldest.at >= horizon and len(kept.entries) <= self._per_tenant:
                break
            kept.drop_oldest()
        return kept

    def add(self, tenant: str, trace: PendingTrace) -> None:
        with self._lock:
            kept = self._tenants.setdefault(tenant, _Tenant())
            kept.put(trace.decision_id, _Entry(trace.person_id, trace, self._clock()))
            self._tenant(tenant)

    def add_feedback(
        self, tenant: str, decision: decision_pb2.Decision, feedback: decision_pb2.FeedbackRecord
    ) -> None:
        """Feedback recorded here on `decision` (the trace it was checked against)."""
        with self._lock:
            kept = self._tenant(tenant)
            entry = kept.entries.get(decision.decision_id)
            if entry is None:
                entry = _Entry(decision.person_id, None, self._clock())
                kept.put(decision.decision_id, entry)
                self._tenant(tenant)
            entry.feedback[feedback.feedback_id] = feedback

    def forget_person(self, tenant: str, person_id: str) -> int:
        """Forget every trace and feedback of the person kept here (they were erased); how many decisions."""
        with self._lock:
            kept = self._tenants.get(tenant)
            if kept is None:
                return 0
            ids = kept.by_person.pop(person_id, set())
            for decision_id in ids:
                kept.entries.pop(decision_id, None)
            return len(ids)

    def tenant_names(self) -> set[str]:
        """The tenants traces were kept for."""
        with self._lock:
            return set(self._tenants)

    def get(
        self, tenant: str, decision_id: str
    ) -> tuple[decision_pb2.Decision | None, list[decision_pb2.FeedbackRecord]]:
        """The trace kept here (None when none), and the feedback recorded here, oldest first."""
        with self._lock:
            entry = self._tenant(tenant).entries.get(decision_id)
            if entry is None:
                return None, []
            trace = entry.trace
            feedback = sorted(entry.feedback.values(), key=lambda f: f.time.ToNanoseconds())
        return (trace.message() if trace is not None else None), feedback  # built outside the lock

    def size(self, tenant: str) -> int:
        with self._lock:
            return len(self._tenant(tenant).entries)
