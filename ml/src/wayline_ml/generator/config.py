"""The generator's knobs, in one frozen dataclass: the same config and seed give the same population."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["GeneratorConfig"]


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. `start` is part of the config (not "now") so that a rerun is identical."""

    people: int = 1_000
    """How many persons."""
    days: float = 90.0
    """The span of the journeys, from `start`."""
    seed: int = 0
    """Seeds every random draw (PCG64); event ids and identifiers follow from it."""
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    """When the generated period begins (timezone-aware)."""
    sessions_per_day: float = 0.12
    """The mean number of sessions a person starts per day; each person's own rate is gamma-distributed
    around it, so a few people are much more active than most."""
    namespace: str = ""
    """Prefix of every identifier (user ids, anonymous ids, emails); empty means `g<seed>`. Give two
    populations sent to one tenant different namespaces, or identity will merge their people."""
    logging_epsilon: float = 0.5
    """The logging policy's exploration: with this probability a decision's action is uniform over the
    eligible actions, otherwise the greedy rule's (see decisions.py)."""
    max_session_steps: int = 40
    """Sessions end after this many in-session steps at the latest."""

    def __post_init__(self) -> None:
        if self.people < 1:
            raise ValueError("people must be at least 1")
        if self.days <= 0:
            raise ValueError("days must be positive")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not 0.0 <= self.logging_epsilon <= 1.0:
            raise ValueError("logging_epsilon must lie in [0, 1]")
        if self.sessions_per_day <= 0:
            raise ValueError("sessions_per_day must be positive")

    @property
    def prefix(self) -> str:
        """The identifier namespace actually used."""
        return self.namespace or f"g{self.seed}"

    @property
    def start_us(self) -> int:
        """`start` in microseconds since the epoch, the unit of every generated timestamp."""
        return int(self.start.timestamp() * 1_000_000)
