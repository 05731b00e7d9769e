"""One trace per request across the whole suite, asserted hop by hop with the in-memory exporter.

A Track: gateway → ingest (acknowledged once spooled) → one delivery span per sink, each continuing the
accepting call's trace from the context saved in the spool → identity's ResolveIdentities (the person of
each event, resolved in front of every sink) and the sink itself: journeys' WriteEvents, decision's
ObserveEvents. A Decide: gateway → decision → identity (the person behind the identifier and their profile)
and journeys (features the online state cannot answer yet), started from Decide's own thread.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import API_KEY, TENANT, common_settings, gateway_settings, start_server
from tests.decision.lifecycle_calls import EVERY_SCOPE, Auth, deploy, push, tenant_key
from tests.decision.ml_package import ml_package
from tests.events import make_event
from wayline.common.server import Server
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.decision.v1 import decision_service_pb2_grpc as decision_grpc
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_gateway.service import gateway_service
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

TRACK = "wayline.ingest.v1.IngestService/Track"
RESOLVE = "wayline.identity.v1.IdentityService/ResolveIdentities"
WRITE = "wayline.journeys.v1.JourneyService/WriteEvents"
OBSERVE = "wayline.decision.v1.DecisionService/ObserveEvents"
DECIDE = "wayline.decision.v1.DecisionService/Decide"


def new_tenant(channel: grpc.Channel) -> Auth:
    """A key of a new tenant that may write, read and administer (the suite's decision server is shared)."""
    return tenant_key(channel, EVERY_SCOPE, "traced")


def spans_of(exporter: InMemorySpanExporter, trace_id: int, until: set[str]) -> list[ReadableSpan]:
    """The finished spans of `trace_id`, once every name in `until` is among them (waits for delivery)."""
    deadline = time.monotonic() + 20
    while True:
        found = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        if until <= {s.name for s in found} or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def one(spans: list[ReadableSpan], name: str, **attributes: object) -> ReadableSpan:
    matching = [
        s
        for s in spans
        if s.name == name and all((s.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(matching) == 1, (name, attributes, [(s.name, dict(s.attributes or {})) for s in spans])
    return matching[0]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


@pytest.fixture(scope="module")
def delivering_gateway(
    journeys_server: Server,
    identity_server: Server,
    decision_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A gateway in front of an ingest that delivers to journeys and decision (the suite's servers)."""
    settings = IngestSettings(
        **common_settings(tmp_path_factory.mktemp("traced-ingest")),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address=identity_server.address,
        decision_address=decision_server.address,
        sinks=["journeys", "decision"],
    )
    ingest = start_server(ingest_service(settings), settings)
    backends = {"ingest": ingest.address, "journeys": journeys_server.address}
    gateway_config = gateway_settings(tmp_path_factory.mktemp("traced-gateway"), backends, API_KEY, TENANT)
    gateway = start_server(gateway_service(gateway_config), gateway_config)
    yield gateway
    gateway.stop(0)
    ingest.stop(0)


def test_a_track_is_one_trace_from_the_gateway_through_identity_to_every_sink(
    delivering_gateway: Server, span_exporter: InMemorySpanExporter, user_id: str
) -> None:
    span_exporter.clear()
    with grpc.insecure_channel(delivering_gateway.address) as channel:
        ingest_grpc.IngestServiceStub(channel).Track(
            ingest_pb.TrackRequest(event=make_event(user_id)),
            metadata=(("authorization", f"Bearer {API_KEY}"),),
            timeout=10,
        )
    gateway = next(
        s
        for s in span_exporter.get_finished_spans()
        if s.name == TRACK and (s.attributes or {}).get("rpc.service") == "gateway"
    )
    # The forwarding spans too: each ends after the call below it, so its callee's span can be there first.
    forwards = {f"ingest.forward {sink}" for sink in ("journeys", "decision")}
    spans = spans_of(span_exporter, gateway.context.trace_id, {TRACK, RESOLVE, WRITE, OBSERVE} | forwards)

    ingest = one(spans, TRACK, **{"rpc.service": "ingest"})
    assert ingest.parent is not None
    assert ingest.parent.span_id == gateway.context.span_id
    resolved_under = []
    for sink, call, service in (("journeys", WRITE, "journeys"), ("decision", OBSERVE, "decision")):
        delivery = one(spans, f"ingest.forward {sink}")
        assert delivery.kind == SpanKind.CONSUMER
        assert delivery.parent is not None
        assert delivery.parent.span_id == ingest.context.span_id, sink
        below = {(s.name, (s.attributes or {}).get("rpc.service")) for s in children(spans, delivery)}
        assert (call, service) in below, (sink, below)
        resource = {s.resource.attributes["service.name"] for s in children(spans, delivery)}
        assert f"wayline-{service}" in resource
        if (RESOLVE, "identity") in below:
            assert "wayline-identity" in resource
            resolved_under.append(sink)
    # Identity resolves the event's person in front of the first sink to deliver it; the other sinks take
    # that answer from the forwarder's resolver (docs/ingest.md): one resolution in the trace, not one a sink.
    assert len(resolved_under) == 1, resolved_under


@pytest.mark.timeout(120)
def test_a_decide_is_one_trace_from_the_gateway_through_decision_to_identity_and_journeys(
    gateway_channel: grpc.Channel, span_exporter: InMemorySpanExporter, user_id: str, tmp_path: Path
) -> None:
    owner = new_tenant(gateway_channel)
    model_id = f"traced-{uuid.uuid4().hex[:6]}"
    push(gateway_channel, ml_package(tmp_path / "p", model_id=model_id, version="1"), owner)
    deploy(gateway_channel, model_id, "1", auth=owner)
    decision = decision_grpc.DecisionServiceStub(gateway_channel)
    reachable = action_pb2.ActionEligibility(required_reachable_channel=event_pb2.CHANNEL_WEB)
    decision.CreateAction(
        decision_pb.CreateActionRequest(
            action_id="discount_10",
            action=action_pb2.Action(channel=event_pb2.CHANNEL_WEB, eligibility=reachable),
        ),
        metadata=owner,
        timeout=10,
    )
    ingest_grpc.IngestServiceStub(gateway_channel).Track(  # identity learns the person
        ingest_pb.TrackRequest(event=make_event(user_id)), metadata=owner, timeout=10
    )
    person = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user_id))
    deadline = time.monotonic() + 20
    while True:  # until the delivery reached identity: then Decide knows the person
        span_exporter.clear()
        made = decision.Decide(
            decision_pb.DecideRequest(person=person, channel=event_pb2.CHANNEL_WEB, placement="home_hero"),
            metadata=owner,
            timeout=10,
        )
        if made.person_id or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert made.person_id

    gateway = next(
        s
        for s in span_exporter.get_finished_spans()
        if s.name == DECIDE and (s.attributes or {}).get("rpc.service") == "gateway"
    )
    # Journeys may answer after Decide did (a late feature read falls back to the spec's defaults): wait.
    deadline = time.monotonic() + 20
    while True:
        spans = spans_of(span_exporter, gateway.context.trace_id, {DECIDE})
        served = one(spans, DECIDE, **{"rpc.service": "decision"})
        below = children(spans, served)
        services = {(s.attributes or {}).get("rpc.service") for s in below}
        if services >= {"identity", "journeys"} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert served.parent is not None
    assert served.parent.span_id == gateway.context.span_id
    assert services >= {"identity", "journeys"}, [(s.name, dict(s.attributes or {})) for s in below]
    assert all(s.kind == SpanKind.SERVER for s in below)
    assert {s.context.trace_id for s in spans} == {gateway.context.trace_id}
