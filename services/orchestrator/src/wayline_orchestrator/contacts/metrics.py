"""The contact ledger's domain metrics: contacts the policy refused, by the rule that refused them and by
where the refusal happened (check: CheckContact, Decide's eligibility; record: RecordContact with the policy
enforced; flow: a flow's send step).

The reasons are the policy's rule kinds (FREQUENCY_CAP, QUIET_HOURS, NO_CONSENT, CHANNEL_PREFERENCE), so
every series is known in advance and starts at zero. A refusal with two reasons counts under both.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import metrics

from wayline_orchestrator.contacts.model import Violation

__all__ = ["REASONS", "SOURCES", "ContactMetrics"]

REASONS = ("FREQUENCY_CAP", "QUIET_HOURS", "NO_CONSENT", "CHANNEL_PREFERENCE")
SOURCES = ("check", "record", "flow")


class ContactMetrics:
    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter("wayline.orchestrator")
        self._suppressed = meter.create_counter(
            "orchestrator.contacts.suppressed",
            unit="{contact}",
            description="Contacts the contact policy refused, by reason (FREQUENCY_CAP, QUIET_HOURS, "
            "NO_CONSENT, CHANNEL_PREFERENCE) and source (check: CheckContact; record: RecordContact; "
            "flow: a flow's send step).",
        )
        for source in SOURCES:
            for reason in REASONS:
                self._suppressed.add(0, {"reason": reason, "source": source})

    def suppressed(self, source: str, violations: Iterable[Violation]) -> None:
        for reason in sorted({violation.reason for violation in violations}):
            self._suppressed.add(1, {"reason": reason, "source": source})
