"""The CLV job `wayline ml clv` runs: read every purchaser's lifetime summary through the gateway, fit
BG/NBD and Gamma-Gamma, predict, and write the predictions back as person traits through ingest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from wayline.client import Client
from wayline_ml.clv.model import ClvModel, ClvPredictions, fit, frequency_value_correlation, predict
from wayline_ml.clv.store import SummaryQuery, ValuedCustomers, identifiers_of, read_summaries
from wayline_ml.clv.traits import FitKey, TraitsWritten, identify_events, write_traits

__all__ = ["ClvJob", "ClvReport", "Step", "run_clv"]

Step = Callable[[str, int, int | None], None]
"""Progress: called with (step, done, total) as a step advances; total None when unknown."""


@dataclass(frozen=True)
class ClvJob:
    gateway: str
    api_key: str
    query: SummaryQuery
    tls: bool = False
    prefix: str = "clv"
    horizons: tuple[int, ...] = (90, 365)
    write: bool = True
    """False: fit and predict, write nothing (a dry run)."""


@dataclass(frozen=True)
class ClvReport:
    key: FitKey
    customers: ValuedCustomers
    model: ClvModel
    predictions: ClvPredictions
    correlation: float
    """Frequency against mean value among repeat buyers (Gamma-Gamma assumes none)."""
    written: TraitsWritten | None
    without_identifier: int
    seconds: dict[str, float] = field(default_factory=dict)


def _channel(job: ClvJob) -> grpc.Channel:
    if job.tls:
        return grpc.secure_channel(job.gateway, grpc.ssl_channel_credentials())
    return grpc.insecure_channel(job.gateway)


def run_clv(job: ClvJob, step: Step | None = None) -> ClvReport:
    """Run the job; ValueError when the purchasers cannot support a fit, grpc.RpcError or
    wayline.client.DeliveryError when a service refuses or cannot be reached."""

    def report(name: str, done: int, total: int | None) -> None:
        if step is not None:
            step(name, done, total)

    metadata = (("authorization", f"Bearer {job.api_key}"),)
    seconds: dict[str, float] = {}
    with _channel(job) as channel:
        began = time.monotonic()
        customers = read_summaries(
            channel, metadata, job.query, lambda done, total: report("reading summaries", done, total)
        )
        seconds["read"] = time.monotonic() - began
        began = time.monotonic()
        report("fitting", 0, 1)
        model = fit(customers.summaries)
        predictions = predict(model, customers.summaries, job.horizons)
        report("fitting", 1, 1)
        seconds["fit"] = time.monotonic() - began
        key = FitKey(job.query, model=model.model, prefix=job.prefix, horizons=job.horizons)
        written, without = None, 0
        if job.write:
            began = time.monotonic()
            identifiers = identifiers_of(
                channel,
                metadata,
                customers.person_ids,
                progress=lambda done, total: report("finding identifiers", done, total),
            )
            without = len(customers.person_ids) - len(identifiers)
            events = identify_events(key, model, predictions, customers.person_ids, identifiers)
            with Client(job.gateway, job.api_key, secure=job.tls) as client:
                sent = 0

                def advance(batch: int) -> None:
                    nonlocal sent
                    sent += batch
                    report("writing traits", sent, len(events))

                written = write_traits(client, events, progress=advance)
            seconds["write"] = time.monotonic() - began
    return ClvReport(
        key=key,
        customers=customers,
        model=model,
        predictions=predictions,
        correlation=frequency_value_correlation(customers.summaries),
        written=written,
        without_identifier=without,
        seconds=seconds,
    )
