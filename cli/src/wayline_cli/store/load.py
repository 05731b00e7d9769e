"""Import: an export's tables into a journey store, created with journeys' own migrations (so ON CLUSTER,
Replicated*MergeTree and Distributed tables on a cluster, exactly as journeys would create them at start).

Order of checks, so that a bad import changes nothing: the manifest and every file's size and checksum; the
schema version (no newer than this release); the target's lock (an embedded store a running journeys holds
is refused); then the target's tables, which must all be empty. With `resume`, a table whose row count is
already the manifest's is skipped as loaded and one holding some other number (an import stopped midway:
one INSERT is several parts, not atomic) is truncated and loaded again; so running the same import again
after any failure converges. After each insert the table's count must equal the manifest's.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, cast

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from wayline_cli.store.errors import StoreCopyError
from wayline_cli.store.location import StoreLocation
from wayline_cli.store.manifest import Manifest, TableFile
from wayline_cli.store.tables import StoredTable, journey_tables
from wayline_journeys.store.client import JourneyDatabase
from wayline_journeys.store.migrations import SchemaTooNew
from wayline_journeys.store.schema import MIGRATIONS

__all__ = ["LoadOutcome", "TableLoad", "import_store"]


class LoadOutcome(StrEnum):
    LOADED = "loaded"
    RELOADED = "truncated and loaded again"
    ALREADY_LOADED = "already loaded"


@dataclass(frozen=True)
class TableLoad:
    table: str
    expected: int
    found: int
    outcome: LoadOutcome

    @property
    def complete(self) -> bool:
        return self.found == self.expected


def import_store(
    location: StoreLocation,
    directory: Path,
    *,
    resume: bool = False,
    on_table: Callable[[TableLoad], None] = lambda load: None,
) -> list[TableLoad]:
    """Load the export in `directory` into `location`; one TableLoad per table of the manifest, in its
    order. Raises StoreCopyError before loading anything when a check fails."""
    manifest = Manifest.read(directory)
    manifest.check_files(directory)
    if manifest.schema_version > len(MIGRATIONS):
        raise StoreCopyError(
            f"the export is at schema version {manifest.schema_version}, newer than this release knows "
            f"({len(MIGRATIONS)}); import it with that release or a newer one"
        )
    location.check_not_in_use()
    database = JourneyDatabase(location.connect, location.topology)
    try:
        database.open()
    except SchemaTooNew as exc:
        raise StoreCopyError(f"the target is newer than this release: {exc}") from exc
    except ClickHouseError as exc:
        raise StoreCopyError(f"cannot open the journey store at {location.describe()}: {exc}") from exc
    try:
        return _load(database.client, location, manifest, directory, resume=resume, on_table=on_table)
    except ClickHouseError as exc:
        raise StoreCopyError(f"the import failed in ClickHouse (run it again with --resume): {exc}") from exc
    finally:
        database.close()


def _load(
    client: Client,
    location: StoreLocation,
    manifest: Manifest,
    directory: Path,
    *,
    resume: bool,
    on_table: Callable[[TableLoad], None],
) -> list[TableLoad]:
    tables = {table.name: table for table in journey_tables(client, location.topology)}
    unknown = [entry.table for entry in manifest.tables if entry.table not in tables]
    if unknown:
        raise StoreCopyError(
            f"the target's schema has no table {', '.join(unknown)}: not a journey store export"
        )
    counts = {entry.table: _count(client, tables[entry.table]) for entry in manifest.tables}
    occupied = [f"{table} ({rows} rows)" for table, rows in counts.items() if rows]
    if occupied and not resume:
        raise StoreCopyError(
            f"the target {location.describe()} already holds rows in {', '.join(occupied)}; import into an "
            "empty store, or pass --resume to complete an earlier import of this same export into it"
        )
    loads = []
    for entry in manifest.tables:
        table, present = tables[entry.table], counts[entry.table]
        if resume and present == entry.rows:
            load = TableLoad(entry.table, entry.rows, present, LoadOutcome.ALREADY_LOADED)
        else:
            if present:
                topology = location.topology
                client.command(f"TRUNCATE TABLE {quote_identifier(table.local)}{topology.on_cluster}")
            _insert(client, location, table, entry, directory / entry.file)
            outcome = LoadOutcome.RELOADED if present else LoadOutcome.LOADED
            load = TableLoad(entry.table, entry.rows, _count(client, table), outcome)
        loads.append(load)
        on_table(load)
    return loads


def _insert(
    client: Client, location: StoreLocation, table: StoredTable, entry: TableFile, path: Path
) -> None:
    settings: dict[str, Any] = {"optimize_on_insert": 0}  # rows as exported, none collapsed on the way in
    if location.topology.clustered:
        settings["insert_distributed_sync"] = 1  # on the shards when the INSERT returns, so the count sees it
    columns = [name for name, _ in entry.columns]
    if location.embedded:
        # chDB would decompress a compressed body in memory; a decompressing reader streams it.
        with gzip.open(path, "rb") as rows:
            client.raw_insert(table.quoted, columns, cast(BinaryIO, rows), settings=settings, fmt="Native")
    else:
        with path.open("rb") as compressed:  # the server decompresses (Content-Encoding: gzip)
            client.raw_insert(
                table.quoted, columns, compressed, settings=settings, fmt="Native", compression="gzip"
            )


def _count(client: Client, table: StoredTable) -> int:
    # A table name from system.tables, quoted: no input reaches this SQL.
    return int(client.query(f"SELECT count() FROM {table.quoted}").result_rows[0][0])  # noqa: S608
