"""The property filters' budget (analytics.proto, PropertyFilter): counted over the whole request, wherever
the filters sit, and refused at the first filter or value past it with that filter's path."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from wayline.common.errors import InvalidArgument
from wayline.common.filter_budget import MAX_FILTER_VALUES, MAX_FILTERS, check_filter_budget, holds_filters
from wayline.ingest.v1 import ingest_service_pb2
from wayline.journeys.v1 import analytics_pb2, funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2


def _filters(count: int, values: int = 1) -> list[analytics_pb2.PropertyFilter]:
    return [
        analytics_pb2.PropertyFilter(
            property=f"properties.k{i}",
            operator=analytics_pb2.FILTER_OPERATOR_EQUALS,
            values=[struct_pb2.Value(string_value=f"v{j}") for j in range(values)],
        )
        for i in range(count)
    ]


def _funnel(per_step: list[int], values: int = 1, person_filters: int = 0) -> pb.QueryFunnelRequest:
    steps = [
        funnel_pb2.FunnelStep(
            event=analytics_pb2.EventMatcher(event_name="A"),
            any_of=[analytics_pb2.EventMatcher(event_name="B", property_filters=_filters(count, values))],
        )
        for count in per_step
    ]
    population = analytics_pb2.Population(person_filters=_filters(person_filters))
    return pb.QueryFunnelRequest(steps=steps, population=population)


def _refusal(request: pb.QueryFunnelRequest) -> str:
    with pytest.raises(InvalidArgument) as raised:
        check_filter_budget(request)
    (violation,) = raised.value.violations
    return violation.field


def test_filters_are_counted_across_the_whole_request() -> None:
    check_filter_budget(_funnel([100, 90], person_filters=MAX_FILTERS - 190))
    assert _refusal(_funnel([100, 90], person_filters=MAX_FILTERS - 189)) == "population.person_filters[10]"
    assert _refusal(_funnel([100, 101])) == "steps[1].any_of[0].property_filters[100]"


def test_values_are_counted_across_the_whole_request() -> None:
    per_filter = MAX_FILTER_VALUES // 4
    check_filter_budget(_funnel([2, 2], values=per_filter))
    assert _refusal(_funnel([2, 3], values=per_filter)) == "steps[1].any_of[0].property_filters[2].values"


def test_only_request_types_that_can_hold_a_filter_are_walked() -> None:
    assert holds_filters(pb.QueryFunnelRequest.DESCRIPTOR)
    assert holds_filters(orchestrator_service_pb2.CreateFlowRequest.DESCRIPTOR)
    assert not holds_filters(pb.WriteEventsRequest.DESCRIPTOR)
    assert not holds_filters(ingest_service_pb2.TrackRequest.DESCRIPTOR)
