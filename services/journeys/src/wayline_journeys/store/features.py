"""Features and training sets in ClickHouse: the FeatureStore and TrainingSetStore of features.py and
training_set.py.

`rows` runs the one statement of `feature_sql.py` for a batch of observations; `sample` generates
observations in one statement (snapshot persons or anchor events, the population, the sampling hash, the
horizon check, the order and the limit) so that only the kept (person, time) pairs reach Python, with each
anchor event's id and requested properties (raw JSON text, read as filters read them). Each statement runs
with ClickHouse's `max_execution_time` set to the call's remaining deadline, and a statement stopped by it is
DEADLINE_EXCEEDED rather than UNAVAILABLE (store/client.py's query_rows, as for every read).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client

from wayline.common.timestamps import to_micros
from wayline_journeys.features import (
    Aggregation,
    FeatureQuery,
    FeatureRow,
    FeatureValue,
    LabelKind,
    Observation,
)
from wayline_journeys.store.client import ReadModel
from wayline_journeys.store.feature_sql import RAW_JSON, distinct_count, feature_rows_sql
from wayline_journeys.store.matching import event_property_raw, matcher_kinds_sql, matcher_sql, population_sql
from wayline_journeys.store.person_refs import current_persons
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams
from wayline_journeys.training_set import (
    HASH_BITS,
    SAMPLE_SALT,
    Anchor,
    JsonDocument,
    Sampled,
    Sampling,
    sample_threshold,
)

__all__ = ["DEFAULT_ROW_LIMIT", "ClickHouseFeatures", "json_document", "json_value", "stable_hash_sql"]

DEFAULT_ROW_LIMIT = 1_000_000


def stable_hash_sql(salt: str, person_id: str, params: SqlParams) -> str:
    """training_set.stable_hash in SQL: the first 53 bits of SHA-256(salt + person id), big-endian."""
    digest = f"SHA256(concat({params.bind(salt, 'String')}, {person_id}))"
    return f"bitShiftRight(reinterpretAsUInt64(reverse(substring({digest}, 1, 8))), {64 - HASH_BITS})"


def json_value(raw: str) -> FeatureValue:
    """A stored JSON value as a feature value: numbers as floats, objects and lists as compact JSON text,
    null as None (nothing to aggregate)."""
    value = json.loads(raw)
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def json_document(raw: str) -> JsonDocument:
    """A stored JSON value as itself (objects and lists parsed); '' (a path the event lacks) is None."""
    found: JsonDocument = json.loads(raw) if raw else None
    return found


def _reader(aggregation: Aggregation) -> Callable[[Any], FeatureValue]:
    """How a feature's column becomes its value (see feature_sql.py's result columns)."""
    if aggregation is Aggregation.COUNT_DISTINCT:
        return distinct_count
    return json_value if aggregation in RAW_JSON else float


class ClickHouseFeatures(ReadModel):
    """FeatureStore and TrainingSetStore on the journey store's ClickHouse client."""

    def __init__(self, client: Callable[[], Client], row_limit: int = DEFAULT_ROW_LIMIT) -> None:
        """`client` returns the store's current clickhouse-connect client (it raises while disconnected);
        `row_limit` is the most rows one export may produce."""
        super().__init__(client)
        self._row_limit = row_limit

    @property
    def row_limit(self) -> int:
        return self._row_limit

    def current_persons(
        self, tenant: str, identifiers: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        return current_persons(self._rows, tenant, identifiers)

    def rows(self, query: FeatureQuery, observations: Sequence[Observation]) -> list[FeatureRow]:
        if not observations:
            return []
        params = SqlParams(tenant=query.tenant)
        found = self._rows(feature_rows_sql(query, observations, params), params, "computing features")
        read = [_reader(f.aggregation) for f in query.features]
        label = query.label
        rows = []
        for row in found:
            values = tuple(
                r(v) if v is not None else None for v, r in zip(row[1 : 1 + len(read)], read, strict=True)
            )
            value: float | bool | None = None
            if label is not None:
                value = bool(row[-1]) if label.kind is LabelKind.BINARY else float(row[-1])
            rows.append(FeatureRow(values, value))
        return rows

    def sample(self, query: FeatureQuery, sampling: Sampling, limit: int) -> Sampled:
        params = SqlParams(tenant=query.tenant)
        cut_off = params.bind(query.data_as_of_us, "Int64")
        received = f"received_at < fromUnixTimestamp64Micro({cut_off}, 'UTC')"
        kept = [population_sql(sampling.population, params, where=received)]
        if sampling.sample_rate < 1:
            threshold = params.bind(sample_threshold(sampling.sample_rate), "UInt64")
            kept.append(f"{stable_hash_sql(SAMPLE_SALT, 'person_id', params)} < {threshold}")
        if sampling.anchor is not None:
            stored = [received, matcher_sql(sampling.anchor, params)]
            kinds = matcher_kinds_sql(sampling.anchor, params)
            for bound, operator in ((sampling.anchor_range.start, ">="), (sampling.anchor_range.end, "<")):
                if bound is not None:
                    moment = params.bind(to_micros(bound), "Int64")
                    stored.append(f"timestamp {operator} fromUnixTimestamp64Micro({moment}, 'UTC')")
            read_paths = list(sampling.anchor_properties)
            if query.label is not None and query.label.attribution:
                read_paths.append(query.label.attribution)  # read last, beside the requested properties
            read = [event_property_raw(p, params) for p in read_paths]
            props = f"[{', '.join(read)}]" if read else "emptyArrayString()"  # raw JSON text, '' if absent
            observed = (
                "SELECT person_id, toUnixTimestamp64Micro(timestamp) AS t, toString(event_id) AS eid, "
                f"{props} AS props "
                f"FROM {current_events(params, where=' AND '.join(stored), kinds=kinds)} "
                f"WHERE {' AND '.join(kept)}"
            )
        else:
            # A person is observed at t when some event is visible then: max(timestamp, received_at) < t, or
            # timestamp < t for imported history.
            times = params.bind(list(sampling.times_us), "Array(Int64)")
            first_visible = (
                "SELECT person_id, min(if(backfill, toUnixTimestamp64Micro(timestamp), greatest("
                "toUnixTimestamp64Micro(timestamp), toUnixTimestamp64Micro(received_at)))) AS visible "
                f"FROM {current_events(params, where=received)} WHERE {' AND '.join(kept)} GROUP BY person_id"
            )
            observed = (
                f"SELECT person_id, t, '' AS eid, emptyArrayString() AS props FROM ({first_visible}) "
                f"ARRAY JOIN {times} AS t WHERE visible < t"
            )
        complete = "1"
        if query.label is not None:
            complete = f"t + {params.bind(query.label.horizon_us, 'Int64')} <= {cut_off}"
        sql = (
            "SELECT person_id, t, complete, countIf(complete) OVER () AS complete_total, "
            "countIf(NOT complete) OVER () AS incomplete_total, eid, props "
            f"FROM (SELECT *, toUInt8({complete}) AS complete FROM ({observed})) "
            f"ORDER BY complete DESC, t, person_id, eid LIMIT {params.bind(limit, 'UInt64')}"
        )
        found = self._rows(sql, params, "sampling observations")
        if not found:
            return Sampled([], 0, 0)
        done = [row for row in found if row[2]]
        attributed = query.label is not None and bool(query.label.attribution)
        observations = [
            Observation(str(row[0]), int(row[1]), _attribution(row[-1][-1]) if attributed else "")
            for row in done
        ]
        anchors = []
        if sampling.anchor is not None:
            paths = sampling.anchor_properties
            anchors = [
                Anchor(str(eid), tuple(zip(paths, map(json_document, props[: len(paths)]), strict=True)))
                for *_, eid, props in done
            ]
        return Sampled(observations, int(found[0][3]), int(found[0][4]), anchors)


def _attribution(raw: str) -> str:
    """An anchor's raw value at the attribution path; '' (nothing attributed) when absent or null."""
    return "" if raw in ("", "null") else raw
