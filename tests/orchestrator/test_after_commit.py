"""Effects registered in a flow transaction (`RuntimeStore.after_commit`: counting a suppressed send) happen
once it has committed, never for a transaction or a person's savepoint rolled back: a run rolled back to ask
a question and done again (answers.py) counts once. On both engines."""

from __future__ import annotations

import pytest

from tests.orchestrator import runtime_fixtures
from wayline_orchestrator.flows.runtime import RuntimeStore

database, store = runtime_fixtures.database, runtime_fixtures.store


def test_effects_run_after_the_commit_and_never_after_a_rollback(store: RuntimeStore) -> None:
    done: list[str] = []
    with store.transaction():
        store.after_commit(lambda: done.append("committed"))
        assert done == []  # not before the commit
    assert done == ["committed"]

    def rolled_back() -> None:
        with store.transaction():
            store.after_commit(lambda: done.append("rolled back"))
            raise RuntimeError("a run that needs an answer")

    with pytest.raises(RuntimeError):
        rolled_back()
    assert done == ["committed"]

    store.after_commit(lambda: done.append("no transaction"))  # none open: at once
    assert done == ["committed", "no transaction"]


def test_a_savepoint_rolled_back_drops_the_effects_registered_since(store: RuntimeStore) -> None:
    done: list[str] = []
    with store.transaction() as tx:
        store.after_commit(lambda: done.append("first person"))
        store.savepoint(tx)
        store.after_commit(lambda: done.append("second person, rolled back"))
        store.rollback_to_savepoint(tx)
        store.savepoint(tx)
        store.after_commit(lambda: done.append("second person, done again"))
    assert done == ["first person", "second person, done again"]
