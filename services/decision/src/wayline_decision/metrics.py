"""The decision service's domain metrics: decisions by model version and arm, and model loads by outcome.

Decide and the version loader are told of each fact through this object (passed in, so the simulation and
the tests of the domain modules build them without one). Model ids and versions are bounded by what the
registry holds, so labelling by them keeps the series countable; the person never is a label.
"""

from __future__ import annotations

from opentelemetry import metrics

__all__ = ["DecisionMetrics"]


class DecisionMetrics:
    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("wayline.decision")
        self._decisions = meter.create_counter(
            "decision.decisions",
            unit="{decision}",
            description="Decisions made, by model, version, arm (stable, canary) and outcome (action: at "
            "least one action returned; none: no candidate was eligible; holdout: the person's holdout "
            "group got no action).",
        )
        self._loads = meter.create_counter(
            "decision.model.loads",
            unit="{load}",
            description="Model version loads on this replica, by model and outcome (loaded, failed: the "
            "version cannot serve here; GetModel says why).",
        )

    def decided(self, model_id: str, version: str, arm: str, outcome: str) -> None:
        self._decisions.add(1, {"model": model_id, "version": version, "arm": arm, "outcome": outcome})

    def loaded(self, model_id: str, *, failed: bool) -> None:
        self._loads.add(1, {"model": model_id, "outcome": "failed" if failed else "loaded"})
