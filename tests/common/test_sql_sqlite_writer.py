"""SQLite's one writing connection and its checkpoint thread (`wayline.common.sql.SqliteDatabase`).

"What the database file holds" is read through an immutable view of the file alone (`immutable=1` ignores
the write-ahead log): a row is there only once a checkpoint copied it from the log.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tests.client import wait_until
from wayline.common.sql import SqliteDatabase

PAGE_ROWS = 2_000  # rows of 3 KB: one 4 KiB page each, twice SQLite's own checkpoint threshold (1,000 pages)


TORN = -1  # the file read while a checkpoint was writing it


def in_database_file(path: Path) -> int | None:
    """Rows of `notes` in the database file itself (None: the table is not there yet; TORN: a checkpoint
    was copying pages into the file as it was read, which an immutable view does not expect)."""
    view = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return int(view.execute("SELECT COUNT(*) FROM notes").fetchone()[0])
    except sqlite3.OperationalError:
        return None
    except sqlite3.DatabaseError:
        return TORN
    finally:
        view.close()


def write_pages(db: SqliteDatabase, rows: int = PAGE_ROWS) -> None:
    with db.transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        tx.executemany("INSERT INTO notes (body) VALUES (?)", [(b"x" * 3000,) for _ in range(rows)])


def checkpoint_threads(path: Path) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"sqlite-checkpoint {path.name}" and t.is_alive()]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "notes.db"


def test_a_large_commit_leaves_the_checkpoint_to_the_databases_thread(path: Path) -> None:
    db = SqliteDatabase(path, checkpoint_seconds=3600, checkpoint_log_bytes=1 << 30)
    try:
        write_pages(db)
        # SQLite's own checkpoint would have copied the 2,000 pages into the file inside that COMMIT.
        assert in_database_file(path) is None
        assert db.read("SELECT COUNT(*) FROM notes") == [(PAGE_ROWS,)]  # committed, in the log
    finally:
        db.close()


def test_the_thread_checkpoints_soon_after_a_commit_without_another_one(path: Path) -> None:
    db = SqliteDatabase(path, checkpoint_seconds=0.05)
    try:
        write_pages(db, rows=10)
        assert wait_until(lambda: in_database_file(path) == 10)
        assert len(checkpoint_threads(path)) == 1  # one thread, idle until the next commit
    finally:
        db.close()


def test_a_commit_that_leaves_much_log_has_it_checkpointed_at_once(path: Path) -> None:
    db = SqliteDatabase(path, checkpoint_seconds=3600, checkpoint_log_bytes=1 << 20)
    try:
        write_pages(db, rows=10)  # a little log: left for the hour
        time.sleep(0.2)
        assert in_database_file(path) is None
        write_pages(db)  # 8 MB of log: checkpointed now, by the thread
        assert wait_until(lambda: in_database_file(path) == PAGE_ROWS + 10)
    finally:
        db.close()


def test_the_commit_still_bounds_the_log_when_the_thread_falls_behind(path: Path) -> None:
    db = SqliteDatabase(path, checkpoint_seconds=3600, checkpoint_log_bytes=1 << 30, wal_limit_pages=500)
    try:
        write_pages(db)  # past the bound: this commit checkpoints, as SQLite's own would
        assert in_database_file(path) == PAGE_ROWS
    finally:
        db.close()


def test_close_ends_the_thread_and_leaves_everything_in_the_database_file(path: Path) -> None:
    db = SqliteDatabase(path, checkpoint_seconds=3600)
    write_pages(db, rows=10)
    assert len(checkpoint_threads(path)) == 1
    db.close()
    assert checkpoint_threads(path) == []
    assert in_database_file(path) == 10  # the last connection to close checkpointed the whole log
    assert not path.with_name(path.name + "-wal").exists()


def test_a_database_dropped_without_close_ends_its_thread(path: Path) -> None:
    db = SqliteDatabase(path, checkpoint_seconds=3600)
    write_pages(db, rows=10)
    assert len(checkpoint_threads(path)) == 1
    del db
    gc.collect()
    assert wait_until(lambda: checkpoint_threads(path) == [])


def test_a_read_inside_a_transaction_sees_its_writes_and_other_threads_do_not(path: Path) -> None:
    db = SqliteDatabase(path)
    seen_elsewhere: list[list[tuple[object, ...]]] = []
    try:
        write_pages(db, rows=1)
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes (body) VALUES (?)", (b"uncommitted",))
            assert db.read("SELECT COUNT(*) FROM notes") == [(2,)]
            reader = threading.Thread(
                target=lambda: seen_elsewhere.append(db.read("SELECT COUNT(*) FROM notes"))
            )
            reader.start()
            reader.join(30)
        assert seen_elsewhere == [[(1,)]]
        assert db.read("SELECT COUNT(*) FROM notes") == [(2,)]
    finally:
        db.close()


def test_a_writer_kept_waiting_too_long_gets_database_locked_and_the_holder_commits(path: Path) -> None:
    db = SqliteDatabase(path, write_lock_seconds=0.2)
    holding, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def holder() -> None:
        try:
            with db.transaction() as tx:
                tx.execute("INSERT INTO notes (body) VALUES (?)", (b"held",))
                holding.set()
                assert release.wait(30)
        except BaseException as error:  # noqa: BLE001 - reported by the test's thread
            failures.append(error)
            holding.set()

    try:
        write_pages(db, rows=1)
        thread = threading.Thread(target=holder)
        thread.start()
        assert holding.wait(30)
        began = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"), db.transaction() as tx:
            tx.execute("INSERT INTO notes (body) VALUES (?)", (b"never",))
        waited = time.monotonic() - began
        release.set()
        thread.join(30)
        assert failures == []
        assert 0.2 <= waited < 10
        assert db.read("SELECT body FROM notes WHERE body != ?", (b"x" * 3000,)) == [(b"held",)]
    finally:
        release.set()
        db.close()


def test_a_transaction_inside_a_transaction_is_refused_not_deadlocked(path: Path) -> None:
    db = SqliteDatabase(path)
    try:
        write_pages(db, rows=1)
        with db.transaction() as tx:
            tx.execute("INSERT INTO notes (body) VALUES (?)", (b"outer",))
            with pytest.raises(sqlite3.OperationalError, match="within a transaction"), db.transaction():
                pass
        assert db.read("SELECT COUNT(*) FROM notes") == [(2,)]  # the outer one still committed
    finally:
        db.close()
