"""ExportDecisions (time order, filters, batches, feedback attached, tenant scope), the canary judge's
counts from the journey store, and the ML export training on real decision traces and their feedback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from tests.decision.traces.conftest import DecisionUnderTest, make_trace, metadata, wait_stored
from wayline.decision.v1 import decision_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, feature_pb2
from wayline.journeys.v1 import journeys_service_pb2 as jpb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_decision.serving.judge import ArmCounts, JudgePolicy, Verdict, judge
from wayline_decision.serving.judge_counts import canary_counts
from wayline_ml.store_training import FEEDBACK_LOG, training_table_from_export

SECOND = 1_000_000
DAY = 86_400 * SECOND


def _range(start_us: int | None = None, end_us: int | None = None) -> event_pb2.TimeRange:
    found = event_pb2.TimeRange()
    if start_us is not None:
        found.start.FromMicroseconds(start_us)
    if end_us is not None:
        found.end.FromMicroseconds(end_us)
    return found


def export(decision: DecisionUnderTest, tenant: str, **request: Any) -> list[list[decision_pb2.Decision]]:
    stream = decision.stub.ExportDecisions(
        pb.ExportDecisionsRequest(**request),
        metadata=metadata(tenant),
        timeout=30,
    )
    return [list(response.decisions) for response in stream]


def conversion(decision: DecisionUnderTest, tenant: str, trace: decision_pb2.Decision, units: int) -> None:
    request = pb.FeedbackRequest(
        decision_id=trace.decision_id,
        action_id=trace.chosen_action_id,
        outcome=decision_pb2.FEEDBACK_OUTCOME_CONVERSION,
        value=event_pb2.Money(currency_code="EUR", units=units),
    )
    request.time.FromMicroseconds(trace.decide_time.ToMicroseconds() + 3600 * SECOND)
    decision.stub.Feedback(request, metadata=metadata(tenant), timeout=10)


def test_export_decisions_in_time_order_with_filters_and_feedback(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
) -> None:
    start = time.time_ns() // 1000 - 3600 * SECOND
    someone = person()
    # Recorded out of time order, on two models.
    traces = [
        make_trace(someone, decide_us=start + i * SECOND, model="models/a" if i % 2 == 0 else "models/b")
        for i in (3, 0, 4, 1, 2)
    ]
    for trace in traces:
        decision.traces.sink.record(tenant, trace)
    conversion(decision, tenant, traces[0], 30)
    for trace in traces:
        wait_stored(journeys, tenant, trace.decision_id, events=2 if trace is traces[0] else 1)
    in_order = sorted(traces, key=lambda t: t.decide_time.ToMicroseconds())

    batches = export(decision, tenant, time_range=_range(start, start + 10 * SECOND), batch_size=2)
    assert [len(b) for b in batches] == [2, 2, 1]
    exported = [d for b in batches for d in b]
    assert [d.decision_id for d in exported] == [t.decision_id for t in in_order]
    with_feedback = next(d for d in exported if d.decision_id == traces[0].decision_id)
    assert [(f.outcome, f.value.units) for f in with_feedback.feedback] == [
        (decision_pb2.FEEDBACK_OUTCOME_CONVERSION, 30)
    ]
    assert exported[0].candidates == in_order[0].candidates

    only_a = [d for b in export(decision, tenant, model="models/a") for d in b]
    assert [d.decision_id for d in only_a] == [t.decision_id for t in in_order if t.model == "models/a"]
    window = [
        d for b in export(decision, tenant, time_range=_range(start + SECOND, start + 3 * SECOND)) for d in b
    ]
    assert [d.decision_id for d in window] == [t.decision_id for t in in_order[1:3]]
    assert export(decision, f"{tenant}-other") == []


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"batch_size": 5000}, "batch_size"),
        ({"model": "next-best-offer"}, "model"),
        ({"time_range": _range(2 * SECOND, SECOND)}, "time_range"),
        # Bounds outside Timestamp's range used to fail converting to nanoseconds: INTERNAL.
        ({"time_range": event_pb2.TimeRange(end=Timestamp(nanos=-1))}, "time_range.end.nanos"),
        ({"time_range": event_pb2.TimeRange(start=Timestamp(seconds=2**62))}, "time_range.start"),
        # Apart by less than the microsecond the journey store keeps: it refused the range, which reached the
        # caller as INTERNAL (a peer's refusal of what this service forwarded).
        ({"time_range": event_pb2.TimeRange(start=Timestamp(), end=Timestamp(nanos=999))}, "time_range"),
    ],
)
def test_export_decisions_refuses_a_malformed_request(
    decision: DecisionUnderTest, tenant: str, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        export(decision, tenant, **request_fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (raised.value.details() or "") or field in str(raised.value.trailing_metadata())


def test_canary_counts_from_the_store_per_arm_since_the_canary_started(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
) -> None:
    since = time.time_ns() // 1000 - 600 * SECOND
    someone = person()
    stable = [make_trace(someone, decide_us=since + i * SECOND, version="v1") for i in range(4)]
    canary = [
        make_trace(someone, decide_us=since + i * SECOND, version="v2", arm=decision_pb2.MODEL_ARM_CANARY)
        for i in range(3)
    ]
    before = make_trace(someone, decide_us=since - SECOND, version="v2", arm=decision_pb2.MODEL_ARM_CANARY)
    elsewhere = make_trace(someone, decide_us=since + SECOND, model="models/other", version="v1")
    for trace in [*stable, *canary, before, elsewhere]:
        decision.traces.sink.record(tenant, trace)
    for converted, units in ((stable[0], 10), (stable[0], 12), (stable[1], 5), (canary[2], 7), (before, 1)):
        request = pb.FeedbackRequest(
            decision_id=converted.decision_id,
            action_id="discount-10",
            outcome=decision_pb2.FEEDBACK_OUTCOME_CONVERSION,
            value=event_pb2.Money(currency_code="EUR", units=units),
            feedback_id=f"order-{units}",  # two orders on one decision: it still counts once
        )
        decision.stub.Feedback(request, metadata=metadata(tenant), timeout=10)
    decision.stub.Feedback(
        pb.FeedbackRequest(
            decision_id=canary[0].decision_id,
            action_id="discount-10",
            outcome=decision_pb2.FEEDBACK_OUTCOME_CLICK,
        ),
        metadata=metadata(tenant),
        timeout=10,
    )
    for trace, events in (
        (stable[0], 3),
        (stable[1], 2),
        (canary[2], 2),
        (canary[0], 2),
        (before, 2),
        (elsewhere, 1),
    ):
        wait_stored(journeys, tenant, trace.decision_id, events=events)
    for trace in (stable[2], stable[3], canary[1]):
        wait_stored(journeys, tenant, trace.decision_id)
    counts = canary_counts(
        decision.traces.journeys,
        tenant,
        "next-best-offer",
        stable_version="v1",
        canary_version="v2",
        since_us=since,
    )
    assert (counts.stable, counts.canary) == (ArmCounts(4, 2), ArmCounts(3, 1))
    assert judge(counts, JudgePolicy(min_decisions=1000)).verdict is Verdict.WAIT


def test_ml_export_trains_on_logged_decisions_with_feedback_as_the_label(
    decision: DecisionUnderTest,
    tenant: str,
    person: Callable[[], str],
    journeys: journeys_grpc.JourneyServiceStub,
) -> None:
    """`wayline ml export`'s reader over real traces: one row per decision that chose an action (the holdout
    decision is skipped, not refused), the label the conversion's value."""
    decided = time.time_ns() // 1000 - 3 * DAY  # the label's two-day horizon has passed
    someone = person()
    converted = make_trace(someone, decide_us=decided)
    idle = make_trace(someone, decide_us=decided + SECOND)
    holdout = make_trace(someone, decide_us=decided + 2 * SECOND, holdout=True)
    for trace in (converted, idle, holdout):
        decision.traces.sink.record(tenant, trace)
    conversion(decision, tenant, converted, 42)
    wait_stored(journeys, tenant, converted.decision_id, events=2)
    for trace in (idle, holdout):
        wait_stored(journeys, tenant, trace.decision_id)
    spec = feature_pb2.FeatureSpec(
        name="decisions",
        version="1",
        features=[
            feature_pb2.FeatureDefinition(
                name="decisions_before",
                aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT,
                events=analytics_pb2.EventMatcher(event_name="Decision Logged"),
                default_value=struct_pb2.Value(number_value=0),
            )
        ],
    )

    def call(request: jpb.ExportTrainingSetRequest) -> Iterator[jpb.ExportTrainingSetResponse]:
        stream: Iterable[jpb.ExportTrainingSetResponse] = journeys.ExportTrainingSet(
            request, metadata=metadata(tenant), timeout=60
        )
        yield from stream

    table, ids = training_table_from_export(
        call, spec, ("discount-10", "free-shipping", "email-winback"), FEEDBACK_LOG
    )
    assert ids == [converted.decision_id, idle.decision_id]
    assert table.value.tolist() == [42.0, 0.0]
    assert table.propensity.tolist() == [0.9, 0.9]
