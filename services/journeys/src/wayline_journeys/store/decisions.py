"""Reads of `decision_events` (store/decision_tables.py): one decision by id (a primary-key range), the
tenant's decisions in time order with their feedback (keyset pages), and the canary judge's counts.

Every statement is scoped by tenant and parameterised; FINAL collapses the copies of a retried event.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from wayline_journeys.decisions import DecisionExportQuery, DecisionRecords, OutcomeCount
from wayline_journeys.events import EventRecord
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.columns import READ_COLUMN_NAMES, record_from_row
from wayline_journeys.store.decision_tables import DECISION_FEEDBACK, DECISION_LOGGED

__all__ = ["CONVERSION_OUTCOME", "ClickHouseDecisions"]

CONVERSION_OUTCOME = "FEEDBACK_OUTCOME_CONVERSION"  # `properties.outcome` of a conversion feedback
_COLUMNS = ", ".join(READ_COLUMN_NAMES)
# The log event first, then feedback in time order.
_EVENT_ORDER = f"decision_id, name != '{DECISION_LOGGED}', timestamp, toString(event_id)"


def _range(start: datetime | None, end: datetime | None, parameters: dict[str, Any]) -> list[str]:
    conditions = []
    if start is not None:
        conditions.append("timestamp >= {start:DateTime64(6, 'UTC')}")
        parameters["start"] = start
    if end is not None:
        conditions.append("timestamp < {end:DateTime64(6, 'UTC')}")
        parameters["end"] = end
    return conditions


class ClickHouseDecisions:
    def __init__(self, db: JourneyDatabase) -> None:
        self._db = db

    def decision_events(self, tenant: str, decision_id: str) -> DecisionRecords:
        grouped = self._events_of(tenant, [decision_id])
        return DecisionRecords(decision_id, grouped.get(decision_id, []))

    def _events_of(self, tenant: str, decision_ids: Sequence[str]) -> dict[str, list[EventRecord]]:
        rows = self._db.rows(
            f"SELECT decision_id, {_COLUMNS} FROM decision_events FINAL "
            "WHERE tenant_id = {tenant:String} AND decision_id IN {ids:Array(String)} "
            f"ORDER BY {_EVENT_ORDER}",
            {"tenant": tenant, "ids": list(decision_ids)},
            "reading decisions",
        )
        grouped: dict[str, list[EventRecord]] = {}
        for row in rows:
            grouped.setdefault(str(row[0]), []).append(record_from_row(row[1:]))
        return grouped

    def export_decisions(self, query: DecisionExportQuery) -> Iterator[list[DecisionRecords]]:
        """Pages of `batch_size` decisions by (decision time, decision id), each with its events."""
        after: tuple[int, str] | None = None
        while True:
            parameters: dict[str, Any] = {
                "tenant": query.tenant,
                "name": DECISION_LOGGED,
                "limit": query.batch_size,
            }
            conditions = [
                "tenant_id = {tenant:String}",
                "name = {name:String}",
                *_range(query.start, query.end, parameters),
            ]
            if query.model:
                conditions.append("model = {model:String}")
                parameters["model"] = query.model
            if after is not None:
                conditions.append(
                    "(toUnixTimestamp64Micro(timestamp), decision_id) > ({after_us:Int64}, {after_id:String})"
                )
                parameters["after_us"], parameters["after_id"] = after
            page = self._db.rows(
                "SELECT decision_id, toUnixTimestamp64Micro(timestamp) AS us FROM decision_events FINAL "
                f"WHERE {' AND '.join(conditions)} ORDER BY us, decision_id LIMIT {{limit:UInt32}}",
                parameters,
                "listing decisions",
            )
            if not page:
                return
            ids = [str(row[0]) for row in page]
            grouped = self._events_of(query.tenant, ids)
            yield [DecisionRecords(decision_id, grouped.get(decision_id, [])) for decision_id in ids]
            if len(page) < query.batch_size:
                return
            after = (int(page[-1][1]), ids[-1])

    def count_outcomes(
        self, tenant: str, model: str, start: datetime | None, end: datetime | None
    ) -> list[OutcomeCount]:
        """Per (version, arm): the model's decisions made in the range, and how many of them converted."""
        parameters: dict[str, Any] = {
            "tenant": tenant,
            "model": model,
            "logged": DECISION_LOGGED,
            "feedback": DECISION_FEEDBACK,
            "conversion": CONVERSION_OUTCOME,
        }
        window = " AND ".join(["true", *_range(start, end, parameters)])
        rows = self._db.rows(
            "SELECT model_version, arm, count() AS decisions, "
            "countIf(decision_id IN (SELECT decision_id FROM decision_events FINAL "
            "WHERE tenant_id = {tenant:String} AND name = {feedback:String} "
            "AND outcome = {conversion:String} AND model = {model:String})) AS converted "
            "FROM decision_events FINAL "
            "WHERE tenant_id = {tenant:String} AND name = {logged:String} AND model = {model:String} "
            f"AND {window} GROUP BY model_version, arm ORDER BY model_version, arm",
            parameters,
            "counting decision outcomes",
        )
        return [OutcomeCount(str(v), str(a), int(d), int(c)) for v, a, d, c in rows]
