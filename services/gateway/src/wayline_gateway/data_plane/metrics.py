"""The nginx data plane's calls in the gateway's metrics. nginx counts in shared memory, by method and
grpc-status, the calls it passed to a service or answered itself (a quota, a service it could not reach); the
control plane reads the totals from nginx's admin socket whenever the metrics SDK collects, as two observable
counters beside the kit's `rpc.server.*` (which count the calls the control plane served itself)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grpc
from opentelemetry import metrics

__all__ = ["DataPlaneMetrics"]

Totals = dict[tuple[str, str, str], float]
_STATUS_NAMES = {str(code.value[0]): code.name for code in grpc.StatusCode}


class DataPlaneMetrics:
    def __init__(self, meter: metrics.Meter, read: Callable[[], Totals]) -> None:
        """`read`: (method, grpc-status number, "count" | "seconds") → total since nginx started."""
        self._read = read
        meter.create_observable_counter(
            "wayline.gateway.data_plane.requests",
            callbacks=[self._observer("count")],
            unit="{request}",
            description="Public RPCs nginx passed to a service or answered itself, by method and status.",
        )
        meter.create_observable_counter(
            "wayline.gateway.data_plane.duration",
            callbacks=[self._observer("seconds")],
            unit="s",
            description="Seconds nginx spent on those RPCs, by method and status (÷ requests: the mean).",
        )

    def _observer(self, kind: str) -> Callable[[metrics.CallbackOptions], Iterable[metrics.Observation]]:
        def observe(_: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
            return [
                metrics.Observation(
                    total,
                    {"rpc.method": method, "rpc.grpc.status_code": _STATUS_NAMES.get(status, status)},
                )
                for (method, status, measured), total in self._read().items()
                if measured == kind
            ]

        return observe
