"""Export: every journey table to `<table>.native.gz` in ClickHouse's Native format (exact types, read back
as they were written), streamed from the engine to the gzip file block by block, then `manifest.json`.

The store must be quiescent (journeys stopped): the row count, taken before the stream, is that of the rows
streamed only if nothing writes meanwhile. An embedded store that a running journeys holds is refused.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from wayline_cli.store.errors import StoreCopyError
from wayline_cli.store.location import StoreLocation
from wayline_cli.store.manifest import MANIFEST, Manifest, TableFile, sha256_of
from wayline_cli.store.tables import StoredTable, journey_tables, schema_version, stored_columns
from wayline_journeys.store.migrations import SchemaTooNew
from wayline_journeys.store.schema import MIGRATIONS

__all__ = ["export_store"]

_CHUNK = 1 << 20


def export_store(
    location: StoreLocation, directory: Path, on_table: Callable[[TableFile], None] = lambda entry: None
) -> Manifest:
    """Write the store's tables and manifest to `directory` (created; refused when it holds an export)."""
    if (directory / MANIFEST).exists():
        raise StoreCopyError(f"{directory} already holds an export ({MANIFEST}); choose an empty directory")
    if location.embedded and not location.embedded_path.is_dir():
        raise StoreCopyError(
            f"no chDB store at {location.embedded_path}: --data-dir is the suite's data directory "
            "(WAYLINE_DATA_DIR), which holds journeys/chdb"
        )
    location.check_not_in_use()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        client = location.connect()
    except ClickHouseError as exc:
        raise StoreCopyError(f"cannot open the journey store at {location.describe()}: {exc}") from exc
    try:
        version = schema_version(client, location.topology, location.describe())
        if version > len(MIGRATIONS):
            raise SchemaTooNew(
                f"the store's schema is at version {version}, newer than this release knows "
                f"({len(MIGRATIONS)}); export it with the release that migrated it"
            )
        exported_at = datetime.now(UTC).isoformat()
        entries = []
        for table in journey_tables(client, location.topology):
            entry = _export_table(client, table, directory)
            entries.append(entry)
            on_table(entry)
    except SchemaTooNew as exc:
        raise StoreCopyError(str(exc)) from exc
    except ClickHouseError as exc:
        raise StoreCopyError(f"the export failed in ClickHouse: {exc}") from exc
    finally:
        client.close()
    manifest = Manifest(
        schema_version=version,
        source=location.describe(),
        database=location.settings.clickhouse_database,
        exported_at=exported_at,
        tables=entries,
    )
    manifest.write(directory)
    return manifest


def _export_table(client: Client, table: StoredTable, directory: Path) -> TableFile:
    # Table and column names come from system.tables and system.columns, quoted; no input reaches the SQL.
    columns = stored_columns(client, table)
    final = " FINAL" if table.deduplicating else ""
    rows = int(client.query(f"SELECT count() FROM {table.quoted}{final}").result_rows[0][0])  # noqa: S608
    names = ", ".join(quote_identifier(name) for name, _ in columns)
    path = directory / f"{table.name}.native.gz"
    # No per-query settings: chDB streams a raw query only without them (it buffers the whole result else).
    with (
        client.raw_stream(f"SELECT {names} FROM {table.quoted}{final}", fmt="Native") as stream,  # noqa: S608
        gzip.open(path, "wb", compresslevel=6) as out,
    ):
        shutil.copyfileobj(stream, out, _CHUNK)
    return TableFile(
        table=table.name,
        file=path.name,
        rows=rows,
        sha256=sha256_of(path),
        bytes=path.stat().st_size,
        columns=columns,
    )
