"""A monotonic counter summed in the process and read by the metrics SDK when it collects.

The SDK's synchronous `Counter.add` runs its whole measurement path on the caller's thread for every call
(the measurement object, the attributes' hash, the view and its aggregation under a lock, the exemplar
filter). On the hottest counter, one add per RPC in every service, that is paid on every call. Here an add is
one dictionary update under a lock, and the SDK reads the totals through an observable counter at each
collection: the same instrument name, unit and series for Prometheus and OTLP (`rpc_server_requests_total`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from opentelemetry import metrics

__all__ = ["ProcessCounter"]

_Key = tuple[tuple[str, str], ...]


class ProcessCounter:
    """Thread-safe; its attribute values are strings."""

    def __init__(self, meter: metrics.Meter, name: str, *, unit: str, description: str) -> None:
        self._totals: dict[_Key, float] = {}
        self._lock = threading.Lock()
        meter.create_observable_counter(name, callbacks=[self._observe], unit=unit, description=description)

    def add(self, amount: float, attributes: Mapping[str, str] | None = None) -> None:
        # Sorted, so that one set of attributes given in another order adds to the same total, one
        # observation per set (the SDK sums repeated sets today; nothing here depends on it).
        key = tuple(sorted(attributes.items())) if attributes else ()
        with self._lock:
            self._totals[key] = self._totals.get(key, 0) + amount

    def _observe(self, _: metrics.CallbackOptions) -> Iterable[metrics.Observation]:
        with self._lock:
            totals = list(self._totals.items())
        return [metrics.Observation(total, dict(key)) for key, total in totals]
