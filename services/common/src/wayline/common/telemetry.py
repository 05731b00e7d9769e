"""OpenTelemetry for a service: traces (OTLP when configured) and metrics (Prometheus, OTLP when configured).

Trace context crosses every hop through the grpc instrumentation's interceptors, which the server bootstrap
and the channel factory install; this module owns the providers and the RPC metrics the kit records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

__all__ = ["RpcMetrics", "Telemetry", "configure_telemetry"]

_configured: Telemetry | None = None


@dataclass
class RpcMetrics:
    """The instruments the server interceptor records for every RPC."""

    duration_ms: metrics.Histogram
    requests: metrics.Counter

    @classmethod
    def create(cls, meter: metrics.Meter) -> RpcMetrics:
        return cls(
            duration_ms=meter.create_histogram(
                "rpc.server.duration", unit="ms", description="Time to serve one RPC, by method and status."
            ),
            requests=meter.create_counter(
                "rpc.server.requests", unit="{request}", description="RPCs served, by method and status."
            ),
        )


@dataclass
class Telemetry:
    """The process's providers; `shutdown` flushes what is still buffered."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    rpc_metrics: RpcMetrics
    _metrics_servers: list[Any] = field(default_factory=list)

    def shutdown(self) -> None:
        for server in self._metrics_servers:
            server.shutdown()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def configure_telemetry(
    service: str, *, otlp_endpoint: str | None, metrics_host: str = "0.0.0.0", metrics_port: int = 0
) -> Telemetry:
    """Install the global tracer and meter providers once per process and return them.

    A process that hosts several services (tests) shares the first configuration.
    """
    global _configured  # noqa: PLW0603 - OpenTelemetry's providers are process-global by design
    if _configured is not None:
        return _configured
    # Our names are defaults: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, read by the SDK, win.
    resource = Resource.create({"service.name": f"wayline-{service}", "service.namespace": "wayline"}).merge(
        OTELResourceDetector().detect()
    )
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    servers: list[Any] = []
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
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
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _configured = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        rpc_metrics=RpcMetrics.create(meter_provider.get_meter("wayline.common")),
        _metrics_servers=servers,
    )
    return _configured
