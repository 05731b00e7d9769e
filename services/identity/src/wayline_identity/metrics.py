"""The identity service's domain metrics: merges by kind and identifiers left out by reason.

Counted by the domain façade once a change is committed (never for a `validate_only` run, which rolls
back), through the OpenTelemetry API, so whichever exporter the kit installed publishes them. Both labels
take the values of the model's enums, so the number of series is fixed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

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

    def merged(self, records: Iterable[MergeRecord]) -> None:
        for kind, count in Counter(record.kind.value for record in records).items():
            self._merges.add(count, {"kind": kind})

    def resolved(self, outcome: ResolveOutcome) -> None:
        self.merged(outcome.merges)
        reasons = Counter(i.reason.value for r in outcome.resolutions for i in r.ignored)
        for reason, count in reasons.items():
            self._ignored.add(count, {"reason": reason})
