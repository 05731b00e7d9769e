"""The demo's identity steps: two anonymous devices become one person at login (every past event follows),
an unmerge takes a shared laptop back out (its events follow it), and an erasure reaches every store."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
from rich.console import Console

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc

__all__ = ["show_identity"]

Auth = tuple[tuple[str, str], ...]
Key = tuple[str, str]


def _event(
    kind: event_pb2.EventType.ValueType, name: str, channel: int, *identifiers: Key
) -> event_pb2.Event:
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=kind,
        name=name,
        channel=channel,  # type: ignore[arg-type]
        timestamp=to_timestamp(datetime.now(UTC)),
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
    )


def _wait(check: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        time.sleep(0.2)
    return False


def show_identity(channel: grpc.Channel, auth: Auth, console: Console) -> None:
    ingest = ingest_grpc.IngestServiceStub(channel)
    identity = identity_grpc.IdentityServiceStub(channel)
    journeys = journeys_grpc.JourneyServiceStub(channel)
    tag = uuid.uuid4().hex[:6]
    phone, laptop = ("anonymous_id", f"phone-{tag}"), ("anonymous_id", f"laptop-{tag}")
    user, email = ("user_id", f"customer-{tag}"), ("email", f"  Ada.{tag}@Example.COM ")

    def person(key: Key) -> str:
        ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type=key[0], value=key[1]))
        return identity.GetProfile(
            identity_pb.GetProfileRequest(person=ref), metadata=auth, timeout=10
        ).profile.person_id

    def events_of(person_id: str) -> int:
        request = journeys_pb.GetTimelineRequest(person_id=person_id, page_size=100)
        return len(journeys.GetTimeline(request, metadata=auth, timeout=10).events)

    def send(*events: event_pb2.Event) -> None:
        ingest.TrackBatch(ingest_pb.TrackBatchRequest(events=list(events)), metadata=auth, timeout=10)

    track, identify = event_pb2.EVENT_TYPE_TRACK, event_pb2.EVENT_TYPE_IDENTIFY
    send(*(_event(track, "Product Viewed", event_pb2.CHANNEL_MOBILE_APP, phone) for _ in range(3)))
    send(*(_event(track, "Product Viewed", event_pb2.CHANNEL_WEB, laptop) for _ in range(2)))
    _wait(lambda: events_of(person(phone)) == 3 and events_of(person(laptop)) == 2)
    console.print(
        f"identity: a phone and a laptop browsing anonymously are two persons ({person(phone)[:8]}…, "
        f"{person(laptop)[:8]}…)"
    )
    send(_event(identify, "", event_pb2.CHANNEL_MOBILE_APP, user, phone, email))
    send(_event(identify, "", event_pb2.CHANNEL_WEB, user, laptop))
    joined = ""
    if _wait(lambda: person(laptop) == person(phone) and events_of(person(user)) == 7):
        joined = person(user)
    ref = event_pb2.PersonRef(person_id=joined or person(user))
    profile = identity.GetProfile(
        identity_pb.GetProfileRequest(person=ref), metadata=auth, timeout=10
    ).profile
    held = ", ".join(f"{i.identifier.type}={i.identifier.value}" for i in profile.identifiers)
    count = events_of(profile.person_id)
    console.print(f"  after a login on each: one person holding {held}; timeline has {count} events")
    for merge in profile.merge_history:
        console.print(
            f"  merge {merge.merge_id[:8]}…: {merge.source_person_id[:8]}… joined "
            f"{merge.target_person_id[:8]}… through {merge.identifier.type}={merge.identifier.value} "
            f"(event {merge.event_id[:8]}…)"
        )
    unmerged = identity.UnmergeIdentifier(
        identity_pb.UnmergeIdentifierRequest(
            person_id=profile.person_id,
            identifier=event_pb2.Identifier(type=laptop[0], value=laptop[1]),
            reason="support: the laptop is a shared family computer",
        ),
        metadata=auth,
        timeout=10,
    )
    moved = unmerged.new_profile.person_id
    followed = _wait(lambda: events_of(moved) == 3 and events_of(profile.person_id) == 4)
    console.print(
        f"  unmerge the laptop (by {unmerged.record.actor}): its 3 events "
        f"{'followed it' if followed else 'did NOT follow it'} to {moved[:8]}…; the person keeps "
        f"{events_of(profile.person_id)}"
    )
    erased = identity.DeleteProfile(
        identity_pb.DeleteProfileRequest(person_id=profile.person_id, reason="GDPR request 2026-117"),
        metadata=auth,
        timeout=10,
    )

    def erasure() -> identity_pb.Erasure:
        request = identity_pb.GetErasureRequest(erasure_id=erased.erasure.erasure_id)
        return identity.GetErasure(request, metadata=auth, timeout=10).erasure

    done = _wait(lambda: erasure().state == identity_pb.ERASURE_STATE_DONE)
    steps = ", ".join(
        f"{s.store} {identity_pb.ErasureState.Name(s.state).removeprefix('ERASURE_STATE_').lower()}"
        f" ({s.deleted_count})"
        for s in erasure().steps
    )
    console.print(
        f"  erase the person: {len(erased.deleted_person_ids)} person ids, "
        f"{erased.deleted_identifier_count} identifiers; {steps}; "
        f"{'complete' if done else 'STILL PENDING'}; "
        f"their timeline now has {events_of(profile.person_id)} events"
    )
