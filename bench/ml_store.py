"""`python -m bench ml-store [--people N]`: the training path through the real services, stage by stage.

A suite on free ports (child processes, embedded chDB); a generated population sent through the gateway as
backfill; the wait until journeys holds every decision and its attributed order; then the timed export of
the next-best-offer spec at every logged decision (ExportTrainingSet), beside the same-run baseline of the
same observations with a one-feature spec (a count), so the ratio is the price of the spec's features;
then training, and the learned policy against the generator's truth.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import grpc
from rich.console import Console
from rich.table import Table

from wayline.client import Client
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline.journeys.v1 import journeys_service_pb2 as jpb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.suite import Suite
from wayline_ml.feature_spec import default_spec
from wayline_ml.generator import ACTIONS, GeneratorConfig, generate
from wayline_ml.generator.logged import read_stored_decisions, settled_start, true_policy_values
from wayline_ml.generator.protos import send
from wayline_ml.store_training import training_table_from_export
from wayline_ml.train import train

__all__ = ["main"]

SHIPPED = default_spec()


def _count_spec() -> feature_pb2.FeatureSpec:
    orders = feature_pb2.FeatureDefinition(
        name="orders",
        aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT,
        events=analytics_pb2.EventMatcher(event_name="Order Completed"),
    )
    return feature_pb2.FeatureSpec(name="baseline", version="1", features=[orders])


def main(people: int = 3000, days: float = 90) -> None:
    console = Console()
    config = GeneratorConfig(people=people, days=days, seed=3, start=settled_start(days))
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ml-store-") as scratch:
        suite = Suite.on_free_ports(Path(scratch))
        suite.start()
        try:
            suite.wait_ready()
            started = time.perf_counter()
            population = generate(config)
            rows.append(
                ("generate", f"{len(population.events):,} events, {time.perf_counter() - started:.1f} s")
            )
            started = time.perf_counter()
            with Client(suite.address("gateway"), suite.api_key, secure=False) as client:
                send(population, client, batch_size=1000)
            sent = time.perf_counter() - started
            rows.append(
                ("send (TrackBatch via gateway)", f"{sent:.1f} s, {len(population.events) / sent:,.0f} ev/s")
            )
            auth = (("authorization", f"Bearer {suite.api_key}"),)
            with grpc.insecure_channel(suite.address("gateway")) as channel:
                stub = journeys_grpc.JourneyServiceStub(channel)

                def export(request: jpb.ExportTrainingSetRequest) -> Iterable[jpb.ExportTrainingSetResponse]:
                    responses: Iterable[jpb.ExportTrainingSetResponse] = stub.ExportTrainingSet(
                        request, metadata=auth, timeout=900
                    )
                    return responses

                started = time.perf_counter()
                stored = read_stored_decisions(export, default_spec(), population, timeout=900)
                rows.append(
                    ("delivered to journeys + first export", f"{time.perf_counter() - started:.1f} s")
                )
                timings = {}
                for name, spec in (
                    (f"{SHIPPED.name} {SHIPPED.version} ({len(SHIPPED.features)} features)", SHIPPED),
                    ("baseline (1 count)", _count_spec()),
                ):
                    started = time.perf_counter()
                    table, _ = training_table_from_export(export, spec, ACTIONS)
                    timings[name] = time.perf_counter() - started
                    rows.append(
                        (
                            f"export: {name}",
                            f"{len(table):,} rows, {timings[name]:.2f} s, "
                            f"{len(table) / timings[name]:,.0f} rows/s",
                        )
                    )
                spec_time, base_time = timings.values()
                rows.append(("ratio (spec / baseline)", f"{spec_time / base_time:.2f}"))
            started = time.perf_counter()
            models = train(stored.table)
            rows.append(("train (response + value)", f"{time.perf_counter() - started:.1f} s"))
            truth = true_policy_values(population, models, stored)
            rows.append(
                (
                    "true value per held-out decision",
                    f"learned {truth.learned:.2f} · best single {truth.best_single:.2f} "
                    f"(x{truth.learned / truth.best_single:.3f}) · random {truth.random:.2f} "
                    f"(x{truth.learned / truth.random:.3f})",
                )
            )
        finally:
            suite.stop()
    result = Table(title=f"ML from the store: {people:,} persons, {days:g} days")
    result.add_column("stage")
    result.add_column("figure")
    for stage, figure in rows:
        result.add_row(stage, figure)
    console.print(result)
