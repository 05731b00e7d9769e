"""A training table from the journey store: the spec's features, point in time, at every logged decision.

The rows come from journeys' ExportTrainingSet (the one SQL computation of a feature spec, the same one
GetProfileFeatures serves): one observation per `Decision Logged` event (the anchor), its features from the
events before it, the decision's action and propensity read from the anchor itself, and the label the
revenue of the orders attributed to that decision (carrying its `decision_id`) within the horizon. Values are
encoded by `wayline.common.feature_encoding`, the encoding the decision service applies online, so training
and serving cannot encode a value differently.

The export is given as a function (a stub's bound method with the caller's key), so this module knows the
contract but not the connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from google.protobuf import duration_pb2

from wayline.common.feature_encoding import encoder_for, python_value
from wayline.journeys.v1 import analytics_pb2, feature_pb2, training_set_pb2
from wayline.journeys.v1 import journeys_service_pb2 as jpb
from wayline_ml.training_table import FeatureSchema, TrainingTable, TrainingTableError

__all__ = [
    "ANCHOR_EVENT",
    "DEFAULT_LOG",
    "FEEDBACK_LOG",
    "DecisionLog",
    "ExportTrainingSet",
    "export_request",
    "training_table_from_export",
]

ANCHOR_EVENT = "Decision Logged"
DECISION_ID, ACTION, PROPENSITY = "properties.decision_id", "properties.action", "properties.propensity"

ExportTrainingSet = Callable[[jpb.ExportTrainingSetRequest], Iterable[jpb.ExportTrainingSetResponse]]


@dataclass(frozen=True)
class DecisionLog:
    """Where the logged decisions and their outcomes are in the store."""

    anchor_event: str = ANCHOR_EVENT
    outcome_event: str = "Order Completed"
    outcome_property: str = "revenue"
    horizon_us: int = 2 * 86_400_000_000  # orders answer a decision within a day; two leave a margin


DEFAULT_LOG = DecisionLog()
# The outcomes the decision service's Feedback stores: a CONVERSION's value is its `Decision Feedback` event's
# revenue, and the feedback carries the decision's id, so it attributes to the decision as an order does.
FEEDBACK_LOG = DecisionLog(outcome_event="Decision Feedback")


def _duration(us: int) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMicroseconds(us)
    return duration


def export_request(
    spec: feature_pb2.FeatureSpec,
    log: DecisionLog = DEFAULT_LOG,
    *,
    data_as_of_us: int | None = None,
    batch_size: int = 5000,
) -> jpb.ExportTrainingSetRequest:
    """The ExportTrainingSet request for `spec` over every logged decision (cut off at `data_as_of_us`, the
    time of the call when None)."""
    request = jpb.ExportTrainingSetRequest(
        spec=spec,
        label=training_set_pb2.LabelDefinition(
            kind=training_set_pb2.LABEL_KIND_SUM,
            event=analytics_pb2.EventMatcher(event_name=log.outcome_event),
            property=log.outcome_property,
            horizon=_duration(log.horizon_us),
            attribution_property=DECISION_ID,
        ),
        sampling=training_set_pb2.ObservationSampling(
            # A decision that chose nothing (a holdout, or every candidate filtered) logs no action: it is no
            # observation of an action's outcome, so it is no row.
            anchor_event=analytics_pb2.EventMatcher(
                event_name=log.anchor_event,
                property_filters=[
                    analytics_pb2.PropertyFilter(
                        property=ACTION, operator=analytics_pb2.FILTER_OPERATOR_IS_SET
                    )
                ],
            ),
            anchor_properties=[DECISION_ID, ACTION, PROPENSITY],
        ),
        batch_size=batch_size,
    )
    if data_as_of_us is not None:
        request.data_as_of.FromMicroseconds(data_as_of_us)
    return request


def training_table_from_export(
    export: ExportTrainingSet,
    spec: feature_pb2.FeatureSpec,
    actions: tuple[str, ...],
    log: DecisionLog = DEFAULT_LOG,
    *,
    data_as_of_us: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[TrainingTable, list[str]]:
    """The decisions in the store as a training table (rows in decision-time order), and each row's decision
    id. A row whose anchor lacks a known action or a propensity in (0, 1] is refused: the log is broken.
    `progress` is called with the number of rows of each streamed batch."""
    schema = FeatureSchema(spec)
    encoder = encoder_for(spec)
    features: list[list[float]] = []
    person, time_us, action, propensity, value, decision = [], [], [], [], [], []
    known = set(actions)
    for response in export(export_request(spec, log, data_as_of_us=data_as_of_us)):
        if response.WhichOneof("part") != "rows":
            continue
        for row in response.rows.rows:
            anchor = row.anchor_properties.fields
            chosen = python_value(anchor[ACTION]) if ACTION in anchor else None
            chance = python_value(anchor[PROPENSITY]) if PROPENSITY in anchor else None
            if chosen not in known or not isinstance(chance, float) or not 0 < chance <= 1:
                raise TrainingTableError(
                    f"anchor event {row.anchor_event_id}: action {chosen!r} and propensity {chance!r} "
                    "are not "
                    f"a logged decision over {list(actions)}"
                )
            features.append(encoder.encode([python_value(v) for v in row.feature_values]))
            person.append(row.person_id)
            time_us.append(row.observation_time.ToMicroseconds())
            action.append(chosen)
            propensity.append(chance)
            value.append(float(python_value(row.label) or 0.0))
            decision.append(str(python_value(anchor[DECISION_ID])) if DECISION_ID in anchor else "")
        if progress is not None:
            progress(len(response.rows.rows))
    order = np.argsort(np.array(time_us, dtype=np.int64), kind="stable")
    revenue = np.array(value, dtype=np.float64)[order]
    table = TrainingTable(
        schema=schema,
        actions=actions,
        features=np.array(features, dtype=np.float32).reshape(len(features), len(schema))[order],
        person_id=np.array(person, dtype=np.str_)[order],
        decision_time_us=np.array(time_us, dtype=np.int64)[order],
        action=np.array(action, dtype=np.str_)[order],
        propensity=np.array(propensity, dtype=np.float64)[order],
        converted=(revenue > 0).astype(np.int8),
        value=np.where(revenue > 0, revenue, 0.0),
    )
    return table.validate(), [decision[i] for i in order]
