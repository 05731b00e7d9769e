"""Identity end to end through the gateway: events from two anonymous devices, an identify on each that joins
them into one person, then an unmerge that takes one device back out — journeys' timeline and a funnel across
the two devices follow each step (ingest resolves every event with identity on its way to journeys; merges
reach journeys with the events that caused them, the administrator's unmerge through the override feed
journeys follows). Then the person is erased, and no store keeps anything of them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import duration_pb2

from tests.events import make_event
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import analytics_pb2, funnel_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc

Auth = tuple[tuple[str, str], ...]


def _event(kind: int, *identifiers: tuple[str, str], name: str = "Product Viewed") -> event_pb2.Event:
    event = make_event("unused", name=name if kind == event_pb2.EVENT_TYPE_TRACK else "")
    event.type = kind  # type: ignore[assignment]
    del event.identifiers[:]
    event.identifiers.extend(event_pb2.Identifier(type=t, value=v) for t, v in identifiers)
    return event


def _eventually(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def test_timeline_follows_merge_and_unmerge_then_erasure_leaves_nothing(
    gateway_channel: grpc.Channel, auth: Auth
) -> None:
    ingest = ingest_grpc.IngestServiceStub(gateway_channel)
    identity = identity_grpc.IdentityServiceStub(gateway_channel)
    journeys = journeys_grpc.JourneyServiceStub(gateway_channel)
    tag = uuid.uuid4().hex[:8]
    phone, laptop = ("anonymous_id", f"phone-{tag}"), ("anonymous_id", f"laptop-{tag}")
    user = ("user_id", f"u-{tag}")

    def person(identifier: tuple[str, str]) -> str:
        ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type=identifier[0], value=identifier[1]))
        response = identity.GetProfile(identity_pb.GetProfileRequest(person=ref), metadata=auth, timeout=10)
        return response.profile.person_id

    def events_of(person_id: str) -> set[str]:
        response = journeys.GetTimeline(
            journeys_pb.GetTimelineRequest(person_id=person_id, page_size=100), metadata=auth, timeout=10
        )
        assert all(e.person_id == person_id for e in response.events)
        return {e.event_id for e in response.events}

    # Viewed on the phone, ordered on the laptop: a conversion only once both devices are one person.
    viewed, ordered = f"Viewed {tag}", f"Ordered {tag}"

    def funnel() -> list[int]:
        request = journeys_pb.QueryFunnelRequest(
            order=funnel_pb2.FUNNEL_ORDER_ORDERED,
            conversion_window=duration_pb2.Duration(seconds=86_400),
            steps=[
                funnel_pb2.FunnelStep(event=analytics_pb2.EventMatcher(event_name=name))
                for name in (viewed, ordered)
            ],
        )
        response = journeys.QueryFunnel(request, metadata=auth, timeout=30)
        return [step.count for step in response.series[0].steps] if response.series else [0, 0]

    def track(*events: event_pb2.Event) -> set[str]:
        ingest.TrackBatch(ingest_pb.TrackBatchRequest(events=list(events)), metadata=auth, timeout=10)
        return {e.event_id for e in events}

    # Two devices, browsing anonymously: two persons.
    on_phone = track(*(_event(event_pb2.EVENT_TYPE_TRACK, phone, name=viewed) for _ in range(3)))
    on_laptop = track(*(_event(event_pb2.EVENT_TYPE_TRACK, laptop, name=ordered) for _ in range(2)))
    _eventually(lambda: _try(lambda: events_of(person(phone)) == on_phone), "the phone's events are in")
    _eventually(lambda: _try(lambda: events_of(person(laptop)) == on_laptop), "the laptop's events are in")
    assert person(phone) != person(laptop)
    assert funnel() == [1, 0]  # the phone's person viewed; the laptop's ordered without viewing

    # The person logs in on each device: one person, every past event on it.
    logins = track(_event(event_pb2.EVENT_TYPE_IDENTIFY, user, phone))
    logins |= track(_event(event_pb2.EVENT_TYPE_IDENTIFY, user, laptop))
    everything = on_phone | on_laptop | logins
    _eventually(lambda: _try(lambda: person(laptop) == person(phone)), "identity joined the devices")
    joined = person(user)
    _eventually(lambda: events_of(joined) == everything, "the timeline holds both devices' events")
    assert funnel() == [1, 1]  # one person, converted across devices

    # Support finds the laptop is shared: unmerge it. Its events (and its login) leave the person.
    response = identity.UnmergeIdentifier(
        identity_pb.UnmergeIdentifierRequest(
            person_id=joined,
            identifier=event_pb2.Identifier(type=laptop[0], value=laptop[1]),
            reason="shared",
        ),
        metadata=auth,
        timeout=10,
    )
    moved = response.new_profile.person_id
    assert response.record.actor.startswith("tenants/")  # the API key that asked is in the audit log
    _eventually(lambda: on_laptop <= events_of(moved), "the laptop's events follow it to the new person")
    _eventually(lambda: not (on_laptop & events_of(joined)), "the laptop's events left the person")
    assert on_phone <= events_of(joined)
    assert funnel() == [1, 0]  # the order went with the laptop, to a person who never viewed

    # Erasure: the person and everything of theirs, in identity and in journeys.
    erased = identity.DeleteProfile(
        identity_pb.DeleteProfileRequest(person_id=joined, reason="GDPR request 7"), metadata=auth, timeout=10
    )
    assert joined in erased.deleted_person_ids

    def erasure_done() -> bool:
        record = identity.GetErasure(
            identity_pb.GetErasureRequest(erasure_id=erased.erasure.erasure_id), metadata=auth, timeout=10
        ).erasure
        return record.state == identity_pb.ERASURE_STATE_DONE

    _eventually(erasure_done, "every store confirmed the erasure")
    record = identity.GetErasure(
        identity_pb.GetErasureRequest(erasure_id=erased.erasure.erasure_id), metadata=auth, timeout=10
    ).erasure
    assert {s.store for s in record.steps} == {"identity", "journeys", "ingest"}
    assert all(s.state == identity_pb.ERASURE_STATE_DONE for s in record.steps)
    for old_person in erased.deleted_person_ids:
        assert events_of(old_person) == set()
    for identifier in (phone, user):
        with pytest.raises(grpc.RpcError) as raised:
            person(identifier)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND, f"{identifier} still names a profile"
        # No stored event carries the identifier any more.
        lookup = journeys_pb.GetTimelineRequest(
            identifier=event_pb2.Identifier(type=identifier[0], value=identifier[1])
        )
        try:
            carried = list(journeys.GetTimeline(lookup, metadata=auth, timeout=10).events)
        except grpc.RpcError as error:  # NOT_FOUND (no event carries it) passes, like an empty page
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            carried = []
        assert not carried, f"journeys still holds events carrying {identifier}"
    assert events_of(moved) >= on_laptop  # the unmerged device was not the erased person's
    assert funnel() == [0, 0]  # the erased person's views are gone from the analytics too


def _try(check: Callable[[], bool]) -> bool:
    """`check`, with NOT_FOUND (not resolved yet) read as not yet."""
    try:
        return check()
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
