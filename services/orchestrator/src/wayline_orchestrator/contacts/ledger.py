"""The ledger's operations: read and update the tenant's policy (by field mask, conditional on an etag),
check contacts against it, record contacts (idempotently, and atomically with the check when asked), list a
person's contacts, and keep what events say of a person. Free of gRPC, so flows call the same code."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from wayline.common.errors import FieldViolation
from wayline.common.sql import Transaction
from wayline.common.timestamps import now_us
from wayline_orchestrator.contacts.engagement import Engagement
from wayline_orchestrator.contacts.metrics import ContactMetrics
from wayline_orchestrator.contacts.model import (
    ANY_CHANNEL,
    CheckResult,
    Contact,
    ContactCheck,
    ContactPolicy,
    Person,
    Violation,
)
from wayline_orchestrator.contacts.rules import evaluate, preferred_channel
from wayline_orchestrator.contacts.store import (
    Attribute,
    ConsentStatement,
    ContactFilter,
    ContactStore,
    longest_window,
)
from wayline_orchestrator.contacts.validation import policy_violations
from wayline_orchestrator.errors import ContactInvalid, EtagMismatch, PolicyInvalid
from wayline_orchestrator.field_checks import id_violations

__all__ = [
    "MASK_PATHS",
    "MAX_CHECKS",
    "CheckAnswer",
    "ContactEvents",
    "ContactLedger",
    "ContactPage",
    "NoContactEvents",
    "Recorded",
]

# The fields UpdateContactPolicy may change; an empty mask means all of the top-level ones.
MASK_PATHS: tuple[str, ...] = (
    "frequency_caps",
    "quiet_hours",
    "consent_rules",
    "channel_preference",
    "channel_preference.enforce",
    "channel_preference.default_order",
)
_TOP_LEVEL = ("frequency_caps", "quiet_hours", "consent_rules", "channel_preference")
MAX_CHECKS = 50


@dataclass(frozen=True)
class CheckAnswer:
    results: list[CheckResult]
    preferred_channel: str


@dataclass(frozen=True)
class Recorded:
    recorded: bool
    contact: Contact
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class ContactPage:
    contacts: list[Contact]
    total: int
    more: bool


class ContactEvents(Protocol):
    """Where the timeline's events of the ledger go (timeline/, ADR 42): written in the transaction that
    records the contact (or the suppression), so the timeline loses nothing the ledger keeps."""

    def sent(self, tx: Transaction, tenant: str, contact: Contact) -> None: ...

    def suppressed(
        self, tx: Transaction, tenant: str, contact: Contact, key: str, violations: Sequence[Violation]
    ) -> None: ...


class NoContactEvents:
    """No timeline (no ingest address): nothing is written."""

    def sent(self, tx: Transaction, tenant: str, contact: Contact) -> None:
        del tx, tenant, contact

    def suppressed(
        self, tx: Transaction, tenant: str, contact: Contact, key: str, violations: Sequence[Violation]
    ) -> None:
        del tx, tenant, contact, key, violations


def _apply(current: ContactPolicy, changes: ContactPolicy, paths: Sequence[str]) -> ContactPolicy:
    fields = {p: getattr(changes, p) for p in (paths or _TOP_LEVEL) if "." not in p}
    preference = fields.pop("channel_preference", current.channel_preference)
    for path in paths:
        if path.startswith("channel_preference."):
            name = path.split(".", 1)[1]
            preference = dataclasses.replace(preference, **{name: getattr(changes.channel_preference, name)})
    return dataclasses.replace(current, **fields, channel_preference=preference)


class ContactLedger:
    def __init__(
        self,
        store: ContactStore,
        clock: Callable[[], int] = now_us,
        events: ContactEvents | None = None,
        metrics: ContactMetrics | None = None,
    ) -> None:
        """`metrics` counts the policy's refusals (the service's ledger; a flow simulation's has none)."""
        self._store = store
        self._clock = clock
        self._events = events or NoContactEvents()
        self._metrics = metrics

    def policy(self, tenant: str) -> ContactPolicy:
        with self._store.transaction() as tx:
            return self._store.policy(tx, tenant)

    def update_policy(
        self, tenant: str, changes: ContactPolicy, paths: Sequence[str], etag: str
    ) -> ContactPolicy:
        """Apply the fields of `changes` named in `paths` (empty: every field) to the tenant's policy, if
        `etag` (when given) is its current one."""
        unknown = [
            FieldViolation(f"update_mask.paths[{i}]", f"{path!r} is not a writable field of ContactPolicy")
            for i, path in enumerate(paths)
            if path not in MASK_PATHS
        ]
        if unknown:
            raise PolicyInvalid(unknown)
        current = self.policy(tenant)
        if etag and etag != current.etag:
            raise EtagMismatch(current.etag)
        updated = dataclasses.replace(
            _apply(current, changes, paths), revision=current.revision + 1, update_time=self._clock()
        )
        problems = policy_violations(updated)
        if problems:
            raise PolicyInvalid(problems)
        if not self._store.put_policy(tenant, updated, current.revision):
            raise EtagMismatch(self.policy(tenant).etag)  # changed between the read and the write
        return updated

    def check(
        self, tenant: str, person_id: str, checks: Sequence[ContactCheck], at: int | None
    ) -> CheckAnswer:
        """Whether the policy allows each contact with the person at `at` (None: now). Records nothing."""
        problems = id_violations("person_id", person_id)
        if not checks or len(checks) > MAX_CHECKS:
            problems.append(FieldViolation("checks", f"give 1 to {MAX_CHECKS} checks", "OUT_OF_RANGE"))
        problems += [
            FieldViolation(f"checks[{i}].channel", "is required: the channel of the contact", "REQUIRED")
            for i, c in enumerate(checks)
            if c.channel == ANY_CHANNEL
        ]
        if problems:
            raise ContactInvalid(problems)
        when = self._clock() if at is None else at
        # Reads only, on Decide's path: one statement, which neither queues behind flows' and RecordContact's
        # writes nor, on SQLite, gives a busy writer thread the interpreter more than once.
        policy, person, history = self._store.check_inputs(tenant, person_id, when)
        results = [evaluate(policy, person, history, c, when) for c in checks]
        if self._metrics is not None:
            for result in results:
                if result.violations:
                    self._metrics.suppressed("check", result.violations)
        return CheckAnswer(results, preferred_channel(policy, person, results))

    def record(self, tenant: str, contact: Contact, enforce_policy: bool) -> Recorded:
        """Write `contact` once (by its id). With `enforce_policy`, only if the policy allows it, checked and
        written in one transaction under the person's lock."""
        problems = id_violations("contact.contact_id", contact.contact_id) + id_violations(
            "contact.person_id", contact.person_id
        )
        if contact.channel == ANY_CHANNEL:
            problems.append(FieldViolation("contact.channel", "is required", "REQUIRED"))
        if problems:
            raise ContactInvalid(problems)
        with self._store.transaction() as tx:
            recorded = self.record_in(tx, tenant, contact, enforce_policy)
            if not recorded.recorded:
                # A refusal is part of the customer's story too: the timeline shows it, once per contact id
                # (the caller's retry of the same contact is the same event).
                self._events.suppressed(
                    tx, tenant, recorded.contact, f"{contact.contact_id}~refused", recorded.violations
                )
        if not recorded.recorded and self._metrics is not None:
            self._metrics.suppressed("record", recorded.violations)
        return recorded

    def record_in(self, tx: Transaction, tenant: str, contact: Contact, enforce_policy: bool) -> Recorded:
        """`record` in a transaction the caller opened (a flow's step, written with the step's other effects
        at once), with the person's lock taken here; the contact is not validated again."""
        self._store.lock_person(tx, tenant, contact.person_id)
        now = self._clock()
        contact = dataclasses.replace(contact, contact_time=contact.contact_time or now, record_time=now)
        earlier = self._store.contact(tx, tenant, contact.contact_id)
        if earlier is not None:
            return Recorded(True, earlier)
        if enforce_policy:
            policy = self._store.policy(tx, tenant)
            at = contact.contact_time
            history = self._store.history(tx, tenant, contact.person_id, at - longest_window(policy), at)
            check = ContactCheck(contact.channel, contact.purpose, contact.action_id)
            result = evaluate(policy, self._store.person(tx, tenant, contact.person_id), history, check, at)
            if not result.allowed:
                return Recorded(False, contact, result.violations)
        if self._store.insert(tx, tenant, contact):
            self._events.sent(tx, tenant, contact)
            return Recorded(True, contact)
        # The same id for another person, recorded meanwhile: it is that one the ledger holds.
        stored = self._store.contact(tx, tenant, contact.contact_id)
        return Recorded(True, stored or contact)

    def note_suppressed(
        self, tx: Transaction, tenant: str, contact: Contact, key: str, violations: Sequence[Violation]
    ) -> None:
        """A flow's send of `contact` the policy refused (`record_in` answered not recorded): the timeline's
        record of it, under `key` (the step run's), in the flow's transaction. Counted by `count_suppressed`
        once that transaction has committed (a run rolled back and done again would count it twice)."""
        self._events.suppressed(tx, tenant, contact, key, violations)

    def count_suppressed(self, violations: Sequence[Violation]) -> None:
        """Count a flow's send the policy refused (`note_suppressed`), after its transaction committed."""
        if self._metrics is not None:
            self._metrics.suppressed("flow", violations)

    def person(self, tx: Transaction, tenant: str, person_id: str) -> Person:
        """What the ledger knows of a person (consent, stated preferred channel, time zone, engagement)."""
        return self._store.person(tx, tenant, person_id)

    def contacts(
        self, tenant: str, where: ContactFilter, before: tuple[int, str] | None, limit: int
    ) -> ContactPage:
        problems = id_violations("person_id", where.person_id)
        if where.start is not None and where.end is not None and where.end <= where.start:
            problems.append(
                FieldViolation("time_range.end", "must be after time_range.start", "OUT_OF_RANGE")
            )
        if problems:
            raise ContactInvalid(problems)
        found, total = self._store.page(tenant, where, before, limit + 1)
        return ContactPage(found[:limit], total, len(found) > limit)

    def observe(
        self,
        tenant: str,
        consents: Sequence[ConsentStatement],
        attributes: Sequence[Attribute],
        engagements: Sequence[Engagement] = (),
    ) -> None:
        self._store.observe(tenant, consents, attributes, engagements)
