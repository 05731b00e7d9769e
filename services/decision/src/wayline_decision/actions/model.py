"""An action of the catalogue as plain values. Enumerations keep the contract's value names (for example
`CHANNEL_EMAIL`), so the stored form reads the same as the API and survives renumbering nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Action", "ActionState", "Eligibility"]


class ActionState(StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


@dataclass(frozen=True)
class Eligibility:
    """Who an action may be offered to; every condition set must hold (empty: everyone)."""

    required_segments: tuple[str, ...] = ()
    excluded_segments: tuple[str, ...] = ()
    lifecycle_stages: tuple[str, ...] = ()
    required_consent: str = "CONTACT_PURPOSE_UNSPECIFIED"
    required_reachable_channel: str = "CHANNEL_UNSPECIFIED"


@dataclass(frozen=True)
class Action:
    """One catalogued action. Times are microseconds since the epoch; `version` is the etag's number."""

    action_id: str
    display_name: str = ""
    description: str = ""
    channel: str = "CHANNEL_UNSPECIFIED"
    placements: tuple[str, ...] = ()
    value: float | None = None
    value_currency: str = ""
    lever: float | None = None
    start_time: int | None = None
    end_time: int | None = None
    eligibility: Eligibility = field(default_factory=Eligibility)
    counts_as_contact: bool = False
    purpose: str = "CONTACT_PURPOSE_UNSPECIFIED"
    state: ActionState = ActionState.ACTIVE
    version: int = 0
    create_time: int = 0
    update_time: int = 0

    @property
    def etag(self) -> str:
        return str(self.version)

    def valid_at(self, time_us: int) -> bool:
        """True when the action is active and `time_us` lies in its validity window: a candidate then."""
        return (
            self.state is ActionState.ACTIVE
            and (self.start_time is None or self.start_time <= time_us)
            and (self.end_time is None or time_us < self.end_time)
        )
