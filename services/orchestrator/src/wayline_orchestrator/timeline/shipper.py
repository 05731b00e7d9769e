"""The shipper: the body of the `contact-events` timer loop. Each pass claims the due contact events with a
lease, names each person by an identifier from identity, writes them through ingest's TrackBatch (per
tenant, at most the batch size at once) and deletes what ingest answered for.

- Ingest or identity down (any failure a retry may cure): the claimed events are released with an
  exponential backoff and jitter, attempts counted; nothing is lost. Ingest deduplicates by event id, so a
  batch ingest stored before the answer was lost (or a replica whose lease ran out) is stored once.
- Per-event refusals (a tracking plan refusing the name) and persons identity no longer knows (erased) are
  dropped, logged and counted in `orchestrator.contact_events.dropped`: shipping again cannot cure them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import groupby

import structlog
from opentelemetry import metrics

from wayline.common.timestamps import now_us
from wayline.event.v1 import event_pb2
from wayline_orchestrator.timeline.clients import (
    EventWriter,
    PeerUnavailable,
    PersonIdentifiers,
    PersonUnknown,
)
from wayline_orchestrator.timeline.events import track_event
from wayline_orchestrator.timeline.store import Claimed, ContactEventStore

__all__ = ["ContactEventShipper"]

log = structlog.get_logger("wayline.orchestrator")
_meter = metrics.get_meter("wayline.orchestrator")
_shipped = _meter.create_counter(
    "orchestrator.contact_events.shipped", unit="{event}", description="Contact events ingest stored."
)
_dropped = _meter.create_counter(
    "orchestrator.contact_events.dropped",
    unit="{event}",
    description="Contact events dropped, by reason (rejected by ingest, person_unknown to identity).",
)

_INITIAL_BACKOFF_US = 1_000_000
_MAX_BACKOFF_US = 300_000_000


class ContactEventShipper:
    def __init__(
        self,
        store: ContactEventStore,
        people: PersonIdentifiers,
        writer: EventWriter,
        lease_us: int,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._store = store
        self._people = people
        self._writer = writer
        self._lease_us = lease_us
        self._clock = clock

    def ship_due(self, limit: int) -> int:
        """Ship up to `limit` due events; how many were claimed (the loop goes on at once when `limit`)."""
        claimed = self._store.claim(self._clock(), limit, self._lease_us)
        for tenant, rows in groupby(claimed, key=lambda c: c.tenant):
            batch = list(rows)
            try:
                self._ship(tenant, batch)
            except PeerUnavailable as down:
                delay = self._backoff(batch)
                log.info(
                    "contact_events.retrying",
                    tenant=tenant,
                    events=len(batch),
                    error=str(down),
                    delay_us=delay,
                )
                self._store.postpone(tenant, batch, self._clock() + delay)
        return len(claimed)

    def _ship(self, tenant: str, batch: list[Claimed]) -> None:
        events: list[event_pb2.Event] = []
        unknown: list[str] = []
        for claimed in batch:
            try:
                identifier = self._people.identifier(tenant, claimed.event.person_id)
            except PersonUnknown:
                unknown.append(claimed.event.event_id)
                continue
            events.append(track_event(claimed.event, identifier))
        rejected = self._writer.write(tenant, events).rejected if events else {}
        for event_id, why in rejected.items():
            log.warning("contact_events.rejected", tenant=tenant, event_id=event_id, why=why)
        if unknown:
            log.warning("contact_events.person_unknown", tenant=tenant, event_ids=unknown)
            _dropped.add(len(unknown), {"reason": "person_unknown"})
        if rejected:
            _dropped.add(len(rejected), {"reason": "rejected"})
        _shipped.add(len(events) - len(rejected))
        self._store.delete(tenant, [c.event.event_id for c in batch])

    @staticmethod
    def _backoff(batch: list[Claimed]) -> int:
        attempts = min(max(c.attempts for c in batch), 30)
        delay = min(_INITIAL_BACKOFF_US * 2**attempts, _MAX_BACKOFF_US)
        return int(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not secrets
