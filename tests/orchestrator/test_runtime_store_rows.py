"""A run's timers and step runs are written in multi-row statements (one round trip each on PostgreSQL) with
the semantics of one statement per row, on both engines: rows of one key keep the first, a key already in
the table keeps its row, and more rows than fit one statement are all written."""

from __future__ import annotations

from tests.orchestrator import runtime_fixtures
from wayline_orchestrator.flows.runtime import RuntimeStore, StepRun, Timer, TimerKind

TENANT = "acme"
MANY = 150  # more than one statement's rows


# The store on each engine, by the name the tests ask for.
database, store = runtime_fixtures.database, runtime_fixtures.store


def _timer(i: int, due: int) -> Timer:
    return Timer(f"flow/1/p{i}/1/wait", due, "flow", f"p{i}", 1, TimerKind.STEP, "wait", 1)


def _run(i: int, outcome: str) -> StepRun:
    return StepRun(f"flow/1/p{i}/1/wait", "flow", 1, f"p{i}", 1, "wait", outcome, 1_000, {"label": outcome})


def test_add_timers_keeps_the_first_of_a_key_and_writes_every_other(store: RuntimeStore) -> None:
    with store.transaction() as tx:
        store.add_timer(tx, TENANT, _timer(0, due=5))
    with store.transaction() as tx:
        store.add_timers(tx, TENANT, [_timer(i, due=10) for i in range(MANY)] + [_timer(1, due=20)])
    due = {timer.key: timer.due_time for timer in store.timers(TENANT)}
    assert len(due) == MANY
    assert due[_timer(0, 0).key] == 5  # there before
    assert due[_timer(1, 0).key] == 10  # the first of two in one call
    assert due[_timer(MANY - 1, 0).key] == 10


def test_add_runs_keeps_the_first_of_a_key_and_writes_every_other(store: RuntimeStore) -> None:
    with store.transaction() as tx:
        store.add_runs(tx, TENANT, [_run(0, "BEFORE")])
    with store.transaction() as tx:
        store.add_runs(tx, TENANT, [_run(i, "WAIT") for i in range(MANY)] + [_run(1, "LATER")])
        store.add_runs(tx, TENANT, [])
    outcome = {run.key: (run.outcome, run.detail) for run in store.runs(TENANT, "flow")}
    assert len(outcome) == MANY
    assert outcome[_run(0, "").key] == ("BEFORE", {"label": "BEFORE"})
    assert outcome[_run(1, "").key] == ("WAIT", {"label": "WAIT"})
    assert outcome[_run(MANY - 1, "").key] == ("WAIT", {"label": "WAIT"})
