"""`wayline ml train|evaluate|package`: a training table in, a validated model package in the registry out.

`register(ml_app)` adds the three commands to the `ml` Typer app that `wayline_cli.main` owns:
- `train TABLE --run DIR`: time split, XGBoost response and value models, saved as a run directory;
- `evaluate TABLE --run DIR`: held-out AUC, log loss, calibration and offline policy value; writes the model
  card into the run directory;
- `package TABLE --run DIR --registry ROOT --tenant T --name N --version V`: ONNX export held to parity, the
  package written to `<ROOT>/<T>/<N>/<V>/` and validated.
TABLE is a `.npz` or `.parquet` training table (format: `wayline_ml.table_io`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wayline_cli import terminal
from wayline_cli.gateway import INT32_MAX
from wayline_ml.evaluate import Evaluation, evaluate
from wayline_ml.export import ParityError, export_models
from wayline_ml.model_card import render_model_card
from wayline_ml.package import write_package
from wayline_ml.registry import DirectoryRegistry
from wayline_ml.run import load_run, save_run
from wayline_ml.table_io import read_table
from wayline_ml.train import TrainConfig, train
from wayline_ml.training_table import TrainingTableError
from wayline_ml.validation import PackageError

__all__ = ["register"]

console = terminal.console(stderr=True)
_MOST_THREADS = 1024
TableArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A .npz or .parquet table.")]
RunOption = Annotated[Path, typer.Option(help="The training run directory (boosters and run.json).")]


@contextmanager
def _step(progress: Progress, description: str) -> Iterator[None]:
    task = progress.add_task(description, total=1)
    yield
    progress.update(task, completed=1)


def _progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console)


def _guarded(action: Callable[[], None]) -> None:
    try:
        action()
    except (TrainingTableError, ParityError, PackageError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error
    except OSError as error:  # a run or registry path that is a file, unwritable, or too long a name
        console.print(f"[red]error:[/red] {error.strerror or error}: {error.filename}")
        raise typer.Exit(1) from error


def _open_fraction(value: float) -> float:
    if not 0 < value < 1:  # NaN too
        raise typer.BadParameter("a share strictly between 0 and 1")
    return value


def _when(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _summary(title: str, rows: dict[str, str]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def train_command(
    table_file: TableArgument,
    *,
    run: RunOption = Path("ml-run"),
    max_rounds: Annotated[
        int, typer.Option(min=1, max=INT32_MAX, help="Most trees per model (early stopping picks fewer).")
    ] = 400,
    max_depth: Annotated[int, typer.Option(min=0, max=INT32_MAX, help="Tree depth; 0: no limit.")] = 5,
    learning_rate: Annotated[float, typer.Option(min=0, max=1, help="XGBoost's eta, from 0 to 1.")] = 0.1,
    nthread: Annotated[
        int, typer.Option(min=1, max=_MOST_THREADS, help="XGBoost threads (fixed for reproducibility).")
    ] = 2,
    seed: Annotated[int, typer.Option(min=0, max=INT32_MAX, help="XGBoost's seed.")] = 0,
    holdout_fraction: Annotated[
        float,
        typer.Option(
            callback=_open_fraction, help="Share of the latest decisions held out, between 0 and 1."
        ),
    ] = 0.2,
) -> None:
    """Train the response and value models on the decisions before the time cut-off."""

    def work() -> None:
        config = TrainConfig(
            max_rounds=max_rounds,
            max_depth=max_depth,
            learning_rate=learning_rate,
            nthread=nthread,
            seed=seed,
            holdout_fraction=holdout_fraction,
        )
        with _progress() as progress:
            with _step(progress, f"reading {table_file.name}"):
                table = read_table(table_file)
            with _step(progress, f"training on {len(table):,} rows"):
                models = train(table, config)
            with _step(progress, f"saving the run to {run}"):
                save_run(models, run)
        split = models.split
        console.print(
            _summary(
                "trained",
                {
                    "rows (fit / early stopping / held out)": (
                        f"{split.validation_start:,} / {split.holdout_start - split.validation_start:,} / "
                        f"{split.rows - split.holdout_start:,}"
                    ),
                    "training window": f"{_when(models.training_from_us)} → {_when(models.training_to_us)}",
                    "held out from": _when(split.holdout_from_us),
                    "trees (response / value)": f"{models.rounds['response']} / {models.rounds['value']}",
                    "inputs": f"{len(models.schema)} features + {len(models.actions)} actions",
                },
            )
        )

    _guarded(work)


def _evaluation_table(evaluation: Evaluation) -> Table:
    table = Table(title="held-out evaluation")
    table.add_column("policy")
    table.add_column("IPW", justify="right")
    table.add_column("SNIPS", justify="right")
    table.add_column("matched", justify="right")
    table.add_column("95% interval", justify="right")
    policy = evaluation.policy
    for value in (policy.learned, policy.random, *policy.single_actions):
        table.add_row(
            value.name,
            f"{value.ipw:.3f}",
            f"{value.snips:.3f}",
            f"{value.matched:,}",
            f"{value.low:.3f} - {value.high:.3f}",
        )
    return table


def evaluate_command(table_file: TableArgument, run: RunOption = Path("ml-run")) -> None:
    """Score the held-out decisions; print AUC, calibration and policy values; write the model card."""

    def work() -> None:
        with _progress() as progress:
            with _step(progress, f"reading {table_file.name} and the run"):
                table, models = read_table(table_file), load_run(run)
            with _step(progress, "evaluating on held-out rows"):
                evaluation = evaluate(models, table)
        card = run / "model_card.md"
        card.write_text(render_model_card("draft", "unversioned", models, evaluation), encoding="utf-8")
        response = evaluation.response
        console.print(
            _summary(
                "response model",
                {
                    "AUC": f"{response.auc:.4f}",
                    "log loss": f"{response.log_loss:.4f}",
                    "expected calibration error": f"{response.expected_calibration_error:.4f}",
                    "value RMSE": f"{evaluation.value_rmse:.3f}",
                },
            )
        )
        console.print(_evaluation_table(evaluation))
        policy = evaluation.policy
        console.print(
            f"learned vs random {policy.lift_vs_random:+.1%}, vs best single action "
            f"({policy.best_single.name}) {policy.lift_vs_best_single:+.1%}; card: {card}"
        )

    _guarded(work)


def package_command(
    table_file: TableArgument,
    *,
    name: Annotated[str, typer.Option(help="Model name, e.g. next-best-action.")],
    version: Annotated[str, typer.Option(help="Package version; an existing one is refused.")],
    run: RunOption = Path("ml-run"),
    registry: Annotated[Path, typer.Option(help="The registry root directory.")] = Path("models"),
    tenant: Annotated[str, typer.Option(help="The tenant the model belongs to.")] = "default",
) -> None:
    """Export to ONNX (held to parity on held-out rows) and write an immutable package to the registry."""

    def work() -> None:
        target = DirectoryRegistry(registry)
        dest = target.path(tenant, name, version)
        with _progress() as progress:
            with _step(progress, f"reading {table_file.name} and the run"):
                table, models = read_table(table_file), load_run(run)
            with _step(progress, "evaluating on held-out rows"):
                evaluation = evaluate(models, table)
            with _step(progress, "exporting to ONNX and checking parity"):
                exported = export_models(models, models.split.holdout(table).features)
            with _step(progress, f"writing {dest}"):
                manifest = write_package(
                    dest, name=name, version=version, models=models, evaluation=evaluation, exported=exported
                )
        rows = {
            f"parity {p.model} ({p.output})": f"{p.max_abs_diff:.2e} over {p.rows:,} rows"
            for p in exported.parity
        }
        rows |= {file: digest[:16] + "…" for file, digest in manifest.files.items()}
        rows["opsets"] = ", ".join(f"{domain or 'ai.onnx'} {v}" for domain, v in manifest.onnx_opsets.items())
        console.print(_summary(f"package {tenant}/{name}/{version}", rows))

    _guarded(work)


def register(ml_app: typer.Typer) -> None:
    """Add `train`, `evaluate` and `package` to the `wayline ml` app."""
    ml_app.command("train")(train_command)
    ml_app.command("evaluate")(evaluate_command)
    ml_app.command("package")(package_command)
