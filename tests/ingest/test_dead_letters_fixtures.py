"""Fixtures shared by the dead-letter tests: a real database of each engine, a real spool, a test clock.

The store runs on SQLite embedded and PostgreSQL in production, so every store test runs on both (a fresh
PostgreSQL database per test from tests/postgres.py). Only the clock is faked: it is outside Wayline, and
tests need parked times they can order and filter on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wayline.common.sql import Database, open_database
from wayline.event.v1 import event_pb2
from wayline_ingest.deadletters import DeadLetters
from wayline_ingest.forwarder import SINK_BITS
from wayline_ingest.sinks.base import DeliveryFailure
from wayline_ingest.spool import Spool, SpoolBatch

__all__ = [
    "T0",
    "Clock",
    "Requeued",
    "clock",
    "database",
    "dead_letters",
    "event_bytes",
    "park",
    "requeued",
    "spool",
    "spool_requeue",
]

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class Requeued:
    """What replay handed to requeue, in order: (sink, tenant, payloads); `fail` makes the next call raise."""

    calls: list[tuple[str, str, list[bytes]]] = field(default_factory=list)
    fail: Exception | None = None

    def __call__(self, sink: str, tenant: str, payloads: list[bytes]) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append((sink, tenant, list(payloads)))


def event_bytes(
    *,
    name: str = "Order Completed",
    identifiers: tuple[tuple[str, str], ...] = (("user_id", "u-1"),),
    person_id: str = "",
    event_id: str | None = None,
) -> bytes:
    """A serialised Event as the spool holds it."""
    event = event_pb2.Event(
        event_id=event_id or str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        person_id=person_id,
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
    )
    event.received_at.FromDatetime(T0)
    return event.SerializeToString()


def park(
    store: DeadLetters,
    payload: bytes,
    *,
    tenant: str = "acme",
    sink: str = "journeys",
    code: str = "INVALID_ARGUMENT",
    reason: str = "PERSON_ID_CONFLICT",
    field_path: str = "events[0].properties",
    attempts: int = 1,
) -> None:
    failure = DeliveryFailure(
        code=code, reason=reason, message=f"{sink} refused it", field=field_path, index=0
    )
    store.park(
        sink, tenant, payload, failure=failure, attempts=attempts, first_attempt=T0 - timedelta(minutes=1)
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgresql" else None
    db = open_database(url, tmp_path / "dead-letters.db")
    yield db
    db.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def requeued() -> Requeued:
    return Requeued()


@pytest.fixture
def dead_letters(database: Database, requeued: Requeued, clock: Clock) -> DeadLetters:
    store = DeadLetters(database, requeued, clock=clock)
    store.migrate()
    return store


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path / "spool", ["journeys"], segment_bytes=1 << 20, max_bytes=1 << 30)
    yield opened
    opened.close()


def spool_requeue(spool: Spool) -> Requeued:
    """A requeue that does what the service wires: one spool record addressed to that sink only."""

    class _ToSpool(Requeued):
        def __call__(self, sink: str, tenant: str, payloads: list[bytes]) -> None:
            super().__call__(sink, tenant, payloads)
            spool.append(SpoolBatch(tenant, payloads, sink_mask=SINK_BITS[sink]), timeout=10)

    return _ToSpool()
