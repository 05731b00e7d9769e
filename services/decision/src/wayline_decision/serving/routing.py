"""The routing table: for one tenant, which loaded versions serve each deployed model, and which model
serves a channel and placement. Immutable once built (the model server replaces a tenant's table as a whole),
so a decision reads it without a lock.

Canary assignment is a stable hash of the model id and the person id (BLAKE2b, 64 bits) taken modulo
10,000: a person is in the canary when their bucket is below the canary's share in basis points. The model id
is in the hash so that one person is not in every model's canary at once.

Several deployed models may serve one channel and placement (their stable version's manifest names the
channels and placements it serves; empty means all). The most specific wins: a model naming the placement
beats one serving every placement, then one naming the channel beats one serving every channel; among equals
the smallest model id wins, so the choice never depends on deployment order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from wayline_decision.errors import ModelNotLoaded
from wayline_decision.serving.loaded import ServingModel
from wayline_decision.serving.route import Arm, Route
from wayline_decision.serving.traffic import BASIS_POINTS, Traffic

__all__ = ["Deployment", "TenantRoutes", "canary_bucket"]

_MEMO_LIMIT = 4096  # placements are free strings: bound what callers can make the memo hold


def canary_bucket(model_id: str, person_id: str) -> int:
    """The person's bucket for the model's canary, 0 to 9,999, the same on every replica and release."""
    digest = hashlib.blake2b(f"{model_id}\x00{person_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BASIS_POINTS


@dataclass(frozen=True, slots=True)
class Deployment:
    """One model's traffic with the versions loaded for it on this replica (None: not loaded here)."""

    traffic: Traffic
    stable: ServingModel | None
    canary: ServingModel | None = None
    shadow: ServingModel | None = None
    previous: ServingModel | None = None  # the previous stable version, kept warm so a rollback is instant
    channels: frozenset[int] = frozenset()  # of the stable version's manifest; empty: every channel
    placements: frozenset[str] = frozenset()  # likewise; empty: every placement

    @property
    def complete(self) -> bool:
        """Whether every version the traffic names is loaded."""
        traffic = self.traffic
        return (
            self.stable is not None
            and (not traffic.canary_version or self.canary is not None)
            and (not traffic.shadow_version or self.shadow is not None)
        )

    def models(self) -> tuple[ServingModel, ...]:
        """The loaded versions that serve (or shadow) decisions."""
        return tuple(m for m in (self.stable, self.canary, self.shadow) if m is not None)

    def held(self) -> tuple[ServingModel, ...]:
        """Every version this deployment keeps loaded: those that serve, and the rollback target."""
        return self.models() + ((self.previous,) if self.previous is not None else ())

    def serves(self, channel: int, placement: str) -> bool:
        return (not self.channels or channel in self.channels) and (
            not self.placements or placement in self.placements
        )

    @property
    def specificity(self) -> int:
        return (2 if self.placements else 0) + (1 if self.channels else 0)

    def route(self, person_id: str) -> Route:
        stable = self.stable
        if stable is None:
            raise ModelNotLoaded(self.traffic.model_id, self.traffic.stable_version)
        canary = self.canary
        # A canary that failed to load on this replica leaves its persons on the stable version.
        if (
            canary is not None
            and canary_bucket(self.traffic.model_id, person_id) < self.traffic.canary_basis_points
        ):
            return Route(canary, Arm.CANARY, self.shadow)
        return Route(stable, Arm.STABLE, self.shadow)


@dataclass(frozen=True)
class TenantRoutes:
    """A tenant's deployments by model id, and the memo of which one serves a channel and placement."""

    deployments: Mapping[str, Deployment]
    _memo: dict[tuple[int, str], Deployment | None] = field(default_factory=dict, compare=False)

    def serving(self, channel: int, placement: str) -> Deployment | None:
        """The deployment that serves the channel and placement (the most specific; ties by model id)."""
        key = (channel, placement)
        try:
            return self._memo[key]
        except KeyError:
            pass
        best: Deployment | None = None
        for model_id in sorted(self.deployments):
            candidate = self.deployments[model_id]
            if candidate.serves(channel, placement) and (
                best is None or candidate.specificity > best.specificity
            ):
                best = candidate
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = best  # a racing reader computes the same answer: the write is idempotent
        return best
