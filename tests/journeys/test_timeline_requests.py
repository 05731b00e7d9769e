"""GetTimeline's request checks over the suite's journeys server: filters the contract does not define and
times outside Timestamp's range are INVALID_ARGUMENT naming the field (they were INTERNAL), and a page token
continues only the query that issued it."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.journeys.conftest import Journeys, field_violations, ids, new_person, stored_event
from wayline.common.paging import decode_page_token, encode_page_token
from wayline.common.timestamps import MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb


def _refused(journeys: Journeys, request: pb.GetTimelineRequest) -> dict[str, str]:
    """GetTimeline answers INVALID_ARGUMENT: its violations, path → reason."""
    with pytest.raises(grpc.RpcError) as raised:
        journeys.stub.GetTimeline(request, metadata=journeys.metadata, timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return field_violations(raised.value)


def _page(journeys: Journeys, request: pb.GetTimelineRequest) -> pb.GetTimelineResponse:
    response: pb.GetTimelineResponse = journeys.stub.GetTimeline(
        request, metadata=journeys.metadata, timeout=10
    )
    return response


def test_get_timeline_refuses_channels_the_contract_does_not_define(journeys: Journeys) -> None:
    request = pb.GetTimelineRequest(person_id="p", channels=[event_pb2.CHANNEL_WEB, 99])  # type: ignore[list-item]
    assert _refused(journeys, request) == {"channels": "INVALID"}
    request = pb.GetTimelineRequest(person_id="p", channels=[event_pb2.CHANNEL_UNSPECIFIED])
    assert _refused(journeys, request) == {"channels": "INVALID"}


def test_get_timeline_names_each_time_outside_timestamps_range(journeys: Journeys) -> None:
    request = pb.GetTimelineRequest(person_id="p")
    request.time_range.start.CopyFrom(Timestamp(seconds=MIN_TIMESTAMP_SECONDS - 1))
    request.time_range.end.CopyFrom(Timestamp(seconds=MAX_TIMESTAMP_SECONDS + 1))
    assert _refused(journeys, request) == {
        "time_range.start": "OUT_OF_RANGE",
        "time_range.end": "OUT_OF_RANGE",
    }
    request.time_range.end.CopyFrom(Timestamp(seconds=0, nanos=-5))
    assert _refused(journeys, request) == {
        "time_range.start": "OUT_OF_RANGE",
        "time_range.end.nanos": "OUT_OF_RANGE",
    }


def test_get_timeline_token_continues_only_the_query_that_issued_it(journeys: Journeys) -> None:
    """The contract: a token is valid with the same filters. It held only the cursor, so one person's token
    paged another's timeline (or another order, or other filters) from that cursor, silently skipping
    events."""
    alice, bob = new_person(), new_person()
    journeys.write(*[stored_event(alice, minute=m) for m in range(3)])
    bob_events = journeys.write(*[stored_event(bob, minute=m) for m in range(3)])
    first = _page(journeys, pb.GetTimelineRequest(person_id=alice, page_size=2))
    token = first.next_page_token
    assert token
    rest = _page(journeys, pb.GetTimelineRequest(person_id=alice, page_size=5, page_token=token))
    assert len(rest.events) == 1  # page_size may change from page to page
    for other in (
        pb.GetTimelineRequest(person_id=bob, page_token=token),
        pb.GetTimelineRequest(person_id=alice, page_token=token, order=pb.TIMELINE_ORDER_NEWEST_FIRST),
        pb.GetTimelineRequest(person_id=alice, page_token=token, event_names=["Product Viewed"]),
        pb.GetTimelineRequest(person_id=alice, page_token=token, channels=[event_pb2.CHANNEL_WEB]),
        pb.GetTimelineRequest(identifier=event_pb2.Identifier(type="user_id", value=alice), page_token=token),
    ):
        assert _refused(journeys, other) == {"page_token": "INVALID"}
    with pytest.raises(grpc.RpcError) as raised:
        _page(
            journeys.for_tenant(f"{journeys.tenant}-other"),
            pb.GetTimelineRequest(person_id=alice, page_token=token),
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ids(journeys.timeline(bob, page_size=2)) == ids(bob_events)  # bob's own tokens page as before


@pytest.mark.parametrize(
    "t", [2**62, -(2**62), True, "5", 1.5], ids=["late", "early", "bool", "text", "float"]
)
def test_get_timeline_refuses_a_bound_token_whose_time_no_page_issues(journeys: Journeys, t: object) -> None:
    person = new_person()
    journeys.write(*[stored_event(person, minute=m) for m in range(2)])
    token = _page(journeys, pb.GetTimelineRequest(person_id=person, page_size=1)).next_page_token
    forged = encode_page_token({**decode_page_token(token, "GetTimeline"), "t": t})  # still bound
    assert _refused(journeys, pb.GetTimelineRequest(person_id=person, page_token=forged)) == {
        "page_token": "INVALID"
    }
