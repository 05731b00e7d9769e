"""A generated population's decisions as they come back from the journey store, and the truth about them.

Training reads the store (`wayline_ml.store_training`): the rows are the `Decision Logged` events the
generator sent, found again by their `decision_id`. This module waits until the store holds every decision
and its attributed outcome, and judges a model trained on those rows against the generator's ground truth
(every action's true expected value for every decision), which no real log has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from google.protobuf import struct_pb2, timestamp_pb2

from wayline.journeys.v1 import analytics_pb2, feature_pb2, training_set_pb2
from wayline.journeys.v1 import journeys_service_pb2 as jpb
from wayline_ml.generator.population import Population
from wayline_ml.generator.vocabulary import ACTIONS
from wayline_ml.store_training import (
    DECISION_ID,
    DEFAULT_LOG,
    DecisionLog,
    ExportTrainingSet,
    training_table_from_export,
)
from wayline_ml.train import TrainedModels
from wayline_ml.training_table import TrainingTable

__all__ = [
    "StoredDecisions",
    "TruePolicyValues",
    "read_stored_decisions",
    "settled_start",
    "true_policy_values",
]


def settled_start(days: float, *, log: DecisionLog = DEFAULT_LOG, now: datetime | None = None) -> datetime:
    """Where to start a `days`-long generated period so that every decision in it is complete now.

    The training export keeps a decision only once its outcome horizon has passed (`t + horizon <= cut_off`),
    and sessions begun near the period's end run a few hours past it. So the period ends at a midnight a
    horizon plus a whole day before today's: a period ending just one horizon back would leave its last
    decisions incomplete for the first hours of every day, and the wait for them would time out.
    """
    today = (now or datetime.now(UTC)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days + 1, microseconds=log.horizon_us)


@dataclass(frozen=True)
class StoredDecisions:
    """The training table read from the store, and each row's decision (its row in `population.decisions`)."""

    table: TrainingTable
    decision: np.ndarray


def read_stored_decisions(
    export: ExportTrainingSet,
    spec: feature_pb2.FeatureSpec,
    population: Population,
    *,
    timeout: float = 120.0,
    log: DecisionLog = DEFAULT_LOG,
    sleep: Callable[[float], None] = time.sleep,
) -> StoredDecisions:
    """Export the population's decisions until every one is in the store with its attributed outcome (ingest
    delivers to journeys asynchronously), then return them. Raises TimeoutError naming what is missing."""
    decisions = population.decisions
    settles_us = int(decisions.time_us.max()) + log.horizon_us if len(decisions) else 0
    if settles_us > time.time_ns() // 1000:
        raise ValueError(
            f"the population's last decision is complete only at {_iso(settles_us)} (its time plus the "
            f"{log.horizon_us / 86_400_000_000:g}-day outcome horizon), and the export keeps complete "
            "decisions only: generate a period that ends earlier (settled_start)"
        )
    prefix = f"{population.config.prefix}-x"
    deadline = time.monotonic() + timeout
    wanted = (len(decisions), int(decisions.converted.sum()))
    while _stored_counts(export, log, prefix) < wanted:  # a cheap count before the whole export
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the store holds {_stored_counts(export, log, prefix)} of {wanted} (decisions, attributed "
                f"orders) after {timeout:.0f} s"
            )
        sleep(1.0)
    while True:
        table, ids = training_table_from_export(export, spec, ACTIONS, log)
        mine = np.array([i.startswith(prefix) for i in ids], dtype=np.bool_)
        index = np.array([int(i.removeprefix(prefix)) if m else -1 for i, m in zip(ids, mine, strict=True)])
        found, converted = int(mine.sum()), int(table.converted[mine].sum())
        if found == len(decisions) and converted == int(decisions.converted.sum()):
            rows = np.flatnonzero(mine)
            return StoredDecisions(table.take(rows), index[rows])
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the store holds {found} of {len(decisions)} decisions and {converted} of "
                f"{int(decisions.converted.sum())} conversions after {timeout:.0f} s"
            )
        sleep(1.0)


@dataclass(frozen=True)
class TruePolicyValues:
    """Mean true expected value per held-out decision (the generator's ground truth, not an estimate)."""

    learned: float
    random: float  # uniform over the eligible actions
    best_single: float  # the best one action, where eligible (doing nothing elsewhere)
    best_single_action: str
    oracle: float  # the best eligible action for every decision


def true_policy_values(
    population: Population, models: TrainedModels, stored: StoredDecisions
) -> TruePolicyValues:
    """Judge `models` (trained on `stored.table`) on its held-out decisions against what each action truly
    would have earned. Like the decision service, the learned policy ranks eligible actions only."""
    decisions = population.decisions
    holdout = models.split.holdout(stored.table)
    rows = stored.decision[len(stored.table) - len(holdout) :]
    truth = (decisions.p_convert * decisions.true_value)[rows]
    eligible = decisions.eligible[rows]
    predicted = np.where(eligible, models.score(holdout.features).expected_value, -np.inf)
    learned = float(truth[np.arange(len(rows)), np.argmax(predicted, axis=1)].mean())
    random = float((np.where(eligible, truth, 0.0).sum(axis=1) / eligible.sum(axis=1)).mean())
    singles = [
        float(np.where(eligible[:, a], truth[:, a], truth[:, 0]).mean()) for a in range(truth.shape[1])
    ]
    best = int(np.argmax(singles))
    oracle = float(np.where(eligible, truth, -np.inf).max(axis=1).mean())
    return TruePolicyValues(learned, random, singles[best], ACTIONS[best], oracle)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="seconds")


def _stored_counts(export: ExportTrainingSet, log: DecisionLog, prefix: str) -> tuple[int, int]:
    """(decisions, attributed orders) of this population in the store: one snapshot row per person with two
    counts, summed; far cheaper than the training export it precedes."""
    carries_id = analytics_pb2.PropertyFilter(
        property=DECISION_ID,
        operator=analytics_pb2.FILTER_OPERATOR_CONTAINS,
        values=[struct_pb2.Value(string_value=prefix)],
    )

    def count(name: str, event: str) -> feature_pb2.FeatureDefinition:
        return feature_pb2.FeatureDefinition(
            name=name,
            aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT,
            events=analytics_pb2.EventMatcher(event_name=event, property_filters=[carries_id]),
            default_value=struct_pb2.Value(number_value=0),
        )

    now = timestamp_pb2.Timestamp()
    now.FromMicroseconds(time.time_ns() // 1000 - 1_000_000)
    request = jpb.ExportTrainingSetRequest(
        spec=feature_pb2.FeatureSpec(
            name="stored-decisions",
            version="1",
            features=[count("decisions", log.anchor_event), count("orders", log.outcome_event)],
        ),
        sampling=training_set_pb2.ObservationSampling(observation_times=[now]),
        batch_size=10_000,
    )
    decisions = orders = 0
    for response in export(request):
        for row in response.rows.rows if response.WhichOneof("part") == "rows" else ():
            decisions += int(row.feature_values[0].number_value)
            orders += int(row.feature_values[1].number_value)
    return decisions, orders
