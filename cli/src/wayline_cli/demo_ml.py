"""The demo's ML step: generated journeys with logged decisions sent through the gateway → the journey store →
a training table of the next-best-offer feature spec at every decision (ExportTrainingSet, point in time) →
XGBoost → ONNX held to parity → an immutable, validated model package → pushed through the gateway into the
decision service's registry (UploadModelVersion), which validates it again, and read back (GetModel)."""

from __future__ import annotations

import math
import time
from collections import Counter
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from wayline.client import Client
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.decision.v1 import decision_service_pb2_grpc as decision_grpc
from wayline.decision.v1 import model_pb2
from wayline.journeys.v1 import feature_pb2, lifecycle_stage_pb2
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.models import package_files, upload_requests
from wayline_ml.evaluate import evaluate
from wayline_ml.export import export_models
from wayline_ml.feature_spec import default_spec
from wayline_ml.generator import GeneratorConfig, generate
from wayline_ml.generator.logged import read_stored_decisions, settled_start, true_policy_values
from wayline_ml.generator.protos import send
from wayline_ml.package import write_package
from wayline_ml.registry import DirectoryRegistry
from wayline_ml.train import train
from wayline_ml.training_table import TrainingTable
from wayline_ml.validation import validate

__all__ = ["show_ml"]

PEOPLE, DAYS = 1500, 90


def _stages(spec: feature_pb2.FeatureSpec, table: TrainingTable) -> str:
    """How many decisions saw each stage of the spec's LIFECYCLE_STAGE feature (computed point in time by
    journeys, as the decision service computes it online)."""
    column = next(
        i
        for i, f in enumerate(spec.features)
        if f.aggregation == feature_pb2.FEATURE_AGGREGATION_LIFECYCLE_STAGE
    )
    found = Counter(int(v) for v in table.features[:, column].tolist() if not math.isnan(v))
    return " · ".join(f"{_stage_name(i)} {found.get(i, 0):,}" for i in range(1, 7))


def _stage_name(number: int) -> str:
    """`LIFECYCLE_STAGE_ENGAGEMENT` → `engagement`."""
    return lifecycle_stage_pb2.LifecycleStage.Name(number).removeprefix("LIFECYCLE_STAGE_").lower()  # type: ignore[arg-type]


def show_ml(channel: grpc.Channel, address: str, api_key: str, registry_root: Path, console: Console) -> Path:
    """Train, package and push version 1; also package the same model as version 2 (validated, not pushed)
    and return its path, for the Decide step's canary."""
    started = time.monotonic()
    config = GeneratorConfig(people=PEOPLE, days=DAYS, seed=3, start=settled_start(DAYS))
    population = generate(config)
    sending = console.status(f"sending {len(population.events):,} generated events through the gateway…")
    with sending, Client(address, api_key, secure=False) as client:
        rejected = send(population, client, batch_size=1000)
    sent = time.monotonic()
    journeys = journeys_grpc.JourneyServiceStub(channel)
    auth = (("authorization", f"Bearer {api_key}"),)
    spec = default_spec()
    with console.status("reading the decisions back from the journey store (ExportTrainingSet)…"):
        stored = read_stored_decisions(
            lambda request: journeys.ExportTrainingSet(request, metadata=auth, timeout=300), spec, population
        )
    read = time.monotonic()
    table = stored.table
    models = train(table)
    evaluation = evaluate(models, table, bootstrap_rounds=100)
    exported = export_models(models, models.split.holdout(table).features)
    dest = DirectoryRegistry(registry_root).path("demo", "next-best-action", "1")
    write_package(
        dest, name="next-best-action", version="1", models=models, evaluation=evaluation, exported=exported
    )
    manifest = validate(dest)
    second = DirectoryRegistry(registry_root).path("demo", "next-best-action", "2")
    write_package(
        second, name="next-best-action", version="2", models=models, evaluation=evaluation, exported=exported
    )
    validate(second)
    decision = decision_grpc.DecisionServiceStub(channel)
    model_id, version, files = package_files(dest)
    with console.status(f"pushing {model_id} {version} to the decision service…"):
        pushed = decision.UploadModelVersion(
            upload_requests(model_id, version, files), metadata=auth, timeout=60
        )
        again = decision.UploadModelVersion(
            upload_requests(model_id, version, files), metadata=auth, timeout=60
        )
        registry_entry = decision.GetModel(
            decision_pb.GetModelRequest(name=f"models/{model_id}"), metadata=auth, timeout=10
        ).model
    policy = evaluation.policy
    summary = Table(title="ML: a next-best-action model from journeys in the store")
    summary.add_column("")
    summary.add_column("")
    summary.add_row(
        "journeys sent",
        f"{len(population.events):,} events of {config.people:,} persons, {rejected} rejected "
        f"({sent - started:.1f} s)",
    )
    summary.add_row(
        "training set (ExportTrainingSet)",
        f"{len(table):,} decisions, {len(spec.features)} features of spec {spec.name} {spec.version} "
        f"({read - sent:.1f} s, delivery to the store included)",
    )
    summary.add_row("lifecycle stages (a feature)", _stages(spec, table))
    summary.add_row("held out", f"{evaluation.holdout_rows:,} later decisions")
    summary.add_row(
        "response AUC, calibration error",
        f"{evaluation.response.auc:.3f}, {evaluation.response.expected_calibration_error:.3f}",
    )
    truth = true_policy_values(population, models, stored)
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
    registered = registry_entry.versions[0]
    summary.add_row(
        "pushed to decision (UploadModelVersion)",
        f"{registered.name} · {model_pb2.ModelVersionState.Name(registered.state)} · "
        f"created {pushed.created}, pushed again: created {again.created}",
    )
    summary.add_row("took", f"{time.monotonic() - started:.1f} s")
    console.print(summary)
    return second
