"""The facts about a person that eligibility reads from other services, and the seam they come through.

Decide fetches only what its candidates need (FactNeeds), all at once and concurrently, each within a budget
from the request's deadline. A fact that could not be read is absent from Facts and its reason is in
`unavailable`; eligibility then removes the candidates whose rules need it (fails closed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from wayline_decision.decide.model import Candidate

__all__ = [
    "ContactVerdict",
    "ContactViolation",
    "Fact",
    "FactNeeds",
    "FactSource",
    "Facts",
    "PendingFacts",
    "PersonResolver",
    "ResolvedPerson",
    "fact_needs",
    "facts_for",
]


class Fact(StrEnum):
    """A fact and the service it comes from (named in traces)."""

    SEGMENTS = "segment memberships (journeys)"
    LIFECYCLE = "lifecycle stage (journeys)"
    PROFILE = "profile identifiers (identity)"
    CONTACT_POLICY = "contact policy (orchestrator)"


@dataclass(frozen=True, slots=True)
class ContactViolation:
    """One contact-policy rule that forbids a contact: the contract's ContactBlockReason name, the rule's
    path in the policy (`frequency_caps[1]`) and the ledger's sentence."""

    reason: str
    rule: str
    description: str


@dataclass(frozen=True, slots=True)
class ContactVerdict:
    allowed: bool
    violations: tuple[ContactViolation, ...] = ()


ContactKey = tuple[str, str]  # (channel, purpose), as the contract names them


@dataclass(frozen=True)
class FactNeeds:
    segments: frozenset[str] = frozenset()
    lifecycle: bool = False
    profile: bool = False
    contacts: frozenset[ContactKey] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.segments or self.lifecycle or self.profile or self.contacts)


@dataclass
class Facts:
    """What was learnt. A fact that was needed but could not be read stays None, with its reason in
    `unavailable` (keyed by Fact)."""

    segments: frozenset[str] | None = None  # the person's memberships among those asked
    lifecycle_stage: str | None = None  # the contract's LifecycleStage name
    identifier_types: frozenset[str] | None = None  # the types of identifier the person's profile holds
    contacts: Mapping[ContactKey, ContactVerdict] | None = None
    unavailable: dict[Fact, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResolvedPerson:
    person_id: str
    identifier_types: frozenset[str]


def fact_needs(candidates: Iterable[Candidate], identifier_types_known: bool) -> FactNeeds:
    """What the candidates' rules need: their segments, the lifecycle stage if any lists stages, the
    profile if any needs reachability (unless the identifiers are already known), and one contact-policy
    check per (channel, purpose) of contacts and of required consents."""
    segments: set[str] = set()
    contacts: set[ContactKey] = set()
    lifecycle = profile = False
    for c in candidates:
        segments.update(c.required_segments)
        segments.update(c.excluded_segments)
        if c.is_contact:
            contacts.add((c.channel, c.purpose))
        action = c.catalogued
        if action is None:
            continue
        eligibility = action.eligibility
        lifecycle |= bool(eligibility.lifecycle_stages)
        if eligibility.required_consent != "CONTACT_PURPOSE_UNSPECIFIED":
            contacts.add((c.channel, eligibility.required_consent))
        profile |= eligibility.required_reachable_channel != "CHANNEL_UNSPECIFIED"
    return FactNeeds(
        frozenset(segments), lifecycle, profile and not identifier_types_known, frozenset(contacts)
    )


class PendingFacts(Protocol):
    def result(self) -> Facts:
        """The facts, waiting at most until the budget given to `start` runs out."""
        ...


class FactSource(Protocol):
    def start(self, person_id: str, needs: FactNeeds, budget_s: float) -> PendingFacts:
        """Start reading the facts `needs` names about `person_id` (of the current call's tenant), each
        within `budget_s` seconds; returns at once."""
        ...


class PersonResolver(Protocol):
    def resolve(self, identifier_type: str, value: str, budget_s: float) -> ResolvedPerson | None:
        """The person holding the identifier, None when nobody does (an unknown person); IdentityUnavailable
        when identity does not answer within `budget_s`."""
        ...


_UNKNOWN_PERSON = ContactVerdict(
    False,
    (
        ContactViolation(
            "CONTACT_BLOCK_REASON_NO_CONSENT",
            "consent",
            "the person is unknown to identity, so no consent is recorded and the policy cannot be checked",
        ),
    ),
)


def facts_for(
    pending: PendingFacts | None, needs: FactNeeds, person_id: str, identifier_types: frozenset[str] | None
) -> Facts:
    """The facts eligibility reads: those fetched, or for an unknown person what is known without asking
    (no segment, no stage, the identifier named, and no contact: nothing says they consented)."""
    if not person_id:
        return Facts(
            segments=frozenset(),
            lifecycle_stage="LIFECYCLE_STAGE_UNSPECIFIED",
            identifier_types=identifier_types,
            contacts={key: _UNKNOWN_PERSON for key in needs.contacts},
        )
    facts = pending.result() if pending is not None else Facts()
    if identifier_types is not None:
        facts.identifier_types = identifier_types
    return facts
