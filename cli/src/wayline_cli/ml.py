"""`wayline ml generate`: a seeded population of generated journeys, written as Parquet files and, with
--gateway, sent through the real API (gateway → ingest → identity → journeys). `wayline ml export`: the
training table of the logged decisions in the journey store, features by a feature spec, point in time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import grpc
import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wayline.client import Client
from wayline.common.registry import REGISTRY
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli import ml_clv, ml_train, terminal
from wayline_cli.gateway import api_key_option, checked_gateway
from wayline_ml.feature_spec import FeatureSpecError, default_spec, load_spec
from wayline_ml.generator import ACTIONS, GeneratorConfig, Population, generate
from wayline_ml.generator.files import write_parquet
from wayline_ml.generator.logged import settled_start
from wayline_ml.generator.protos import send
from wayline_ml.generator.summary import summarize
from wayline_ml.store_training import training_table_from_export
from wayline_ml.table_io import TABLE_SUFFIXES, write_table

_GATEWAY = f"localhost:{REGISTRY['gateway'].port}"
ml_app = typer.Typer(
    help="The ML pipeline: generated journeys, training, evaluation, ONNX model packages, predicted customer "
    "value."
)
console = terminal.console()
# Bounds of `generate`: past them the arrays outgrow memory (and numbers past C's integers fail in numpy).
_MOST_PEOPLE = 10_000_000
_MOST_DAYS = 3_650.0


def _columns() -> tuple[TextColumn | BarColumn | TaskProgressColumn | TimeElapsedColumn, ...]:
    return (TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())


@ml_app.command("generate")
def generate_command(  # noqa: PLR0917 - the round's arrays, passed explicitly
    people: Annotated[int, typer.Option(min=1, max=_MOST_PEOPLE, help="How many persons.")] = 1_000,
    days: Annotated[
        float, typer.Option(min=0.01, max=_MOST_DAYS, help="The span of their journeys, in days.")
    ] = 90.0,
    seed: Annotated[
        int, typer.Option(min=0, help="The seed: the same seed and start give the same data.")
    ] = 0,
    start: Annotated[
        datetime | None,
        typer.Option(
            help="When the period begins (UTC); default: it ends three days before today, so that "
            "`wayline ml export` finds every decision complete."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Directory for events/people/decisions.parquet.")] = Path(
        "generated"
    ),
    namespace: Annotated[str, typer.Option(help="Identifier prefix; default g<seed>.")] = "",
    gateway: Annotated[
        str | None,
        typer.Option(callback=checked_gateway, help="Also send the events to this gateway (host:port)."),
    ] = None,
    api_key: Annotated[
        str | None,
        api_key_option("API key for --gateway."),
    ] = None,
    tls: Annotated[bool, typer.Option(help="Use TLS to reach --gateway.")] = False,
) -> None:
    """Generate journeys and decisions; write them as Parquet and send the events with --gateway (then
    `wayline ml export` reads the training table back from the store)."""
    if gateway and not api_key:
        raise typer.BadParameter("--gateway needs --api-key (or WAYLINE_API_KEY)")
    begin = (start.replace(tzinfo=UTC) if start and start.tzinfo is None else start) or settled_start(days)
    try:  # before generating: a directory that cannot be made is known at once
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise typer.BadParameter(_os_problem(out, error), param_hint="--out") from None
    config = GeneratorConfig(people=people, days=days, seed=seed, start=begin, namespace=namespace)
    started = time.monotonic()
    with Progress(*_columns(), console=console) as progress:
        task = progress.add_task("generating", total=None)
        population = generate(config, lambda done, total: progress.update(task, completed=done, total=total))
        generated = time.monotonic() - started
        progress.add_task("writing Parquet", total=None)
        try:
            paths = write_parquet(population, out)
        except OSError as error:  # a file where the directory should be, a name too long, no permission
            raise typer.BadParameter(_os_problem(out, error), param_hint="--out") from None
    console.print(_summary(population, generated))
    for name, path in paths.items():
        console.print(f"{name}: [bold]{path}[/bold]")
    if gateway and api_key:
        _send(population, gateway, api_key, tls=tls)


def _os_problem(path: Path, error: OSError) -> str:
    return f"cannot write {path}: {error.strerror or error}"


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


@ml_app.command("export")
def export_command(
    out: Annotated[
        Path, typer.Argument(dir_okay=False, help="The training table to write (.parquet or .npz).")
    ],
    gateway: Annotated[
        str, typer.Option(callback=checked_gateway, help="The gateway (host:port).")
    ] = _GATEWAY,
    api_key: Annotated[
        str | None,
        api_key_option("An API key (read scope)."),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="The feature spec (YAML or JSON); default: next-best-offer."
        ),
    ] = None,
    tls: Annotated[bool, typer.Option(help="Use TLS to reach --gateway.")] = False,
) -> None:
    """Read every logged decision (`Decision Logged` events) from the journey store with the spec's features
    as of its time and the revenue attributed to it, and write them as a training table."""
    if not api_key:
        raise typer.BadParameter("an API key is needed (--api-key or WAYLINE_API_KEY)")
    if out.suffix not in TABLE_SUFFIXES:  # known before the export, not after it
        raise typer.BadParameter(
            f"a training table is a {' or '.join(TABLE_SUFFIXES)} file", param_hint="OUT"
        )
    try:
        features = load_spec(spec) if spec else default_spec()
    except FeatureSpecError as error:
        raise typer.BadParameter(str(error), param_hint="--spec") from error
    auth = (("authorization", f"Bearer {api_key}"),)
    started = time.monotonic()
    channel = (
        grpc.secure_channel(gateway, grpc.ssl_channel_credentials())
        if tls
        else grpc.insecure_channel(gateway)
    )
    with channel, Progress(*_columns(), console=console) as progress:
        stub = journeys_grpc.JourneyServiceStub(channel)
        task = progress.add_task(f"exporting from {gateway}", total=None)
        try:
            table, _ = training_table_from_export(
                lambda request: stub.ExportTrainingSet(request, metadata=auth, timeout=3600),
                features,
                ACTIONS,
                progress=lambda rows: progress.advance(task, rows),
            )
        except grpc.RpcError as error:
            console.print(f"[red]{error.code().name}[/red]: {error.details()}")
            raise typer.Exit(1) from error
        try:
            write_table(table, out)
        except OSError as error:
            console.print(f"[red]{_os_problem(out, error)}[/red]")
            raise typer.Exit(1) from None
    summary = Table(title=f"Training table: {features.name} {features.version}")
    summary.add_column("")
    summary.add_column("")
    summary.add_row("decisions", f"{len(table):,} ({int(table.converted.sum()):,} converted)")
    summary.add_row("features", f"{len(table.schema)}: {', '.join(table.schema.names)}")
    summary.add_row("took", f"{time.monotonic() - started:.1f} s")
    console.print(summary)
    console.print(f"training table: [bold]{out}[/bold]")


ml_train.register(ml_app)
ml_clv.register(ml_app)
