"""Features compare property values as JSON values, whatever the stored text says (feature.proto: "compared
as JSON values: 1 and 1.0 are one value"): an object is one value in any key order (the stored order is the
map order of the Struct written, which varies between processes), and 0 and -0 are one number. Stored texts
are written directly here, so each spelling is certain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.journeys.conftest import stored_record
from wayline_journeys.analytics import EventMatcher
from wayline_journeys.events import EventRecord
from wayline_journeys.features import Aggregation, FeatureDefinition, FeatureQuery, Observation
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.features import ClickHouseFeatures

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _event(person: str, minute: int, properties: str) -> EventRecord:
    return stored_record(person, T0 + timedelta(minutes=minute), ("user_id", person), properties)


def _values(store: JourneyStore, person: str, *features: FeatureDefinition) -> tuple[object, ...]:
    as_of = int((T0 + timedelta(days=1)).timestamp() * 1_000_000)
    query = FeatureQuery("acme", features, as_of)
    (row,) = ClickHouseFeatures(lambda: store.client).rows(query, [Observation(person, as_of)])
    return row.values


def _feature(aggregation: Aggregation, path: str = "properties.v") -> FeatureDefinition:
    return FeatureDefinition(aggregation.value, aggregation, EventMatcher(), path)


def test_count_distinct_compares_objects_and_numbers_as_json_values(store: JourneyStore) -> None:
    texts = [
        '{"v": {"a": 1.0, "b": {"c": [1.0, "x"], "d": null}}}',
        '{"v": {"b": {"d": null, "c": [1.0, "x"]}, "a": 1.0}}',  # the same object, keys in another order
        '{"v": {"a": 1, "b": {"c": [1, "x"], "d": null}}}',  # and with the numbers spelt as integers
        '{"v": {"a": 2.0}}',
        '{"v": [1.0, 2.0]}',
        '{"v": [2.0, 1.0]}',  # a list's order matters
        '{"v": 0.0}',
        '{"v": -0.0}',  # the number 0
        '{"v": 1.0}',
        '{"v": "1"}',
        '{"v": true}',
        '{"v": null}',  # no value
        "{}",
    ]
    store.write("acme", [_event("p1", i, t) for i, t in enumerate(texts)])
    (count,) = _values(store, "p1", _feature(Aggregation.COUNT_DISTINCT))
    assert count == 8.0  # the object twice, {"a":2}, two lists, 0, 1, "1", true


def test_count_distinct_without_values_is_missing(store: JourneyStore) -> None:
    store.write("acme", [_event("p2", 0, '{"v": null}'), _event("p2", 1, '{"w": 1.0}')])
    assert _values(store, "p2", _feature(Aggregation.COUNT_DISTINCT)) == (None,)


def test_numbers_beyond_two_to_the_64_count_as_numbers(store: JourneyStore) -> None:
    """1e+20 is a JSON number: SUM, MAX and COUNT_DISTINCT take it (ClickHouse rewrites its raw text as
    100000000000000000000, which its JSONType calls a string), and the string of its digits stays a string."""
    texts = ['{"v": 1e+20}', '{"v": -2.5e+21}', '{"v": 1.0}', '{"v": "100000000000000000000"}']
    store.write("acme", [_event("p3", i, t) for i, t in enumerate(texts)])
    found = _values(
        store,
        "p3",
        _feature(Aggregation.SUM),
        _feature(Aggregation.MAX),
        _feature(Aggregation.COUNT_DISTINCT),
    )
    assert found == (1e20 - 2.5e21 + 1.0, 1e20, 4)
