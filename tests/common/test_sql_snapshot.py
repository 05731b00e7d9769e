"""`Database.snapshot`, on both engines: a reading transaction goes ahead while another thread holds the
write transaction open, and sees only what was committed before it. (On SQLite `transaction` would wait for
that writer's lock instead, polling with sleeps.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.postgres_server import create_schema
from wayline.common.sql import Database, open_database


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else None
    opened = open_database(url, tmp_path / "snapshot.db")
    with opened.transaction() as tx:
        tx.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        tx.execute("INSERT INTO notes (id, body) VALUES (1, 'committed')")
    yield opened
    opened.close()


def test_a_snapshot_reads_beside_an_open_write_transaction(db: Database) -> None:
    writing, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            with db.transaction() as tx:
                tx.execute("INSERT INTO notes (id, body) VALUES (2, 'uncommitted')")
                writing.set()
                assert done.wait(60)
        except BaseException as error:  # noqa: BLE001 - reported by the test's thread
            failures.append(error)
            writing.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(30)
        with db.snapshot() as tx:
            seen = tx.execute("SELECT id, body FROM notes ORDER BY id")
    finally:
        done.set()
        thread.join(30)
    assert failures == []
    assert seen == [(1, "committed")]
    with db.snapshot() as tx:
        assert tx.execute("SELECT COUNT(*) FROM notes") == [(2,)]


def test_a_one_statement_read_goes_ahead_of_an_open_write_and_sees_only_what_committed(
    db: Database,
) -> None:
    """`read`: one statement outside any transaction (CheckContact's reads), neither waiting for the writer
    nor seeing its uncommitted rows; the thread's next transaction works as before."""
    writing, done = threading.Event(), threading.Event()

    def writer() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes (id, body) VALUES (2, 'uncommitted')")
            writing.set()
            done.wait(60)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(30)
        seen = db.read("SELECT id, body FROM notes WHERE id >= ? ORDER BY id", (1,))
    finally:
        done.set()
        thread.join(30)
    assert seen == [(1, "committed")]
    with db.transaction() as tx:
        tx.execute("INSERT INTO notes (id, body) VALUES (3, 'mine')")
    assert db.read("SELECT COUNT(*) FROM notes") == [(3,)]


def test_a_transaction_that_fails_still_rolls_back_on_an_autocommit_connection(db: Database) -> None:
    def failing_block() -> None:
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes (id, body) VALUES (4, 'rolled back')")
            raise RuntimeError("the block fails")

    with pytest.raises(RuntimeError):
        failing_block()
    assert db.read("SELECT id FROM notes ORDER BY id") == [(1,)]
