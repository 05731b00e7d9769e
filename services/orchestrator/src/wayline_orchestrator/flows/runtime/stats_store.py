"""The flow statistics' aggregates in SQL (the same statements on SQLite and PostgreSQL): a flow's entries
counted by state, its step runs grouped by step, outcome, label and next step, its split assignments with
their conversions, and its sends the outbox gave up on. Every statement is scoped by tenant and flow, and
optionally by version and by the entries' entry time; the step runs are joined to their entries, so a range
counts what the persons who entered in it did, later steps included. Nothing here loads runs one by one:
a flow with millions of entries costs a handful of GROUP BYs (indexes `flow_step_runs_by_flow`,
`flow_entries_by_flow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wayline_orchestrator.flows.runtime.model import LIVE
from wayline_orchestrator.flows.runtime.outbox_store import OutboxState
from wayline_orchestrator.flows.runtime.store import RuntimeStore

__all__ = ["RunCount", "StatsCounts", "StatsScope", "StatsStore", "VariantCount"]


@dataclass(frozen=True)
class StatsScope:
    tenant: str
    flow_id: str
    version: int = 0  # 0: every version
    start: int | None = None  # entries entered at or after (microseconds since the epoch)
    end: int | None = None  # entries entered before


@dataclass(frozen=True)
class RunCount:
    step_id: str
    outcome: str  # PATH, SENT, SUPPRESSED, BRANCH, VARIANT, WAIT, GOAL, EXITED, CONVERTED
    label: str  # a path's, branch's or variant's label, or an end's reason
    next_step_id: str  # where a PATH leads ('' for the end)
    count: int


@dataclass(frozen=True)
class VariantCount:
    step_id: str
    label: str
    entered: int
    converted: int  # of those, entries that converted (reached the goal) at any time


@dataclass(frozen=True)
class StatsCounts:
    entered: int
    active: int
    converted: int
    exited: int
    active_by_step: dict[str, int]
    runs: list[RunCount]
    variants: list[VariantCount]
    dead_by_step: dict[str, int]


_JOINED = (
    " FROM flow_step_runs r JOIN flow_entries e ON e.tenant_id = r.tenant_id AND e.flow_id = r.flow_id"
    " AND e.person_id = r.person_id AND e.entry_number = r.entry_number"
)


def _entry_filter(scope: StatsScope, alias: str) -> tuple[str, list[Any]]:
    """The WHERE clause of the scope's entries (columns of `alias`), and its parameters."""
    where = [f"{alias}.tenant_id = ?", f"{alias}.flow_id = ?"]
    params: list[Any] = [scope.tenant, scope.flow_id]
    if scope.version:
        where.append(f"{alias}.version = ?")
        params.append(scope.version)
    if scope.start is not None:
        where.append(f"{alias}.entered_time >= ?")
        params.append(scope.start)
    if scope.end is not None:
        where.append(f"{alias}.entered_time < ?")
        params.append(scope.end)
    return " AND ".join(where), params


def _int(value: Any) -> int:
    return int(value) if value is not None else 0  # SUM over no row is NULL


class StatsStore:
    def __init__(self, store: RuntimeStore) -> None:
        self._store = store

    def counts(self, scope: StatsScope) -> StatsCounts:
        """Every aggregate of the scope, read in one transaction (one consistent snapshot)."""
        entries, entry_params = _entry_filter(scope, "e")
        live = f"e.status IN ({', '.join('?' * len(LIVE))})"
        with self._store.transaction() as tx:
            totals = tx.execute(
                f"SELECT COUNT(*), SUM(CASE WHEN {live} THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN e.converted_time IS NOT NULL THEN 1 ELSE 0 END),"
                f" SUM(CASE WHEN {live} THEN 0 ELSE 1 END) FROM flow_entries e WHERE {entries}",
                (*LIVE, *LIVE, *entry_params),
            )[0]
            active = tx.execute(
                f"SELECT e.step_id, COUNT(*) FROM flow_entries e WHERE {entries} AND {live}"
                " GROUP BY e.step_id",
                (*entry_params, *LIVE),
            )
            runs = tx.execute(
                f"SELECT r.step_id, r.outcome, r.label, r.next_step_id, COUNT(*){_JOINED} WHERE {entries}"
                " GROUP BY r.step_id, r.outcome, r.label, r.next_step_id",
                entry_params,
            )
            variants = tx.execute(
                "SELECT r.step_id, r.label, COUNT(*),"
                f" SUM(CASE WHEN e.converted_time IS NOT NULL THEN 1 ELSE 0 END){_JOINED}"
                f" WHERE {entries} AND r.outcome = 'VARIANT' GROUP BY r.step_id, r.label",
                entry_params,
            )
            dead = tx.execute(
                f"SELECT r.step_id, COUNT(*){_JOINED} JOIN flow_outbox o ON o.tenant_id = r.tenant_id"
                f" AND o.idempotency_key = r.step_key WHERE {entries} AND r.outcome = 'SENT' AND o.state = ?"
                " GROUP BY r.step_id",
                (*entry_params, OutboxState.DEAD),
            )
        return StatsCounts(
            entered=_int(totals[0]),
            active=_int(totals[1]),
            converted=_int(totals[2]),
            exited=_int(totals[3]),
            active_by_step={str(s): int(n) for s, n in active},
            runs=[RunCount(str(s), str(o), str(lb), str(nx), int(n)) for s, o, lb, nx, n in runs],
            variants=[VariantCount(str(s), str(lb), int(n), _int(c)) for s, lb, n, c in variants],
            dead_by_step={str(s): int(n) for s, n in dead},
        )
