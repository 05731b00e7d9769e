"""Which journey tables an export carries, found in the store itself: the tables journeys' migrations
(wayline_journeys.store.schema) created there, so a version that adds a table is exported with no list to
update here.

Left out, because they are not state: views and materialized views; the tables materialized views fill
(person_anchors, identifier_anchors, decision_events, segment_dirty): an import inserts `events` and
`person_overrides` into a schema that has the same views, which fill them again from exactly the rows that
make them; and `schema_migrations`, which the import's own migration writes. On a cluster the rows of a
sharded table are read and written through its Distributed table (`events`, not `events_local`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from wayline_cli.store.errors import StoreCopyError
from wayline_journeys.store.topology import Topology

__all__ = ["StoredTable", "journey_tables", "schema_version", "stored_columns"]

_VIEWS = frozenset({"View", "MaterializedView", "LiveView", "WindowView"})
_MIGRATIONS = "schema_migrations"
_VIEW_TARGET = re.compile(r"^CREATE MATERIALIZED VIEW \S+ TO (\S+)")


@dataclass(frozen=True)
class StoredTable:
    name: str
    """What reads and inserts address: the Distributed table of a sharded table on a cluster."""
    local: str
    """The table that holds the rows, whose engine and columns count."""
    engine: str

    @property
    def quoted(self) -> str:
        return quote_identifier(self.name)

    @property
    def deduplicating(self) -> bool:
        """Read with FINAL on export: the copy holds each key once, as journeys' reads see it, so that no
        background merge on the target changes its row count after the import checked it."""
        return "Replacing" in self.engine


def _unqualified(name: str) -> str:
    return name.rsplit(".", 1)[-1].strip("`")


def _logical(name: str, engines: dict[str, str]) -> str:
    base = name.removesuffix("_local")
    return base if base != name and engines.get(base) == "Distributed" else name


def journey_tables(client: Client, topology: Topology) -> list[StoredTable]:
    """The tables of the connected database that hold state of their own, by name."""
    rows: Sequence[Sequence[str]] = client.query(
        "SELECT name, engine, create_table_query FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    engines = {name: engine for name, engine, _ in rows}
    derived = {
        _logical(_unqualified(found.group(1)), engines)
        for _, engine, query in rows
        if engine == "MaterializedView" and (found := _VIEW_TARGET.match(query))
    }
    tables = []
    for name, engine, _ in rows:
        logical = _logical(name, engines)
        if engine in _VIEWS or engine == "Distributed" or logical in derived:
            continue
        if name == topology.local(_MIGRATIONS):  # `schema_migrations_local` on a cluster, with no Distributed
            continue
        tables.append(StoredTable(logical, name, engine))
    return sorted(tables, key=lambda table: table.name)


def stored_columns(client: Client, table: StoredTable) -> list[tuple[str, str]]:
    """The columns a row is written with, in table order: not MATERIALIZED ones (events.anchor), which the
    target computes from the others as the source did, nor ALIAS or EPHEMERAL ones."""
    rows = client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {table:String} "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS', 'EPHEMERAL') ORDER BY position",
        parameters={"table": table.local},
    ).result_rows
    return [(str(name), str(type_)) for name, type_ in rows]


def schema_version(client: Client, topology: Topology, where: str) -> int:
    """The journey schema version the store's migrations reached; an error naming `where` when it is no
    journey store."""
    found = client.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {table:String}",
        parameters={"table": topology.local(_MIGRATIONS)},
    ).result_rows[0][0]
    if not found:
        raise StoreCopyError(f"no journey store in {where} (no schema_migrations table): check the database")
    latest = f"SELECT max(version) FROM {topology.local(_MIGRATIONS)}"  # noqa: S608 - a constant name
    return int(client.query(latest).result_rows[0][0])
