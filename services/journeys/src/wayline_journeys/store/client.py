"""The journey store's one ClickHouse client (clickhouse-connect): chDB in-process, or a ClickHouse server.

`JourneyDatabase` connects, applies the migrations, and runs statements with errors mapped once: connection
trouble and transient server errors become StoreUnavailable (UNAVAILABLE, retryable); anything else is a
defect of ours and stays itself (INTERNAL). All SQL is parameterised with server-side binding ({name:Type}).
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import clickhouse_connect
import structlog
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from wayline.common.context import remaining_seconds
from wayline.common.errors import DeadlineExceeded, InvalidArgument
from wayline_journeys.errors import StoreUnavailable
from wayline_journeys.store.engine_signals import restore_fatal_signals
from wayline_journeys.store.migrations import migrate
from wayline_journeys.store.schema import MIGRATIONS
from wayline_journeys.store.sql import SqlParams
from wayline_journeys.store.topology import Topology

__all__ = [
    "CANNOT_COMPILE_REGEXP",
    "DEEP_STATEMENT",
    "SHORT_READ",
    "TRANSIENT_ERROR_CODES",
    "JourneyDatabase",
    "ReadModel",
    "bindable",
    "clickhouse_error_code",
    "connect_clickhouse",
    "insert_rows",
    "query_rows",
    "regex_problem",
    "store_error",
]

log = structlog.get_logger("wayline.journeys.store")

_T = TypeVar("_T")


def connect_clickhouse(
    url: str, database: str, embedded_path: Path, cluster: str = "", uncompressed_cache_bytes: int = 0
) -> Client:
    """A client for `url`, or for the embedded chDB engine at `embedded_path` when `url` is empty. The
    database is created on the first connection to it in this process (ON CLUSTER `cluster` when set: the
    tables' ON CLUSTER DDL needs it on every host); the store opens one connection per thread, and those
    need no administration. `uncompressed_cache_bytes` sizes the embedded engine's uncompressed cache (a
    startup option: the first connection of the process to the engine decides it)."""
    target = url or str(embedded_path)
    with _ensured_lock:
        if (target, database) not in _ensured:
            if not url:
                embedded_path.mkdir(parents=True, exist_ok=True)
            admin = _client(url, embedded_path, uncompressed_cache_bytes=uncompressed_cache_bytes)
            try:
                on_cluster = Topology(cluster=cluster, database=database).on_cluster
                admin.command(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}{on_cluster}")
            finally:
                admin.close()
            _ensured.add((target, database))
    return _client(url, embedded_path, database, uncompressed_cache_bytes)


_ensured: set[tuple[str, str]] = set()
_ensured_lock = threading.Lock()


# The settings of a short read of a few persons' events (a timeline page, a person's conditions or traits): a
# few granules of every column, most of them read again by the next persons' reads, are kept decompressed in
# the engine's uncompressed cache (ClickHouse's advice for short queries; the embedded engine's size is
# WAYLINE_JOURNEYS_EMBEDDED_UNCOMPRESSED_CACHE_BYTES). A statement reading more than about a million rows
# skips the cache whatever this says (merge_tree_max_rows_to_use_cache), so a big batch never evicts it all.
# Without column statistics: ClickHouse 26 builds them for every part a merge or mutation writes
# (auto_statistics_types) and caches them only every refresh_statistics_interval (300 s), so until then each
# statement opened every new part's statistics files to plan (18 files, 0.45 ms at 10M events); a read of
# one person's key range has nothing to gain from them (ADR 101).
SHORT_READ = {"use_uncompressed_cache": 1, "use_statistics": 0}

# The settings of a statement built as many nested stages (a funnel's walk, a path's sessions). Three of the
# analyzer's rewrites, timed pass by pass (EXPLAIN QUERY TREE passes = N), cost a funnel 35 of its 125 ms of
# analysis and planning on chDB, and a path 15-40 ms: they compare expressions by tree hashes, which grow with
# the nesting (ClickHouse bounds one of them with optimize_and_compare_chain_max_hash_work). None helps what
# the store writes: its comparisons are on stored columns or plain values (and_compare_chain derives more of
# them for index use) and its GROUP BY keys are columns (the other two drop functions or aggregates of keys).
# docs/benchmarks.md, 2026-12-06 afternoon.
DEEP_STATEMENT = {
    "optimize_and_compare_chain": 0,
    "optimize_aggregators_of_group_by_keys": 0,
    "optimize_group_by_function_keys": 0,
}

# The store's statements are made from requests, not typed: ClickHouse's parser limits (meant for typed
# queries: 256 KiB, 50,000 syntax-tree elements) refused a funnel whose filters' values ran past them, or a
# population of 150 person filters, as internal errors. What bounds a statement is the request (gRPC's message
# size, and the filters' budget every service holds requests to: wayline.common.filter_budget).
_SETTINGS = {
    "max_query_size": 16 * 1024 * 1024,
    "max_ast_elements": 1_000_000,
    "max_expanded_ast_elements": 2_000_000,
    # toMonday and toStartOfMonth of a DateTime64 give a Date32, not a Date that stops at 1970: imported
    # history is dated in its own periods (store/periods.py, ADR 87).
    "enable_extended_results_for_datetime_functions": 1,
}


def _client(
    url: str, embedded_path: Path, database: str | None = None, uncompressed_cache_bytes: int = 0
) -> Client:
    if url:
        return clickhouse_connect.get_client(dsn=url, database=database, settings=_SETTINGS)
    # chDB passes these to the engine as startup arguments (its server settings; the cache's default is 0).
    startup = {"uncompressed_cache_size": uncompressed_cache_bytes} if uncompressed_cache_bytes else None
    client = clickhouse_connect.get_client(
        interface="chdb", path=str(embedded_path), database=database, settings=_SETTINGS, chdb_options=startup
    )
    restore_fatal_signals()  # the engine, when this client started it, took them (engine_signals.py)
    with _gates_lock:
        _embedded_gates[client] = _embedded_gate_by_path.setdefault(str(embedded_path), threading.Lock())
    return client


# The embedded engine runs one statement at a time per database directory (chDB holds a lock for each). A
# query waiting there would run however late it got its turn, long after its caller gave up: under load the
# queue of dead calls is what the engine spends its time on. Queries therefore queue here first, those with a
# deadline for no longer than it, and those whose caller is gone never start. (Writes go straight to the
# engine: ingest's sink retries them and they must not be dropped for a reader's deadline.)
_embedded_gate_by_path: dict[str, threading.Lock] = {}
_embedded_gates: weakref.WeakKeyDictionary[Client, threading.Lock] = weakref.WeakKeyDictionary()
_gates_lock = threading.Lock()


def _identifier(name: str) -> str:
    """A database name is configuration, not input, but it is still checked before it reaches DDL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"invalid ClickHouse database name {name!r}")
    return f"`{name}`"


# ClickHouse error codes that mean "try again later" rather than "this statement is wrong".
TRANSIENT_ERROR_CODES = frozenset(
    {
        159,  # TIMEOUT_EXCEEDED
        164,  # READONLY
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        252,  # TOO_MANY_PARTS
        285,  # TOO_FEW_LIVE_REPLICAS
        319,  # UNKNOWN_STATUS_OF_INSERT
        999,  # KEEPER_EXCEPTION
    }
)


def store_error(exc: ClickHouseError, action: str) -> Exception:
    """UNAVAILABLE (retryable, details only in the log) for connection trouble and transient server
    errors; INVALID_ARGUMENT for a regular expression RE2 refuses (only requests carry regexes: a filter's
    MATCHES_REGEX value, a cleaning rule); any other error is a defect on our side and stays itself, so
    callers get INTERNAL."""
    code = clickhouse_error_code(exc)
    if isinstance(exc, OperationalError) or code in TRANSIENT_ERROR_CODES:
        log.warning("clickhouse.transient_error", action=action, code=code, error=str(exc))
        reason = getattr(exc, "name", None) or "connection failed"
        return StoreUnavailable(f"{action} failed in ClickHouse ({reason}); retry", retry_after=1.0)
    if code == CANNOT_COMPILE_REGEXP:
        return InvalidArgument(f"a regular expression of the request's filters is {regex_problem(exc)}")
    return exc


def query_rows(
    client: Client,
    sql: str,
    parameters: dict[str, Any] | None,
    action: str,
    settings: dict[str, Any] | None = None,
) -> list[Sequence[Any]]:
    """The rows of a query, its errors mapped by `store_error`; `action` names it ("computing a funnel").

    `settings` the connected server does not have are left out: each of the store's only saves time (an older
    server lacks optimize_and_compare_chain or use_statistics, and would refuse the statement over it).

    Within a call that has a deadline, the statement runs with ClickHouse's `max_execution_time` set to what
    is left of it (whole seconds, at least one), and a statement stopped by it is DEADLINE_EXCEEDED rather
    than UNAVAILABLE; past the deadline, no statement starts (on the embedded engine, not even one that was
    waiting for its turn)."""
    if settings:
        known = client.server_settings
        settings = {name: value for name, value in settings.items() if name in known}
    left = remaining_seconds()
    if left is not None:
        settings = {**(settings or {}), "max_execution_time": max(1, math.ceil(left))}
    gate = _embedded_gates.get(client)
    if gate is None:
        return _query(client, sql, parameters, action, left=left, settings=settings)
    if not gate.acquire(timeout=-1 if left is None else left):
        raise DeadlineExceeded(f"{action} waited for the embedded engine past the deadline")
    try:
        return _query(client, sql, parameters, action, left=left, settings=settings)
    finally:
        gate.release()


def bindable(parameters: dict[str, Any] | None) -> dict[str, Any] | None:
    """`parameters` with each datetime as its text, the year in four digits: clickhouse-connect formats a
    datetime with strftime's `%Y`, which glibc does not pad, so a time before the year 1000 (a caller's
    Timestamp may hold any time from 0001-01-01) reached ClickHouse as `1-01-01 …`, which it refuses to
    parse: an INTERNAL answer instead of an empty range."""
    if not parameters:
        return parameters
    return {name: _bindable(value) for name, value in parameters.items()}


def _bindable(value: Any) -> Any:
    if isinstance(value, datetime):
        utc = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
        return utc.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, list | tuple):
        return type(value)(_bindable(item) for item in value)
    return value


def _query(
    client: Client,
    sql: str,
    parameters: dict[str, Any] | None,
    action: str,
    *,
    left: float | None,
    settings: dict[str, Any] | None,
) -> list[Sequence[Any]]:
    try:
        return list(client.query(sql, parameters=bindable(parameters), settings=settings).result_rows)
    except ClickHouseError as exc:
        if left is not None and clickhouse_error_code(exc) == TIMEOUT_EXCEEDED:
            raise DeadlineExceeded(f"{action} outlasted the deadline") from exc
        raise store_error(exc, action) from exc


def insert_rows(
    client: Client, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], action: str
) -> None:
    """Insert `rows` into `table`, errors mapped by `store_error`."""
    try:
        client.insert(table, rows, column_names=list(columns))
    except ClickHouseError as exc:
        raise store_error(exc, action) from exc


_CODE = re.compile(r"Code: (\d+)")
CANNOT_COMPILE_REGEXP = 427
TIMEOUT_EXCEEDED = 159


def clickhouse_error_code(exc: ClickHouseError) -> int | None:
    """The server's error code, from the exception or, for chDB, from its message."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    found = _CODE.search(str(exc))
    return int(found.group(1)) if found else None


def regex_problem(exc: ClickHouseError) -> str:
    """What RE2 said, without the engine's prose around it."""
    text = str(exc)
    if found := re.search(r"error: (.*?)(?:\. Look at|$)", text):
        return f"not a valid RE2 regular expression: {found.group(1)}"
    if found := re.search(r"regexp has only (\d+) capturing groups", text):
        return f"refers to a capture group the regex does not have (it has {found.group(1)})"
    if found := re.search(r"not a valid re2 pattern: ([^:]*)", text):
        return f"not a valid RE2 regular expression: {found.group(1)}"
    return "not a valid RE2 regular expression"


_ANY_OVERRIDE = "SELECT 1 FROM person_overrides WHERE tenant_id = {tenant:String} LIMIT 1"


class ReadModel:
    """The base of the read models' stores: each runs its statements on the store's current
    clickhouse-connect client (`client()` raises while disconnected) through `query_rows`."""

    def __init__(self, client: Callable[[], Client]) -> None:
        self._client = client

    def _rows(
        self, sql: str, params: SqlParams, action: str, settings: dict[str, Any] | None = None
    ) -> list[Sequence[Any]]:
        """The rows of a statement built with `params`; `action` names it in errors."""
        return query_rows(self._client(), sql, params.values, action, settings)

    def _deep_rows(self, sql: str, params: SqlParams, action: str) -> list[Sequence[Any]]:
        """`_rows` of a statement of many nested stages, with DEEP_STATEMENT's settings (those the connected
        server has: `query_rows`)."""
        return self._rows(sql, params, action, DEEP_STATEMENT)

    def _tenant_params(self, tenant: str) -> SqlParams:
        """The SqlParams of a read of `tenant`'s events as their current persons. A tenant without any person
        override row reads them as stored (`SqlParams.persons_as_stored`): the same rows without the override
        relation, whose planning and joins took 15 to 30 % of a funnel (ADR 85). One small query decides; an
        override stored after it is read by the next statement, as if this one had run a moment earlier."""
        params = SqlParams(tenant=tenant)
        found = self._rows(_ANY_OVERRIDE, params, "looking for person overrides")
        params.persons_as_stored = not found
        return params


class JourneyDatabase:
    """The connections every journey store shares: one per thread that uses it.

    clickhouse-connect runs one statement at a time per client (for chDB, per connection to the process's
    one engine), so a shared client would make every read wait behind a bulk insert and keep concurrent
    readers in single file. Each thread (the server's workers, the group-commit leader, the override
    follower) gets its own connection on first use; they share the engine, its caches and its data.
    """

    def __init__(self, connect: Callable[[], Client], topology: Topology | None = None) -> None:
        self._connect = connect
        self.topology = topology or Topology()
        self._lock = threading.Lock()
        self._clients: list[Client] = []  # every connection opened, to close them all
        self._generation = 0  # bumped by close(), so threads drop connections of an earlier open()
        self._open = False
        self._local = threading.local()

    def open(self) -> None:
        """Connect and migrate; raises while ClickHouse cannot be reached or the schema is newer than us."""
        with self._lock:
            if not self._open:
                client = self._connect()
                try:
                    migrate(client, self.topology, MIGRATIONS)
                except BaseException:
                    client.close()
                    raise
                self._clients.append(client)
                self._generation += 1
                self._local.client, self._local.generation = client, self._generation
                self._open = True

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
            self._generation += 1
            self._open = False

    @property
    def client(self) -> Client:
        """This thread's connection (opened on its first use)."""
        if getattr(self._local, "generation", None) == self._generation and self._open:
            return self._local.client  # type: ignore[no-any-return]
        with self._lock:
            if not self._open:
                raise StoreUnavailable("the journey store is not connected yet", retry_after=1.0)
            try:
                client = self._connect()
            except ClickHouseError as exc:
                raise store_error(exc, "connecting to ClickHouse") from exc
            self._clients.append(client)
            self._local.client, self._local.generation = client, self._generation
            return client

    def ping(self) -> None:
        self.client.command("SELECT 1")

    def rows(
        self, sql: str, parameters: dict[str, Any], action: str, settings: dict[str, Any] | None = None
    ) -> Sequence[Sequence[Any]]:
        """The rows of a query; `action` names it in errors ("reading the timeline")."""
        return query_rows(self.client, sql, parameters, action, settings)

    def command(
        self, sql: str, parameters: dict[str, Any], action: str, settings: dict[str, Any] | None = None
    ) -> None:
        self.run(lambda: self.client.command(sql, parameters=bindable(parameters), settings=settings), action)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str], action: str) -> None:
        insert_rows(self.client, table, rows, columns, action)

    def run(self, call: Callable[[], _T], action: str) -> _T:
        try:
            return call()
        except ClickHouseError as exc:
            raise store_error(exc, action) from exc
