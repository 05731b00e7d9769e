"""One trace across every hop: gateway → ingest → (spool) → ingest's delivery → journeys, each span the
child of the one before, although delivery happens after the acknowledgement."""

from __future__ import annotations

import time

import grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.events import make_event
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc


def find(exporter: InMemorySpanExporter, name: str, trace_id: int | None = None) -> ReadableSpan:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for span in exporter.get_finished_spans():
            if span.name == name and (trace_id is None or span.context.trace_id == trace_id):
                return span
        time.sleep(0.05)
    raise AssertionError(f"no span {name}")


def test_a_track_call_is_one_trace_across_gateway_ingest_and_journeys(
    gateway_channel: grpc.Channel,
    auth: tuple[tuple[str, str], ...],
    user_id: str,
    span_exporter: InMemorySpanExporter,
) -> None:
    span_exporter.clear()
    ingest_grpc.IngestServiceStub(gateway_channel).Track(
        ingest_pb.TrackRequest(event=make_event(user_id)), metadata=auth, timeout=10
    )
    spans = {span.attributes["rpc.service"]: span for span in span_exporter.get_finished_spans()}  # type: ignore[index]
    gateway, ingest = spans["gateway"], spans["ingest"]
    assert gateway.name == ingest.name == "wayline.ingest.v1.IngestService/Track"
    assert gateway.context.trace_id == ingest.context.trace_id
    assert ingest.parent is not None
    assert ingest.parent.span_id == gateway.context.span_id

    trace_id = gateway.context.trace_id
    forward = find(span_exporter, "ingest.forward journeys", trace_id)
    journeys = find(span_exporter, "wayline.journeys.v1.JourneyService/WriteEvents", trace_id)
    assert forward.parent is not None
    assert forward.parent.span_id == ingest.context.span_id
    assert journeys.parent is not None
    assert journeys.parent.span_id == forward.context.span_id
    assert journeys.attributes is not None
    assert journeys.attributes["rpc.grpc.status_code"] == 0


def test_servers_sharing_a_process_each_name_their_own_service(
    gateway_channel: grpc.Channel,
    auth: tuple[tuple[str, str], ...],
    user_id: str,
    span_exporter: InMemorySpanExporter,
) -> None:
    """The gateway, ingest and journeys servers of these tests share one process and one span pipeline,
    yet each span's resource names the service that made it (not the first one configured)."""
    span_exporter.clear()
    ingest_grpc.IngestServiceStub(gateway_channel).Track(
        ingest_pb.TrackRequest(event=make_event(user_id)), metadata=auth, timeout=10
    )
    track = find(span_exporter, "wayline.ingest.v1.IngestService/Track")
    journeys = find(span_exporter, "wayline.journeys.v1.JourneyService/WriteEvents", track.context.trace_id)
    names = {
        (span.name, span.resource.attributes["service.name"])
        for span in span_exporter.get_finished_spans()
        if span.context.trace_id == track.context.trace_id and span.kind == SpanKind.SERVER
    }
    assert names >= {
        ("wayline.ingest.v1.IngestService/Track", "wayline-gateway"),
        ("wayline.ingest.v1.IngestService/Track", "wayline-ingest"),
        (journeys.name, "wayline-journeys"),
    }
