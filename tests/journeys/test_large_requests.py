"""Requests as large as the contract allows reach the store and answer; larger ones are the caller's error.
Before, ClickHouse's parser limits for typed queries (256 KiB, 50,000 syntax-tree elements) made a funnel
whose filter values ran past them, or a population of 150 person filters, an internal error."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from tests.journeys.conftest import Journeys, field_violations, new_person, stored_event
from wayline.common.filter_budget import MAX_FILTER_VALUES
from wayline.journeys.v1 import analytics_pb2, funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline_journeys.analytics_converters import MAX_POPULATION_PERSON_FILTERS


def _funnel(
    values: list[str],
    person_filters: int = 0,
    operator: analytics_pb2.FilterOperator.ValueType = analytics_pb2.FILTER_OPERATOR_EQUALS,
) -> pb.QueryFunnelRequest:
    wanted = analytics_pb2.PropertyFilter(
        property="properties.sku",
        operator=operator,
        values=[struct_pb2.Value(string_value=v) for v in values],
    )
    traits = [
        analytics_pb2.PropertyFilter(
            property=f"person.trait_{i}",
            operator=analytics_pb2.FILTER_OPERATOR_IS_NOT_SET,
        )
        for i in range(person_filters)
    ]
    return pb.QueryFunnelRequest(
        steps=[
            funnel_pb2.FunnelStep(
                event=analytics_pb2.EventMatcher(event_name="Product Viewed", property_filters=[wanted])
            ),
            funnel_pb2.FunnelStep(event=analytics_pb2.EventMatcher(event_name="Order Completed")),
        ],
        population=analytics_pb2.Population(person_filters=traits),
    )


@pytest.mark.parametrize(
    "operator", [analytics_pb2.FILTER_OPERATOR_EQUALS, analytics_pb2.FILTER_OPERATOR_CONTAINS]
)
def test_a_funnel_with_every_filter_value_the_budget_allows_answers(
    journeys: Journeys, operator: analytics_pb2.FilterOperator.ValueType
) -> None:
    """2,000 values ORed one by one took chDB 16 s to plan for three events; now one IN or one arrayExists."""
    values = [f"sku-{i:05d}-" + "x" * 190 for i in range(MAX_FILTER_VALUES)]  # 400 KiB of values
    buyer, browser = new_person(), new_person()
    viewed = stored_event(buyer, ("anonymous_id", buyer))
    equals = operator == analytics_pb2.FILTER_OPERATOR_EQUALS
    viewed.properties.update({"sku": values[-1] if equals else f"[{values[-1]}]"})  # contains the last value
    ordered = stored_event(buyer, ("anonymous_id", buyer), minute=1)
    ordered.name = "Order Completed"
    other = stored_event(browser, ("anonymous_id", browser))
    other.properties.update({"sku": "not-listed"})
    journeys.write(viewed, ordered, other)
    response = journeys.stub.QueryFunnel(
        _funnel(values, operator=operator), metadata=journeys.metadata, timeout=60
    )
    (series,) = response.series
    assert [step.count for step in series.steps] == [1, 1]


def test_a_population_past_its_person_filters_is_the_callers_error(journeys: Journeys) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        journeys.stub.QueryFunnel(
            _funnel(["a"], person_filters=MAX_POPULATION_PERSON_FILTERS + 1),
            metadata=journeys.metadata,
            timeout=60,
        )
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(raised.value) == {"population.person_filters": "OUT_OF_RANGE"}
