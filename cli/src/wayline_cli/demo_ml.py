"""The demo's ML step: generated journeys with logged decisions → a training table of what each journey showed
at decision time → XGBoost → ONNX held to parity → an immutable, validated model package in a registry."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from wayline_ml.evaluate import evaluate
from wayline_ml.export import export_models
from wayline_ml.generator import GeneratorConfig, generate
from wayline_ml.generator.training import training_table, true_policy_values
from wayline_ml.package import write_package
from wayline_ml.registry import DirectoryRegistry
from wayline_ml.train import train
from wayline_ml.validation import validate

__all__ = ["show_ml"]


def show_ml(registry_root: Path, console: Console) -> None:
    started = time.monotonic()
    population = generate(GeneratorConfig(people=6000, days=120, seed=3))
    table = training_table(population)
    models = train(table)
    evaluation = evaluate(models, table, bootstrap_rounds=100)
    exported = export_models(models, models.split.holdout(table).features)
    dest = DirectoryRegistry(registry_root).path("demo", "next-best-action", "1")
    write_package(
        dest, name="next-best-action", version="1", models=models, evaluation=evaluation, exported=exported
    )
    manifest = validate(dest)
    policy = evaluation.policy
    summary = Table(title="ML: a next-best-action model from generated journeys")
    summary.add_column("")
    summary.add_column("")
    summary.add_row("journeys", f"{len(population.events):,} events of {population.config.people:,} persons")
    summary.add_row("decisions (held out)", f"{len(table):,} ({evaluation.holdout_rows:,})")
    summary.add_row(
        "response AUC, calibration error",
        f"{evaluation.response.auc:.3f}, {evaluation.response.expected_calibration_error:.3f}",
    )
    truth = true_policy_values(population, models, table)
    summary.add_row(
        "true value per held-out decision",
        f"learned {truth.learned:.2f} · random {truth.random:.2f} · best single ({truth.best_single_action}) "
        f"{truth.best_single:.2f} · oracle {truth.oracle:.2f}",
    )
    summary.add_row(
        "estimated from the log (IPW)",
        f"learned {policy.learned.ipw:.2f} · random {policy.random.ipw:.2f} · "
        f"best single ({policy.best_single.name}) {policy.best_single.ipw:.2f}",
    )
    summary.add_row(
        "ONNX parity, max |diff|", ", ".join(f"{p.model} {p.max_abs_diff:.1e}" for p in exported.parity)
    )
    summary.add_row("package (validated)", f"{dest} · {len(manifest.files) + 1} files, each sha256-checked")
    summary.add_row("took", f"{time.monotonic() - started:.1f} s")
    console.print(summary)
