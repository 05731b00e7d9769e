"""Lifecycle stages: per person and as distributions, from a declarative model. Free of protobuf and SQL.

A model defines at most one condition per stage. At a time T, a person is in the highest stage whose condition
holds over their events before T; a person with an event before T and no holding condition is in awareness
(awareness's own definition changes nothing); a person without one has no stage (UNSPECIFIED). A population's
distribution at T counts the persons with an event before T who pass its person filters at T.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from wayline_journeys.analytics import Population
from wayline_journeys.conditions import Condition, LifecycleStage
from wayline_journeys.person_refs import IdentifierResolver, PersonRef, resolve_persons

__all__ = [
    "MAX_DISTRIBUTION_TIMES",
    "MAX_PERSONS",
    "STAGES",
    "LifecycleModel",
    "LifecycleQuery",
    "LifecycleResult",
    "LifecycleStore",
    "PersonStage",
    "StageDistribution",
    "lifecycle_stages",
]

MAX_PERSONS = 1_000
MAX_DISTRIBUTION_TIMES = 100
STAGES = tuple(s for s in LifecycleStage if s is not LifecycleStage.UNSPECIFIED)
"""The stages a distribution reports, in order."""


@dataclass(frozen=True)
class LifecycleModel:
    definitions: tuple[tuple[LifecycleStage, Condition], ...] = ()
    """(stage, condition), at most one per stage."""

    def ranked(self) -> list[tuple[LifecycleStage, Condition]]:
        """The definitions that can assign a stage, highest stage first (awareness is the fallback)."""
        return sorted(
            ((s, c) for s, c in self.definitions if s > LifecycleStage.AWARENESS), key=lambda d: -d[0]
        )


@dataclass(frozen=True)
class LifecycleQuery:
    tenant: str
    model: LifecycleModel
    as_of: datetime
    persons: tuple[PersonRef, ...] = ()
    include_distribution: bool = False
    population: Population = field(default_factory=Population)
    distribution_times: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class PersonStage:
    person_id: str
    """Empty when an identifier matched no event."""
    stage: LifecycleStage


@dataclass(frozen=True)
class StageDistribution:
    time: datetime
    counts: Mapping[LifecycleStage, int]
    """Every stage of STAGES, zeros included."""

    @property
    def population_size(self) -> int:
        return sum(self.counts.values())

    def share(self, stage: LifecycleStage) -> float:
        return self.counts[stage] / self.population_size if self.population_size else 0.0


@dataclass(frozen=True)
class LifecycleResult:
    persons: list[PersonStage]
    distribution: StageDistribution | None
    """At `as_of`, when asked for."""
    distributions: list[StageDistribution]
    """One per requested distribution time, in request order."""


class LifecycleStore(IdentifierResolver, Protocol):
    def person_stages(
        self, tenant: str, model: LifecycleModel, as_of: datetime, person_ids: Sequence[str]
    ) -> dict[str, LifecycleStage]:
        """The stage of each person with an event before `as_of` (others are missing)."""

    def stage_counts(
        self, tenant: str, model: LifecycleModel, population: Population, times: Sequence[datetime]
    ) -> dict[datetime, dict[LifecycleStage, int]]:
        """How many persons of `population` are in each stage at each time (zero counts may be missing)."""


def lifecycle_stages(store: LifecycleStore, query: LifecycleQuery) -> LifecycleResult:
    """Answer `query` with one query for the persons (and one to resolve identifiers, when some are given)
    and one for every distribution together."""
    person_ids = resolve_persons(store, query.tenant, query.persons)
    wanted = sorted({p for p in person_ids if p})
    stages = store.person_stages(query.tenant, query.model, query.as_of, wanted) if wanted else {}
    persons = [PersonStage(p, stages.get(p, LifecycleStage.UNSPECIFIED)) for p in person_ids]

    times = sorted({*query.distribution_times, *([query.as_of] if query.include_distribution else [])})
    counts = store.stage_counts(query.tenant, query.model, query.population, times) if times else {}

    def distribution(time: datetime) -> StageDistribution:
        found = counts.get(time, {})
        return StageDistribution(time, {s: found.get(s, 0) for s in STAGES})

    return LifecycleResult(
        persons=persons,
        distribution=distribution(query.as_of) if query.include_distribution else None,
        distributions=[distribution(t) for t in query.distribution_times],
    )
