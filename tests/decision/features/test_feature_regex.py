"""A feature spec's MATCHES_REGEX filters are RE2 (analytics.proto; ADR 72), as journeys' store runs them for
the offline features (ADR 22's parity): the spec compiler refuses what RE2 refuses with the field path, the
online matcher searches in RE2 (its meaning, and time linear in the value), and a spec the online state
registered before that check is restored with its filter holding for no event. An ordering filter's time
bound likewise: what journeys refuses as a time (common.filter_times) the compiler refuses, and a stored
spec's such bound holds for no event."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any, cast

import pytest
from google.protobuf import struct_pb2

from wayline.common.errors import InvalidArgument
from wayline.common.timestamps import from_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline_decision.features.matcher import compile_matcher
from wayline_decision.features.model import EventMatcher, FilterOperator, ObservedEvent, PropertyFilter
from wayline_decision.features.service import OnlineFeatures
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.features.state import InProcessFeatureState

VALUE = "manifest.feature_spec.features[0].events.property_filters[0].values[0]"


def _counting(pattern: str) -> feature_pb2.FeatureSpec:
    """One feature: how many `Plan Chosen` events have a plan that matches `pattern`."""
    return _one_filter("Plan Chosen", "properties.plan", analytics_pb2.FILTER_OPERATOR_MATCHES_REGEX, pattern)


def _one_filter(
    event: str, path: str, operator: analytics_pb2.FilterOperator.ValueType, value: str
) -> feature_pb2.FeatureSpec:
    """One feature, `plans`: how many `event` events hold at `path` a value `operator` takes with `value`."""
    spec = feature_pb2.FeatureSpec(name="s", version="1")
    feature = spec.features.add(name="plans", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
    feature.events.event_name = event
    feature.events.property_filters.add(
        property=path,
        operator=operator,
        values=[struct_pb2.Value(string_value=value)],
    )
    return spec


def _refusal(spec: feature_pb2.FeatureSpec, **options: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        compile_spec(spec, "manifest.feature_spec.", **options)
    return {v.field: v.description for v in caught.value.violations}


@pytest.mark.parametrize(
    "pattern",
    [r"(pro)\1", "(?=pro)", "(?<!free)pro", "(?>a+)b", r"\Z"],
    ids=["backreference", "lookahead", "lookbehind", "atomic group", "python-only escape"],
)
def test_the_compiler_refuses_what_python_accepts_and_re2_does_not(pattern: str) -> None:
    found = _refusal(_counting(pattern))
    assert set(found) == {VALUE}
    assert found[VALUE].startswith("not an RE2 pattern: ")


def test_the_compiler_names_re2_s_reason() -> None:
    assert _refusal(_counting("(unclosed")) == {VALUE: "not an RE2 pattern: missing ): (unclosed"}


def test_a_stored_spec_keeps_a_pattern_only_python_accepted() -> None:
    compile_spec(_counting("(?=pro)"), stored=True)  # registered before the check: restored as it was
    assert set(_refusal(_counting("(unclosed"), stored=True)) == {VALUE}  # was refused then too


def _event(plan: str) -> ObservedEvent:
    return ObservedEvent(
        event_id=str(uuid.uuid4()),
        person_id="p",
        timestamp_us=1,
        received_at_us=1,
        type="track",
        name="Plan Chosen",
        channel="web",
        properties={"plan": plan},
        context={},
        text="",
        group_id="",
        sentiment_score=None,
        revenue=None,
    )


def _holds(pattern: str, plan: str) -> bool:
    regex = PropertyFilter("properties.plan", FilterOperator.MATCHES_REGEX, (pattern,))
    return compile_matcher(EventMatcher(filters=(regex,)))(_event(plan))


def test_the_matcher_searches_in_re2() -> None:
    assert _holds("pro", "the pro plan")  # anywhere in the value, as the store's match()
    assert not _holds("^pro", "the pro plan")
    assert _holds("(?i)^PRO$", "pro")
    assert not _holds(
        r"^\w+$", "café"
    )  # RE2's classes are ASCII (the store's too); Python's `re` would match
    assert _holds(r"^\pL+$", "café")  # Unicode letters, when asked for


def test_a_backtracking_pattern_takes_linear_time() -> None:
    """`re` takes about 4x longer per 2 more characters here (seconds at 26); RE2 takes microseconds."""
    assert _holds("^(a+)+$", "a" * 30)
    started = time.perf_counter()
    for n in (22, 26, 30, 10_000):
        assert not _holds("^(a+)+$", "a" * n + "!")
    assert time.perf_counter() - started < 0.05


def _logged(message: Any) -> str:
    """As the change log keeps a message: its wire bytes in base64."""
    return base64.b64encode(message.SerializeToString()).decode("ascii")


def test_a_restored_spec_whose_pattern_re2_refuses_counts_no_event() -> None:
    features = OnlineFeatures(
        lambda tenant: InProcessFeatureState(settle_after_us=1_000_000),
        cast(Any, None),  # journeys: not asked
        settle_after_us=1_000_000,
    )
    try:
        now_us = int(time.time() * 1_000_000)
        chosen = event_pb2.Event(
            event_id=str(uuid.uuid4()),
            type=event_pb2.EVENT_TYPE_TRACK,
            name="Plan Chosen",
            channel=event_pb2.CHANNEL_WEB,
            person_id="p",
            timestamp=to_timestamp(from_micros(now_us - 1_000)),
            received_at=to_timestamp(from_micros(now_us - 1_000)),
        )
        chosen.properties.update({"plan": "aa"})
        spec = _counting(r"(a)\1")  # `re` matches "aa"; RE2 refuses the backreference
        every = spec.features.add(name="every_plan", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
        every.events.event_name = "Plan Chosen"
        changes = [
            (1, "t", "spec", {"spec": _logged(spec), "since_us": 0}),
            (2, "t", "events", [_logged(chosen)]),
        ]
        assert features.restore({}, lambda state, document: None, changes) == 2
        [(_, tenant)] = features.tenants()
        [registered] = tenant.specs.values()
        assert tenant.state.values(registered.compiled, "p", now_us) == [
            None,
            1,
        ]  # none matched, one observed
    finally:
        features.close()


def _later_than(bound: str) -> feature_pb2.FeatureSpec:
    """One feature: how many `Paid` events are due after `bound`."""
    return _one_filter("Paid", "properties.due", analytics_pb2.FILTER_OPERATOR_GREATER_THAN, bound)


@pytest.mark.parametrize(
    "bound",
    [
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "\u0662\u0660\u0662\u0666-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z\n",
    ],
    ids=["february 30", "24 o'clock", "arabic-indic digits", "a final newline"],
)
def test_the_compiler_refuses_a_time_bound_journeys_refuses(bound: str) -> None:
    """The bound is read as journeys' store reads it (wayline.common.filter_times): these passed the
    compiler's own looser pattern, and the online matcher then compared every event's time with None (a
    TypeError)."""
    assert _refusal(_later_than(bound)) == {VALUE: "must be a number or an RFC 3339 time (quoted)"}
    # Registered before the check: restored, its filter holds for no event rather than raising.
    compiled = compile_spec(_later_than(bound), stored=True)
    matcher = compile_matcher(
        EventMatcher(
            name="Paid", filters=(PropertyFilter("properties.due", FilterOperator.GREATER_THAN, (bound,)),)
        )
    )
    event = ObservedEvent("e", "p", 1, 1, name="Paid", properties={"due": "2026-03-01T00:00:00Z"})
    assert compiled.features
    assert matcher(event) is False


def test_a_feature_name_ending_in_a_newline_is_refused_unless_registered_before() -> None:
    """Names were matched with `match`, whose `$` also matches before a final newline (ADR 78)."""
    spec = _counting("pro")
    spec.features[0].name = "plans\n"
    assert _refusal(spec) == {
        "manifest.feature_spec.features[0].name": "must be lower_snake_case, e.g. orders_30d"
    }
    assert [f.name for f in compile_spec(spec, stored=True).features] == ["plans\n"]
