"""OpenTelemetry for a service: traces (OTLP when configured) and metrics (Prometheus, OTLP when configured).

Trace context crosses every hop through the kit's own interceptors (ADR 7), which the server bootstrap and
the channel factory install; this module owns the process's pipeline, a tracer per hosted service, and the
RPC metrics the kit records. `run` configures the pipeline once, before the server exists; a server built
without it (tests host several services in one process) gets a pipeline that exports nothing, to which a
test adds its own span processor.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.environment_variables import OTEL_METRICS_EXEMPLAR_FILTER
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, ExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from wayline.common.process_counter import ProcessCounter
from wayline.common.unexported_spans import UnexportedSpansTracer

__all__ = [
    "RPC_DURATION_BUCKETS_MS",
    "RpcMetrics",
    "Telemetry",
    "configure_telemetry",
    "exemplar_filter",
    "process_telemetry",
]

_process: Telemetry | None = None
_process_lock = threading.Lock()

# Bucket bounds (ms) of the RPC durations, server and client. The SDK's defaults (0, 5, 10, 25, 50, 75, 100,
# ...) cannot tell a 1 ms Decide from a 4 ms one, and our latency targets and benchmarks live below 50 ms.
RPC_DURATION_BUCKETS_MS = (
    0.5,
    1,
    2,
    3,
    5,
    7.5,
    10,
    15,
    20,
    25,
    35,
    50,
    75,
    100,
    150,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
)


class _OsRandomIds(IdGenerator):
    """Trace and span ids from the operating system's entropy. The SDK's default draws them from the global
    `random`, which code in the process may seed: ML code does, for reproducible runs, and so do test
    frameworks (Hypothesis). Seeded, every replica and every restart would repeat the same ids, and their
    traces would merge in the backend (opentelemetry-python#4376); each span would also move the seeding
    code's own sequence. The OS's entropy cannot be seeded and is not copied into a forked child."""

    def generate_span_id(self) -> int:
        while (span_id := secrets.randbits(64)) == trace.INVALID_SPAN_ID:
            pass
        return span_id

    def generate_trace_id(self) -> int:
        while (trace_id := secrets.randbits(128)) == trace.INVALID_TRACE_ID:
            pass
        return trace_id

    def is_trace_id_random(self) -> bool:
        return True


@dataclass
class RpcMetrics:
    """The instruments the server interceptor records for every RPC."""

    duration_ms: metrics.Histogram
    requests: ProcessCounter  # summed in the process: one add per call (process_counter.py)

    @classmethod
    def create(cls, meter: metrics.Meter) -> RpcMetrics:
        return cls(
            duration_ms=meter.create_histogram(
                "rpc.server.duration", unit="ms", description="Time to serve one RPC, by method and status."
            ),
            requests=ProcessCounter(
                meter,
                "rpc.server.requests",
                unit="{request}",
                description="RPCs served, by method and status.",
            ),
        )


def _resource(service: str | None) -> Resource:
    name = f"wayline-{service}" if service else "wayline"
    # Our names are defaults: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the SDK, win.
    return Resource.create({"service.name": name, "service.namespace": "wayline"}).merge(
        OTELResourceDetector().detect()
    )


@dataclass
class Telemetry:
    """The process's one pipeline (span processors, metric readers) and the tracers of the services it hosts.

    A span's service name comes from its tracer provider's resource, so each service gets a tracer provider
    of its own; they all feed the same processors, so an exporter (or a test's in-memory one) added once
    sees every service's spans. Metrics go through one meter provider; every RPC data point carries the
    service in `rpc.service`.
    """

    tracer_provider: TracerProvider  # the global one: for spans made through OpenTelemetry's API directly
    meter_provider: MeterProvider
    rpc_metrics: RpcMetrics
    _spans: SynchronousMultiSpanProcessor
    # Whether any processor receives spans (an OTLP exporter, a test's): until one does, the services' spans
    # are not recorded (unexported_spans.py).
    exports_spans: bool = False
    _metrics_servers: list[Any] = field(default_factory=list)
    _service_providers: dict[str, TracerProvider] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Send every service's spans to `processor` as well: those already started, when they were recorded
        (a processor was attached before them), and every one started from now on."""
        self._spans.add_span_processor(processor)
        self.exports_spans = True

    def tracer(self, service: str) -> trace.Tracer:
        """A tracer whose spans name `service` (resource `service.name` wayline-<service>); spans are recorded
        only while some processor receives them (`exports_spans`)."""
        with self._lock:
            provider = self._service_providers.get(service)
            if provider is None:
                # Shut down with the pipeline, not on its own: it owns no processor.
                provider = TracerProvider(
                    resource=_resource(service),
                    shutdown_on_exit=False,
                    active_span_processor=self._spans,
                    id_generator=_OsRandomIds(),
                )
                self._service_providers[service] = provider
        return UnexportedSpansTracer(
            provider.get_tracer("wayline.common"), lambda: self.exports_spans, _OsRandomIds()
        )

    def shutdown(self) -> None:
        for server in self._metrics_servers:
            server.shutdown()
        self.tracer_provider.shutdown()  # and with it the shared processors
        self.meter_provider.shutdown()


def configure_telemetry(
    service: str | None, *, otlp_endpoint: str | None, metrics_host: str = "0.0.0.0", metrics_port: int = 0
) -> Telemetry:
    """Install the process's pipeline: exporters, the Prometheus endpoint, the global providers (named
    after `service`, the one a production process hosts). Call it once, before any server is built.

    Raises RuntimeError when the process already has a pipeline, so that a second configuration (its
    exporters, its metrics port) is never silently ignored.
    """
    global _process  # noqa: PLW0603 - OpenTelemetry's providers are process-global by design
    with _process_lock:
        if _process is not None:
            raise RuntimeError("telemetry is configured once per process, before any server is built")
        _process = _build(service, otlp_endpoint, metrics_host, metrics_port)
        return _process


def process_telemetry() -> Telemetry:
    """The process's pipeline; one that exports nothing when `configure_telemetry` was never called (servers
    started in-process by tests)."""
    global _process  # noqa: PLW0603 - see configure_telemetry
    with _process_lock:
        if _process is None:
            _process = _build(None, None, "", 0)
        return _process


def exemplar_filter(otlp_endpoint: str | None, environ: Mapping[str, str]) -> ExemplarFilter | None:
    """None (the SDK's choice: OTEL_METRICS_EXEMPLAR_FILTER, else trace-based) when metrics go out over
    OTLP or the operator chose a filter; else none is kept. Exemplars tie a measurement to its trace and only
    OTLP carries them (the Prometheus reader drops them): without it the SDK's filter and reservoir would run
    on every measurement for nothing."""
    if otlp_endpoint or OTEL_METRICS_EXEMPLAR_FILTER in environ:
        return None
    return AlwaysOffExemplarFilter()


def _build(service: str | None, otlp_endpoint: str | None, metrics_host: str, metrics_port: int) -> Telemetry:
    resource = _resource(service)
    spans = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]  # the SDK leaves __init__ untyped
    tracer_provider = TracerProvider(
        resource=resource, active_span_processor=spans, id_generator=_OsRandomIds()
    )
    readers: list[MetricReader] = []
    servers: list[Any] = []
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        spans.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_endpoint)))
    if metrics_port:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        readers.append(PrometheusMetricReader())
        # A wildcard gRPC host ("[::]") becomes IPv4's wildcard here: prometheus_client binds one address
        # family, and clusters without IPv6 would refuse "::".
        wildcard = metrics_host.strip("[]") in ("", "::", "0.0.0.0")
        server, _thread = start_http_server(
            metrics_port, addr="0.0.0.0" if wildcard else metrics_host.strip("[]")
        )
        servers.append(server)
    rpc_durations = View(
        instrument_name="rpc.*.duration",
        aggregation=ExplicitBucketHistogramAggregation(RPC_DURATION_BUCKETS_MS),
    )
    gc_pauses = View(  # a full collection's pause is of the same order as a slow call, so the same bounds
        instrument_name="process.gc.pause",
        aggregation=ExplicitBucketHistogramAggregation(RPC_DURATION_BUCKETS_MS),
    )
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=readers,
        views=[rpc_durations, gc_pauses],
        exemplar_filter=exemplar_filter(otlp_endpoint, os.environ),
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(
        exports_spans=bool(otlp_endpoint),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        rpc_metrics=RpcMetrics.create(meter_provider.get_meter("wayline.common")),
        _spans=spans,
        _metrics_servers=servers,
    )
