"""`wayline import FILE`: history from exports (point of sale, call centre, CRM) into Wayline.

The command is thin: it turns options into an ImportJob, shows a rich progress bar while the importer runs,
prints a summary, and maps the outcome to an exit code (0 all accepted, 1 some rows rejected, 2 usage error,
3 stopped before the end and resumable, 130 interrupted by Ctrl-C and resumable).
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, cast

import grpc
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wayline.common.registry import REGISTRY
from wayline_cli import terminal
from wayline_cli.gateway import api_key_option, checked_gateway
from wayline_cli.importing.errors import ImportStopped, UsageError
from wayline_cli.importing.importer import ImportJob, ImportResult, Snapshot, open_job, run_import
from wayline_cli.importing.readers import Format
from wayline_cli.importing.sender import BatchSender

__all__ = ["import_command"]

_GATEWAY = f"localhost:{REGISTRY['gateway'].port}"

EXIT_REJECTED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 1, 2, 3, 130


class FormatChoice(StrEnum):
    auto = "auto"
    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"


def import_command(
    *,
    file: Annotated[
        Path, typer.Argument(help="The export: CSV, JSON lines or Parquet.", exists=True, dir_okay=False)
    ],
    api_key: Annotated[
        str,
        api_key_option("Gateway API key with the write scope."),
    ],
    gateway: Annotated[
        str, typer.Option(callback=checked_gateway, help="host:port of the Wayline gateway.")
    ] = _GATEWAY,
    tls: Annotated[
        bool, typer.Option(help="Reach the gateway over TLS, trusting the system's CAs (or --ca-file).")
    ] = False,
    ca_file: Annotated[
        Path | None,
        typer.Option(
            envvar="WAYLINE_CA_FILE",
            exists=True,
            dir_okay=False,
            help="PEM CA that signed the gateway's certificate (a private CA); implies --tls.",
        ),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="JSON or YAML mapping of columns to event fields (docs/import.md).")
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="TARGET[:TYPE]=COLUMN, e.g. identifiers.email=E-Mail; repeatable."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="TARGET[:TYPE]=CONSTANT, e.g. channel=in_store; repeatable."),
    ] = None,
    format_: Annotated[
        FormatChoice, typer.Option("--format", help="The file's format; auto goes by its suffix.")
    ] = FormatChoice.auto,
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Rows per TrackBatch call.")] = 500,
    report: Annotated[
        Path | None, typer.Option(help="CSV of rejected rows; default: FILE.wayline-rejected.csv.")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone of timestamps without one (default: the mapping's, or UTC).")
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="Checkpoint file; default: FILE.wayline-import.json.")
    ] = None,
    delimiter: Annotated[str, typer.Option(help="CSV cell delimiter.")] = ",",
    max_attempts: Annotated[
        int,
        typer.Option(
            min=1,
            help="Tries per batch while the pipeline is unavailable, busy or over a quota; then the import "
            "stops (exit code 3) and a rerun resumes.",
        ),
    ] = 8,
) -> None:
    """Import history (CSV, JSON lines, Parquet) through the gateway, resumably and without duplicates.

    Each row is one event, sent as backfill (timestamps back to 1900). Rerun the same command to resume.
    """
    console = terminal.console()
    try:
        job = open_job(
            file,
            fmt=None if format_ is FormatChoice.auto else cast(Format, format_.value),
            mapping_file=mapping,
            maps=map_ or (),
            sets=set_ or (),
            timezone=timezone,
            delimiter=delimiter,
            state_path=state,
            report_path=report,
            batch_size=batch_size,
        )
    except UsageError as error:
        console.print(f"[red]usage error:[/red] {escape(str(error))}")
        raise typer.Exit(EXIT_USAGE) from error
    try:
        channel = _gateway_channel(gateway, tls=tls, ca_file=ca_file)
        result = _run(job, channel, api_key, console, max_attempts)
    except UsageError as error:
        console.print(f"[red]usage error:[/red] {escape(str(error))}")
        raise typer.Exit(EXIT_USAGE) from error
    except ImportStopped as error:
        console.print(f"[red]the import stopped:[/red] {escape(str(error))}")
        console.print(f"Every acknowledged batch is recorded in {job.state_path}; fix the cause and rerun.")
        raise typer.Exit(EXIT_USAGE if error.usage else EXIT_STOPPED) from error
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted.[/yellow] Rerun the same command to resume ({job.state_path}).")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        job.source.close()
    console.print(_summary(result))
    if result.checkpoint.rejected:
        if result.reasons:
            console.print(_reasons(result))
        console.print(f"rejected rows, with reasons: [bold]{result.report_path}[/bold]")
        raise typer.Exit(EXIT_REJECTED)


def _gateway_channel(gateway: str, *, tls: bool, ca_file: Path | None) -> grpc.Channel:
    if ca_file is None and not tls:
        return grpc.insecure_channel(gateway)
    root = None if ca_file is None else ca_file.read_bytes()
    return grpc.secure_channel(gateway, grpc.ssl_channel_credentials(root_certificates=root))


def _run(
    job: ImportJob, channel: grpc.Channel, api_key: str, console: Console, max_attempts: int
) -> ImportResult:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TextColumn("[red]{task.fields[rejected]:,} rejected"),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, console=console) as progress, channel:
        task = progress.add_task(job.path.name, total=job.source.total or None, rows=0, rate=0.0, rejected=0)

        def on_progress(snapshot: Snapshot) -> None:
            if snapshot.rows_this_run == 0 and snapshot.checkpoint.rows_done:
                done = snapshot.checkpoint.rows_done
                progress.console.print(f"resuming after row {done:,} (checkpoint {job.state_path})")
            elapsed = max(time.monotonic() - started, 1e-6)
            progress.update(
                task,
                completed=snapshot.position,
                rows=snapshot.checkpoint.rows_done,
                rate=snapshot.rows_this_run / elapsed,
                rejected=snapshot.checkpoint.rejected,
            )

        def on_retry(code: grpc.StatusCode, delay: float, attempt: int) -> None:
            progress.console.print(f"[yellow]{code.name}[/yellow]: retry in {delay:.1f}s (attempt {attempt})")

        sender = BatchSender(channel, api_key, max_attempts=max_attempts, on_retry=on_retry)
        result = run_import(job, sender.send, on_progress=on_progress)
        progress.update(task, completed=job.source.total)
    return result


def _summary(result: ImportResult) -> Table:
    totals = result.checkpoint
    table = Table(title="import summary", title_justify="left", show_header=False)
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("rows read", f"{totals.rows_done:,}")
    if result.skipped:
        table.add_row("  of which by earlier runs", f"{result.skipped:,}")
    table.add_row("accepted", f"[green]{totals.accepted:,}[/green]")
    table.add_row("rejected locally", f"{totals.rejected_locally:,}")
    table.add_row("rejected by server", f"{totals.rejected_by_server:,}")
    table.add_row("elapsed", f"{result.elapsed:,.1f} s")
    return table


def _reasons(result: ImportResult) -> Table:
    table = Table(title="rejections of this run by reason", title_justify="left")
    table.add_column("reason")
    table.add_column("problems", justify="right")
    for reason, count in result.reasons.most_common(10):
        table.add_row(reason, f"{count:,}")
    return table
