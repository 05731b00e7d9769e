"""The tracer a service's calls run under: the SDK's while some processor exports spans, and while none does,
spans that carry the same ids and flags without being recorded.

Every RPC opens a server span (interceptors.py). With no exporter configured (no OTLP endpoint: the embedded
default), the SDK still builds a full span for each one and hands it to no processor: in a server it measured
60-70 us of thread CPU per call, the largest single cost of the kit's interceptor, and about a tenth of a
CheckContact's CPU. What the span is still needed for is its context: the trace id that downstream calls
propagate, the ids that log lines carry, the context ingest saves with each spooled event. So while no
processor is attached, a span here is a `NonRecordingSpan` whose context is the one the SDK's default
sampler (parent-based, always on) would have given: the parent's trace id, flags and trace state when there is
a valid parent, else a new trace, sampled; and a new span id. A processor attached later (a test's in-memory
exporter) is honoured from the next span on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.util.types import Attributes

__all__ = ["UnexportedSpansTracer"]


class UnexportedSpansTracer(trace.Tracer):
    def __init__(self, recording: trace.Tracer, exporting: Callable[[], bool], ids: IdGenerator) -> None:
        """`recording` is the SDK's tracer, used while `exporting()` is true; `ids` makes the span ids (and
        the trace ids of new traces) of the spans made otherwise."""
        self._recording = recording
        self._exporting = exporting
        self._ids = ids

    def start_span(  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        if self._exporting():
            return self._recording.start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        parent = trace.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
        else:
            trace_id = self._ids.generate_trace_id()
            flags, state = trace.TraceFlags(trace.TraceFlags.SAMPLED), trace.TraceState()
        span_context = trace.SpanContext(
            trace_id, self._ids.generate_span_id(), is_remote=False, trace_flags=flags, trace_state=state
        )
        return trace.NonRecordingSpan(span_context)

    # The API's return type is its own private context manager class; a generator's behaves alike.
    @contextmanager
    def start_as_current_span(  # type: ignore[override]  # noqa: PLR0917 - the API's signature
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Any]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current
