"""`wayline ml generate`: a seeded population of generated journeys, written as Parquet files and, with
--gateway, sent through the real API (gateway → ingest → identity → journeys)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wayline.client import Client
from wayline_cli import ml_clv, ml_train
from wayline_ml.generator import GeneratorConfig, Population, generate
from wayline_ml.generator.files import write_parquet
from wayline_ml.generator.protos import send
from wayline_ml.generator.summary import summarize
from wayline_ml.generator.training import training_table
from wayline_ml.table_io import write_table

ml_app = typer.Typer(
    help="The ML pipeline: generated journeys, training, evaluation, ONNX model packages, predicted customer "
    "value."
)
console = Console()


def _default_start(days: float) -> datetime:
    # Ends two days before today's midnight: decision responses trail the period by up to a day, and ingest
    # refuses timestamps in the future.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days + 2)


def _columns() -> tuple[TextColumn | BarColumn | TaskProgressColumn | TimeElapsedColumn, ...]:
    return (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())


@ml_app.command("generate")
def generate_command(  # noqa: PLR0917 - the round's arrays, passed explicitly
    people: Annotated[int, typer.Option(min=1, help="How many persons.")] = 1_000,
    days: Annotated[float, typer.Option(min=0.01, help="The span of their journeys, in days.")] = 90.0,
    seed: Annotated[int, typer.Option(help="The seed: the same seed and start give the same data.")] = 0,
    start: Annotated[
        datetime | None,
        typer.Option(help="When the period begins (UTC); default: it ends two days before today."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for events/people/decisions.parquet.")] = Path(
        "generated"
    ),
    namespace: Annotated[str, typer.Option(help="Identifier prefix; default g<seed>.")] = "",
    gateway: Annotated[
        str | None, typer.Option(help="Also send the events to this gateway (host:port).")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="WAYLINE_API_KEY", help="API key for --gateway.")
    ] = None,
    tls: Annotated[bool, typer.Option(help="Use TLS to reach --gateway.")] = False,
) -> None:
    """Generate journeys and decisions; write them as Parquet (with training.parquet, the decisions as a
    training table for `wayline ml train`), and send the events with --gateway."""
    if gateway and not api_key:
        raise typer.BadParameter("--gateway needs --api-key (or WAYLINE_API_KEY)")
    begin = (start.replace(tzinfo=UTC) if start and start.tzinfo is None else start) or _default_start(days)
    config = GeneratorConfig(people=people, days=days, seed=seed, start=begin, namespace=namespace)
    started = time.monotonic()
    with Progress(*_columns(), console=console) as progress:
        task = progress.add_task("generating", total=None)
        population = generate(config, lambda done, total: progress.update(task, completed=done, total=total))
        generated = time.monotonic() - started
        progress.add_task("writing Parquet", total=None)
        paths = write_parquet(population, out)
        # The decisions with the features their journeys show at decision time: `wayline ml train` input.
        paths["training table"] = out / "training.parquet"
        write_table(training_table(population), paths["training table"])
    console.print(_summary(population, generated))
    for name, path in paths.items():
        console.print(f"{name}: [bold]{path}[/bold]")
    if gateway and api_key:
        _send(population, gateway, api_key, tls=tls)


def _send(population: Population, gateway: str, api_key: str, *, tls: bool) -> None:
    started = time.monotonic()
    with Client(gateway, api_key, secure=tls) as client, Progress(*_columns(), console=console) as progress:
        task = progress.add_task(f"sending to {gateway}", total=len(population.events))
        rejected = send(population, client, progress=lambda sent: progress.advance(task, sent))
    elapsed = time.monotonic() - started
    rate = len(population.events) / max(elapsed, 1e-6)
    console.print(
        f"sent {len(population.events):,} events in {elapsed:.1f}s ({rate:,.0f}/s), {rejected:,} rejected"
    )
    if rejected:
        raise typer.Exit(1)


def _summary(population: Population, seconds: float) -> Table:
    config = population.config
    table = Table(title=f"Generated (seed {config.seed}, from {config.start:%Y-%m-%d}, {config.days:g} days)")
    table.add_column("")
    table.add_column("", justify="right")
    for name, value in summarize(population).items():
        table.add_row(name, f"{value:,}")
    table.add_row("generation time", f"{seconds:.1f}s")
    return table


ml_train.register(ml_app)
ml_clv.register(ml_app)
