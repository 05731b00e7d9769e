"""A tenant's holdout groups as plain values; the treatment keeps the contract's value names."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["HoldoutConfig", "HoldoutGroup", "Treatment"]


class Treatment(StrEnum):
    """What a group's persons get instead of the policy's choice (the contract's HoldoutTreatment)."""

    NO_ACTION = "HOLDOUT_TREATMENT_NO_ACTION"
    RANDOM_ACTION = "HOLDOUT_TREATMENT_RANDOM_ACTION"


@dataclass(frozen=True)
class HoldoutGroup:
    group_id: str
    display_name: str = ""
    enabled: bool = False
    percent: float = 0.0
    salt: str = ""
    models: tuple[str, ...] = ()  # `models/{model_id}`; empty: every model
    placements: tuple[str, ...] = ()  # empty: every placement
    treatment: Treatment = Treatment.NO_ACTION

    def applies_to(self, model_id: str, placement: str) -> bool:
        return (
            self.enabled
            and (not self.models or f"models/{model_id}" in self.models)
            and (not self.placements or placement in self.placements)
        )


@dataclass(frozen=True)
class HoldoutConfig:
    """The groups, tried in order. `version` is the etag's number (0: never set); times in µs."""

    groups: tuple[HoldoutGroup, ...] = ()
    version: int = 0
    update_time: int = 0

    @property
    def etag(self) -> str:
        return str(self.version)
