"""ExportTrainingSet: request → TrainingSetQuery with every bad field reported; stream parts → responses."""

from __future__ import annotations

from datetime import datetime

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import from_micros, to_micros, to_timestamp
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import training_set_pb2
from wayline_journeys import analytics_converters
from wayline_journeys.converters import checked_time
from wayline_journeys.features import FeatureQuery, LabelDefinition, LabelKind, Observation
from wayline_journeys.features_converters import (
    duration_us,
    event_path_violation,
    feature_spec,
    point_in_time_matcher,
    to_value,
)
from wayline_journeys.training_set import (
    MAX_ANCHOR_PROPERTIES,
    MAX_LISTED_OBSERVATIONS,
    MAX_OBSERVATION_TIMES,
    Sampling,
    Schema,
    Split,
    Summary,
    TrainingRow,
    TrainingSetQuery,
)

__all__ = ["part_response", "training_set_query"]

DEFAULT_BATCH_SIZE = 1_000
MAX_BATCH_SIZE = 10_000
_MAX_VIOLATIONS = 100  # keeps the BadRequest detail well inside gRPC's trailer size limit
_KINDS = {
    training_set_pb2.LABEL_KIND_BINARY: LabelKind.BINARY,
    training_set_pb2.LABEL_KIND_COUNT: LabelKind.COUNT,
    training_set_pb2.LABEL_KIND_SUM: LabelKind.SUM,
}
_SPLITS = {s: training_set_pb2.TrainingSplit.Value(f"TRAINING_SPLIT_{s.name}") for s in Split}


def _label(
    message: training_set_pb2.LabelDefinition, violations: list[FieldViolation]
) -> LabelDefinition | None:
    found = len(violations)
    kind = _KINDS.get(message.kind)
    if kind is None:
        violations.append(FieldViolation("label.kind", "choose a label kind", "REQUIRED"))
    horizon = duration_us(message.horizon)
    if not message.HasField("horizon"):
        violations.append(
            FieldViolation("label.horizon", "how far after the observation to look", "REQUIRED")
        )
    elif horizon <= 0:
        violations.append(FieldViolation("label.horizon", "must be positive", "OUT_OF_RANGE"))
    event = point_in_time_matcher(message.event, "label.event", violations)
    if kind is LabelKind.SUM:
        bad = event_path_violation(message.property, "label.property")
        violations.extend([bad] if bad else [])
    elif message.property:
        violations.append(FieldViolation("label.property", "only LABEL_KIND_SUM reads a property"))
    attribution = message.attribution_property
    if attribution.startswith("person."):
        violations.append(
            FieldViolation(
                "label.attribution_property", "an event path: outcomes are matched to the anchor event"
            )
        )
    elif attribution and (bad := event_path_violation(attribution, "label.attribution_property")):
        violations.append(bad)
    if len(violations) > found or kind is None:
        return None
    return LabelDefinition(kind, horizon, event, message.property, attribution)


def _observations(
    request: pb.ExportTrainingSetRequest, violations: list[FieldViolation]
) -> tuple[Observation, ...]:
    if len(request.observations) > MAX_LISTED_OBSERVATIONS:
        violations.append(
            FieldViolation(
                "observations", f"at most {MAX_LISTED_OBSERVATIONS:,}; use sampling", "OUT_OF_RANGE"
            )
        )
        return ()
    found = []
    for i, o in enumerate(request.observations):
        if not o.person_id:
            violations.append(FieldViolation(f"observations[{i}].person_id", "must not be empty", "REQUIRED"))
        path = f"observations[{i}].observation_time"
        if not o.HasField("observation_time"):
            violations.append(FieldViolation(path, "is required", "REQUIRED"))
        elif (time := checked_time(o.observation_time, path, violations)) is not None:
            found.append(Observation(o.person_id, to_micros(time)))
    return tuple(found)


def _anchor_properties(
    message: training_set_pb2.ObservationSampling, violations: list[FieldViolation]
) -> tuple[str, ...]:
    """The event paths to read from each anchor: only with `anchor_event`, at most 50, distinct."""
    paths = tuple(message.anchor_properties)
    field = "sampling.anchor_properties"
    if paths and not message.HasField("anchor_event"):
        violations.append(FieldViolation(field, "only with anchor_event: snapshots have no anchor to read"))
    if len(paths) > MAX_ANCHOR_PROPERTIES:
        violations.append(FieldViolation(field, f"at most {MAX_ANCHOR_PROPERTIES}", "OUT_OF_RANGE"))
        return ()
    seen: set[str] = set()
    for i, path in enumerate(paths):
        where = f"{field}[{i}]"
        if path.startswith("person."):
            violations.append(
                FieldViolation(
                    where,
                    "an anchor property is read from the anchor event; person. properties would be read as "
                    "of now, not as of the observation time: use a FEATURE_AGGREGATION_PERSON_PROPERTY "
                    "feature instead",
                )
            )
        elif (bad := event_path_violation(path, where)) is not None:
            violations.append(bad)
        elif path in seen:
            violations.append(FieldViolation(where, f"{path!r} is listed twice", "DUPLICATE"))
        seen.add(path)
    return paths


def _sampling(message: training_set_pb2.ObservationSampling, violations: list[FieldViolation]) -> Sampling:
    times = tuple(
        to_micros(time)
        for i, t in enumerate(message.observation_times)
        if (time := checked_time(t, f"sampling.observation_times[{i}]", violations)) is not None
    )
    anchored = message.HasField("anchor_event")
    if anchored == bool(message.observation_times):
        violations.append(
            FieldViolation("sampling", "set exactly one of observation_times and anchor_event", "ONE_OF")
        )
    if len(message.observation_times) > MAX_OBSERVATION_TIMES:
        violations.append(
            FieldViolation("sampling.observation_times", f"at most {MAX_OBSERVATION_TIMES:,}", "OUT_OF_RANGE")
        )
    anchor = (
        point_in_time_matcher(message.anchor_event, "sampling.anchor_event", violations) if anchored else None
    )
    anchor_range = analytics_converters.time_range(
        message.anchor_time_range, "sampling.anchor_time_range", violations
    )
    population = analytics_converters.population(message.population, "sampling.population", violations)
    if not 0 <= message.sample_rate <= 1:
        violations.append(FieldViolation("sampling.sample_rate", "0 to 1", "OUT_OF_RANGE"))
    if message.max_rows < 0:
        violations.append(FieldViolation("sampling.max_rows", "must not be negative", "OUT_OF_RANGE"))
    properties = _anchor_properties(message, violations)
    return Sampling(
        times, anchor, anchor_range, population, message.sample_rate or 1.0, message.max_rows, properties
    )


def training_set_query(tenant: str, request: pb.ExportTrainingSetRequest, now: datetime) -> TrainingSetQuery:
    """The export's query; INVALID_ARGUMENT names every bad field (the first hundred), and a sampling
    population naming segments is FAILED_PRECONDITION after that."""
    violations: list[FieldViolation] = []
    if not request.HasField("spec"):
        violations.append(FieldViolation("spec", "the feature spec of the rows", "REQUIRED"))
    spec = feature_spec(request.spec, "spec", violations)
    label = _label(request.label, violations) if request.HasField("label") else None
    sampled = request.HasField("sampling")
    if sampled == bool(request.observations):
        violations.append(
            FieldViolation("observations", "set exactly one of observations and sampling", "ONE_OF")
        )
    observations = _observations(request, violations) if not sampled else None
    sampling = _sampling(request.sampling, violations) if sampled else None
    if label is not None and label.attribution and (sampling is None or sampling.anchor is None):
        violations.append(
            FieldViolation(
                "label.attribution_property",
                "only with sampling.anchor_event: outcomes are attributed to their anchor event",
            )
        )
    for name in ("validation_fraction", "test_fraction"):
        if not 0 <= getattr(request, name) <= 1:
            violations.append(FieldViolation(name, "0 to 1", "OUT_OF_RANGE"))
    if request.validation_fraction + request.test_fraction > 1:
        violations.append(
            FieldViolation("test_fraction", "with validation_fraction at most 1", "OUT_OF_RANGE")
        )
    if not 0 <= request.batch_size <= MAX_BATCH_SIZE:
        violations.append(FieldViolation("batch_size", f"0 to {MAX_BATCH_SIZE:,}", "OUT_OF_RANGE"))
    data_as_of = now
    if request.HasField("data_as_of"):  # an invalid one is raised below
        data_as_of = checked_time(request.data_as_of, "data_as_of", violations) or now
    if data_as_of > now:
        violations.append(
            FieldViolation(
                "data_as_of", "must not be in the future: later events could still change the rows"
            )
        )
    if violations:
        raise InvalidArgument(
            "the training set request is invalid; see the field violations", violations[:_MAX_VIOLATIONS]
        )
    return TrainingSetQuery(
        features=FeatureQuery(tenant, spec.features, to_micros(data_as_of), label),
        spec=spec,
        observations=observations,
        sampling=sampling,
        validation_fraction=request.validation_fraction,
        test_fraction=request.test_fraction,
        batch_size=request.batch_size or DEFAULT_BATCH_SIZE,
    )


def _row(row: TrainingRow) -> training_set_pb2.TrainingRow:
    found = training_set_pb2.TrainingRow(
        person_id=row.observation.person_id,
        observation_time=to_timestamp(from_micros(row.observation.time_us)),
        feature_values=[to_value(v) for v in row.values],
        split=_SPLITS[row.split],
    )
    if row.label is not None:
        found.label.CopyFrom(to_value(row.label))
    if row.anchor is not None:
        found.anchor_event_id = row.anchor.event_id
        if row.anchor.properties:  # set when the request asked for properties, even if every one is null
            found.anchor_properties.update(dict(row.anchor.properties))
    return found


def part_response(part: Schema | list[TrainingRow] | Summary) -> pb.ExportTrainingSetResponse:
    if isinstance(part, Schema):
        schema = training_set_pb2.TrainingSetSchema(
            feature_names=part.feature_names,
            spec_name=part.spec_name,
            spec_version=part.spec_version,
            data_as_of=to_timestamp(from_micros(part.data_as_of_us)),
        )
        return pb.ExportTrainingSetResponse(schema=schema)
    if isinstance(part, Summary):
        summary = training_set_pb2.TrainingSetSummary(
            row_count=part.row_count,
            positive_label_count=part.positive_label_count,
            incomplete_label_count=part.incomplete_label_count,
        )
        return pb.ExportTrainingSetResponse(summary=summary)
    return pb.ExportTrainingSetResponse(rows=training_set_pb2.TrainingRowBatch(rows=[_row(r) for r in part]))
