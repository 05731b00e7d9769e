"""The three evaluators of a PropertyFilter's text operators (CONTAINS, NOT_CONTAINS, MATCHES_REGEX) agree on
values of every kind (analytics.proto; ADR 77): journeys' SQL on chDB, reading the JSON WriteEvents stored;
decision's matcher, on the event as its ObserveEvents converts it; the orchestrator's runtime, on the event as
its ObserveEvents converts it. Hypothesis draws the values (numbers of every magnitude, booleans, null,
strings, objects and lists) and the filters (values of every kind to look for, patterns on the texts'
shapes and patterns that spell a drawn value's text), and every evaluator must say the same of each pair;
the table of tests/text_operators.py says what they all must say."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.breadth import examples
from tests.contract import filter_evaluators
from tests.contract.filter_evaluators import decision_holds, journeys_holds, orchestrator_holds
from tests.text_operators import ABSENT, case_event, filter_message
from wayline.common.json_text import text_of
from wayline.journeys.v1 import analytics_pb2
from wayline_journeys.store import JourneyStore

pytestmark = pytest.mark.slow
store = filter_evaluators.store  # the module's own database in the suite's chDB

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


def _matchers(filters: list[Filter]) -> list[analytics_pb2.EventMatcher]:
    return [analytics_pb2.EventMatcher(property_filters=[filter_message(*f)]) for f in filters]


@settings(max_examples=examples(80))
@given(st.data())
def test_the_three_evaluators_agree_on_every_kind_of_value(store: JourneyStore, data: st.DataObject) -> None:
    values = data.draw(st.lists(_VALUES, min_size=1, max_size=6), label="values")
    filters = data.draw(st.lists(_filters(values), min_size=1, max_size=4), label="filters")
    events = [case_event(v, f"p{i}") for i, v in enumerate(values)]
    matchers = _matchers(filters)
    offline = journeys_holds(store, events, matchers)
    assert decision_holds(events, matchers) == offline
    assert orchestrator_holds(events, matchers) == offline
