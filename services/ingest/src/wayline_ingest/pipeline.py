"""The path of every event from the door to the spool, free of gRPC: validate → stamp → plan check →
spool. Track, TrackBatch, StreamEvents, the HTTP collector and `wayline import` all come through here.

A call's accepted events go to the spool as one record and are acknowledged only when it is fsync'd.
Events already accepted (the deduplication window) are acknowledged again without being spooled twice.
Enrichment that costs real CPU (user agents, sentiment) is not on this path: the forwarder applies it on
the way to the sinks, so acknowledgements wait only for checks and the fsync (ADR 8).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from google.protobuf.message import DecodeError
from opentelemetry import metrics, propagate

from wayline.api.v1 import errors_pb2
from wayline.common.errors import FieldViolation, ResourceExhausted, Unavailable
from wayline.common.timestamps import from_micros, to_datetime, to_micros
from wayline.event.v1 import event_pb2
from wayline_ingest import wire
from wayline_ingest.dedup import DedupWindow
from wayline_ingest.plans.model import PlanVerdict
from wayline_ingest.spool import Spool, SpoolBatch, SpoolClosed, SpoolFull
from wayline_ingest.validation import CANONICAL_UUID, EventLimits, derive_event_id, stamp, validate_event

__all__ = ["Checked", "EventIssue", "Outcome", "Pipeline", "PlanCheck"]

_meter = metrics.get_meter("wayline.ingest")
_accepted = _meter.create_counter(
    "ingest.events.accepted", unit="{event}", description="Events made durable (fsync'd in the spool)."
)
_rejected = _meter.create_counter(
    "ingest.events.rejected",
    unit="{event}",
    description="Events refused, by reason: the first field violation's reason (REQUIRED, TOO_LONG, "
    "SCHEMA_VIOLATION, ...), or SPOOL_FULL / SPOOL_CLOSED for a call refused as a whole (retryable).",
)
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
    # Some spooled event's `integrations` has entries: the forwarder reads which sinks each one selects.
    selects: bool = False
    window: list[tuple[str, int]] = field(default_factory=list)
    first_received_us: int | None = None  # for a single event acknowledged from the window


@dataclass(frozen=True)
class Outcome:
    accepted_ids: list[str]
    rejections: list[EventIssue]
    warnings: list[EventIssue]
    received_at: datetime


_MALFORMED = "is not a well-formed wayline.event.v1.Event (its protobuf bytes could not be decoded)"


class _Batch:
    """The checks of one call in progress: the window lookups, the ids seen in this call, the outcome."""

    def __init__(self, pipeline: Pipeline, tenant: str, backfill: bool) -> None:
        self.pipeline = pipeline
        self.tenant = tenant
        self.checked = Checked(tenant, pipeline.clock(), backfill)
        self.received_us = to_micros(self.checked.received_at)
        self.key_prefix = DedupWindow.prefix(tenant)  # + event_id: the event's key in the window
        self.ids: set[str] = set()
        plans = pipeline.plans
        self.plans = plans if plans is not None and plans.covers_tenant(tenant) else None

    def reject(self, index: int, event_id: str, violations: list[FieldViolation]) -> None:
        self.checked.rejections.append(EventIssue(index, event_id, violations))

    def seen(self, event_id: str) -> str | None:
        """The window key of a new event; None (and acknowledged again) when the event was accepted before."""
        key = self.key_prefix + event_id
        first = self.pipeline.window.get(key)
        if first is None and event_id not in self.ids:
            return key
        self.checked.accepted_ids.append(event_id)
        self.checked.first_received_us = first
        _duplicates.add(1)
        return None

    def add(self, key: str, event_id: str, stamped: bytes) -> None:
        self.ids.add(event_id)
        self.checked.accepted_ids.append(event_id)
        self.checked.spooled.append(stamped)
        self.checked.window.append((key, self.received_us))

    def check(self, index: int, event: event_pb2.Event, prefix: str) -> None:
        """The Python checks of one parsed event: validate, derive its id, stamp, tracking plan."""
        pipeline, checked = self.pipeline, self.checked
        violations = validate_event(event, prefix, pipeline.limits, backfill=checked.backfill)
        event_id = event.event_id  # read once: each read of a field builds a new str
        if violations:
            self.reject(index, event_id, violations)
            return
        if not event_id:
            event_id = event.event_id = derive_event_id(self.tenant, event)
        elif not CANONICAL_UUID.fullmatch(event_id):
            # Braces, `urn:uuid:`, hyphens left out: one spelling for the dedup window and every sink (the
            # journey store's UUID column refuses these forms; the others key on the text).
            event_id = event.event_id = str(uuid.UUID(event_id))
        key = self.seen(event_id)
        if key is None:
            return
        violations = stamp(
            self.tenant, event, prefix, checked.received_at, pipeline.limits, backfill=checked.backfill
        )
        if not violations and self.plans is not None:
            violations = self.apply_plan(self.plans, index, event, prefix)
        if violations:
            self.reject(index, event_id, violations)
            return
        if event.integrations.fields:
            checked.selects = True
        self.add(key, event_id, event.SerializeToString())

    def apply_plan(
        self, plans: PlanCheck, index: int, event: event_pb2.Event, prefix: str
    ) -> list[FieldViolation]:
        """The plan's violations when it rejects; when it flags, they are recorded on the event and as
        warnings, and nothing is returned."""
        verdict = plans.check(self.tenant, event)
        if verdict is None or not verdict.violations:
            return []
        rooted = [FieldViolation(f"{prefix}.{v.field}", v.description, v.reason) for v in verdict.violations]
        if verdict.mode == "reject":
            return rooted
        event.plan_violations.extend(
            errors_pb2.FieldViolation(field=v.field, description=v.description, reason=v.reason)
            for v in verdict.violations
        )
        self.checked.warnings.append(EventIssue(index, event.event_id, rooted))
        return []

    def done(self) -> Checked:
        if self.checked.rejections:
            _count_rejections(self.checked.rejections)
        return self.checked


def _count_rejections(rejections: Sequence[EventIssue]) -> None:
    """Add refused events to `ingest.events.rejected`, by the reason of each one's first violation (the
    reasons are the checks' own constants, so the label's values are bounded)."""
    by_reason: dict[str, int] = {}
    for issue in rejections:
        reason = issue.violations[0].reason if issue.violations else "INVALID"
        by_reason[reason] = by_reason.get(reason, 0) + 1
    for reason, count in by_reason.items():
        _rejected.add(count, {"reason": reason})


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
        self.plans = plans
        self.clock = clock

    def check(
        self, tenant: str, events: Sequence[event_pb2.Event], path: Callable[[int], str], backfill: bool
    ) -> Checked:
        """Validate and stamp `events` in place; `path(i)` is event i's field path prefix."""
        batch = _Batch(self, tenant, backfill)
        for index, event in enumerate(events):
            batch.check(index, event, path(index))
        return batch.done()

    def check_wire(
        self, tenant: str, events: list[bytes], path: Callable[[int], str], backfill: bool
    ) -> Checked:
        """`check` for events still in their wire bytes (TrackBatch, StreamEvents). The C fast path checks
        and stamps the events it can vouch for without parsing them; each other event is parsed and goes
        through the Python checks, which explain every refusal. A tenant with tracking plans takes the Python
        path for every event, since the plans read the parsed event."""
        batch = _Batch(self, tenant, backfill)
        fast: list[tuple[str, bytes, bool] | None]
        if batch.plans is None:
            fast = wire.check_events(
                events,
                batch.received_us * 1000,
                self.limits.floor_seconds(backfill),
                self.limits.future_skew_nanos,
                self.limits.max_event_bytes,
            )
        else:
            fast = [None] * len(events)
        # The loop over vouched events is written out (no calls per event): it runs for every event.
        checked, ids, known = batch.checked, batch.ids, self.window.get
        prefix, received_us = batch.key_prefix, batch.received_us
        accepted, spooled, remembered = checked.accepted_ids, checked.spooled, checked.window
        for index, vouched in enumerate(fast):
            if vouched is None:
                try:
                    event = event_pb2.Event.FromString(events[index])
                except DecodeError:
                    batch.reject(index, "", [FieldViolation(path(index), _MALFORMED, "MALFORMED")])
                    continue
                batch.check(index, event, path(index))
                continue
            event_id, stamped, selects = vouched
            key = prefix + event_id
            if event_id in ids or known(key) is not None:
                batch.seen(event_id)  # acknowledged again, not spooled twice
                continue
            ids.add(event_id)
            accepted.append(event_id)
            spooled.append(stamped)
            remembered.append((key, received_us))
            if selects:
                checked.selects = True
        return batch.done()

    def submit(self, checked: Checked) -> Future[int] | None:
        """Start the spool write of the accepted events; None when there is nothing to write."""
        if not checked.spooled:
            return None
        try:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # the delivery span joins this call's trace
            batch = SpoolBatch(
                checked.tenant,
                checked.spooled,
                checked.backfill,
                traceparent=carrier.get("traceparent", ""),
                selects=checked.selects,
            )
            return self.spool.submit(batch)
        except SpoolFull as full:
            _rejected.add(len(checked.spooled), {"reason": "SPOOL_FULL"})
            raise ResourceExhausted(
                "ingest's spool is full because its sinks are behind; nothing of this call was accepted, "
                "retry the same events later",
                reason="SPOOL_FULL",
                retry_after=1.0,
                quota_subject="ingest spool",
            ) from full
        except SpoolClosed as closed:
            _rejected.add(len(checked.spooled), {"reason": "SPOOL_CLOSED"})
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
                _rejected.add(len(checked.spooled), {"reason": "SPOOL_CLOSED"})
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
        return self.settle(self.check(tenant, events, path, backfill), timeout)

    def settle(self, checked: Checked, timeout: float | None = None) -> Outcome:
        """Spool the checked events and wait until they are durable."""
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
