"""The runtime store's reads of one person's entries on SQLite search the person's index: ordered by flow
the planner preferred walking every entry of the tenant in flow order, which made each event cost
O(entries of the tenant) and entering 100k customers quadratic (bench/orchestrator.py found it). SQLite only:
the plan is its planner's choice. The statements are the store's own, recorded as they run on a real
database; the entries still come by flow and number."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from wayline.common.sql import SqliteDatabase, Transaction, open_database
from wayline_orchestrator.flows.runtime import Entry, EntryStatus, RuntimeStore

TENANT = "acme"


class _Recording:
    """A real transaction that remembers what it ran."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self.statements: list[tuple[str, Sequence[Any]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.statements.append((sql, params))
        return self._tx.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._tx.executemany(sql, rows)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SqliteDatabase]:
    opened = open_database(None, tmp_path / "orchestrator.db")
    assert isinstance(opened, SqliteDatabase)
    RuntimeStore(opened).migrate()
    yield opened
    opened.close()


def _entry(flow_id: str, person_id: str, number: int, status: EntryStatus) -> Entry:
    return Entry(flow_id, person_id, number, 1, "wait", status, 1, 1, f"{flow_id}-{person_id}-{number}")


def test_a_persons_entries_are_read_through_the_persons_index_and_come_by_flow_and_number(
    db: SqliteDatabase,
) -> None:
    store = RuntimeStore(db)
    with store.transaction() as tx:
        for flow_id in ("b-flow", "a-flow"):
            for person in range(50):
                store.insert_entry(tx, TENANT, _entry(flow_id, f"p{person}", 1, EntryStatus.EXITED))
        for flow_id, number in (("b-flow", 2), ("a-flow", 3), ("a-flow", 2)):
            store.insert_entry(tx, TENANT, _entry(flow_id, "p7", number, EntryStatus.WAITING))
    with store.transaction() as tx:
        recording = _Recording(tx)
        live = store.live_entries(recording, TENANT, "p7")
        every = store.person_entries(recording, TENANT, "p7")
        plans = [
            [row[3] for row in tx.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            for sql, params in recording.statements
        ]
    assert [(e.flow_id, e.number) for e in live] == [("a-flow", 2), ("a-flow", 3), ("b-flow", 2)]
    assert [(e.flow_id, e.number) for e in every] == [
        ("a-flow", 1),
        ("a-flow", 2),
        ("a-flow", 3),
        ("b-flow", 1),
        ("b-flow", 2),
    ]
    assert [plan[0] for plan in plans] == [
        "SEARCH flow_entries USING INDEX flow_entries_by_person (tenant_id=? AND person_id=? AND status=?)",
        "SEARCH flow_entries USING INDEX flow_entries_by_person (tenant_id=? AND person_id=?)",
    ]
