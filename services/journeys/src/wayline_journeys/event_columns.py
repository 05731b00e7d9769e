"""Events to store, column by column: the form WriteEvents converts a request into and the writer inserts
(as Arrow columns), with no object per event in between. At tens of thousands of events a second, building
a record per event and then a row per record was most of the cost of a write. Free of protobuf."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal

from wayline.common.timestamps import from_micros, to_micros
from wayline_journeys.events import EventRecord

__all__ = ["EventColumns"]

_TIMES = frozenset({"timestamp", "received_at", "sent_at", "original_timestamp"})
_IDENTIFIERS = frozenset({"identifier_types", "identifier_values"})


@dataclass
class EventColumns:
    """One list per EventRecord field (same names, same meaning), all of one length. Times are microseconds
    since the Unix epoch (UTC), the unit the store keeps them in, so no datetime is made on the way in."""

    event_id: list[str] = field(default_factory=list)
    type: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    timestamp: list[int] = field(default_factory=list)
    received_at: list[int] = field(default_factory=list)
    sent_at: list[int | None] = field(default_factory=list)
    identifier_types: list[Sequence[str]] = field(default_factory=list)
    identifier_values: list[Sequence[str]] = field(default_factory=list)
    person_id: list[str] = field(default_factory=list)
    properties_json: list[str] = field(default_factory=list)
    context_json: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    revenue: list[Decimal | None] = field(default_factory=list)
    revenue_currency: list[str] = field(default_factory=list)
    group_id: list[str] = field(default_factory=list)
    plan_violations_json: list[str] = field(default_factory=list)
    sentiment_score: list[float | None] = field(default_factory=list)
    original_timestamp: list[int | None] = field(default_factory=list)
    integrations_json: list[str] = field(default_factory=list)
    previous_identifier_type: list[str] = field(default_factory=list)
    previous_identifier_value: list[str] = field(default_factory=list)
    backfill: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_id)

    @classmethod
    def of(cls, records: Iterable[EventRecord]) -> EventColumns:
        """The columns of `records` (for writers that hold records: tests, tools)."""
        rows = list(records)
        columns = {name: [getattr(r, name) for r in rows] for name in _NAMES}
        for name in _TIMES:
            columns[name] = [None if v is None else to_micros(v) for v in columns[name]]
        return cls(**columns)

    def records(self) -> list[EventRecord]:
        """The events one by one, as the store reads them back."""
        columns = [
            [None if v is None else from_micros(v) for v in getattr(self, name)]
            if name in _TIMES
            else [tuple(v) for v in getattr(self, name)]
            if name in _IDENTIFIERS
            else getattr(self, name)
            for name in _NAMES
        ]
        return [
            EventRecord(**dict(zip(_NAMES, values, strict=True))) for values in zip(*columns, strict=True)
        ]


_NAMES = tuple(f.name for f in fields(EventColumns))  # EventRecord's fields too, in its order (tested)
