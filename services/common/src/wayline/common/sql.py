"""One small door to the relational stores: SQLite embedded, PostgreSQL in production, same SQL.

Services keep their state (tracking plans, dead letters, profiles, flows) in plain parameterised SQL that
both engines accept. Statements are written with `?` placeholders (SQLite's style); for PostgreSQL they are
rewritten to psycopg's `%s` once per statement text. Keep to the common dialect: `INTEGER`, `TEXT`, `BLOB`
(`BYTEA` is spelt through `Database.blob_type`), `ON CONFLICT ... DO ...`, `RETURNING`.

SQLite runs in WAL mode with one connection per thread; PostgreSQL uses a connection pool-less connection
per thread too (psycopg connections are not shareable across threads mid-transaction). Every transaction is
`with db.transaction() as tx:`: it commits when the block ends and rolls back on an exception. A block that
only reads may use `db.snapshot()` instead: on SQLite it takes no lock, so it neither waits for the writer
nor holds it up. A read that fits in one statement may use `db.read(sql, params)`: no BEGIN or COMMIT around
it, so one round trip on PostgreSQL and one wait for the interpreter's lock on SQLite, where each statement
of a transaction is one more (what a hot read path beside busy writer threads pays for).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import psycopg

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


class SqliteDatabase:
    engine = "sqlite"
    blob_type = "BLOB"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, timeout=30, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlocks later
        try:
            yield _SqliteTransaction(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        # Deferred: a WAL reader takes no lock, so it neither queues behind the one writer (whose lock
        # `transaction` takes at BEGIN, and whose waiters poll with sleeps of up to 100 ms) nor delays it.
        connection = self._connection()
        connection.execute("BEGIN DEFERRED")
        try:
            yield _SqliteTransaction(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def read(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        # Autocommit (isolation_level=None): the statement is its own deferred read transaction.
        return list(self._connection().execute(sql, tuple(params)).fetchall())

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


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
