"""`wayline ml clv` end to end over the real suite (gateway, ingest, identity, journeys on free ports):
purchases drawn from the models go in through the gateway, the job reads their lifetime summaries back, fits,
and writes each person's predictions as identify traits; the traits land as person properties that a feature
and a segment read, and a second run of the same fit adds no event."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest
from google.protobuf import struct_pb2
from typer.testing import CliRunner

from tests.conftest import API_KEY
from wayline.client import Client, money, track_event
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2 as analytics
from wayline.journeys.v1 import condition_pb2 as condition
from wayline.journeys.v1 import feature_pb2 as feature
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.journeys.v1 import segment_pb2
from wayline_cli.ml import ml_app
from wayline_ml.clv.bgnbd import BgNbdParams
from wayline_ml.clv.gamma_gamma import GammaGammaParams
from wayline_ml.clv.run import ClvJob, ClvReport, run_clv
from wayline_ml.clv.simulate import simulate
from wayline_ml.clv.store import SummaryQuery

Auth = tuple[tuple[str, str], ...]
pytestmark = pytest.mark.slow
CUSTOMERS = 30


def _eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def _purchases(namespace: str, order: str, as_of: datetime) -> list[event_pb2.Event]:
    """A small shop's orders over the 180 days before `as_of`, one user id per customer."""
    shop = simulate(
        CUSTOMERS,
        180,
        BgNbdParams(r=2.0, alpha=40.0, a=0.8, b=2.5),
        GammaGammaParams(6.0, 4.0, 200.0),
        seed=4,
    )
    start = as_of - timedelta(days=181)
    return [
        track_event(
            order,
            identifiers={"user_id": f"{namespace}-{customer}"},
            channel="web",
            timestamp=start + timedelta(days=float(at)),
            revenue=money(f"{value:.2f}", "EUR"),
        )
        for customer, at, value in zip(shop.customer, shop.time, shop.value, strict=True)
    ]


def _person_property_spec(fit_trait: str, value_trait: str) -> feature.FeatureSpec:
    f = feature.FeatureDefinition
    return feature.FeatureSpec(
        name="clv-test",
        version="1",
        features=[
            f(
                name="fit",
                aggregation=feature.FEATURE_AGGREGATION_PERSON_PROPERTY,
                property=f"person.{fit_trait}",
                value_type=feature.FEATURE_VALUE_TYPE_CATEGORY,
                categories=["other"],
            ),
            f(
                name="value_365d",
                aggregation=feature.FEATURE_AGGREGATION_PERSON_PROPERTY,
                property=f"person.{value_trait}",
                value_type=feature.FEATURE_VALUE_TYPE_FLOAT,
            ),
        ],
    )


def _timeline_ids(journeys: journeys_grpc.JourneyServiceStub, auth: Auth, user: str) -> set[str]:
    request = journeys_pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="user_id", value=user), page_size=1000
    )
    return {e.event_id for e in journeys.GetTimeline(request, metadata=auth, timeout=10).events}


def _clv_identifies(
    journeys: journeys_grpc.JourneyServiceStub, auth: Auth, user: str
) -> tuple[str, list[str]]:
    """The person holding `user` and the ids of the identify events on their timeline."""
    request = journeys_pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="user_id", value=user), page_size=1000
    )
    events = journeys.GetTimeline(request, metadata=auth, timeout=10).events
    return events[0].person_id, [e.event_id for e in events if e.type == event_pb2.EVENT_TYPE_IDENTIFY]


def test_clv_writes_traits_that_features_and_segments_read_and_a_rerun_adds_none(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth
) -> None:
    namespace = f"clv{uuid.uuid4().hex[:8]}"
    order = f"Order Completed {namespace}"  # this test's purchases only, in a store other tests share
    as_of = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    events = _purchases(namespace, order, as_of)
    with Client(gateway_server.address, API_KEY, secure=False) as client:
        assert not client.send(events, backfill=True).rejections
    journeys = journeys_grpc.JourneyServiceStub(gateway_channel)
    query = SummaryQuery(currency="EUR", as_of=as_of, purchase_event_names=(order,), page_size=7)

    def stored_purchases() -> int:
        everything = SummaryQuery(currency="EUR", as_of=as_of, purchase_event_names=(order,), page_size=100)
        page = journeys.GetCustomerValue(everything.request(), metadata=auth, timeout=10)
        return sum(v.purchase_count for v in page.values)

    _eventually(lambda: stored_purchases() == len(events), "every purchase is stored")

    job = ClvJob(gateway=gateway_server.address, api_key=API_KEY, query=query)
    report = run_clv(job)
    persons = report.customers.person_ids
    assert len(persons) == CUSTOMERS  # read over 5 pages of 7
    assert report.customers.summaries.repeat_buyers >= 2
    assert report.written is not None
    assert (report.written.sent, report.written.accepted, report.written.rejected) == (
        CUSTOMERS,
        CUSTOMERS,
        0,
    )
    assert report.without_identifier == 0

    # The traits are person properties: a PERSON_PROPERTY feature reads each person's own values.
    spec = _person_property_spec("clv_fit", "clv_expected_value_365d")
    values = report.predictions.expected_value[365]

    def features(index: int) -> dict[str, struct_pb2.Value]:
        request = journeys_pb.GetProfileFeaturesRequest(
            person=event_pb2.PersonRef(person_id=persons[index]), spec=spec
        )
        return dict(journeys.GetProfileFeatures(request, metadata=auth, timeout=10).features.values)

    for index in (0, len(persons) // 2, len(persons) - 1):
        _eventually(lambda i=index: features(i)["fit"].string_value == report.key.fit_id, "the traits land")  # type: ignore[misc]
        assert features(index)["value_365d"].number_value == pytest.approx(round(float(values[index]), 2))

    # ... and a segment's condition: the persons of this fit whose 365-day value is above the median.
    threshold = float(np.median(np.round(values, 2)))
    expected = {p for p, v in zip(persons, np.round(values, 2), strict=True) if v > threshold}
    assert 0 < len(expected) < CUSTOMERS
    members = _segment_members(journeys, auth, namespace, report, threshold)
    assert members == expected

    # A re-run of the same fit sends the same events again: each person still has one CLV identify event.
    again = run_clv(job)
    assert again.key.fit_id == report.key.fit_id
    assert again.written is not None
    assert again.written.rejected == 0
    # Ingest's spool delivers in order: once an event sent after the re-run is stored, so would a duplicate.
    marker = track_event("Marker", identifiers={"user_id": f"{namespace}-0"}, channel="web")
    with Client(gateway_server.address, API_KEY, secure=False) as client:
        client.send([marker])
    _eventually(
        lambda: marker.event_id in _timeline_ids(journeys, auth, f"{namespace}-0"), "the marker is stored"
    )
    for customer in range(CUSTOMERS):
        person, ids = _clv_identifies(journeys, auth, f"{namespace}-{customer}")
        assert ids == [report.key.event_id(person)], customer

    # The command: the same fit, shown without writing.
    args = ["clv", "--gateway", gateway_server.address, "--api-key", API_KEY, "--purchase-event", order]
    shown = CliRunner().invoke(ml_app, [*args, "--as-of", as_of.strftime("%Y-%m-%dT%H:%M:%S"), "--no-write"])
    assert shown.exit_code == 0, shown.output
    assert report.key.fit_id in shown.output
    assert f"{CUSTOMERS} (" in shown.output  # customers valued (repeat buyers)
    assert "none (--no-write)" in shown.output


def test_clv_command_refuses_to_fit_without_repeat_buyers(gateway_server: Server) -> None:
    args = ["clv", "--gateway", gateway_server.address, "--api-key", API_KEY]
    nobody = CliRunner().invoke(ml_app, [*args, "--purchase-event", f"Never Sent {uuid.uuid4().hex}"])
    assert nobody.exit_code == 1, nobody.output
    assert "cannot fit" in nobody.output
    wrong = CliRunner().invoke(ml_app, [*args, "--currency", "euro"])
    assert wrong.exit_code == 2


def _segment_members(
    journeys: journeys_grpc.JourneyServiceStub,
    auth: Auth,
    namespace: str,
    report: ClvReport,
    threshold: float,
) -> set[str]:
    def holds(
        path: str, operator: analytics.FilterOperator.ValueType, value: struct_pb2.Value
    ) -> condition.PersonCondition:
        return condition.PersonCondition(
            person_property=analytics.PropertyFilter(property=path, operator=operator, values=[value])
        )

    created = journeys.CreateSegment(
        journeys_pb.CreateSegmentRequest(
            segment_id=f"{namespace}-valuable",
            segment=segment_pb2.Segment(
                display_name="Valuable next year",
                condition=condition.PersonCondition(
                    group=condition.ConditionGroup(
                        operator=condition.LOGICAL_OPERATOR_AND,
                        conditions=[
                            holds(
                                "person.clv_fit",
                                analytics.FILTER_OPERATOR_EQUALS,
                                struct_pb2.Value(string_value=report.key.fit_id),
                            ),
                            holds(
                                "person.clv_expected_value_365d",
                                analytics.FILTER_OPERATOR_GREATER_THAN,
                                struct_pb2.Value(number_value=threshold),
                            ),
                        ],
                    )
                ),
            ),
        ),
        metadata=auth,
        timeout=10,
    ).segment
    members: set[str] = set()

    def ready() -> bool:
        page = journeys.ListSegmentMembers(
            journeys_pb.ListSegmentMembersRequest(segment=created.name, page_size=1000),
            metadata=auth,
            timeout=10,
        )
        members.clear()
        members.update(m.person_id for m in page.members)
        return page.status.state == segment_pb2.SEGMENT_STATE_READY

    _eventually(ready, "the segment is built")
    return members
