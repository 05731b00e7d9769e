"""How Decide reads a person's features: the seam between the online feature service and Decide."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from wayline_decision.features.model import FeatureValue

if TYPE_CHECKING:
    from wayline_decision.serving.loaded import ServingModel

__all__ = ["FeatureOrigin", "FeatureRead", "FeatureReader"]


class FeatureOrigin(StrEnum):
    """Where a decision's features came from (the contract's FeatureSource)."""

    ONLINE = "online"
    JOURNEYS = "journeys"
    DEFAULTS = "defaults"
    MIXED = "mixed"


@dataclass(frozen=True, slots=True)
class FeatureRead:
    """A person's values of a model's spec at one time, in spec order, and where they came from."""

    values: list[FeatureValue]
    origin: FeatureOrigin


class FeatureReader(Protocol):
    def read(self, model: ServingModel, person_id: str, as_of_us: int, budget_s: float) -> FeatureRead:
        """The person's values of `model.spec` at `as_of_us` (tenant `model.tenant`): from the online state;
        when it does not hold the person, from journeys within `budget_s` seconds; else the defaults."""
        ...
