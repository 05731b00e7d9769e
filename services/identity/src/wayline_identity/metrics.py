"""The identity service's domain metrics: merges by kind, identifiers left out by reason, and how erasures
are getting on (the attempts at each store's step, the erasures pending and how old the oldest is: an
erasure has a legal deadline, and one a store never confirms must be seen).

Counted by the domain façade once a change is committed (never for a `validate_only` run, which rolls
back), through the OpenTelemetry API, so whichever exporter the kit installed publishes them. Both labels
take the values of the model's enums, so the number of series is fixed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from opentelemetry import metrics

from wayline_identity.model import IgnoreReason, MergeKind, MergeRecord, ResolveOutcome

__all__ = ["IdentityMetrics"]


class IdentityMetrics:
    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("wayline.identity")
        self._merges = meter.create_counter(
            "identity.merges",
            unit="{merge}",
            description="Changes to the profile graph, by kind: automatic (an event joined two profiles), "
            "manual (MergeProfiles), unmerge and split (a profile cut in two).",
        )
        self._ignored = meter.create_counter(
            "identity.identifiers.ignored",
            unit="{identifier}",
            description="Identifiers resolution left out, by reason: blocked_value, invalid_value, "
            "unknown_type, limit_reached, merge_blocked (the rules kept two profiles apart), "
            "non_linking_event.",
        )
        # Every series from the start at zero: a rate over a series born with its first merge misses it.
        for kind in MergeKind:
            self._merges.add(0, {"kind": kind.value})
        for reason in IgnoreReason:
            self._ignored.add(0, {"reason": reason.value})

        self._erasure_steps = meter.create_counter(
            "identity.erasure.steps",
            unit="{attempt}",
            description="Attempts at the steps of erasures in the stores identity erases directly, by store "
            "and outcome: done, or failed (retried at the driver's next pass).",
        )
        self._meter = meter

    def erasure_stores(self, stores: Iterable[str]) -> None:
        """The stores identity erases directly: their series start at zero."""
        for store in stores:
            for outcome in ("done", "failed"):
                self._erasure_steps.add(0, {"store": store, "outcome": outcome})

    def erasure_steps(self, store: str, outcome: str, count: int) -> None:
        self._erasure_steps.add(count, {"store": store, "outcome": outcome})

    def observe_erasures(self, backlog: Callable[[], tuple[int, float]]) -> None:
        """Publish the pending erasures and the age in seconds of the oldest, as `backlog` tells them."""

        def pending(_: metrics.CallbackOptions) -> Iterator[metrics.Observation]:
            yield metrics.Observation(backlog()[0])

        def oldest(_: metrics.CallbackOptions) -> Iterator[metrics.Observation]:
            yield metrics.Observation(backlog()[1])

        self._meter.create_observable_gauge(
            "identity.erasures.pending",
            callbacks=[pending],
            unit="{erasure}",
            description="Erasures not complete yet (some store has not confirmed), as the driver last read.",
        )
        self._meter.create_observable_gauge(
            "identity.erasures.oldest_pending_age",
            callbacks=[oldest],
            unit="s",
            description="How long ago the oldest pending erasure was requested (0 when none is pending).",
        )

    def merged(self, records: Iterable[MergeRecord]) -> None:
        for kind, count in Counter(record.kind.value for record in records).items():
            self._merges.add(count, {"kind": kind})

    def resolved(self, outcome: ResolveOutcome) -> None:
        self.merged(outcome.merges)
        reasons = Counter(i.reason.value for r in outcome.resolutions for i in r.ignored)
        for reason, count in reasons.items():
            self._ignored.add(count, {"reason": reason})
