"""Which loaded version serves one decision: the seam between the model lifecycle (serving/) and Decide."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from wayline_decision.serving.loaded import ServingModel

__all__ = ["Arm", "ModelLoadListener", "ModelRouter", "Route"]


class Arm(StrEnum):
    """The traffic arm that served a decision (the contract's ModelArm)."""

    STABLE = "stable"
    CANARY = "canary"


@dataclass(frozen=True, slots=True)
class Route:
    """The version that serves a decision, its arm, and the shadow version that also scores it (if any)."""

    model: ServingModel
    arm: Arm
    shadow: ServingModel | None = None


class ModelRouter(Protocol):
    def route(self, tenant: str, model_id: str | None, channel: int, placement: str, person_id: str) -> Route:
        """The route for a person's decision: of `model_id` when given, else of the deployed model serving
        the channel (an `event_pb2.Channel` value) and placement. Raises the contract's errors:
        NoModelDeployed (FAILED_PRECONDITION), ModelNotFound (NOT_FOUND), ModelNotLoaded (UNAVAILABLE)."""
        ...


class ModelLoadListener(Protocol):
    def loaded(self, model: ServingModel) -> None:
        """A version was loaded and is about to take traffic (or shadow traffic): keep what it reads."""
        ...
