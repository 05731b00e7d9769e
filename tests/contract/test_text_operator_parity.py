"""The three evaluators of a PropertyFilter's text operators (CONTAINS, NOT_CONTAINS, MATCHES_REGEX) agree on
values of every kind (analytics.proto; ADR 77): journeys' SQL on chDB, reading the JSON WriteEvents stored;
decision's matcher, on the event as its ObserveEvents converts it; the orchestrator's runtime, on the event as
its ObserveEvents converts it. Hypothesis draws the values (numbers of every magnitude, booleans, null,
strings, objects and lists) and the filters (values of every kind to look for, patterns on the texts'
shapes and patterns that spell a drawn value's text), and every evaluator must say the same of each pair;
the table of tests/text_operators.py says what they all must say."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.text_operators import ABSENT, case_event, filter_message
from wayline.common.errors import FieldViolation
from wayline.common.json_text import text_of
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline_decision.features.event_converter import observed_event
from wayline_decision.features.matcher import compile_matcher
from wayline_decision.features.spec_compiler import compile_spec
from wayline_journeys.analytics_converters import event_matcher
from wayline_journeys.converters import event_to_record
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import connect_clickhouse
from wayline_journeys.store.matching import matcher_sql
from wayline_journeys.store.relation import current_events
from wayline_journeys.store.sql import SqlParams
from wayline_orchestrator.flows.runtime.matching import filter_holds
from wayline_orchestrator.person_events import occurrences

pytestmark = pytest.mark.slow

# Numbers whose text is laid out in each of ECMAScript's ways, and any double at all.
_LAYOUTS = (2.0, 2.5, 1e20, 1e21, -1e22, -0.0, 0.0, 0.1, 1e-6, 1e-7, 1.5e-5, 123456789012345678901234567890.0)
_NUMBERS = st.one_of(st.sampled_from(_LAYOUTS), st.floats(allow_nan=False, allow_infinity=False))
# Strings of the characters those texts (and JSON's) are made of.
_STRINGS = st.text(alphabet='0123456789.e-+truefalsn"{}[]:,é ', max_size=8)
_SCALARS = st.one_of(_NUMBERS, st.booleans(), st.none(), _STRINGS)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["a", "n", "sku"]), _SCALARS, max_size=3),
    st.just(ABSENT),
)
_PATTERNS = (
    "^-",
    "e",
    "e-?[0-9]+$",
    "^[0-9]+$",
    r"\.",
    "^(true|false)$",
    "^null$",
    r"^\{",
    r"^\[",
    "^$",
    "0$",
)
_OPERATORS = ("CONTAINS", "NOT_CONTAINS", "MATCHES_REGEX")


Filter = tuple[str, tuple[Any, ...]]  # (operator, values)


@st.composite
def _filters(draw: st.DrawFn, values: list[Any]) -> Filter:
    """A text filter: values to look for, or a pattern, of every kind, or one that spells the text of a drawn
    value (so that the texts meet, not only their shapes)."""
    operator = draw(st.sampled_from(_OPERATORS))
    texts = [t for v in values if v is not ABSENT and (t := text_of(v)) is not None]
    if operator == "MATCHES_REGEX":
        spelled = [f"^{re.escape(t)}$" for t in texts]
        return operator, (draw(st.sampled_from([*_PATTERNS, *spelled])),)
    looked_for = st.one_of(_SCALARS, st.sampled_from(texts)) if texts else _SCALARS
    return operator, tuple(draw(st.lists(looked_for, min_size=1, max_size=2)))


@pytest.fixture(scope="module")
def store(journeys_server: Server, chdb_path: Path) -> Iterator[JourneyStore]:
    """A store on a database of its own in the suite's one chDB engine (the journeys server's)."""
    database = f"test_{uuid.uuid4().hex[:8]}"
    store = JourneyStore(lambda: connect_clickhouse("", database, chdb_path))
    store.open()
    yield store
    store.client.command(f"DROP DATABASE IF EXISTS {database}")
    store.close()


def _journeys(store: JourneyStore) -> Callable[[list[event_pb2.Event], list[Filter]], list[list[bool]]]:
    """Per event, whether each filter holds in the store's SQL (one statement for all of them)."""

    def holds(events: list[event_pb2.Event], filters: list[Filter]) -> list[list[bool]]:
        tenant = f"t-{uuid.uuid4().hex[:10]}"
        store.write(tenant, [event_to_record(e) for e in events])
        params, violations = SqlParams(tenant=tenant), list[FieldViolation]()
        matchers = [
            event_matcher(analytics_pb2.EventMatcher(property_filters=[filter_message(*f)]), "m", violations)
            for f in filters
        ]
        assert not violations
        columns = ", ".join(f"toUInt8({matcher_sql(m, params)})" for m in matchers)
        sql = f"SELECT toString(event_id), {columns} FROM {current_events(params)}"
        rows = {r[0]: r[1:] for r in store.client.query(sql, parameters=params.values).result_rows}
        return [[bool(x) for x in rows[e.event_id]] for e in events]

    return holds


def _decision(events: list[event_pb2.Event], filters: list[Filter]) -> list[list[bool]]:
    spec = feature_pb2.FeatureSpec(name="s", version="1")
    for i, f in enumerate(filters):
        feature = spec.features.add(name=f"f{i}", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
        feature.events.property_filters.append(filter_message(*f))
    tests = [compile_matcher(d.events) for d in compile_spec(spec).features]
    return [[test(observed_event(e)) for test in tests] for e in events]


def _orchestrator(events: list[event_pb2.Event], filters: list[Filter]) -> list[list[bool]]:
    conditions = [json_format.MessageToDict(filter_message(*f)) for f in filters]
    return [[filter_holds(o, c) for c in conditions] for o in occurrences(events)]


@settings(max_examples=80)
@given(st.data())
def test_the_three_evaluators_agree_on_every_kind_of_value(store: JourneyStore, data: st.DataObject) -> None:
    values = data.draw(st.lists(_VALUES, min_size=1, max_size=6), label="values")
    filters = data.draw(st.lists(_filters(values), min_size=1, max_size=4), label="filters")
    events = [case_event(v, f"p{i}") for i, v in enumerate(values)]
    offline = _journeys(store)(events, filters)
    assert _decision(events, filters) == offline
    assert _orchestrator(events, filters) == offline
