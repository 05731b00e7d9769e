"""Point-in-time training sets (ExportTrainingSet): observations, labels, splits and the stream of parts.
Free of protobuf and SQL.

The rows are the feature store's (features.py), computed in chunks of observations so that memory stays
bounded however large the set; the stream yields one Schema, then row batches, then one Summary. Every
choice that must be reproducible is a pure function of the request: the data cut-off (`data_as_of`) fixes the
events used, and both the sample and the split come from stable hashes of the person id (`stable_hash`), which
the SQL of sampling reproduces bit for bit. With anchor-event sampling each row also carries its anchor
(`Anchor`): the event's id and the requested properties as the event stored them, read by the sampling
statement itself, so that a decision log's action and propensity come with the row they explain.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, TypeAlias

from wayline_journeys.analytics import EventMatcher, Population, TimeRange
from wayline_journeys.errors import QueryTooLarge
from wayline_journeys.features import FeatureQuery, FeatureSpec, FeatureStore, Observation, with_defaults

__all__ = [
    "CHUNK_OBSERVATIONS",
    "HASH_BITS",
    "MAX_ANCHOR_PROPERTIES",
    "MAX_LISTED_OBSERVATIONS",
    "MAX_OBSERVATION_TIMES",
    "SAMPLE_SALT",
    "SPLIT_SALT",
    "Anchor",
    "JsonDocument",
    "Sampled",
    "Sampling",
    "Schema",
    "Split",
    "Summary",
    "TrainingRow",
    "TrainingSetQuery",
    "TrainingSetStore",
    "export_training_set",
    "sample_threshold",
    "split_of",
    "stable_hash",
]

MAX_LISTED_OBSERVATIONS = 100_000
MAX_OBSERVATION_TIMES = 1_000
MAX_ANCHOR_PROPERTIES = 50
CHUNK_OBSERVATIONS = 5_000
"""Observations per store statement: bounds the memory of one aggregation, and lets a stream start early."""
HASH_BITS = 53
_SCALE = 1 << HASH_BITS
SAMPLE_SALT = "sample:"
SPLIT_SALT = "split:"


def stable_hash(salt: str, person_id: str) -> int:
    """The first 53 bits of SHA-256(salt + person id), read big-endian: uniform in [0, 2**53), the same in
    every process and in SQL (`store/training_set.py`). Sampling and splitting use different salts, so a
    sampled set is split like the whole."""
    digest = hashlib.sha256((salt + person_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - HASH_BITS)


def sample_threshold(rate: float) -> int:
    """A person is sampled when stable_hash(SAMPLE_SALT, id) is below this: hash / 2**53 < rate."""
    return math.ceil(rate * _SCALE)


class Split(Enum):
    UNSPECIFIED = "unspecified"
    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"


def split_of(person_id: str, validation_fraction: float, test_fraction: float) -> Split:
    """UNSPECIFIED when nothing is split off; else by u = stable_hash(SPLIT_SALT, id) / 2**53: VALIDATION
    when u < validation_fraction, TEST when u < validation_fraction + test_fraction, TRAIN otherwise."""
    if validation_fraction == 0 and test_fraction == 0:
        return Split.UNSPECIFIED
    u = stable_hash(SPLIT_SALT, person_id) / _SCALE
    if u < validation_fraction:
        return Split.VALIDATION
    if u < validation_fraction + test_fraction:
        return Split.TEST
    return Split.TRAIN


JsonDocument: TypeAlias = bool | int | float | str | list["JsonDocument"] | dict[str, "JsonDocument"] | None
"""A JSON value as stored: scalars, and objects and lists as themselves (not as text)."""


@dataclass(frozen=True)
class Sampling:
    """Observations generated: at each of `times_us`, or at each `anchor` event in `anchor_range`."""

    times_us: tuple[int, ...] = ()
    anchor: EventMatcher | None = None
    anchor_range: TimeRange = field(default_factory=TimeRange)
    population: Population = field(default_factory=Population)
    sample_rate: float = 1.0
    max_rows: int = 0
    """0 means no limit beyond the server's."""
    anchor_properties: tuple[str, ...] = ()
    """Event property paths read from each anchor event (only with `anchor`)."""


@dataclass(frozen=True)
class Anchor:
    """The anchor event an observation was made at."""

    event_id: str
    properties: tuple[tuple[str, JsonDocument], ...] = ()
    """(path, value) for each of `Sampling.anchor_properties`, in order: the JSON value as stored, None for a
    path the event lacks (or holds null at)."""


@dataclass(frozen=True)
class Sampled:
    """The first complete observations in order (time, person, anchor event), and the totals."""

    observations: list[Observation]
    complete: int
    """How many complete observations the sampling yields in all (beyond the limit too)."""
    incomplete: int
    anchors: list[Anchor] = field(default_factory=list)
    """With anchor-event sampling, each observation's anchor (same order); empty otherwise."""


class TrainingSetStore(FeatureStore, Protocol):
    def sample(self, query: FeatureQuery, sampling: Sampling, limit: int) -> Sampled:
        """At most `limit` complete observations (label horizon elapsed by the cut-off)."""
        ...

    @property
    def row_limit(self) -> int:
        """The most rows one export may produce (the server's limit)."""
        ...


@dataclass(frozen=True)
class TrainingSetQuery:
    features: FeatureQuery
    spec: FeatureSpec
    observations: tuple[Observation, ...] | None = None
    sampling: Sampling | None = None
    validation_fraction: float = 0.0
    test_fraction: float = 0.0
    batch_size: int = 1_000


@dataclass(frozen=True)
class Schema:
    feature_names: tuple[str, ...]
    spec_name: str
    spec_version: str
    data_as_of_us: int


@dataclass(frozen=True)
class TrainingRow:
    observation: Observation
    values: tuple[float | str | bool | None, ...]
    label: float | bool | None
    split: Split
    anchor: Anchor | None = None
    """With anchor-event sampling, the event the observation was made at."""


@dataclass(frozen=True)
class Summary:
    row_count: int
    positive_label_count: int
    incomplete_label_count: int


def _observations(store: TrainingSetStore, query: TrainingSetQuery) -> Sampled:
    """The complete observations to produce rows for (with their anchors when sampled at anchor events),
    and how many were skipped as incomplete; raises QUERY_TOO_LARGE before any row when the set is over the
    server's limit."""
    limit, label = store.row_limit, query.features.label
    if query.sampling is not None:
        wanted = query.sampling.max_rows
        capped = 0 < wanted <= limit
        sampled = store.sample(query.features, query.sampling, wanted if capped else limit + 1)
        if sampled.complete > limit and not capped:
            raise _too_large(sampled.complete, limit)
        return sampled
    listed = query.observations or ()
    cut_off = query.features.data_as_of_us
    kept = [o for o in listed if label is None or label.complete(o.time_us, cut_off)]
    if len(kept) > limit:
        raise _too_large(len(kept), limit)
    return Sampled(kept, len(kept), len(listed) - len(kept))


def _too_large(rows: int, limit: int) -> QueryTooLarge:
    return QueryTooLarge(
        f"the training set has {rows} rows, above the server's limit of {limit}; lower sample_rate, set "
        "max_rows or export fewer observations per call",
        quota_subject="training_set_rows",
    )


def export_training_set(
    store: TrainingSetStore, query: TrainingSetQuery, keep_going: Callable[[], bool]
) -> Iterator[Schema | list[TrainingRow] | Summary]:
    """The stream's parts. `keep_going` is asked before each store statement: False ends the stream quietly
    (the caller went away); it raises to end it with an error (a passed deadline)."""
    features = query.features
    found = _observations(store, query)
    observations, anchors = found.observations, found.anchors
    yield Schema(
        tuple(f.name for f in features.features), query.spec.name, query.spec.version, features.data_as_of_us
    )
    batch: list[TrainingRow] = []
    rows = positives = 0
    for start in range(0, len(observations), CHUNK_OBSERVATIONS):
        if not keep_going():
            return
        chunk = observations[start : start + CHUNK_OBSERVATIONS]
        for i, (observation, row) in enumerate(zip(chunk, store.rows(features, chunk), strict=True)):
            split = split_of(observation.person_id, query.validation_fraction, query.test_fraction)
            values = tuple(with_defaults(features.features, row.values))
            anchor = anchors[start + i] if anchors else None
            batch.append(TrainingRow(observation, values, row.label, split, anchor))
            positives += row.label is True
            if len(batch) == query.batch_size:
                yield batch
                rows, batch = rows + len(batch), []
    if batch:
        yield batch
        rows += len(batch)
    yield Summary(rows, positives, found.incomplete)
