"""Segment freshness lag under write load: how long after WriteEvents acknowledges the event that makes a
person match a segment the person's ENTERED change appears in ListSegmentMembershipChanges.

A segment "did Bench Marker at least once" is created and built; then events are written at a steady
5,000 a second (batches of 500, 10 a second) while, once a second, a marker event of a new person is
written; a poller reads the change feed every 50 ms. The lag of a marker is the time from its write's
acknowledgement to the poll that first returns its entry (so it includes up to 50 ms of polling delay).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
from google.protobuf.message import Message

from bench.journeys_raw import BREAKDOWN_SEGMENTS
from bench.journeys_rpc import METADATA, method
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import analytics_pb2, condition_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb

__all__ = ["Freshness", "build_breakdown_segments", "delete_breakdown_segments", "measure_freshness"]

MARKER = "Bench Marker"
_ENTERED = segment_pb2.SEGMENT_MEMBERSHIP_CHANGE_TYPE_ENTERED
_WRITERS = 4


@dataclass(frozen=True)
class Freshness:
    markers: int
    seen: int
    p50_ms: float
    max_ms: float
    events_per_second: float


class _Calls:
    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel

    def __call__(self, rpc: str, request: Message, response: type[Message], timeout: float = 60) -> Message:
        call = self._channel.unary_unary(
            method(rpc),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )
        return call(request, metadata=METADATA, timeout=timeout)  # type: ignore[no-any-return]


def _marker(person: str) -> bytes:
    now = to_timestamp(datetime.now(UTC))
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=MARKER,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=now,
        received_at=now,
        identifiers=[event_pb2.Identifier(type="anonymous_id", value=f"marker-{person}")],
        person_id=person,
    )
    return pb.WriteEventsRequest(events=[event]).SerializeToString()


def _create(calls: _Calls, segment_id: str, event_name: str) -> str:
    """Create the segment "did `event_name` at least once" and wait until it is built; its name. Raises the
    RpcError of an RPC not there."""
    matcher = analytics_pb2.EventMatcher(event_name=event_name)
    count = condition_pb2.EventCountCondition(
        event=matcher, comparison=condition_pb2.COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL, count=1
    )
    segment = segment_pb2.Segment(
        display_name=segment_id, condition=condition_pb2.PersonCondition(event_count=count)
    )
    request = pb.CreateSegmentRequest(segment=segment, segment_id=segment_id)
    name = calls("CreateSegment", request, pb.CreateSegmentResponse).segment.name  # type: ignore[attr-defined]
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        got = calls("GetSegment", pb.GetSegmentRequest(name=name), pb.GetSegmentResponse)
        state = got.segment.status.state  # type: ignore[attr-defined]
        if state == segment_pb2.SEGMENT_STATE_READY:
            return name  # type: ignore[no-any-return]
        if state == segment_pb2.SEGMENT_STATE_FAILED:
            raise RuntimeError(f"{name} failed: {got.segment.status.error_message}")  # type: ignore[attr-defined]
        time.sleep(0.5)
    raise TimeoutError(f"{name} was not built in 10 minutes")


def _members(calls: _Calls, name: str) -> list[str]:
    found: list[str] = []
    request = pb.ListSegmentMembersRequest(segment=name, page_size=10_000)
    while True:
        page = calls("ListSegmentMembers", request, pb.ListSegmentMembersResponse)
        found.extend(m.person_id for m in page.members)  # type: ignore[attr-defined]
        if not page.next_page_token:  # type: ignore[attr-defined]
            return found
        request.page_token = page.next_page_token  # type: ignore[attr-defined]


def build_breakdown_segments(address: str) -> dict[str, list[str]]:
    """BREAKDOWN_SEGMENTS created (anew: `delete_breakdown_segments` removes them after each use, so the
    evaluator does not work on them while other rows are timed) and built; each one's members by name."""
    with grpc.insecure_channel(address) as channel:
        calls = _Calls(channel)
        names = [_create(calls, segment_id, event_name) for segment_id, event_name in BREAKDOWN_SEGMENTS]
        return {name: _members(calls, name) for name in names}


def delete_breakdown_segments(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        calls = _Calls(channel)
        for segment_id, _ in BREAKDOWN_SEGMENTS:
            calls(
                "DeleteSegment",
                pb.DeleteSegmentRequest(name=f"segments/{segment_id}"),
                pb.DeleteSegmentResponse,
            )


def _feed_head(calls: _Calls, segment: str) -> int:
    after = 0
    while True:
        page = calls(
            "ListSegmentMembershipChanges",
            pb.ListSegmentMembershipChangesRequest(after_sequence=after, segment=segment, page_size=10_000),
            pb.ListSegmentMembershipChangesResponse,
        )
        if page.changes:  # type: ignore[attr-defined]
            after = page.changes[-1].sequence  # type: ignore[attr-defined]
        if not page.next_page_token:  # type: ignore[attr-defined]
            return after


def measure_freshness(address: str, load: Sequence[bytes], seconds: float = 60) -> Freshness:
    """Run the measurement; `load` is serialised WriteEventsRequests of 500 events (paced at 10 a second).
    Raises grpc.RpcError (UNIMPLEMENTED) when the server has no segments yet."""
    with grpc.insecure_channel(address) as channel:
        calls = _Calls(channel)
        segment = _create(calls, f"bench-freshness-{int(time.time())}", MARKER)
        cursor = _feed_head(calls, segment)
        write = channel.unary_unary(
            method("WriteEvents"), request_serializer=None, response_deserializer=None
        )
        acknowledged: dict[str, float] = {}
        seen: dict[str, float] = {}
        stop = threading.Event()
        written = [0]
        schedule = iter(enumerate(load))
        lock = threading.Lock()
        load_began = time.monotonic()

        def writer() -> None:
            """One of _WRITERS callers: each takes the next batch, waits for its time, sends it; several so
            that a slow write does not hold back the schedule (up to what the server sustains)."""
            while True:
                with lock:
                    index, request = next(schedule, (-1, b""))
                if index < 0 or stop.wait(max(0.0, load_began + index / 10 - time.monotonic())):
                    return
                write(request, metadata=METADATA, timeout=60)
                with lock:
                    written[0] += 500

        def poller() -> None:
            after = cursor
            while not stop.is_set() or len(seen) < len(acknowledged):
                page = calls(
                    "ListSegmentMembershipChanges",
                    pb.ListSegmentMembershipChangesRequest(after_sequence=after, segment=segment),
                    pb.ListSegmentMembershipChangesResponse,
                )
                now = time.monotonic()
                for change in page.changes:  # type: ignore[attr-defined]
                    after = change.sequence
                    if change.change_type == _ENTERED and change.person_id not in seen:
                        seen[change.person_id] = now
                if stop.is_set() and now > stop_time[0] + 60:
                    return  # markers not seen a minute after the load ended count as missing
                time.sleep(0.05)

        stop_time = [float("inf")]
        threads = [
            threading.Thread(target=poller),
            *(threading.Thread(target=writer) for _ in range(_WRITERS)),
        ]
        for thread in threads:
            thread.start()
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            person = str(uuid.uuid4())
            write(_marker(person), metadata=METADATA, timeout=60)
            acknowledged[person] = time.monotonic()
            time.sleep(max(0.0, 1.0 - (time.monotonic() - acknowledged[person])))
        elapsed = time.monotonic() - began
        stop_time[0] = time.monotonic()
        stop.set()
        for thread in threads:
            thread.join()
    lags = sorted((seen[p] - t) * 1000 for p, t in acknowledged.items() if p in seen)
    return Freshness(
        markers=len(acknowledged),
        seen=len(lags),
        p50_ms=statistics.median(lags) if lags else float("nan"),
        max_ms=lags[-1] if lags else float("nan"),
        events_per_second=written[0] / elapsed,
    )
