"""The tracking-plan counter that operators watch: violations by plan, event name and mode.

Recorded through the OpenTelemetry API, so whichever exporter the kit installed (Prometheus on the metrics
port: `ingest_tracking_plan_violations_total`, or OTLP) publishes it. The event-name label only takes
planned names (and `(unplanned)`), which keeps the number of time series bounded by the plans themselves.
"""

from __future__ import annotations

from opentelemetry import metrics

__all__ = ["VIOLATIONS_METRIC", "PlanMetrics"]

VIOLATIONS_METRIC = "ingest.tracking_plan.violations"


class PlanMetrics:
    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("wayline.ingest.tracking_plans")
        self._violations = meter.create_counter(
            VIOLATIONS_METRIC,
            unit="{violation}",
            description="Tracking-plan violations found in incoming events, by tenant, plan, event name "
            "and mode (reject: the event was refused; flag: it was stored with its violations).",
        )

    def violations(self, tenant: str, plan: str, event_name: str, mode: str, count: int) -> None:
        self._violations.add(count, {"tenant": tenant, "plan": plan, "event_name": event_name, "mode": mode})
