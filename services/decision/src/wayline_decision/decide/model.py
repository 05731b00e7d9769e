"""Decide's values, free of protobuf. Enumerations keep the contract's value names (`CHANNEL_EMAIL`,
`FILTER_REASON_PLACEMENT`), as the action catalogue does, so the converters map them by name."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wayline_decision.actions import Action

__all__ = [
    "Candidate",
    "DecideInput",
    "Factors",
    "Filter",
    "FilterReason",
    "Outcome",
    "ValueSource",
]


class FilterReason(StrEnum):
    SEGMENT_REQUIRED = "FILTER_REASON_SEGMENT_REQUIRED"
    SEGMENT_EXCLUDED = "FILTER_REASON_SEGMENT_EXCLUDED"
    FREQUENCY_CAP = "FILTER_REASON_FREQUENCY_CAP"
    QUIET_HOURS = "FILTER_REASON_QUIET_HOURS"
    NO_CONSENT = "FILTER_REASON_NO_CONSENT"
    CHANNEL_PREFERENCE = "FILTER_REASON_CHANNEL_PREFERENCE"
    UNKNOWN_ACTION = "FILTER_REASON_UNKNOWN_ACTION"
    VALIDITY_WINDOW = "FILTER_REASON_VALIDITY_WINDOW"
    PLACEMENT = "FILTER_REASON_PLACEMENT"
    LIFECYCLE_STAGE = "FILTER_REASON_LIFECYCLE_STAGE"
    NOT_REACHABLE = "FILTER_REASON_NOT_REACHABLE"
    FACT_UNAVAILABLE = "FILTER_REASON_FACT_UNAVAILABLE"
    ACTION_ARCHIVED = "FILTER_REASON_ACTION_ARCHIVED"


class Outcome(StrEnum):
    CHOSEN = "CANDIDATE_OUTCOME_CHOSEN"
    RETURNED = "CANDIDATE_OUTCOME_RETURNED"
    NOT_RETURNED = "CANDIDATE_OUTCOME_NOT_RETURNED"
    FILTERED = "CANDIDATE_OUTCOME_FILTERED"


class ValueSource(StrEnum):
    REQUEST = "VALUE_SOURCE_REQUEST"
    CATALOGUE = "VALUE_SOURCE_CATALOGUE"
    MODEL = "VALUE_SOURCE_MODEL"


@dataclass(frozen=True, slots=True)
class Filter:
    """Why a candidate was removed: the reason, the rule (`filtered_by`) and a sentence."""

    reason: FilterReason
    rule: str
    description: str


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate as decided on: a request's candidate merged with its catalogued action (candidates.py
    states the rule), or a catalogued action alone. `channel` is resolved (never unspecified)."""

    action_id: str
    channel: str
    value: float | None = None
    value_source: ValueSource | None = None
    lever: float | None = None
    context_weight: float | None = None
    required_segments: tuple[str, ...] = ()
    excluded_segments: tuple[str, ...] = ()
    is_contact: bool = False
    purpose: str = "CONTACT_PURPOSE_UNSPECIFIED"
    catalogued: Action | None = None
    attributes: object = None  # the request's attributes, opaque here: only the trace carries them


@dataclass(frozen=True, slots=True)
class Factors:
    """The factors of a candidate's priority (the contract's PriorityFactors)."""

    propensity: float
    context_weight: float
    value: float
    lever: float
    priority: float
    value_source: ValueSource

    @property
    def expected_value(self) -> float:
        return self.propensity * self.value


@dataclass(frozen=True, slots=True)
class DecideInput:
    """A validated Decide request. Exactly one of `person_id` and `identifier` (type, value) is set."""

    channel: str
    channel_number: int  # the same channel as the contract's number, for the model router
    placement: str = ""
    person_id: str = ""
    identifier: tuple[str, str] | None = None
    candidates: tuple[Candidate, ...] = ()  # as given (unmerged); empty: the catalogue's
    max_actions: int = 1
    explain: bool = False
    model_id: str | None = None
    context: object = None  # the request's context, opaque here: only the trace carries it
    deadline: float | None = None  # time.monotonic() value
