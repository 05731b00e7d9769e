"""Persons' conditions and traits now (EvaluatePersonConditions, GetPersonProperties and their batches,
BatchEvaluatePersonConditions and BatchGetPersonProperties): what the orchestrator asks for flow branches,
entry audiences and personalisation. Free of protobuf and of SQL.

The conditions mean what they mean in segments (conditions.py), evaluated at the time of the call with the
tenant's default lifecycle model; store/person_conditions.py compiles them with the segments' compiler
(store/conditions.py), for the asked persons. A person without stored events (or an identifier no event
carries) is evaluated on no events, so "has not purchased" holds for a stranger: counts are 0, traits are
absent, their customer value is 0 with no purchase, and their lifecycle stage is the first one, awareness. A
condition naming a segment that does not exist is refused (NOT_FOUND) rather than read as "not a member", as
the contract says. One person's answer (conditions or traits) is the batch's answer for that one person, so
the single and the batch RPCs cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from wayline_journeys.conditions import Condition, InLifecycleStage, InSegment, nodes
from wayline_journeys.lifecycle import LifecycleModel
from wayline_journeys.person_refs import IdentifierResolver, PersonRef, resolve_persons

__all__ = [
    "MAX_CONDITIONS_PER_CALL",
    "MAX_PERSONS_PER_BATCH",
    "MAX_PROPERTY_KEYS",
    "PersonConditionStore",
    "PersonConditions",
    "PersonConditionsAnswer",
    "Trait",
]

MAX_CONDITIONS_PER_CALL = 50
MAX_PROPERTY_KEYS = 100
MAX_PERSONS_PER_BATCH = 1000  # the batch RPCs: a page of a flow's segment entries


class PersonConditionStore(IdentifierResolver, Protocol):
    def evaluate_of(
        self,
        tenant: str,
        person_ids: Sequence[str],
        conditions: Sequence[Condition],
        lifecycle: LifecycleModel | None,
        at: datetime,
    ) -> dict[str, list[bool]]:
        """Per person id, whether each condition holds for the person at `at`, over their events before it
        (each event read as its current person); every id asked is answered, a person without events, or ''
        (a stranger known by an identifier only), evaluated on none. `lifecycle` is None when no condition
        names a lifecycle stage. A bounded number of statements whatever the number of persons."""
        ...

    def properties_of(
        self, tenant: str, person_ids: Sequence[str], keys: Sequence[str]
    ) -> dict[str, dict[str, Trait]]:
        """Per person id: the latest value (by timestamp, then event id) of each trait of the person's
        identify events, as JSON values with the event that set them; only `keys` when given; traits the
        person lacks are missing, and every id asked is answered (a person without identify events with
        {}). A bounded number of statements whatever the number of persons."""
        ...


@dataclass(frozen=True)
class Trait:
    """A trait's latest value (JSON) and the identify event that set it: its time and id."""

    value: Any
    at: datetime
    event_id: str


@dataclass(frozen=True)
class PersonConditionsAnswer:
    person_id: str
    results: list[bool]


class PersonConditions:
    """`check_segment` raises SegmentNotFound for a missing segment id; `lifecycle_for` gives a tenant's
    default lifecycle model; `clock` the time of evaluation."""

    def __init__(
        self,
        store: PersonConditionStore,
        check_segment: Callable[[str, str], object],
        lifecycle_for: Callable[[str], LifecycleModel],
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._check_segment = check_segment
        self._lifecycle_for = lifecycle_for
        self._clock = clock

    def evaluate(
        self, tenant: str, ref: PersonRef, conditions: Sequence[Condition]
    ) -> PersonConditionsAnswer:
        """One person's answer: `evaluate_of` for them alone, so the two RPCs cannot drift apart."""
        return self.evaluate_of(tenant, [ref], conditions)[0]

    def evaluate_of(
        self, tenant: str, refs: Sequence[PersonRef], conditions: Sequence[Condition]
    ) -> list[PersonConditionsAnswer]:
        """`evaluate` of each ref, in the refs' order (a ref named twice is answered twice), all at one time
        of evaluation: the segments checked once, one resolution of the identifiers and one store read for
        the distinct persons, so a page of persons costs about what one does. A stranger (an identifier no
        stored event carries) is answered with '' and evaluated on no events."""
        leaves = [n for c in conditions for n in nodes(c)]
        for segment_id in sorted({n.segment_id for n in leaves if isinstance(n, InSegment)}):
            self._check_segment(tenant, segment_id)
        person_ids = resolve_persons(self._store, tenant, refs)
        # The tenant's model is a read of its own: only when a condition names a stage.
        staged = any(isinstance(n, InLifecycleStage) for n in leaves)
        lifecycle = self._lifecycle_for(tenant) if staged else None
        found = self._store.evaluate_of(tenant, sorted(set(person_ids)), conditions, lifecycle, self._clock())
        return [PersonConditionsAnswer(p, found[p]) for p in person_ids]

    def properties(self, tenant: str, ref: PersonRef, keys: Sequence[str]) -> tuple[str, dict[str, Trait]]:
        """(the person's id, their traits among `keys`, every trait when empty)."""
        return self.properties_of(tenant, [ref], keys)[0]

    def properties_of(
        self, tenant: str, refs: Sequence[PersonRef], keys: Sequence[str]
    ) -> list[tuple[str, dict[str, Trait]]]:
        """`properties` of each ref, in the refs' order (a ref named twice is answered twice): one resolution
        of the identifiers and one store read for the distinct persons, so a page of persons costs what one
        does. A stranger (an identifier no stored event carries) is ('', {})."""
        person_ids = resolve_persons(self._store, tenant, refs)
        known = sorted({p for p in person_ids if p})
        found = self._store.properties_of(tenant, known, keys) if known else {}
        return [(p, found.get(p, {})) if p else ("", {}) for p in person_ids]
