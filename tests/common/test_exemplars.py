"""Exemplars are kept only where they can go: metrics exported over OTLP, or a filter the operator chose."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from wayline.common.telemetry import exemplar_filter


def exemplars_of_a_sampled_call(otlp_endpoint: str | None, environ: dict[str, str]) -> int:
    """A histogram measured inside a sampled span, as the interceptor measures each call: its exemplars."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader], exemplar_filter=exemplar_filter(otlp_endpoint, environ))
    histogram = meters.get_meter("test").create_histogram("rpc.server.duration")
    with TracerProvider().get_tracer("test").start_as_current_span("call"):
        histogram.record(1.5)
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]
    assert len(points) == 1
    assert isinstance(points[0], HistogramDataPoint)
    return len(points[0].exemplars)


def test_no_exemplar_is_kept_without_an_otlp_endpoint() -> None:
    assert exemplars_of_a_sampled_call(None, {}) == 0


def test_exemplars_are_kept_for_otlp_and_when_the_operator_chose_a_filter() -> None:
    assert exemplars_of_a_sampled_call("http://collector:4317", {}) == 1
    assert exemplars_of_a_sampled_call(None, {"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"}) == 1
