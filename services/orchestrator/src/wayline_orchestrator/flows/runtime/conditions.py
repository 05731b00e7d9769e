"""A flow's conditions (FlowCondition, in its JSON form) evaluated for one entry: on the triggering event, on
the person's events since entry and on their channel preference (stated, learned from engagement, or stated
then learned, as the condition's `source` asks), in groups and negated.

Conditions this service cannot answer alone are false here, and logged: `person` conditions (the journeys
service evaluates them: segments, lifecycle stage, customer value) and `decision` conditions (a call to
DecisionService.Decide)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from wayline_orchestrator.flows.runtime.lookups import Lookups
from wayline_orchestrator.flows.runtime.matching import Occurrence, filter_holds, matches

__all__ = ["Facts", "holds"]

log = structlog.get_logger("wayline.orchestrator")

_NONE = "CHANNEL_UNSPECIFIED"


@dataclass(frozen=True)
class Facts:
    """What a condition may read of an entry."""

    trigger: Occurrence | None
    events: Sequence[Occurrence]
    preferred_channel: str  # a channel's value name; CHANNEL_UNSPECIFIED: none stated
    tenant: str = ""
    learned_channel: str = _NONE  # from engagement (contacts/engagement.py); CHANNEL_UNSPECIFIED: none
    person_id: str = ""
    lookups: Lookups = field(default_factory=Lookups)  # person conditions (journeys), decisions (decision)


def _preferred(facts: Facts, source: str) -> str:
    """The preference the condition's source reads; unset means stated, then learned."""
    if source == "CHANNEL_PREFERENCE_SOURCE_STATED":
        return facts.preferred_channel
    if source == "CHANNEL_PREFERENCE_SOURCE_LEARNED":
        return facts.learned_channel
    return facts.preferred_channel if facts.preferred_channel != _NONE else facts.learned_channel


def _holds(condition: dict[str, Any], facts: Facts) -> bool:
    if "group" in condition:
        group = condition["group"]
        results = (holds(member, facts) for member in group.get("conditions", []))
        return any(results) if group.get("operator") == "LOGICAL_OPERATOR_OR" else all(results)
    if "trigger_property" in condition:
        return facts.trigger is not None and filter_holds(facts.trigger, condition["trigger_property"])
    if "event_since_entry" in condition:
        since = condition["event_since_entry"]
        wanted = max(1, int(since.get("min_count", 0)))
        return sum(1 for e in facts.events if matches(e, since.get("event"))) >= wanted
    if "channel_preference" in condition:
        wanted = condition["channel_preference"]
        return _preferred(facts, wanted.get("source", "")) in wanted.get("channels", [])
    kind = next(iter(k for k in condition if k != "negate"), "")
    log.info("flows.condition_not_evaluated", kind=kind)
    return False


def holds(condition: dict[str, Any], facts: Facts) -> bool:
    """Whether the condition holds (`negate` inverts it)."""
    return _holds(condition, facts) != bool(condition.get("negate"))
