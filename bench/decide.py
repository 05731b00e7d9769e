"""Decide's own cost per decision, without I/O: an 8-action model (XGBoost exported by `wayline_ml`, the
synthetic table's features), a catalogue of 8 actions in SQLite read through the cache, a holdout config,
features stated in memory; the whole pipeline (candidates, local and fact rules, scoring, arbitration,
holdout, response and trace conversion) beside the model's bare `score` of the same rows in the same run."""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tests.decision.decide.support import FEATURES, TENANT, ask, rig
from tests.ml.synthetic import make_table
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline_decision.decide.candidates import CatalogueCache
from wayline_decision.decide_converters import decide_input, decide_response, decision_trace
from wayline_decision.holdouts import HoldoutConfig, HoldoutGroup, Holdouts, HoldoutStore
from wayline_decision.packages import PackageId
from wayline_decision.registry import RegisteredVersion
from wayline_decision.serving.loaded import ServingModel, load_version
from wayline_decision.validation import ValidationLimits, read_manifest
from wayline_ml.evaluate import evaluate
from wayline_ml.export import export_models
from wayline_ml.package import write_package
from wayline_ml.train import TrainConfig, train

ACTIONS8 = tuple(f"offer_{i}" for i in range(8))


def _model(directory: Path) -> ServingModel:
    table = make_table(4000, seed=3)
    rng = np.random.default_rng(0)
    table = dataclasses.replace(
        table,
        actions=ACTIONS8,
        action=np.array(ACTIONS8)[rng.integers(0, 8, len(table.action))],
        propensity=np.full(len(table.action), 1 / 8),
    )
    models = train(
        table, TrainConfig(max_rounds=40, max_depth=4, early_stopping_rounds=10, nthread=2, seed=7)
    )
    exported = export_models(models, models.split.holdout(table).features)
    write_package(
        directory,
        name="offers8",
        version="1",
        models=models,
        evaluation=evaluate(models, table),
        exported=exported,
    )
    manifest = read_manifest(directory)
    registered = RegisteredVersion(
        PackageId(manifest.model_id, manifest.version), manifest, "d", datetime.now(UTC), ""
    )
    return load_version(TENANT, registered, directory, ValidationLimits(max_parity_tolerance=1e-3))


def _timed(run: object, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        run()  # type: ignore[operator]
        samples.append((time.perf_counter_ns() - start) / 1_000)
    return samples


def main(rounds: int = 5_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        model = _model(Path(scratch) / "p")
        r = rig(Path(scratch), model)
        for action_id in ACTIONS8:
            r.add(action_id, value=10.0)
        r.hold_out(HoldoutConfig((HoldoutGroup("control", enabled=True, percent=5.0, salt="s"),)))
        r.decider._sources = dataclasses.replace(
            r.decider._sources,
            catalogue=CatalogueCache(r.catalogue, ttl_seconds=3600),
            holdouts=Holdouts(HoldoutStore(r.db), cache_seconds=3600),
        )
        request = pb.DecideRequest(
            person=event_pb2.PersonRef(person_id="p-1"), channel=event_pb2.CHANNEL_WEB, placement="home_hero"
        )
        row = model.encode(FEATURES)

        def whole() -> None:
            result = r.decider.decide(TENANT, decide_input(request, None))
            decide_response(result)
            decision_trace(result)

        def domain() -> None:
            r.decider.decide(TENANT, ask())

        def bare() -> None:
            model.score(row, list(range(8)))

        for run in (whole, domain, bare):
            _timed(run, 500)  # warm
        figures = {}
        for name, run in (
            ("pipeline + converters + trace", whole),
            ("pipeline (domain)", domain),
            ("model.score only", bare),
        ):
            samples = sorted(_timed(run, rounds))
            figures[name] = statistics.median(samples)
            figures[name + " p99"] = samples[int(0.99 * len(samples))]
    table = Table(title=f"Decide without I/O, 8 actions, {rounds} decisions (µs)")
    table.add_column("what")
    table.add_column("p50 µs", justify="right")
    table.add_column("p99 µs", justify="right")
    for name in ("pipeline + converters + trace", "pipeline (domain)", "model.score only"):
        table.add_row(name, f"{figures[name]:.0f}", f"{figures[name + ' p99']:.0f}")
    Console().print(table)
    return figures


if __name__ == "__main__":
    main()
