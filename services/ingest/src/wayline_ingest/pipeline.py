"""The path of every event from the door to the spool, free of gRPC: validate → stamp → plan check →
spool. Track, TrackBatch, StreamEvents, the HTTP collector and `wayline import` all come through here.

A call's accepted events go to the spool as one record and are acknowledged only when it is fsync'd.
Events already accepted (the deduplication window) are acknowledged again without being spooled twice.
Enrichment that costs real CPU (user agents, sentiment) is not on this path: the forwarder applies it on
the way to the sinks, so acknowledgements wait only for checks and the fsync (ADR 8).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from opentelemetry import metrics, propagate

from wayline.api.v1 import errors_pb2
from wayline.common.errors import FieldViolation, ResourceExhausted, Unavailable
from wayline.common.timestamps import from_micros, to_datetime, to_micros
from wayline.event.v1 import event_pb2
from wayline_ingest.dedup import DedupWindow
from wayline_ingest.plans.model import PlanVerdict
from wayline_ingest.spool import Spool, SpoolBatch, SpoolClosed, SpoolFull
from wayline_ingest.validation import EventLimits, derive_event_id, stamp, validate_event

__all__ = ["Checked", "EventIssue", "Outcome", "Pipeline", "PlanCheck"]

_meter = metrics.get_meter("wayline.ingest")
_accepted = _meter.create_counter(
    "ingest.events.accepted", unit="{event}", description="Events made durable."
)
_rejected = _meter.create_counter("ingest.events.rejected", unit="{event}", description="Events refused.")
_duplicates = _meter.create_counter(
    "ingest.events.duplicates", unit="{event}", description="Retries acknowledged from the window."
)


class PlanCheck(Protocol):
    def covers_tenant(self, tenant: str) -> bool: ...

    def check(self, tenant: str, event: event_pb2.Event) -> PlanVerdict | None: ...


@dataclass(frozen=True)
class EventIssue:
    """A rejected event, or the flagged plan violations of an accepted one (paths from the request root)."""

    index: int
    event_id: str
    violations: list[FieldViolation]


@dataclass
class Checked:
    """The outcome of the checks of one call, before the spool write."""

    tenant: str
    received_at: datetime
    backfill: bool
    accepted_ids: list[str] = field(default_factory=list)
    rejections: list[EventIssue] = field(default_factory=list)
    warnings: list[EventIssue] = field(default_factory=list)
    spooled: list[bytes] = field(default_factory=list)
    window: list[tuple[str, int]] = field(default_factory=list)
    first_received_us: int | None = None  # for a single event acknowledged from the window


@dataclass(frozen=True)
class Outcome:
    accepted_ids: list[str]
    rejections: list[EventIssue]
    warnings: list[EventIssue]
    received_at: datetime


class Pipeline:
    def __init__(
        self,
        limits: EventLimits,
        spool: Spool,
        window: DedupWindow,
        plans: PlanCheck | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.limits = limits
        self.spool = spool
        self.window = window
        self._plans = plans
        self._clock = clock

    def check(
        self, tenant: str, events: Sequence[event_pb2.Event], path: Callable[[int], str], backfill: bool
    ) -> Checked:
        """Validate and stamp `events` in place; `path(i)` is event i's field path prefix."""
        checked = Checked(tenant, self._clock(), backfill)
        received_us = to_micros(checked.received_at)
        batch_ids: set[str] = set()
        plans = self._plans if self._plans is not None and self._plans.covers_tenant(tenant) else None
        for index, event in enumerate(events):
            prefix = path(index)
            violations = validate_event(event, prefix, self.limits, backfill=backfill)
            event_id = event.event_id  # read once: each read of a field builds a new str
            if violations:
                checked.rejections.append(EventIssue(index, event_id, violations))
                continue
            if not event_id:
                event_id = event.event_id = derive_event_id(tenant, event)
            key = DedupWindow.key(tenant, event_id)
            first = self.window.get(key)
            if first is not None or event_id in batch_ids:
                checked.accepted_ids.append(event_id)
                checked.first_received_us = first
                _duplicates.add(1)
                continue
            violations = stamp(tenant, event, prefix, checked.received_at, self.limits)
            if not violations and plans is not None:
                violations = self._apply_plan(
                    plans, tenant, event, prefix=prefix, index=index, checked=checked
                )
            if violations:
                checked.rejections.append(EventIssue(index, event_id, violations))
                continue
            batch_ids.add(event_id)
            checked.accepted_ids.append(event_id)
            checked.spooled.append(event.SerializeToString())
            checked.window.append((key, received_us))
        if checked.rejections:
            _rejected.add(len(checked.rejections))
        return checked

    @staticmethod
    def _apply_plan(
        plans: PlanCheck, tenant: str, event: event_pb2.Event, *, prefix: str, index: int, checked: Checked
    ) -> list[FieldViolation]:
        verdict = plans.check(tenant, event)
        if verdict is None or not verdict.violations:
            return []
        rooted = [FieldViolation(f"{prefix}.{v.field}", v.description, v.reason) for v in verdict.violations]
        if verdict.mode == "reject":
            return rooted
        event.plan_violations.extend(
            errors_pb2.FieldViolation(field=v.field, description=v.description, reason=v.reason)
            for v in verdict.violations
        )
        checked.warnings.append(EventIssue(index, event.event_id, rooted))
        return []

    def submit(self, checked: Checked) -> Future[int] | None:
        """Start the spool write of the accepted events; None when there is nothing to write."""
        if not checked.spooled:
            return None
        try:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # the delivery span joins this call's trace
            batch = SpoolBatch(
                checked.tenant, checked.spooled, checked.backfill, traceparent=carrier.get("traceparent", "")
            )
            return self.spool.submit(batch)
        except SpoolFull as full:
            raise ResourceExhausted(
                "ingest's spool is full because its sinks are behind; nothing of this call was accepted, "
                "retry the same events later",
                reason="SPOOL_FULL",
                retry_after=1.0,
                quota_subject="ingest spool",
            ) from full
        except SpoolClosed as closed:
            raise Unavailable(
                "ingest cannot write its spool (it may be shutting down); retry the same events",
                retry_after=1.0,
            ) from closed

    def complete(
        self, checked: Checked, written: Future[int] | None, timeout: float | None = None
    ) -> Outcome:
        """Wait until the write is durable, remember the ids, and describe the outcome."""
        if written is not None:
            try:
                written.result(timeout)
            except SpoolClosed as closed:
                raise Unavailable(
                    "ingest could not make the events durable; nothing of this call was accepted, "
                    "retry the same events",
                    retry_after=1.0,
                ) from closed
            self.window.add(checked.window)
            _accepted.add(len(checked.spooled))
        received_at = checked.received_at
        if checked.first_received_us is not None and len(checked.accepted_ids) == 1 and not checked.spooled:
            received_at = from_micros(checked.first_received_us)
        return Outcome(checked.accepted_ids, checked.rejections, checked.warnings, received_at)

    def accept(
        self,
        tenant: str,
        events: Sequence[event_pb2.Event],
        path: Callable[[int], str],
        backfill: bool = False,
        timeout: float | None = None,
    ) -> Outcome:
        """Check, spool and wait: the whole acknowledgement of one call."""
        checked = self.check(tenant, events, path, backfill)
        return self.complete(checked, self.submit(checked), timeout)

    def remember_spooled(self) -> int:
        """Fill the deduplication window from the batches still in the spool (at start)."""
        items: list[tuple[str, int]] = []
        event = event_pb2.Event()
        for batch in self.spool.batches():
            for raw in batch.events:
                event.ParseFromString(raw)
                items.append(
                    (DedupWindow.key(batch.tenant, event.event_id), to_micros(to_datetime(event.received_at)))
                )
        self.window.add(items)
        return len(items)
