"""The decision service's events as journeys serves them back: one decision's events, decisions in time
order, and outcome counts per version and arm for the canary judge. Free of protobuf; the SQL is in
store/decisions.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from wayline_journeys.events import EventRecord

__all__ = ["DecisionEventReads", "DecisionExportQuery", "DecisionRecords", "OutcomeCount"]


@dataclass(frozen=True)
class DecisionRecords:
    decision_id: str
    events: list[EventRecord]  # the `Decision Logged` event first (when stored), then feedback, oldest first


@dataclass(frozen=True)
class DecisionExportQuery:
    tenant: str
    start: datetime | None
    end: datetime | None
    model: str  # '' for every model
    batch_size: int


@dataclass(frozen=True)
class OutcomeCount:
    model_version: str
    arm: str
    decisions: int
    converted: int


class DecisionEventReads(Protocol):
    def decision_events(self, tenant: str, decision_id: str) -> DecisionRecords: ...

    def export_decisions(self, query: DecisionExportQuery) -> Iterator[list[DecisionRecords]]: ...

    def count_outcomes(
        self, tenant: str, model: str, start: datetime | None, end: datetime | None
    ) -> list[OutcomeCount]: ...
