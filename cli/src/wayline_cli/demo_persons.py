"""The demo's person-level journeys steps: lifecycle stages, a segment kept current as events arrive (and a
funnel of its members beside everyone else), and one customer's feature vector."""

from __future__ import annotations

import time

from google.protobuf import struct_pb2

from wayline.common.timestamps import to_datetime
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2 as analytics
from wayline.journeys.v1 import condition_pb2 as condition
from wayline.journeys.v1 import feature_pb2 as feature
from wayline.journeys.v1 import funnel_pb2 as funnel_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import lifecycle_stage_pb2 as stage_pb
from wayline.journeys.v1 import segment_pb2
from wayline_cli import demo
from wayline_cli.demo_reading import TIMEOUT, Reader, days

__all__ = ["show_features", "show_lifecycle", "show_segment", "show_unhappy_segment", "wait_fresh"]

SEGMENT_ID = "recent-buyers"
UNHAPPY_SEGMENT_ID = "unhappy-customers"
# The channels as events store them (CHANNEL_WEB → "web"): the categories of a channel feature.
_CHANNELS = tuple(
    name.removeprefix("CHANNEL_").lower()
    for name, value in event_pb2.Channel.items()
    if value != event_pb2.CHANNEL_UNSPECIFIED
)


def _stage(value: int) -> str:
    return stage_pb.LifecycleStage.Name(value).removeprefix("LIFECYCLE_STAGE_").lower()  # type: ignore[arg-type]


def show_lifecycle(reader: Reader) -> None:
    persons = [
        event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=c.user_id))
        for c in demo.CUSTOMERS
    ]
    request = journeys_pb.GetLifecycleStagesRequest(persons=persons, include_distribution=True)
    response = reader.stub.GetLifecycleStages(request, metadata=reader.auth, timeout=TIMEOUT)
    model = f"revision {response.model.revision}" if response.model.revision else "the built-in default"
    table = reader.table(
        "GetLifecycleStages",
        f"now, with {model} model: {response.population_size} persons",
        "stage",
        "persons",
        "share",
        "of the demo's customers",
    )
    for count in response.distribution:
        who = [reader.name(p.person_id) for p in response.persons if p.stage == count.stage]
        table.add_row(_stage(count.stage), str(count.count), f"{count.share:.0%}", ", ".join(who))
    reader.console.print(table)


def show_segment(reader: Reader) -> None:
    recent_order = condition.EventCountCondition(
        event=analytics.EventMatcher(event_name="Order Completed"),
        comparison=condition.COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL,
        count=1,
        window=days(30),
    )
    created = reader.stub.CreateSegment(
        journeys_pb.CreateSegmentRequest(
            segment_id=SEGMENT_ID,
            segment=segment_pb2.Segment(
                display_name="Recent buyers",
                description="At least one order in the last 30 days.",
                condition=condition.PersonCondition(event_count=recent_order),
            ),
        ),
        metadata=reader.auth,
        timeout=TIMEOUT,
    ).segment
    status = wait_fresh(reader, created)
    lag = (to_datetime(status.data_as_of) - to_datetime(created.create_time)).total_seconds()
    members = reader.stub.ListSegmentMembers(
        journeys_pb.ListSegmentMembersRequest(segment=created.name, page_size=100),
        metadata=reader.auth,
        timeout=TIMEOUT,
    )
    state = segment_pb2.SegmentState.Name(status.state).removeprefix("SEGMENT_STATE_").lower()
    reader.console.print(
        f"[bold]CreateSegment[/bold] {created.name} (at least 1 Order Completed in the last 30 days): "
        f"{state}, its data as of {lag:.1f} s after its creation"
    )
    reader.console.print(
        f"[bold]ListSegmentMembers[/bold]: {members.total_size} members: "
        f"{reader.names_of(m.person_id for m in members.members)}"
    )
    if not members.members:
        return
    ids = [m.person_id for m in members.members]
    person = next((p for p in ids if p in reader.names), ids[0])  # a named customer, when one is in it
    held = reader.stub.GetSegmentMemberships(
        journeys_pb.GetSegmentMembershipsRequest(person=event_pb2.PersonRef(person_id=person)),
        metadata=reader.auth,
        timeout=TIMEOUT,
    )
    segments = ", ".join(
        f"{m.segment} (entered {to_datetime(m.enter_time):%H:%M:%S} UTC)" for m in held.memberships
    )
    reader.console.print(
        f"[bold]GetSegmentMemberships[/bold]: {reader.name(person)} is in {segments or 'no segment'}"
    )
    _funnel_by_segment(reader, created.name)


def show_unhappy_segment(reader: Reader) -> None:
    """An audience made of sentiment: the persons whose texts (chat messages, calls) ingest scored at a mean
    of -0.05 or less over the last 30 days, the start of a service-recovery flow."""
    unhappy = condition.EventAggregateCondition(
        aggregation=condition.EVENT_AGGREGATION_AVERAGE,
        property="sentiment_score",
        comparison=condition.COMPARISON_OPERATOR_LESS_THAN_OR_EQUAL,
        threshold=-0.05,
        window=days(30),
    )
    created = reader.stub.CreateSegment(
        journeys_pb.CreateSegmentRequest(
            segment_id=UNHAPPY_SEGMENT_ID,
            segment=segment_pb2.Segment(
                display_name="Unhappy customers",
                description="Their chats and calls of the last 30 days averaged a sentiment of -0.05 or less",
                condition=condition.PersonCondition(event_aggregate=unhappy),
            ),
        ),
        metadata=reader.auth,
        timeout=TIMEOUT,
    ).segment
    wait_fresh(reader, created)
    members = reader.stub.ListSegmentMembers(
        journeys_pb.ListSegmentMembersRequest(segment=created.name, page_size=100),
        metadata=reader.auth,
        timeout=TIMEOUT,
    )
    reader.console.print(
        f"[bold]CreateSegment[/bold] {created.name} (mean sentiment of their chats and calls in the last 30 "
        f"days at most -0.05): {members.total_size} members: "
        f"{reader.names_of(m.person_id for m in members.members)}"
    )


def _funnel_by_segment(reader: Reader, segment: str) -> None:
    """The segment's members beside everyone else in one funnel: a breakdown by segment membership."""
    steps = ("Product Viewed", "Order Completed")
    request = journeys_pb.QueryFunnelRequest(
        steps=[funnel_pb.FunnelStep(event=analytics.EventMatcher(event_name=n)) for n in steps],
        conversion_window=days(30),
        breakdown=analytics.Breakdown(dimension=analytics.BREAKDOWN_DIMENSION_SEGMENT, segments=[segment]),
    )
    series = reader.stub.QueryFunnel(request, metadata=reader.auth, timeout=TIMEOUT).series
    table = reader.table(
        "QueryFunnel",
        "by segment membership, 30-day window: its members beside everyone else",
        "series",
        *steps,
        "conversion",
    )
    for one in series:
        value = one.breakdown_value
        label = "in no listed segment" if value.missing else value.value
        counts = [str(step.count) for step in one.steps]
        table.add_row(label, *counts, f"{one.steps[-1].overall_conversion_rate:.0%}")
    reader.console.print(table)


def wait_fresh(reader: Reader, created: segment_pb2.Segment) -> segment_pb2.SegmentStatus:
    """Membership is built in the background: wait until it is ready and reflects every event stored
    before the segment was created."""
    deadline = time.monotonic() + 30
    request = journeys_pb.GetSegmentRequest(name=created.name)
    while True:
        status = reader.stub.GetSegment(request, metadata=reader.auth, timeout=TIMEOUT).segment.status
        fresh = status.HasField("data_as_of") and (
            to_datetime(status.data_as_of) > to_datetime(created.create_time)
        )
        if status.state == segment_pb2.SEGMENT_STATE_READY and fresh:
            return status
        if status.state == segment_pb2.SEGMENT_STATE_FAILED or time.monotonic() > deadline:
            raise RuntimeError(
                f"segment {created.name} is not fresh within 30 s: state "
                f"{segment_pb2.SegmentState.Name(status.state)}, {status.error_message or 'no error'}"
            )
        time.sleep(0.2)


def show_features(reader: Reader) -> None:
    customer = demo.CUSTOMERS[0]
    person = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=customer.user_id))
    spec = _shopper_spec()
    vector = reader.stub.GetProfileFeatures(
        journeys_pb.GetProfileFeaturesRequest(person=person, spec=spec),
        metadata=reader.auth,
        timeout=TIMEOUT,
    ).features
    table = reader.table(
        "GetProfileFeatures",
        f"spec {vector.spec_name} v{vector.spec_version} for {customer.user_id}, as of "
        f"{to_datetime(vector.as_of):%H:%M:%S} UTC (what a model would see)",
        "feature",
        "value",
        "definition",
    )
    for definition in spec.features:
        table.add_row(definition.name, _feature(vector.values[definition.name]), definition.description)
    reader.console.print(table)


def _shopper_spec() -> feature.FeatureSpec:
    orders = analytics.EventMatcher(event_name="Order Completed")
    month = days(30)
    zero = struct_pb2.Value(number_value=0)  # a count with nothing to count is 0 to a model, not null
    f = feature.FeatureDefinition
    return feature.FeatureSpec(
        name="demo-shopper",
        version="2",
        features=[
            f(
                name="events_30d",
                aggregation=feature.FEATURE_AGGREGATION_COUNT,
                window=month,
                default_value=zero,
                description="events in the last 30 days",
            ),
            f(
                name="active_days_30d",
                aggregation=feature.FEATURE_AGGREGATION_ACTIVE_DAYS,
                window=month,
                default_value=zero,
                description="days with an event in the last 30 days",
            ),
            f(
                name="orders",
                aggregation=feature.FEATURE_AGGREGATION_COUNT,
                events=orders,
                default_value=zero,
                description="Order Completed events, all history",
            ),
            f(
                name="revenue_sum",
                aggregation=feature.FEATURE_AGGREGATION_SUM,
                events=orders,
                property="revenue",
                default_value=zero,
                description="sum of the orders' revenue",
            ),
            f(
                name="days_since_last_event",
                aggregation=feature.FEATURE_AGGREGATION_DAYS_SINCE_LAST,
                description="days since the latest event",
            ),
            f(
                name="last_channel",
                aggregation=feature.FEATURE_AGGREGATION_LAST_VALUE,
                property="channel",
                value_type=feature.FEATURE_VALUE_TYPE_CATEGORY,
                categories=_CHANNELS,
                description="channel of the latest event (a category: its index among the channels)",
            ),
        ],
    )


def _feature(value: struct_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return f"{round(value.number_value, 2):g}"
    if kind == "string_value":
        return value.string_value
    return "null" if kind in (None, "null_value") else str(value)
