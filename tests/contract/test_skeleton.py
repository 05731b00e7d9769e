"""The walking skeleton over real sockets: gateway → ingest → journeys, and back through the gateway."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import INTERNAL_TOKEN, TENANT, common_settings, gateway_settings, start_server
from tests.events import make_event
from wayline.common.errors import status_details
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import gateway_service_pb2 as gateway_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as gateway_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_gateway.service import gateway_service
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

Auth = tuple[tuple[str, str], ...]


def timeline(
    channel: grpc.Channel, auth: Auth, user_id: str, settle: int = 0, **kwargs: object
) -> journeys_pb.GetTimelineResponse:
    """The user's timeline; with `settle`, first wait (up to 15 s) until it holds that many events, since
    an acknowledged event reaches the journey store shortly after, through ingest's spool."""
    request = journeys_pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="user_id", value=user_id),
        **kwargs,  # type: ignore[arg-type]
    )
    deadline = time.monotonic() + 15
    while True:
        response: journeys_pb.GetTimelineResponse = journeys_grpc.JourneyServiceStub(channel).GetTimeline(
            request, metadata=auth, timeout=10
        )
        if len(response.events) >= settle or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def violations(error: grpc.RpcError) -> list[str]:
    return [
        v.field
        for detail in status_details(error)
        if isinstance(detail, error_details_pb2.BadRequest)
        for v in detail.field_violations
    ]


def reason(error: grpc.RpcError) -> str:
    return str(next(d.reason for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)))


def test_track_then_timeline_returns_the_event_through_the_gateway(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    event = make_event(user_id, name="Order Completed", channel=event_pb2.CHANNEL_IN_STORE)
    event.properties.update({"revenue": 42.5})
    response = ingest_grpc.IngestServiceStub(gateway_channel).Track(
        ingest_pb.TrackRequest(event=event), metadata=auth, timeout=10
    )
    assert response.event_id == event.event_id
    assert response.received_at.seconds > 0

    events = timeline(gateway_channel, auth, user_id, settle=1).events
    assert [e.event_id for e in events] == [event.event_id]
    stored = events[0]
    assert stored.name == "Order Completed"
    assert stored.channel == event_pb2.CHANNEL_IN_STORE
    assert stored.properties["revenue"] == 42.5
    assert stored.received_at == response.received_at


def test_every_field_of_an_accepted_event_survives_the_round_trip(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    event = make_event(user_id, name="Order Completed", channel=event_pb2.CHANNEL_MOBILE_APP)
    event.identifiers.add(type="email", value=f"{user_id}@example.com")
    event.revenue.CopyFrom(event_pb2.Money(currency_code="EUR", units=-12, nanos=-340_000_000))
    event.group_id = "household-9"
    event.text = "Where is my parcel? Ordered a week ago."
    event.properties.update({"items": [{"sku": "A-1", "qty": 2}], "coupon": None, "gift": True})
    event.context.locale = "de-DE"
    event.context.device.model = "iPhone15,2"
    event.context.campaign.source = "newsletter"
    ingest_grpc.IngestServiceStub(gateway_channel).Track(
        ingest_pb.TrackRequest(event=event), metadata=auth, timeout=10
    )

    (stored,) = timeline(gateway_channel, auth, user_id, settle=1).events
    expected = event_pb2.Event()
    expected.CopyFrom(event)
    expected.received_at.CopyFrom(stored.received_at)
    expected.original_timestamp.CopyFrom(event.timestamp)  # stamped by ingest: the sender's timestamp
    assert stored.HasField("sentiment_score")  # ingest's enrichment scored the text
    expected.sentiment_score = stored.sentiment_score
    # Identity resolved the person on the way to journeys: the person the event's identifiers name.
    person = identity_grpc.IdentityServiceStub(gateway_channel).GetProfile(
        identity_pb.GetProfileRequest(person=event_pb2.PersonRef(identifier=event.identifiers[0])),
        metadata=auth,
        timeout=10,
    )
    assert stored.person_id == person.profile.person_id != ""
    expected.person_id = stored.person_id
    assert stored == expected


def test_track_batch_accepts_valid_events_and_names_each_rejected_field(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    good = [make_event(user_id, minutes_ago=m) for m in (3, 2, 1)]
    bad = make_event(user_id)
    bad.identifiers[0].value = ""
    bad.channel = event_pb2.CHANNEL_UNSPECIFIED
    response = ingest_grpc.IngestServiceStub(gateway_channel).TrackBatch(
        ingest_pb.TrackBatchRequest(events=[good[0], bad, good[1], good[2]]), metadata=auth, timeout=10
    )
    assert response.accepted_count == 3
    assert list(response.accepted_event_ids) == [e.event_id for e in good]
    assert [r.index for r in response.rejections] == [1]
    assert {v.field for v in response.rejections[0].violations} == {
        "events[1].channel",
        "events[1].identifiers[0].value",
    }
    stored = timeline(gateway_channel, auth, user_id, settle=3).events
    assert [e.event_id for e in stored] == [e.event_id for e in good]


def test_track_invalid_event_is_invalid_argument_with_field_paths(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    event = make_event(user_id)
    event.event_id = "not-a-uuid"
    event.person_id = "p-forged"
    with pytest.raises(grpc.RpcError) as caught:
        ingest_grpc.IngestServiceStub(gateway_channel).Track(
            ingest_pb.TrackRequest(event=event), metadata=auth, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == ["event.event_id", "event.person_id"]
    assert timeline(gateway_channel, auth, user_id).events == []


def test_numbers_json_cannot_hold_are_refused_at_the_door_with_their_paths(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    """NaN and Infinity were acknowledged, then refused by the journey store (parked as dead letters): the
    caller heard OK for an event its timeline never showed. Both paths refuse them now: Track (one event)
    and TrackBatch (the C fast path, which hands such events to the Python checks)."""
    stub = ingest_grpc.IngestServiceStub(gateway_channel)
    single = make_event(user_id)
    single.properties.update({"price": float("nan")})
    with pytest.raises(grpc.RpcError) as caught:
        stub.Track(ingest_pb.TrackRequest(event=single), metadata=auth, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == ["event.properties.price"]
    good, bad = make_event(user_id, minutes_ago=2), make_event(user_id, minutes_ago=1)
    bad.context.traits.update({"ltv": float("inf")})
    response = stub.TrackBatch(ingest_pb.TrackBatchRequest(events=[good, bad]), metadata=auth, timeout=10)
    assert list(response.accepted_event_ids) == [good.event_id]
    assert [(r.index, [v.field for v in r.violations]) for r in response.rejections] == [
        (1, ["events[1].context.traits.ltv"])
    ]
    later = make_event(user_id)  # delivered after the refusals: once it is stored, nothing refused followed
    stub.Track(ingest_pb.TrackRequest(event=later), metadata=auth, timeout=10)
    stored = timeline(gateway_channel, auth, user_id, settle=2).events
    assert [e.event_id for e in stored] == [good.event_id, later.event_id]


def test_track_batch_over_the_limit_is_refused_whole(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    events = [make_event(user_id) for _ in range(1001)]
    with pytest.raises(grpc.RpcError) as caught:
        ingest_grpc.IngestServiceStub(gateway_channel).TrackBatch(
            ingest_pb.TrackBatchRequest(events=events), metadata=auth, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == ["events"]
    assert timeline(gateway_channel, auth, user_id).events == []


def test_retried_track_is_stored_once(gateway_channel: grpc.Channel, auth: Auth, user_id: str) -> None:
    event = make_event(user_id)
    stub = ingest_grpc.IngestServiceStub(gateway_channel)
    for _ in range(3):
        stub.Track(ingest_pb.TrackRequest(event=event), metadata=auth, timeout=10)
    later = make_event(user_id)  # delivered after the retries: once it is stored, so is every retry
    stub.Track(ingest_pb.TrackRequest(event=later), metadata=auth, timeout=10)
    stored = timeline(gateway_channel, auth, user_id, settle=2).events
    assert sorted(e.event_id for e in stored) == sorted([event.event_id, later.event_id])


def test_a_retried_track_without_event_id_gets_one_id_and_is_stored_once(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    """Before derived ids, each attempt got a random UUID: the gateway's retry on UNAVAILABLE stored twice."""
    event = make_event(user_id)
    event.event_id = ""
    stub = ingest_grpc.IngestServiceStub(gateway_channel)
    ids = {
        stub.Track(ingest_pb.TrackRequest(event=event), metadata=auth, timeout=10).event_id for _ in range(3)
    }
    assert len(ids) == 1
    later = make_event(user_id)  # delivered after the retries: once it is stored, so is every retry
    stub.Track(ingest_pb.TrackRequest(event=later), metadata=auth, timeout=10)
    stored = timeline(gateway_channel, auth, user_id, settle=2).events
    assert sorted(e.event_id for e in stored) == sorted([*ids, later.event_id])


def test_get_timeline_pages_in_order_without_gaps_or_repeats(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    events = [make_event(user_id, minutes_ago=60 - i) for i in range(23)]
    ingest_grpc.IngestServiceStub(gateway_channel).TrackBatch(
        ingest_pb.TrackBatchRequest(events=events), metadata=auth, timeout=10
    )
    timeline(gateway_channel, auth, user_id, settle=23, page_size=100)
    for order, expected in (
        (journeys_pb.TIMELINE_ORDER_OLDEST_FIRST, [e.event_id for e in events]),
        (journeys_pb.TIMELINE_ORDER_NEWEST_FIRST, [e.event_id for e in reversed(events)]),
    ):
        seen: list[str] = []
        token = ""
        pages = 0
        while True:
            page = timeline(gateway_channel, auth, user_id, page_size=10, page_token=token, order=order)
            seen.extend(e.event_id for e in page.events)
            pages += 1
            token = page.next_page_token
            if not token:
                break
        assert seen == expected
        assert pages == 3


def test_get_timeline_filters_by_channel(gateway_channel: grpc.Channel, auth: Auth, user_id: str) -> None:
    web, email = (
        make_event(user_id),
        make_event(user_id, channel=event_pb2.CHANNEL_EMAIL, name="Email Opened"),
    )
    ingest_grpc.IngestServiceStub(gateway_channel).TrackBatch(
        ingest_pb.TrackBatchRequest(events=[web, email]), metadata=auth, timeout=10
    )
    timeline(gateway_channel, auth, user_id, settle=2)
    events = timeline(gateway_channel, auth, user_id, channels=[event_pb2.CHANNEL_EMAIL]).events
    assert [e.event_id for e in events] == [email.event_id]


def test_get_timeline_with_a_forged_page_token_is_invalid_argument(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        timeline(gateway_channel, auth, user_id, page_token="garbage!")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == ["page_token"]


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer wl_unknown"),), (("x-api-key", "wl_unknown"),)],
    ids=["no-key", "unknown-bearer", "unknown-x-api-key"],
)
def test_unknown_api_key_is_unauthenticated(
    gateway_channel: grpc.Channel, user_id: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        ingest_grpc.IngestServiceStub(gateway_channel).Track(
            ingest_pb.TrackRequest(event=make_event(user_id)), metadata=metadata, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) in {"API_KEY_MISSING", "API_KEY_INVALID"}


def test_internal_rpcs_are_not_routed_by_the_gateway(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        journeys_grpc.JourneyServiceStub(gateway_channel).WriteEvents(
            journeys_pb.WriteEventsRequest(events=[make_event(user_id)]), metadata=auth, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_internal_service_refuses_callers_without_the_internal_token(
    journeys_server: Server, user_id: str
) -> None:
    forged = (("x-wayline-tenant", TENANT),)
    with grpc.insecure_channel(journeys_server.address) as channel, pytest.raises(grpc.RpcError) as caught:
        journeys_grpc.JourneyServiceStub(channel).WriteEvents(
            journeys_pb.WriteEventsRequest(events=[make_event(user_id)]), metadata=forged, timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(caught.value) == "INTERNAL_CALLER_REQUIRED"


def test_caller_supplied_tenant_metadata_is_ignored_by_the_gateway(
    gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    event = make_event(user_id)
    forged = (*auth, ("x-wayline-tenant", "someone-else"))
    ingest_grpc.IngestServiceStub(gateway_channel).Track(
        ingest_pb.TrackRequest(event=event), metadata=forged, timeout=10
    )
    stored = timeline(gateway_channel, auth, user_id, settle=1).events
    assert [e.event_id for e in stored] == [event.event_id]


def test_tenants_never_see_each_others_events(
    gateway_server: Server,
    ingest_server: Server,
    journeys_server: Server,
    tmp_path: Path,
    auth: Auth,
    user_id: str,
) -> None:
    other_key = "wl_other_tenant_key"
    settings = gateway_settings(
        tmp_path, {"ingest": ingest_server.address, "journeys": journeys_server.address}, other_key, "globex"
    )
    other_gateway = start_server(gateway_service(settings), settings)
    try:
        other_auth = (("authorization", f"Bearer {other_key}"),)
        with (
            grpc.insecure_channel(other_gateway.address) as other,
            grpc.insecure_channel(gateway_server.address) as own,
        ):
            ingest_grpc.IngestServiceStub(own).Track(
                ingest_pb.TrackRequest(event=make_event(user_id)), metadata=auth, timeout=10
            )
            assert len(timeline(own, auth, user_id, settle=1).events) == 1
            assert timeline(other, other_auth, user_id).events == []
    finally:
        other_gateway.stop(0)


def test_the_bootstrap_key_manages_its_operator_tenant(gateway_channel: grpc.Channel, auth: Auth) -> None:
    """The gateway's own AdminService, beside the pass-through: the bootstrap key's tenant exists from the
    start and is the operator."""
    admin = gateway_grpc.AdminServiceStub(gateway_channel)
    tenant = admin.GetTenant(
        gateway_pb.GetTenantRequest(name="tenants/acme"), metadata=auth, timeout=10
    ).tenant
    assert tenant.name == "tenants/acme"
    listed = admin.ListTenants(gateway_pb.ListTenantsRequest(), metadata=auth, timeout=10)
    assert "tenants/acme" in [t.name for t in listed.tenants]


def test_journeys_down_still_acknowledges_from_the_spool_but_reads_are_unavailable(
    tmp_path: Path, user_id: str
) -> None:
    from wayline_cli.suite import free_port

    dead = f"127.0.0.1:{free_port()}"  # nothing listens here
    ingest_settings = IngestSettings(**common_settings(tmp_path), journeys_address=dead, identity_address="")  # type: ignore[arg-type]
    ingest = start_server(ingest_service(ingest_settings), ingest_settings)
    settings = gateway_settings(tmp_path, {"ingest": ingest.address, "journeys": dead}, "wl_k", TENANT)
    gateway = start_server(gateway_service(settings), settings)
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            event = make_event(user_id)
            response = ingest_grpc.IngestServiceStub(channel).Track(
                ingest_pb.TrackRequest(event=event), metadata=(("authorization", "Bearer wl_k"),), timeout=10
            )
            assert (
                response.event_id == event.event_id
            )  # durable in the spool, delivered when journeys is back
            with pytest.raises(grpc.RpcError) as read:
                timeline(channel, (("authorization", "Bearer wl_k"),), user_id)
            assert read.value.code() == grpc.StatusCode.UNAVAILABLE
            assert reason(read.value) == "BACKEND_UNAVAILABLE"
            retry = [d for d in status_details(read.value) if isinstance(d, error_details_pb2.RetryInfo)]
            assert len(retry) == 1
    finally:
        gateway.stop(0)
        ingest.stop(0)


def test_gateway_reflection_lists_every_routed_service(gateway_channel: grpc.Channel) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    database = ProtoReflectionDescriptorDatabase(gateway_channel)
    services = set(database.get_services())
    assert {
        "wayline.gateway.v1.AdminService",
        "wayline.ingest.v1.IngestService",
        "wayline.identity.v1.IdentityService",
        "wayline.journeys.v1.JourneyService",
        "wayline.decision.v1.DecisionService",
        "wayline.orchestrator.v1.OrchestratorService",
        "inference.GRPCInferenceService",
    } <= services
    # grpcurl needs the descriptors too, not only the names.
    track = database.FindFileContainingSymbol("wayline.ingest.v1.IngestService")
    assert track.package == "wayline.ingest.v1"


def test_streaming_rpcs_pass_through_the_gateway_with_the_backends_status(
    gateway_channel: grpc.Channel, auth: Auth
) -> None:
    """StreamEvents (bidirectional) and ExportTrainingSet (server streaming): the gateway's streaming
    pass-through must deliver the backend's answer, details included."""
    ingest = ingest_grpc.IngestServiceStub(gateway_channel)
    with pytest.raises(grpc.RpcError) as bidirectional:
        list(
            ingest.StreamEvents(iter([ingest_pb.StreamEventsRequest(sequence=1)]), metadata=auth, timeout=10)
        )
    assert bidirectional.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(bidirectional.value) == ["events"]
    journeys = journeys_grpc.JourneyServiceStub(gateway_channel)
    with pytest.raises(grpc.RpcError) as server_streaming:
        list(journeys.ExportTrainingSet(journeys_pb.ExportTrainingSetRequest(), metadata=auth, timeout=10))
    assert server_streaming.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "training set request is invalid" in (server_streaming.value.details() or "")
    assert violations(server_streaming.value)  # the backend's BadRequest crossed the gateway


def test_a_batch_larger_than_one_write_is_stored_whole_in_several(
    journeys_server: Server, tmp_path: Path, user_id: str, span_exporter: InMemorySpanExporter
) -> None:
    settings = IngestSettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address="",
        max_write_bytes=4096,
    )
    ingest = start_server(ingest_service(settings), settings)
    internal = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", TENANT))
    try:
        events = [make_event(user_id, minutes_ago=100 - i) for i in range(60)]
        for event in events:
            event.properties.update({"note": "x" * 300})  # ~60 x 400 bytes: several 4 KiB writes
        span_exporter.clear()
        with grpc.insecure_channel(ingest.address) as channel:
            response = ingest_grpc.IngestServiceStub(channel).TrackBatch(
                ingest_pb.TrackBatchRequest(events=events), metadata=internal, timeout=30
            )
        assert response.accepted_count == 60
        with grpc.insecure_channel(journeys_server.address) as channel:
            stored = timeline(channel, internal, user_id, settle=60, page_size=100)
        assert [e.event_id for e in stored.events] == [e.event_id for e in events]
        writes = [
            s for s in span_exporter.get_finished_spans() if s.name.endswith("JourneyService/WriteEvents")
        ]
        assert len(writes) >= 6  # 24 KB of events in calls of at most 4 KiB
    finally:
        ingest.stop(0)
