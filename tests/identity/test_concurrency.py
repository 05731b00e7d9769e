"""Concurrent resolution: 8 callers resolving overlapping identifier sets give the components a sequential run
gives, on SQLite (one writer) and on PostgreSQL (a transaction-scoped advisory lock per tenant)."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from tests.identity.conftest import Events, partition
from wayline.common.errors import Unavailable
from wayline.common.sql import SqliteDatabase
from wayline_identity.identity import Identity
from wayline_identity.model import Key

CALLERS = 8
BATCHES_PER_CALLER = 6
BATCH = 25


def _workload(seed: int) -> list[list[list[list[Key]]]]:
    """Per caller, batches of identifier sets drawn from one shared pool, so that the callers overlap.
    Only limitless types: without limit conflicts the components do not depend on the order."""
    rng = random.Random(seed)
    pool = [("anonymous_id", f"a{i}") for i in range(300)]
    return [
        [[rng.sample(pool, rng.randint(1, 3)) for _ in range(BATCH)] for _ in range(BATCHES_PER_CALLER)]
        for _ in range(CALLERS)
    ]


def test_resolve_identities_concurrently_equals_sequentially(identity: Identity) -> None:
    work = _workload(7)
    events = Events()
    errors: list[BaseException] = []
    start = threading.Barrier(CALLERS)

    def caller(batches: list[list[list[Key]]]) -> None:
        start.wait()
        try:
            for batch in batches:
                identity.resolve("concurrent", [events(*s) for s in batch])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=caller, args=(batches,)) for batches in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for batches in work:
        for batch in batches:
            identity.resolve("sequential", [events(*s) for s in batch])
    concurrent, sequential = partition(identity, "concurrent"), partition(identity, "sequential")
    assert concurrent == sequential
    assert len(sequential) < 300  # the workload does overlap: components were joined
    # No identifier is held twice and no profile is empty.
    held = [key for group in concurrent for key in group]
    assert len(held) == len(set(held))
    assert all(concurrent)


def test_a_store_that_cannot_be_written_answers_unavailable(tmp_path: Path) -> None:
    """A write lock held past its wait (another transaction stuck, the disk stalled) is the store being
    unavailable, which callers retry: UNAVAILABLE, not INTERNAL."""
    db = SqliteDatabase(tmp_path / "identity.db", write_lock_seconds=0.2)
    identity = Identity(db)
    identity.migrate()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with db.transaction():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        with pytest.raises(Unavailable):
            identity.resolve("t", [Events()(("anonymous_id", "a"))])
    finally:
        release.set()
        holder.join()
    assert identity.resolve("t", [Events()(("anonymous_id", "a"))]).resolutions
    db.close()
