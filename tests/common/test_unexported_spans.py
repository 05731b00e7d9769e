"""Spans nobody exports are not recorded, yet carry the ids and flags the SDK would have given them; once a
processor is attached, spans are recorded and exported as before."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from wayline.common.telemetry import Telemetry, process_telemetry
from wayline.common.unexported_spans import UnexportedSpansTracer

PARENT_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_SPAN = 0xB7AD6B7169203331


def _tracer(exporting: list[bool]) -> tuple[UnexportedSpansTracer, InMemorySpanExporter]:
    processors = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    exported = InMemorySpanExporter()
    processors.add_span_processor(SimpleSpanProcessor(exported))
    provider = TracerProvider(active_span_processor=processors)
    ids = provider.id_generator
    return UnexportedSpansTracer(provider.get_tracer("test"), lambda: exporting[0], ids), exported


def _incoming(flags: str) -> dict[str, str]:
    return {"traceparent": f"00-{PARENT_TRACE:032x}-{PARENT_SPAN:016x}-{flags}", "tracestate": "vendor=kept"}


def test_a_root_span_nobody_exports_is_a_new_sampled_trace_and_not_recorded() -> None:
    tracer, exported = _tracer([False])
    with tracer.start_as_current_span("root", kind=trace.SpanKind.SERVER) as span:
        context = span.get_span_context()
        assert trace.get_current_span() is span  # downstream calls and log lines see it
        nested = tracer.start_span("nested")
    assert not span.is_recording()
    assert context.is_valid
    assert context.trace_flags.sampled
    assert nested.get_span_context().trace_id == context.trace_id
    assert nested.get_span_context().span_id != context.span_id
    assert exported.get_finished_spans() == ()


def test_an_unexported_span_continues_its_callers_trace_with_its_flags_and_state() -> None:
    tracer, _ = _tracer([False])
    propagator = TraceContextTextMapPropagator()
    for flags, sampled in (("01", True), ("00", False)):
        with tracer.start_as_current_span("call", context=propagator.extract(_incoming(flags))) as span:
            context = span.get_span_context()
            carrier: dict[str, str] = {}
            propagator.inject(carrier)
        assert context.trace_id == PARENT_TRACE
        assert context.span_id not in (PARENT_SPAN, 0)
        assert context.trace_flags.sampled is sampled
        assert context.trace_state.get("vendor") == "kept"
        assert carrier["traceparent"] == f"00-{PARENT_TRACE:032x}-{context.span_id:016x}-{flags}"


def test_spans_are_recorded_and_exported_once_a_processor_is_attached() -> None:
    exporting = [False]
    tracer, exported = _tracer(exporting)
    with tracer.start_as_current_span("before"):
        pass
    exporting[0] = True
    propagator = TraceContextTextMapPropagator()
    with tracer.start_as_current_span(
        "after", context=propagator.extract(_incoming("01")), attributes={"rpc.system": "grpc"}
    ) as span:
        assert span.is_recording()
    (finished,) = exported.get_finished_spans()
    assert finished.name == "after"
    assert finished.context is not None
    assert finished.context.trace_id == PARENT_TRACE
    assert finished.attributes == {"rpc.system": "grpc"}


def test_the_process_pipeline_records_only_after_a_processor_is_added() -> None:
    processors = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    pipeline = Telemetry(
        tracer_provider=TracerProvider(active_span_processor=processors),
        meter_provider=process_telemetry().meter_provider,
        rpc_metrics=process_telemetry().rpc_metrics,
        _spans=processors,
    )
    tracer = pipeline.tracer("pipeline-test")
    with tracer.start_as_current_span("unexported") as span:
        assert not span.is_recording()
    exported = InMemorySpanExporter()
    pipeline.add_span_processor(SimpleSpanProcessor(exported))
    with tracer.start_as_current_span("exported") as span:
        assert span.is_recording()
    assert [s.name for s in exported.get_finished_spans()] == ["exported"]
