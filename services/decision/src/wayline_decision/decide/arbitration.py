"""Arbitration: each eligible candidate's priority = propensity x context weight x value x lever, and the
ranking by it.

The value is the request candidate's, else the catalogued action's, else the model package's value graph
E[value | convert, features, action]: a model trained on revenue then ranks by expected revenue when no one
states a value, instead of every action being worth 1 (ADR 0028). Ties are broken by the higher propensity,
then by the action id in byte order, so one request always gets one ranking.
"""

from __future__ import annotations

from collections.abc import Sequence

from wayline_decision.decide.model import Candidate, Factors, ValueSource

__all__ = ["factors", "rank"]


def factors(candidate: Candidate, propensity: float, model_value: float) -> Factors:
    if candidate.value is not None:
        value, source = candidate.value, candidate.value_source or ValueSource.REQUEST
    else:
        value, source = model_value, ValueSource.MODEL
    context = 1.0 if candidate.context_weight is None else candidate.context_weight
    lever = 1.0 if candidate.lever is None else candidate.lever
    return Factors(propensity, context, value, lever, propensity * context * value * lever, source)


def rank(scored: Sequence[tuple[Candidate, Factors]]) -> list[tuple[Candidate, Factors]]:
    """The candidates, the best first."""
    return sorted(scored, key=lambda pair: (-pair[1].priority, -pair[1].propensity, pair[0].action_id))
