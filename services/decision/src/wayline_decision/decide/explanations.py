"""Explanations: an Explainer's per-column contributions (TreeSHAP over the response graph) turned into what
a person reads — the features' contributions by name, the action's one-hot columns folded into one
`action` contribution, the 20 largest by magnitude, and the base value, margin and the rest carried so that
base + contributions + rest = margin can be checked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from wayline_decision.explain.treeshap import Explanation
from wayline_decision.features.model import FeatureValue

if TYPE_CHECKING:
    from wayline_decision.serving.loaded import ServingModel

__all__ = [
    "ACTION_CONTRIBUTION",
    "Contribution",
    "ExplainedDecision",
    "Explainer",
    "Explanation",
    "ServingExplainer",
    "explained",
]

ACTION_CONTRIBUTION = "action"
TOP = 20


class Explainer(Protocol):
    def explain(
        self, model: ServingModel, features: npt.NDArray[np.float32], action_index: int
    ) -> Explanation:
        """The contributions of the row (`features`, the one-hot of `action_index`) to the response graph's
        margin."""
        ...


class ServingExplainer:
    """The loaded version's own exact TreeSHAP (ServingModel.explain: the response graph and the package's
    covers), built on a version's first explanation and kept with it."""

    def explain(
        self, model: ServingModel, features: npt.NDArray[np.float32], action_index: int
    ) -> Explanation:
        return model.explain(features, action_index)


@dataclass(frozen=True, slots=True)
class Contribution:
    feature: str
    value: FeatureValue
    contribution: float


@dataclass(frozen=True, slots=True)
class ExplainedDecision:
    action_id: str
    contributions: tuple[Contribution, ...]  # the largest |contribution| first, at most 20
    base_value: float
    margin: float
    other_contribution: float  # the sum of the contributions beyond the first 20
    summary: str


def _signed(value: float) -> str:
    return f"{value:+.3g}"


def explained(
    model: ServingModel, values: Sequence[FeatureValue], action_id: str, explanation: Explanation
) -> ExplainedDecision:
    names = model.feature_names
    columns = explanation.contributions
    width = len(names)
    named = [Contribution(name, values[i], float(columns[i])) for i, name in enumerate(names)]
    named.append(Contribution(ACTION_CONTRIBUTION, action_id, float(np.sum(columns[width:]))))
    named.sort(key=lambda c: (-abs(c.contribution), c.feature))
    top, rest = named[:TOP], named[TOP:]
    leading = ", ".join(f"{c.feature} ({_signed(c.contribution)})" for c in top[:3] if c.contribution)
    summary = (
        f"{action_id} was scored mostly on {leading}"
        if leading
        else f"{action_id} was scored on its base rate"
    )
    return ExplainedDecision(
        action_id=action_id,
        contributions=tuple(top),
        base_value=float(explanation.base_value),
        margin=float(explanation.margin),
        other_contribution=float(sum(c.contribution for c in rest)),
        summary=summary + f" (margin {explanation.margin:.3g} from a base of {explanation.base_value:.3g}).",
    )
