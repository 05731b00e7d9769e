"""`wayline store export|import`: the commands, thin over dump.py and load.py; a rich table per run, exit 1
when the store cannot be read or written, a check refuses, or a table's count differs from the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from wayline_cli import terminal
from wayline_cli.store.dump import export_store
from wayline_cli.store.errors import StoreCopyError
from wayline_cli.store.load import import_store
from wayline_cli.store.location import StoreLocation
from wayline_cli.store.manifest import TableFile

__all__ = ["store_app"]

store_app = typer.Typer(
    help="Copy the journey store between chDB, a ClickHouse server and a cluster (stop journeys first).",
    no_args_is_help=True,
)
console = terminal.console()

DirectoryArgument = Annotated[
    Path, typer.Argument(help="The export directory (manifest.json + one file a table).")
]
UrlOption = Annotated[
    str,
    typer.Option(
        help="A ClickHouse server, http(s)://user:password@host:8123 (as WAYLINE_JOURNEYS_CLICKHOUSE_URL)."
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        help="The suite's data directory (as WAYLINE_DATA_DIR): the chDB store in <dir>/journeys/chdb."
    ),
]
DatabaseOption = Annotated[
    str, typer.Option(help="The database of the journey tables (as WAYLINE_JOURNEYS_CLICKHOUSE_DATABASE).")
]
ClusterOption = Annotated[
    str,
    typer.Option(help="The ClickHouse cluster, on a server (as WAYLINE_JOURNEYS_CLICKHOUSE_CLUSTER)."),
]


def _location(url: str, data_dir: Path | None, database: str, cluster: str) -> StoreLocation:
    try:
        return StoreLocation.of(clickhouse_url=url, data_dir=data_dir, database=database, cluster=cluster)
    except StoreCopyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@store_app.command("export")
def export_command(
    directory: DirectoryArgument,
    *,
    clickhouse_url: UrlOption = "",
    data_dir: DataDirOption = None,
    database: DatabaseOption = "wayline",
    cluster: ClusterOption = "",
) -> None:
    """Write every journey table to DIRECTORY in ClickHouse's Native format, with a manifest (row counts,
    checksums, schema version). Journeys must be stopped: the export reads a quiescent store."""
    location = _location(clickhouse_url, data_dir, database, cluster)
    table = Table(title=f"exported {location.describe()} to {directory}")
    for column in ("table", "rows", "file", "bytes"):
        table.add_column(column, justify="right" if column in ("rows", "bytes") else "left")

    def exported(entry: TableFile) -> None:
        table.add_row(entry.table, f"{entry.rows:,}", entry.file, f"{entry.bytes:,}")

    try:
        with console.status("exporting…"):
            manifest = export_store(location, directory, exported)
    except StoreCopyError as exc:
        console.print(f"[red]export failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    except OSError as exc:  # a directory that cannot be read or written, a name too long for the system
        console.print(f"[red]export failed:[/red] {exc.strerror or exc}: {exc.filename}")
        raise typer.Exit(1) from exc
    console.print(table)
    total = sum(entry.rows for entry in manifest.tables)
    tables, version = len(manifest.tables), manifest.schema_version
    console.print(f"[green]{tables} tables, {total:,} rows, schema version {version}[/green]")


@store_app.command("import")
def import_command(
    directory: DirectoryArgument,
    *,
    clickhouse_url: UrlOption = "",
    data_dir: DataDirOption = None,
    database: DatabaseOption = "wayline",
    cluster: ClusterOption = "",
    resume: Annotated[
        bool,
        typer.Option(
            help="Complete an earlier import of this export into this store: tables already holding the "
            "manifest's rows are skipped, partly loaded ones truncated and loaded again."
        ),
    ] = False,
) -> None:
    """Create the journey schema on the target with journeys' own migrations (cluster-aware), load every
    table of the export in DIRECTORY and check each row count against the manifest. The target must be
    empty unless --resume."""
    location = _location(clickhouse_url, data_dir, database, cluster)
    table = Table(title=f"imported {directory} into {location.describe()}")
    for column in ("table", "manifest rows", "rows now", "outcome"):
        table.add_column(column, justify="right" if "rows" in column else "left")
    try:
        with console.status("importing…"):
            loads = import_store(
                location,
                directory,
                resume=resume,
                on_table=lambda load: table.add_row(
                    load.table,
                    f"{load.expected:,}",
                    f"{load.found:,}" if load.complete else f"[red]{load.found:,}[/red]",
                    str(load.outcome),
                ),
            )
    except StoreCopyError as exc:
        console.print(f"[red]import failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(table)
    wrong = [load.table for load in loads if not load.complete]
    if wrong:
        console.print(f"[red]row counts differ from the manifest in {', '.join(wrong)}[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{len(loads)} tables imported; start journeys on {location.describe()}[/green]")
