"""One trace across every hop: gateway → ingest → journeys, each span the child of the one before."""

from __future__ import annotations

import grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.events import make_event
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc


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

    gateway, ingest, journeys = spans["gateway"], spans["ingest"], spans["journeys"]
    assert gateway.name == ingest.name == "wayline.ingest.v1.IngestService/Track"
    assert journeys.name == "wayline.journeys.v1.JourneyService/WriteEvents"
    assert len({span.context.trace_id for span in (gateway, ingest, journeys)}) == 1
    assert ingest.parent is not None
    assert ingest.parent.span_id == gateway.context.span_id
    assert journeys.parent is not None
    assert journeys.parent.span_id == ingest.context.span_id
    assert journeys.attributes is not None
    assert journeys.attributes["rpc.grpc.status_code"] == 0
