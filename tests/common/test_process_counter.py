"""The in-process counter reports what the SDK's counter would: one monotonic, cumulative total per
attribute set, under the same Prometheus name, however many threads add to it."""

from __future__ import annotations

import threading

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Sum
from prometheus_client import REGISTRY, generate_latest

from wayline.common.process_counter import ProcessCounter
from wayline.common.telemetry import RpcMetrics

OK = {"rpc.service": "s", "rpc.method": "/p.S/M", "rpc.grpc.status_code": "OK"}


def _totals(
    reader: InMemoryMetricReader, name: str
) -> tuple[Sum, dict[tuple[tuple[str, object], ...], float]]:
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [
        m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
    ]
    assert isinstance(metric.data, Sum)
    return metric.data, {
        tuple(sorted((p.attributes or {}).items())): p.value for p in metric.data.data_points
    }


def test_adds_are_summed_per_attribute_set_in_any_order_and_stay_cumulative() -> None:
    reader = InMemoryMetricReader()
    counter = ProcessCounter(
        MeterProvider(metric_readers=[reader]).get_meter("t"), "c", unit="1", description=""
    )
    counter.add(1, OK)
    counter.add(2, dict(reversed(list(OK.items()))))  # the same set, given in another order
    counter.add(5, {**OK, "rpc.grpc.status_code": "INTERNAL"})
    data, totals = _totals(reader, "c")
    assert data.is_monotonic
    assert totals == {
        tuple(sorted(OK.items())): 3,
        tuple(sorted({**OK, "rpc.grpc.status_code": "INTERNAL"}.items())): 5,
    }
    counter.add(1, OK)
    assert _totals(reader, "c")[1][tuple(sorted(OK.items()))] == 4  # cumulative across collections


def test_adds_from_many_threads_are_all_counted() -> None:
    reader = InMemoryMetricReader()
    counter = ProcessCounter(
        MeterProvider(metric_readers=[reader]).get_meter("t"), "c", unit="1", description=""
    )

    def add() -> None:
        for _ in range(5_000):
            counter.add(1, OK)

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _totals(reader, "c")[1] == {tuple(sorted(OK.items())): 40_000}


def test_the_rpc_requests_counter_keeps_its_prometheus_series() -> None:
    """The dashboards and alerts (deploy/kustomize/components/monitoring) read rpc_server_requests_total."""
    provider = MeterProvider(metric_readers=[PrometheusMetricReader()], shutdown_on_exit=False)
    try:
        metrics = RpcMetrics.create(provider.get_meter("wayline.common"))
        metrics.requests.add(1, OK)
        metrics.requests.add(1, OK)
        page = generate_latest(REGISTRY).decode()
    finally:
        provider.shutdown()  # takes the reader's collector off the global registry
    assert "# TYPE rpc_server_requests_total counter" in page
    (line,) = [x for x in page.splitlines() if x.startswith("rpc_server_requests_total{")]
    assert 'rpc_method="/p.S/M"' in line
    assert 'rpc_grpc_status_code="OK"' in line
    assert line.endswith(" 2.0")
