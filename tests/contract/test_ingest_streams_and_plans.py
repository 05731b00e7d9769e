"""StreamEvents' protocol and tracking plans, through the gateway as a collector would call them."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from tests.conftest import INTERNAL_TOKEN, TENANT, common_settings, gateway_settings, start_server
from tests.contract.test_skeleton import Auth, reason, timeline, violations
from tests.events import make_event
from tests.wire_bytes import field
from wayline.common.errors import status_details
from wayline.common.quotas import EVENT_PACING_HEADER, EventLimit, EventPacing, format_event_pacing
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.ingest.v1 import tracking_plan_pb2 as plan_pb
from wayline_gateway.service import gateway_service
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings
from wayline_ingest.streaming import EventStream


def batch(sequence: int, user_id: str, size: int = 3) -> ingest_pb.StreamEventsRequest:
    return ingest_pb.StreamEventsRequest(sequence=sequence, events=[make_event(user_id) for _ in range(size)])


def test_stream_events_acknowledges_each_batch_in_order_within_the_window(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    requests = [batch(i, user_id) for i in range(1, 5)]
    bad = make_event(user_id)
    bad.channel = event_pb2.CHANNEL_UNSPECIFIED
    requests[2].events.append(bad)
    responses = list(
        ingest_grpc.IngestServiceStub(gateway_channel).StreamEvents(iter(requests), metadata=auth, timeout=30)
    )
    assert responses[0].sequence == 0  # the first window update
    assert responses[0].max_sequence >= 1
    acks = [r for r in responses if r.sequence]
    assert [a.sequence for a in acks] == [1, 2, 3, 4]
    assert [a.accepted_count for a in acks] == [3, 3, 3, 3]
    assert [(r.index, [v.field for v in r.violations]) for r in acks[2].rejections] == [
        (3, ["events[3].channel"])
    ]
    assert all(a.max_sequence >= a.sequence for a in acks)
    stored = timeline(gateway_channel, auth, user_id, settle=12, page_size=100).events
    assert sorted(e.event_id for e in stored) == sorted(i for a in acks for i in a.accepted_event_ids)


def test_a_batch_out_of_sequence_ends_the_stream_with_invalid_argument(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    stub = ingest_grpc.IngestServiceStub(gateway_channel)
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamEvents(iter([batch(1, user_id), batch(3, user_id)]), metadata=auth, timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(caught.value) == "SEQUENCE_OUT_OF_ORDER"
    assert violations(caught.value) == ["sequence"]


def test_a_batch_beyond_the_window_is_resource_exhausted(
    journeys_server: Server, tmp_path: Path, user_id: str
) -> None:
    """A client that ignores max_sequence and floods the server is stopped, not buffered without bound.
    With a window of one batch, the second batch arrives before the first one's fsync grants more."""
    settings = IngestSettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address="",
        stream_window_batches=1,
    )
    ingest = start_server(ingest_service(settings), settings)
    internal = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", TENANT))
    flood = [batch(sequence, user_id, size=50) for sequence in range(1, 51)]
    try:
        with grpc.insecure_channel(ingest.address) as channel, pytest.raises(grpc.RpcError) as caught:
            list(
                ingest_grpc.IngestServiceStub(channel).StreamEvents(
                    iter(flood), metadata=internal, timeout=30
                )
            )
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason(caught.value) == "STREAM_WINDOW_EXCEEDED"
    finally:
        ingest.stop(0)


def _internal_stream(
    ingest: Server, requests: list[ingest_pb.StreamEventsRequest], *extra: tuple[str, str]
) -> Iterator[ingest_pb.StreamEventsResponse]:
    metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", TENANT), *extra)
    with grpc.insecure_channel(ingest.address) as channel:
        yield from ingest_grpc.IngestServiceStub(channel).StreamEvents(
            iter(requests), metadata=metadata, timeout=30
        )


def test_a_stream_with_event_limits_is_paced_to_them_then_refused_naming_the_quota(
    ingest_server: Server, user_id: str
) -> None:
    """The gateway's data plane passes StreamEvents straight here with its caller's event quotas (ADR 106):
    each batch pays its events, waiting for them up to the stated time, as the gateway's own pacing does."""
    quota = f"tenants/{TENANT}/apiKeys/{uuid.uuid4().hex[:8]}/quota"
    pacing = format_event_pacing(EventPacing(0.3, (EventLimit(quota, 10.0, 10.0),)))
    # 10 events (the burst), 2 more (0.2 s at 10 a second: paced), then 10 (a second from empty: past the
    # 0.3 s allowed unless 0.7 s passed between batches 2 and 3, which a loaded host does not take)
    requests = [batch(1, user_id, size=10), batch(2, user_id, size=2), batch(3, user_id, size=10)]
    acked: dict[int, float] = {}  # sequence → seconds from the stream's start to its acknowledgement
    started = time.monotonic()

    def consume() -> None:
        for response in _internal_stream(ingest_server, requests, (EVENT_PACING_HEADER, pacing)):
            if response.sequence:
                acked[response.sequence] = time.monotonic() - started

    with pytest.raises(grpc.RpcError) as refused:
        consume()
    assert list(acked) == [1, 2]  # what passed is acknowledged before the refusal
    assert acked[2] >= 0.19  # batch 2 waited for its 2 events
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = status_details(refused.value)
    failures = [d for d in details if isinstance(d, error_details_pb2.QuotaFailure)]
    retries = [d for d in details if isinstance(d, error_details_pb2.RetryInfo)]
    assert failures[0].violations[0].subject == quota
    assert 0.3 < retries[0].retry_delay.ToTimedelta().total_seconds() <= 1.0


def test_a_stream_whose_event_pacing_cannot_be_read_is_refused_before_a_batch(
    ingest_server: Server, user_id: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        list(_internal_stream(ingest_server, [batch(1, user_id)], (EVENT_PACING_HEADER, "5 tenants/x/quota")))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(refused.value) == "BAD_EVENT_PACING"
    assert EVENT_PACING_HEADER in (refused.value.details() or "")


def test_an_oversized_batch_is_refused_whole_with_its_path(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    events = [make_event(user_id) for _ in range(40)]
    for event in events:
        event.text = "x" * 15_000  # 40 x 15 KB: under the event limit, over the 500 KB batch limit
    with pytest.raises(grpc.RpcError) as caught:
        ingest_grpc.IngestServiceStub(gateway_channel).TrackBatch(
            ingest_pb.TrackBatchRequest(events=events), metadata=auth, timeout=30
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == ["events"]


def test_an_event_over_32_kb_is_rejected_with_its_path(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    big = make_event(user_id)
    big.text = "y" * 40_000
    response = ingest_grpc.IngestServiceStub(gateway_channel).TrackBatch(
        ingest_pb.TrackBatchRequest(events=[make_event(user_id), big]), metadata=auth, timeout=30
    )
    assert response.accepted_count == 1
    assert [(v.field, v.reason) for v in response.rejections[0].violations] == [("events[1]", "TOO_LARGE")]


def test_history_needs_a_backfill_batch(gateway_channel: grpc.Channel, auth: Auth, user_id: str) -> None:
    from datetime import UTC, datetime

    old = make_event(user_id, at=datetime(1987, 3, 2, tzinfo=UTC))
    stub = ingest_grpc.IngestServiceStub(gateway_channel)
    live = stub.TrackBatch(ingest_pb.TrackBatchRequest(events=[old]), metadata=auth, timeout=30)
    assert [v.field for v in live.rejections[0].violations] == ["events[0].timestamp"]
    backfill = stub.TrackBatch(
        ingest_pb.TrackBatchRequest(events=[old], backfill=True), metadata=auth, timeout=30
    )
    assert backfill.accepted_count == 1
    (stored,) = timeline(gateway_channel, auth, user_id, settle=1).events
    assert stored.timestamp.ToDatetime(tzinfo=UTC).year == 1987


def test_tracking_plans_reject_or_flag_events_through_the_gateway(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    stub = ingest_grpc.IngestServiceStub(gateway_channel)
    schema = {"type": "object", "properties": {"price": {"type": "number"}}, "required": ["price"]}
    plan = stub.CreateTrackingPlan(
        ingest_pb.CreateTrackingPlanRequest(
            tracking_plan_id=f"plan-{uuid.uuid4().hex[:8]}",
            tracking_plan=plan_pb.TrackingPlan(
                display_name="Kiosk events",
                mode=plan_pb.TRACKING_PLAN_MODE_REJECT,
                channels=[event_pb2.CHANNEL_KIOSK],
                enabled=True,
                allow_unplanned_events=True,
                event_schemas=[
                    plan_pb.EventSchema(
                        event_type=event_pb2.EVENT_TYPE_TRACK,
                        event_name="Product Viewed",
                        properties_json_schema=json.dumps(schema),
                    )
                ],
            ),
        ),
        metadata=auth,
        timeout=10,
    ).tracking_plan
    try:
        bad = make_event(user_id, channel=event_pb2.CHANNEL_KIOSK)
        bad.properties.update({"price": "cheap"})
        with pytest.raises(grpc.RpcError) as caught:
            stub.Track(ingest_pb.TrackRequest(event=bad), metadata=auth, timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(caught.value) == ["event.properties.price"]

        flagged = stub.UpdateTrackingPlan(
            ingest_pb.UpdateTrackingPlanRequest(
                tracking_plan=plan_pb.TrackingPlan(name=plan.name, mode=plan_pb.TRACKING_PLAN_MODE_FLAG),
                update_mask=field_mask_pb2.FieldMask(paths=["mode"]),
            ),
            metadata=auth,
            timeout=10,
        ).tracking_plan
        assert flagged.revision == 2
        response = stub.Track(ingest_pb.TrackRequest(event=bad), metadata=auth, timeout=10)
        assert [w.field for w in response.warnings] == ["event.properties.price"]
        (stored,) = timeline(gateway_channel, auth, user_id, settle=1).events
        assert [v.field for v in stored.plan_violations] == ["properties.price"]
    finally:
        stub.UpdateTrackingPlan(
            ingest_pb.UpdateTrackingPlanRequest(
                tracking_plan=plan_pb.TrackingPlan(name=plan.name, enabled=False),
                update_mask=field_mask_pb2.FieldMask(paths=["enabled"]),
            ),
            metadata=auth,
            timeout=10,
        )


def test_a_malformed_event_is_refused_alone_and_a_malformed_request_whole(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    """Ingest reads batches from their wire bytes (ADR 13): an event the protobuf runtime cannot parse (here
    a name that is not UTF-8) is refused with its path while the others are stored; bytes that are not a
    request at all are INVALID_ARGUMENT."""
    good = [make_event(user_id), make_event(user_id)]
    broken = make_event(user_id).SerializeToString() + b"\x1a\x02\xff\xfe"  # field 3 (name), not UTF-8
    raw_events = [good[0].SerializeToString(), broken, good[1].SerializeToString()]
    request = b"".join(field(1, 2, e) for e in raw_events)  # TrackBatchRequest.events = 1
    track_batch = gateway_channel.unary_unary(
        "/wayline.ingest.v1.IngestService/TrackBatch",
        request_serializer=None,
        response_deserializer=ingest_pb.TrackBatchResponse.FromString,
    )
    response = track_batch(request, metadata=auth, timeout=30)
    assert sorted(response.accepted_event_ids) == sorted(e.event_id for e in good)
    assert [(r.index, [(v.field, v.reason) for v in r.violations]) for r in response.rejections] == [
        (1, [("events[1]", "MALFORMED")])
    ]
    # The accepted events reach the store in one spool write (the malformed one is never spooled), so
    # waiting for the good ones is enough; waiting for more than were accepted only waited out the 15 s.
    stored = timeline(gateway_channel, auth, user_id, settle=len(good), page_size=100).events
    assert sorted(e.event_id for e in stored) == sorted(e.event_id for e in good)
    with pytest.raises(grpc.RpcError) as caught:
        track_batch(b"\x0a\x7f" + b"cut short", metadata=auth, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(caught.value) == "MALFORMED_REQUEST"


@pytest.mark.parametrize(("grace", "survives"), [(10.0, True), (0.5, False)])
def test_a_stream_outlives_the_recycling_of_its_connection_within_the_grace(
    journeys_server: Server, tmp_path: Path, user_id: str, grace: float, survives: bool
) -> None:
    """Servers recycle connections (max age); calls already running get the grace to finish. A stream
    longer than age + grace is cut with UNAVAILABLE, which is why the default grace exceeds the gateway's
    longest deadline."""
    settings = IngestSettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address="",
        connection_max_age_seconds=1.0,
        connection_age_grace_seconds=grace,
    )
    ingest = start_server(ingest_service(settings), settings)
    internal = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", TENANT))

    def paced() -> Iterator[ingest_pb.StreamEventsRequest]:
        for sequence in range(1, 13):
            yield batch(sequence, user_id, size=2)
            time.sleep(0.25)  # 3 s in all: past the age (1 s) and past the short grace

    try:
        with grpc.insecure_channel(ingest.address) as channel:
            stub = ingest_grpc.IngestServiceStub(channel)
            stream = stub.StreamEvents(paced(), metadata=internal, timeout=30)
            if survives:
                assert [r.sequence for r in stream if r.sequence] == list(range(1, 13))
            else:
                with pytest.raises(grpc.RpcError) as caught:
                    list(stream)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        # Either way, no server thread keeps waiting for the stream once it has ended.
        deadline = time.monotonic() + 5
        while _threads_serving_streams() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _threads_serving_streams()
    finally:
        ingest.stop(0)


def _threads_serving_streams() -> int:
    """Threads inside EventStream.run (its response side), found in every thread's stack."""
    serving = 0
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            if frame.f_code is EventStream.run.__code__:
                serving += 1
                break
            frame = frame.f_back
    return serving


def _assert_stop_ends_the_stream_at_once(
    stopping: threading.Thread, responses: Iterator[ingest_pb.StreamEventsResponse]
) -> None:
    """Start the server's stop: the open stream ends UNAVAILABLE (SHUTTING_DOWN), and the stop is over long
    before the 60 s grace the test gave it."""
    stopping.start()
    with pytest.raises(grpc.RpcError) as ended:
        next(responses)
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(ended.value) == "SHUTTING_DOWN"
    stopping.join(30)
    assert not stopping.is_alive()


def test_a_stream_open_when_ingest_shuts_down_is_acknowledged_then_ended_unavailable_at_once(
    journeys_server: Server, tmp_path: Path, user_id: str
) -> None:
    """SIGTERM's drain ends a stream the client keeps open: the batches taken are acknowledged, then
    UNAVAILABLE (SHUTTING_DOWN) tells the client to send the rest on a new stream, and the process stops
    without waiting out its grace for the stream."""
    settings = IngestSettings(
        **{**common_settings(tmp_path), "shutdown_grace_seconds": 60.0},  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address="",
    )
    ingest = start_server(ingest_service(settings), settings)
    keep_open = threading.Event()

    def requests() -> Iterator[ingest_pb.StreamEventsRequest]:
        yield batch(1, user_id)
        keep_open.wait(60)  # a collector between two batches

    stopping = threading.Thread(target=ingest.stop)
    try:
        with grpc.insecure_channel(ingest.address) as channel:
            internal = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", TENANT))
            responses = iter(
                ingest_grpc.IngestServiceStub(channel).StreamEvents(requests(), metadata=internal, timeout=60)
            )
            acknowledged = [next(responses), next(responses)]
            assert [r.sequence for r in acknowledged] == [0, 1]
            assert acknowledged[1].accepted_count == 3
            _assert_stop_ends_the_stream_at_once(stopping, responses)
    finally:
        keep_open.set()
        if stopping.ident is None:  # failed before the stop began
            ingest.stop(0)
        else:
            stopping.join()


def test_a_stream_open_when_the_gateway_shuts_down_ends_unavailable_at_once(
    ingest_server: Server, tmp_path: Path, user_id: str
) -> None:
    """The gateway's drain ends the StreamEvents calls passing through it (ingest stays up): the client
    gets UNAVAILABLE (SHUTTING_DOWN) and the gateway stops without waiting out its grace."""
    settings = gateway_settings(tmp_path, {"ingest": ingest_server.address}, "wl_k", TENANT).model_copy(
        update={"shutdown_grace_seconds": 60.0}
    )
    gateway = start_server(gateway_service(settings), settings)
    keep_open = threading.Event()

    def requests() -> Iterator[ingest_pb.StreamEventsRequest]:
        yield batch(1, user_id)
        keep_open.wait(60)

    stopping = threading.Thread(target=gateway.stop)
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            responses = iter(
                ingest_grpc.IngestServiceStub(channel).StreamEvents(
                    requests(), metadata=(("authorization", "Bearer wl_k"),), timeout=60
                )
            )
            assert [next(responses).sequence, next(responses).sequence] == [0, 1]
            _assert_stop_ends_the_stream_at_once(stopping, responses)
    finally:
        keep_open.set()
        if stopping.ident is None:
            gateway.stop(0)
        else:
            stopping.join()
