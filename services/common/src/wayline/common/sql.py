"""One small door to the relational stores: SQLite embedded, PostgreSQL in production, same SQL.

Services keep their state (tracking plans, dead letters, profiles, flows) in plain parameterised SQL that
both engines accept. Statements are written with `?` placeholders (SQLite's style); for PostgreSQL they are
rewritten to psycopg's `%s` once per statement text. Keep to the common dialect: `INTEGER`, `TEXT`, `BLOB`
(`BYTEA` is spelt through `Database.blob_type`), `ON CONFLICT ... DO ...`, `RETURNING`.

SQLite runs in WAL mode with one writing connection per database (transactions take it in turn) and one
reading connection per thread, and checkpoints its log on a thread of its own (ADR 63); PostgreSQL uses a
connection per thread, without a pool (psycopg connections are not shareable across threads mid-transaction).
Every transaction is `with db.transaction() as tx:`: it commits when the block ends and rolls back on an
exception. A block that only reads may use `db.snapshot()` instead: on SQLite it takes no lock, so it neither
waits for the writer nor holds it up. A read that fits in one statement may use `db.read(sql, params)`: no
BEGIN or COMMIT around it, so one round trip on PostgreSQL and one wait for the interpreter's lock on SQLite,
where each statement of a transaction is one more (what a hot read path beside busy writer threads pays for).
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import psycopg
import structlog

__all__ = [
    "DATABASE_DOWN",
    "Database",
    "Transaction",
    "guarded_transaction",
    "migrate",
    "open_database",
    "unavailable_as",
]

Params = Sequence[Any]
_log = structlog.get_logger("wayline.sql")

# What either engine raises when the database cannot be reached or is busy: callers map it to UNAVAILABLE.
DATABASE_DOWN: tuple[type[Exception], ...] = (sqlite3.OperationalError, psycopg.OperationalError)


class Transaction(Protocol):
    def execute(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run one statement; the rows it returns (empty for statements without a result)."""

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement once per row of parameters."""


class Database(Protocol):
    engine: str  # "sqlite" or "postgresql"
    blob_type: str

    def transaction(self) -> Any:  # a context manager yielding a Transaction
        """A transaction on this thread's connection."""

    def snapshot(self) -> Any:  # a context manager yielding a Transaction
        """A transaction that only reads, on this thread's connection: one consistent view of the data that
        neither waits for writers nor holds them up."""

    def read(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run one reading statement on its own (not inside this thread's transaction): it sees one
        consistent snapshot on both engines, and waits for no writer."""

    def close(self) -> None:
        """Close every connection this object opened."""


@contextmanager
def unavailable_as(unavailable: Callable[[], Exception]) -> Iterator[None]:
    """Run the block; the database being down (DATABASE_DOWN) raises `unavailable()` instead, the store's own
    UNAVAILABLE error."""
    try:
        yield
    except DATABASE_DOWN as down:
        raise unavailable() from down


@contextmanager
def guarded_transaction(db: Database, unavailable: Callable[[], Exception]) -> Iterator[Transaction]:
    """A transaction on `db`, with the database being down raised as `unavailable()`."""
    with unavailable_as(unavailable), db.transaction() as tx:
        yield tx


@lru_cache(maxsize=512)
def _to_psycopg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _SqliteTransaction:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(sql, tuple(params)).fetchall())

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self._connection.executemany(sql, [tuple(r) for r in rows])


# SQLite's own checkpoint runs inside the commit that takes the write-ahead log past `wal_autocheckpoint`
# pages (1,000 by default): that writer copies the whole log into the database file and syncs it before its
# commit returns (20 ms of CPU, and the sync's wait, for an identity batch of 1,000 sets that wrote seen
# times). Each database's own thread checkpoints instead, passively (waiting for no writer or reader): at
# once after a commit that left more than `_CHECKPOINT_LOG_BYTES` of log (SQLite's own 1,000 pages), else
# `_CHECKPOINT_SECONDS` after a commit, so that a slow writer's pages rewritten in that time are copied
# once. Not a second for everything: a second of a busy writer's log made one checkpoint of tens of
# megabytes whose sync stalled the next writes. The commit's own checkpoint stays, at `_WAL_LIMIT_PAGES`,
# as the bound on the log should the thread fall behind.
_CHECKPOINT_SECONDS = 1.0
_CHECKPOINT_LOG_BYTES = 4 << 20
_WAL_LIMIT_PAGES = 16_384  # 64 MiB of 4 KiB pages
# The one writing connection's page cache. A transaction's dirty pages beyond its cache spill into the log
# mid-transaction and are read back: a batch that rewrites a few thousand rows on random pages (identity's
# seen times) needs them all at once. SQLite's default is 2 MiB; readers keep it.
_WRITER_CACHE_KIB = 32_768
_WRITE_LOCK_SECONDS = 30.0  # as long as a connection waits for another process's write lock


@contextmanager
def _sqlite_block(connection: sqlite3.Connection, begin: str) -> Iterator[Transaction]:
    """`begin`, then COMMIT when the block ends, ROLLBACK on an exception."""
    connection.execute(begin)
    try:
        yield _SqliteTransaction(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


class SqliteDatabase:
    """One writing connection, taken by `transaction` under a lock of the process, and one reading
    connection per thread. SQLite admits one writer at a time: waiting on a lock wakes the next writer when
    the last one commits, where waiting in SQLite polls with sleeps of up to 100 ms; and one connection
    keeps one large page cache for writes, not one per worker thread."""

    engine = "sqlite"
    blob_type = "BLOB"

    def __init__(
        self,
        path: Path,
        *,
        checkpoint_seconds: float = _CHECKPOINT_SECONDS,
        checkpoint_log_bytes: int = _CHECKPOINT_LOG_BYTES,
        wal_limit_pages: int = _WAL_LIMIT_PAGES,
        write_lock_seconds: float = _WRITE_LOCK_SECONDS,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._write_lock_seconds = write_lock_seconds
        self._wal_limit_pages = wal_limit_pages
        self._wal_path = path.with_name(path.name + "-wal")
        self._checkpoint_log_bytes = checkpoint_log_bytes
        self._writer: sqlite3.Connection | None = None
        self._writing_thread: int | None = None
        self._checkpointer = _Checkpointer(path, checkpoint_seconds)
        # A database dropped without close() (tests, tools) still ends its checkpoint thread.
        weakref.finalize(self, self._checkpointer.release)

    def _open(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._connections.append(connection)
        return connection

    def _connection(self) -> sqlite3.Connection:
        if self._writing_thread == threading.get_ident() and self._writer is not None:
            return self._writer  # inside this thread's transaction: its reads see its writes
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._open()
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        if not self._write_lock.acquire(timeout=self._write_lock_seconds):
            raise sqlite3.OperationalError("database is locked: another transaction held it too long")
        try:
            if self._writer is None:
                self._writer = self._open()
                self._writer.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KIB}")
                self._writer.execute(f"PRAGMA wal_autocheckpoint={self._wal_limit_pages}")
                # The log file shrinks back to this when a writer restarts it after a checkpoint, so that
                # its size says how much log there is once past it.
                self._writer.execute(f"PRAGMA journal_size_limit={self._checkpoint_log_bytes}")
            connection = self._writer
            outer, self._writing_thread = self._writing_thread, threading.get_ident()
            try:
                # IMMEDIATE: take SQLite's write lock now (another process may hold it), no upgrade deadlocks
                with _sqlite_block(connection, "BEGIN IMMEDIATE") as tx:
                    yield tx
            finally:
                self._writing_thread = outer
        finally:
            self._write_lock.release()
        self._checkpointer.committed(soon=self._log_bytes() > self._checkpoint_log_bytes)

    def _log_bytes(self) -> int:
        try:
            return self._wal_path.stat().st_size
        except FileNotFoundError:
            return 0

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        # Deferred: a WAL reader takes no lock, so it neither queues behind the one writer nor delays it.
        with _sqlite_block(self._connection(), "BEGIN DEFERRED") as tx:
            yield tx

    def read(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        # Autocommit (isolation_level=None): the statement is its own deferred read transaction.
        return list(self._connection().execute(sql, tuple(params)).fetchall())

    def close(self) -> None:
        self._checkpointer.stop()
        with self._write_lock, self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
            self._writer = None


class _Checkpointer:
    """Checkpoints a database's write-ahead log on a thread of its own: `interval` seconds after the first
    commit since its last checkpoint, or at once after a commit that asks for it soon; idle while nothing
    commits. PASSIVE: it copies what no reader still needs and leaves the rest for next time, waiting for
    nobody."""

    def __init__(self, path: Path, interval: float) -> None:
        self._path = path
        self._interval = interval
        self._pending = threading.Event()
        self._soon = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def committed(self, *, soon: bool = False) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stopping.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name=f"sqlite-checkpoint {self._path.name}", daemon=True
                    )
                    self._thread.start()
        if soon:
            self._soon.set()
        self._pending.set()

    def release(self) -> None:
        """Let the thread end (closing its connection) without waiting for it."""
        self._stopping.set()
        self._soon.set()
        self._pending.set()

    def stop(self) -> None:
        self.release()
        with self._start_lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._pending.wait()
                self._soon.wait(self._interval)
                if self._stopping.is_set():
                    return  # close() follows: the last connection to close checkpoints the whole log
                self._pending.clear()
                self._soon.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as error:  # the next commit asks again; commits still bound the log
                    _log.warning("sqlite checkpoint failed", path=str(self._path), error=str(error))
        finally:
            connection.close()


class _PostgresTransaction:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._connection.cursor() as cursor:
            cursor.execute(_to_psycopg(sql), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(_to_psycopg(sql), [tuple(r) for r in rows])


class PostgresDatabase:
    engine = "postgresql"
    blob_type = "BYTEA"

    def __init__(self, url: str) -> None:
        self._url = url
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            # Autocommit: a statement outside `transaction()` (`read`) is its own transaction, one round
            # trip; `transaction()` still opens a block (BEGIN ... COMMIT) around everything else.
            connection = psycopg.connect(self._url, connect_timeout=10, autocommit=True)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        connection = self._connection()
        with connection.transaction():
            yield _PostgresTransaction(connection)

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        # An ordinary transaction: PostgreSQL's readers never wait for writers (MVCC).
        with self.transaction() as tx:
            yield tx

    def read(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self._connection().cursor() as cursor:
            cursor.execute(_to_psycopg(sql), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def migrate(db: Database, component: str, migrations: Sequence[Sequence[str]]) -> int:
    """Bring `component`'s tables to the newest version: run, in order, each migration (a list of statements)
    not yet applied, each in its own transaction with its version recorded in `schema_migrations`. Safe at
    every start and from several replicas at once: PostgreSQL serialises the runs with an advisory lock and
    SQLite with its write lock, and the version is read again under that lock. Migrations are append-only:
    once released, a migration is never edited; a change is a new one. Returns the version reached."""
    with db.transaction() as tx:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "component TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (component, version))"
        )
    for version, statements in enumerate(migrations, start=1):
        with db.transaction() as tx:
            if db.engine == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"migrate:{component}",))
            done = tx.execute(
                "SELECT 1 FROM schema_migrations WHERE component = ? AND version = ?", (component, version)
            )
            if done:
                continue
            for statement in statements:
                tx.execute(statement.format(blob=db.blob_type))
            tx.execute(
                "INSERT INTO schema_migrations (component, version) VALUES (?, ?)", (component, version)
            )
    return len(migrations)


def open_database(url: str | None, sqlite_path: Path) -> SqliteDatabase | PostgresDatabase:
    """PostgreSQL when `url` (postgresql://...) is set, else SQLite at `sqlite_path`."""
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("a database URL must start with postgresql:// (or be unset for SQLite)")
        return PostgresDatabase(url)
    return SqliteDatabase(sqlite_path)
