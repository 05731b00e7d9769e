"""ObserveEvents on PostgreSQL runs up to 32 persons of a batch in one transaction, each after a savepoint
of its own: a person whose run needs an answer it has not had (an audience, here; no journeys: it holds for
nobody) rolls back to their savepoint, the persons before are committed, and the transaction starts again
from them once the question is answered. Every person is entered once, as with a transaction each, and a
redelivery enters nobody. The runtime runs on a real database; only its transactions are counted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tools.postgres_server import create_schema
from wayline.common.sql import Database, Transaction, open_database
from wayline_orchestrator.contacts import ContactLedger, ContactStore
from wayline_orchestrator.flows.catalogue import FlowCatalogue
from wayline_orchestrator.flows.model import Flow
from wayline_orchestrator.flows.runtime import FlowRuntime, Occurrence, RuntimeStore
from wayline_orchestrator.flows.store import FlowStore

TENANT = "acme"
PERSONS = 100
ASKING = {10, 50, 51}  # the persons who also visit, where the audience flow asks about them


class _Counted:
    """A real database whose transactions are counted."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.engine, self.blob_type = db.engine, db.blob_type
        self.transactions = 0

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        self.transactions += 1
        with self._db.transaction() as tx:
            yield tx

    def snapshot(self) -> Any:
        return self._db.snapshot()

    def read(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self._db.read(sql, params)

    def close(self) -> None:
        self._db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    opened = open_database(url or None, tmp_path / "orchestrator.db")
    yield opened
    opened.close()


def _publish(flows: FlowStore, flow_id: str, event: str, **rules: Any) -> None:
    definition = {
        "trigger": {"event": {"event": {"event_name": event}}},
        "entry_rules": rules,
        "entry_step_id": "wait",
        "steps": [
            {"id": "wait", "wait": {"duration": "86400s", "next_step_id": "done"}},
            {"id": "done", "exit": {"reason": "finished"}},
        ],
    }
    catalogue = FlowCatalogue(flows)
    catalogue.create(TENANT, flow_id, Flow(flow_id, definition=definition))
    catalogue.publish(TENANT, flow_id, "")


def _events() -> list[Occurrence]:
    events = [Occurrence(f"signed-{i}", f"p{i:03d}", "Signed Up", 1_000 + i) for i in range(PERSONS)]
    return events + [Occurrence(f"visited-{i}", f"p{i:03d}", "Visited", 2_000 + i) for i in ASKING]


def test_observe_events_enters_each_person_once_with_a_transaction_per_group_on_postgresql(
    db: Database,
) -> None:
    contacts, flows, counted = ContactStore(db), FlowStore(db), _Counted(db)
    store = RuntimeStore(counted)
    for part in (contacts, flows, store):
        part.migrate()
    audience = {
        "person_property": {
            "property": "person.plan",
            "operator": "FILTER_OPERATOR_EQUALS",
            "values": ["pro"],
        }
    }
    _publish(flows, "welcome", "Signed Up")
    _publish(flows, "pro-only", "Visited", audience=audience)
    runtime = FlowRuntime(store, flows, ContactLedger(contacts))

    counted.transactions = 0
    assert runtime.observe(TENANT, _events()) == PERSONS
    transactions = counted.transactions

    entries = store.entries(TENANT, "welcome")
    assert sorted(e.person_id for e in entries) == [f"p{i:03d}" for i in range(PERSONS)]
    assert store.entries(TENANT, "pro-only") == []  # asked, and no journeys: the audience holds for none
    assert len(store.runs(TENANT, "welcome")) == 2 * PERSONS  # the entry's path and the wait, once each
    assert runtime.observe(TENANT, _events()) == 0  # delivered again
    assert len(store.entries(TENANT, "welcome")) == PERSONS
    if db.engine == "postgresql":
        # 4 groups of up to 32, each person who asks starting one again (and their group's first rolling
        # the whole transaction back)
        assert transactions <= 4 + 2 * len(ASKING)
    else:
        assert transactions >= PERSONS  # one each (and one more for each who asks)
