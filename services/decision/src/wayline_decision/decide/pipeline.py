"""Decide: resolve the person, route to a model, gather the candidates, filter them (local rules, then the
facts other services hold, fetched concurrently with the feature read and the scoring), rank the eligible
ones, apply the holdout, explain the choice, and keep the whole story for the trace."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wayline.common.timestamps import now_us
from wayline_decision.decide.arbitration import factors, rank
from wayline_decision.decide.candidates import CatalogueCache, candidate_set
from wayline_decision.decide.eligibility import fact_filter, local_filter
from wayline_decision.decide.explanations import ExplainedDecision, Explainer, explained
from wayline_decision.decide.facts import FactSource, PersonResolver, fact_needs, facts_for
from wayline_decision.decide.ids import uuid7
from wayline_decision.decide.model import Candidate, DecideInput, Factors, Filter
from wayline_decision.decide.outcomes import CandidateRecord, outcomes
from wayline_decision.errors import DecideDeadlineExceeded, ExplanationUnavailable
from wayline_decision.features.model import FeatureValue
from wayline_decision.features.reader import FeatureOrigin, FeatureRead, FeatureReader
from wayline_decision.holdouts import HoldoutGroup, Holdouts, Treatment, holdout_for
from wayline_decision.serving.loaded import Float32Array, ServingModel
from wayline_decision.serving.route import Arm, ModelRouter, Route

__all__ = ["Budgets", "DecideSources", "Decider", "DecisionResult"]

Ranked = list[tuple[Candidate, Factors]]


@dataclass(frozen=True)
class Budgets:
    """Seconds each outside read may take at most (always within the request's deadline), and the time
    kept back from the deadline for scoring and answering."""

    resolve_s: float = 0.05
    facts_s: float = 0.05
    features_s: float = 0.02
    reserve_s: float = 0.002


@dataclass(frozen=True)
class DecideSources:
    """Where Decide reads from: the model router and the feature reader (serving and features), the
    catalogue and holdouts (this service's SQL, cached), the facts and identity (other services), and an
    optional explainer."""

    router: ModelRouter
    reader: FeatureReader
    catalogue: CatalogueCache
    holdouts: Holdouts
    facts: FactSource
    resolver: PersonResolver
    explainer: Explainer | None = None


@dataclass(frozen=True)
class DecisionResult:
    decision_id: str
    person_id: str
    request: DecideInput
    decide_time_us: int
    model: ServingModel
    arm: Arm
    feature_origin: FeatureOrigin
    feature_values: Sequence[FeatureValue]
    returned: list[CandidateRecord]  # the response's actions, in order
    candidates: list[CandidateRecord]  # every candidate: the ranked ones in order, then the filtered
    chosen_action_id: str
    chosen_probability: float
    holdout: HoldoutGroup | None
    shadow: ServingModel | None
    shadow_scores: list[tuple[str, float]]
    explanation: ExplainedDecision | None


@dataclass(frozen=True)
class _Person:
    person_id: str  # empty: unknown to identity
    key: str  # what holdouts and canaries hash: the person id, else the identifier named
    identifier_types: frozenset[str] | None  # known when identity resolved an identifier


@dataclass(frozen=True)
class _Scored:
    read: FeatureRead
    row: Float32Array
    filters: dict[int, Filter]
    scored: dict[int, Factors]
    ranked: Ranked


def choose(ranked: Ranked, group: HoldoutGroup | None, max_actions: int, seed: str) -> tuple[Ranked, float]:
    """What is returned and the probability the chosen one had: the best `max_actions` (greedy, 1); for a
    holdout nothing (0), or one eligible candidate drawn uniformly (1/n) when its treatment says so."""
    if group is None:
        return ranked[:max_actions], 1.0
    if group.treatment is Treatment.RANDOM_ACTION and ranked:
        pick = random.Random(seed).randrange(len(ranked))  # noqa: S311 - a fair, reproducible draw
        return [ranked[pick]], 1.0 / len(ranked)
    return [], 0.0


class Decider:
    def __init__(
        self, sources: DecideSources, *, budgets: Budgets | None = None, clock: Callable[[], int] = now_us
    ) -> None:
        self._sources = sources
        self._budgets = budgets or Budgets()
        self._clock = clock

    def _budget(self, request: DecideInput, wanted: float, stage: str) -> float:
        if request.deadline is None:
            return wanted
        left = request.deadline - time.monotonic() - self._budgets.reserve_s
        if left <= 0:
            raise DecideDeadlineExceeded(stage)
        return min(wanted, left)

    def _person(self, request: DecideInput) -> _Person:
        if request.identifier is None:
            return _Person(request.person_id, request.person_id, None)
        budget = self._budget(request, self._budgets.resolve_s, "before the person was resolved")
        resolved = self._sources.resolver.resolve(*request.identifier, budget)
        key = ":".join(request.identifier)
        if resolved is None:  # unknown: decided for on defaults, hashed by the identifier
            return _Person("", key, frozenset({request.identifier[0]}))
        return _Person(resolved.person_id, resolved.person_id, resolved.identifier_types)

    def _features(
        self, model: ServingModel, person_id: str, now_us: int, request: DecideInput
    ) -> FeatureRead:
        if not person_id:  # an unknown person: a cold start, decided on the spec's defaults
            return FeatureRead([f.default for f in model.spec.features], FeatureOrigin.DEFAULTS)
        budget = self._budget(request, self._budgets.features_s, "before the features were read")
        return self._sources.reader.read(model, person_id, now_us, budget)

    def _score(
        self,
        model: ServingModel,
        candidates: Sequence[Candidate],
        person: _Person,
        request: DecideInput,
        now_us: int,
    ) -> _Scored:
        filters: dict[int, Filter] = {}
        survivors: list[tuple[int, Candidate]] = []
        for index, candidate in enumerate(candidates):
            found = local_filter(candidate, model.action_index, request.placement, now_us)
            if found is None:
                survivors.append((index, candidate))
            else:
                filters[index] = found
        needs = fact_needs((c for _, c in survivors), person.identifier_types is not None)
        pending = None
        if needs and person.person_id:  # the facts travel while the features are read and scored
            budget = self._budget(request, self._budgets.facts_s, "before the facts were read")
            pending = self._sources.facts.start(person.person_id, needs, budget)
        read = self._features(model, person.person_id, now_us, request)
        row = model.encode(read.values)
        scores = model.score(row, [model.action_index[c.action_id] for _, c in survivors])
        facts = facts_for(pending, needs, person.person_id, person.identifier_types)
        scored: dict[int, Factors] = {}
        eligible: Ranked = []
        for position, (index, candidate) in enumerate(survivors):
            propensity, model_value = float(scores.propensity[position]), float(scores.value[position])
            scored[index] = factors(candidate, propensity, model_value)
            found = fact_filter(candidate, facts)
            if found is None:
                eligible.append((candidate, scored[index]))
            else:
                filters[index] = found
        return _Scored(read, row, filters, scored, rank(eligible))

    def decide(self, tenant: str, request: DecideInput) -> DecisionResult:
        now_us = self._clock()
        decision_id = uuid7(now_us // 1_000)
        person = self._person(request)
        route = self._sources.router.route(
            tenant, request.model_id, request.channel_number, request.placement, person.key
        )
        model = route.model
        catalogue = self._sources.catalogue.actions(tenant)
        candidates = candidate_set(request.candidates, catalogue, request.channel, request.placement, now_us)
        result = self._score(model, candidates, person, request, now_us)
        config = self._sources.holdouts.current(tenant)
        group = holdout_for(config, person.key, model.model_id, request.placement)
        returned, probability = choose(result.ranked, group, request.max_actions, decision_id)
        chosen = returned[0][0] if returned else None
        explanation = None
        if request.explain and chosen is not None:
            explanation = self._explain(model, result.row, result.read.values, chosen.action_id)
        records, returned_records = outcomes(
            candidates, result.ranked, returned, result.filters, result.scored
        )
        return DecisionResult(
            decision_id=decision_id,
            person_id=person.person_id,
            request=request,
            decide_time_us=now_us,
            model=model,
            arm=route.arm,
            feature_origin=result.read.origin,
            feature_values=result.read.values,
            returned=returned_records,
            candidates=records,
            chosen_action_id=chosen.action_id if chosen else "",
            chosen_probability=probability if chosen else 0.0,
            holdout=group,
            shadow=route.shadow,
            shadow_scores=self._shadow(route, result, person.person_id, now_us, request),
            explanation=explanation,
        )

    def _explain(
        self, model: ServingModel, row: Float32Array, values: Sequence[FeatureValue], action_id: str
    ) -> ExplainedDecision:
        explainer = self._sources.explainer
        if explainer is None:
            return ExplainedDecision(action_id, (), 0.0, 0.0, 0.0, "this service has no explainer configured")
        try:
            explanation = explainer.explain(model, row, model.action_index[action_id])
        except (
            ExplanationUnavailable
        ) as error:  # the decision stands; the response says why it is unexplained
            return ExplainedDecision(action_id, (), 0.0, 0.0, 0.0, error.message)
        return explained(model, values, action_id, explanation)

    def _shadow(
        self, route: Route, result: _Scored, person_id: str, now_us: int, request: DecideInput
    ) -> list[tuple[str, float]]:
        """The shadow version's propensities for the eligible candidates it scores (logged, never served).
        Its features are read again only when its spec differs from the served model's."""
        shadow = route.shadow
        if shadow is None:
            return []
        ids = [c.action_id for c, _ in result.ranked if c.action_id in shadow.action_index]
        row = result.row
        if shadow.spec.key != route.model.spec.key:
            row = shadow.encode(self._features(shadow, person_id, now_us, request).values)
        scores = shadow.score(row, [shadow.action_index[i] for i in ids])
        return [(action_id, float(p)) for action_id, p in zip(ids, scores.propensity, strict=True)]
