"""A flow's conditions (FlowCondition, in its JSON form) evaluated for one entry: on the triggering event, on
the person's events since entry, on their channel preference (stated, learned from engagement, or stated
then learned, as the condition's `source` asks) and on the person as the journeys service knows them
(`person`: properties, event counts, lifecycle stage, customer value, segments), in groups and negated.

`person` conditions are asked of `Facts.lookups.person`. A step with several (a branch's conditions, the
flow's exit conditions) asks for them all in one call first (`with_person_answers`), so a step costs one
round trip whatever it holds; nothing is cached across steps or runs (docs/adr/0036). A `person.<trait>`
path in a `trigger_property` or `event_since_entry` filter reads the person's trait through `Facts.traits`
(the same lookups; an event's is asked only once the event-level parts of its matcher hold, matching.py).

A `decision` condition asks DecisionService.Decide through `facts.lookups.decision` (for the run: asked once
per question, outside the run's transaction, see decisions.py) and holds when the top-ranked action is one
of its `action_ids`; a decision that falls back does not hold. What each decision answered is kept in
`facts.decisions`, for the step run. The learned channel preference comes from the ledger's engagement
scores (contacts/engagement.py, ADR 41)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from wayline_orchestrator.flows.runtime.decisions import (
    Decided,
    DecisionQuestion,
    Fallback,
    bare_action_id,
)
from wayline_orchestrator.flows.runtime.lookups import Lookups
from wayline_orchestrator.flows.runtime.matching import Occurrence, filter_holds, matches

__all__ = ["Facts", "holds", "person_conditions", "with_person_answers"]

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
    person_answers: Mapping[str, bool] = field(default_factory=dict)  # by `_key`, asked ahead for a step
    flow: str = ""  # `flows/{id}`, the caller of decisions
    decisions: list[dict[str, str]] = field(default_factory=list)  # what each decision asked here answered

    def traits(self, keys: Sequence[str]) -> Mapping[str, Any]:
        """The person's traits among `keys` (matching.Traits: `person.` paths in filters on events)."""
        return self.lookups.person.properties(self.tenant, self.person_id, keys)


def _key(person: dict[str, Any]) -> str:
    return json.dumps(person, sort_keys=True)


def _person_conditions(condition: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "person" in condition:
        yield condition["person"]
    for member in condition.get("group", {}).get("conditions", []):
        yield from _person_conditions(member)


def person_conditions(conditions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `person` conditions (PersonCondition JSON) of FlowCondition trees, groups walked, each once."""
    found = {_key(p): p for c in conditions for p in _person_conditions(c)}
    return list(found.values())


def with_person_answers(facts: Facts, conditions: Iterable[dict[str, Any]]) -> Facts:
    """`facts` with the answers of every `person` condition of `conditions`, asked in one call (none when
    there are none)."""
    asked = person_conditions(conditions)
    if not asked:
        return facts
    answers = facts.lookups.person.holds(facts.tenant, facts.person_id, asked)
    return replace(
        facts,
        person_answers={**facts.person_answers, **{_key(p): a for p, a in zip(asked, answers, strict=True)}},
    )


def _person_holds(person: dict[str, Any], facts: Facts) -> bool:
    answer = facts.person_answers.get(_key(person))
    if answer is None:  # not asked ahead: one call for this one
        answer = facts.lookups.person.holds(facts.tenant, facts.person_id, [person])[0]
    return answer


def _decision_holds(decision: dict[str, Any], facts: Facts) -> bool:
    """Decide among the catalogue's actions for the placement; holds when the top one is listed. Without a
    channel of its own, the decision is for the channel of the event that triggered the entry."""
    placement = decision.get("placement", "")
    channel = decision.get("channel", "CHANNEL_UNSPECIFIED")
    if channel == "CHANNEL_UNSPECIFIED" and facts.trigger is not None:
        channel = facts.trigger.channel
    if channel == "CHANNEL_UNSPECIFIED":
        decided = Decided(fallback=Fallback.NO_CHANNEL)
    else:
        question = DecisionQuestion(
            facts.tenant, facts.person_id, placement, channel, decision.get("model", ""), flow=facts.flow
        )
        decided = facts.lookups.decision.decide(question)
    noted = {"placement": placement, **decided.detail()}
    if noted not in facts.decisions:
        facts.decisions.append(noted)
    wanted = {bare_action_id(a) for a in decision.get("action_ids", [])}
    return bool(decided.action_id) and decided.action_id in wanted


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
        return facts.trigger is not None and filter_holds(
            facts.trigger, condition["trigger_property"], facts.traits
        )
    if "event_since_entry" in condition:
        since = condition["event_since_entry"]
        wanted = max(1, int(since.get("min_count", 0)))
        return sum(1 for e in facts.events if matches(e, since.get("event"), facts.traits)) >= wanted
    if "person" in condition:
        return _person_holds(condition["person"], facts)
    if "channel_preference" in condition:
        wanted = condition["channel_preference"]
        return _preferred(facts, wanted.get("source", "")) in wanted.get("channels", [])
    if "decision" in condition:
        return _decision_holds(condition["decision"], facts)
    kind = next(iter(k for k in condition if k != "negate"), "")
    log.info("flows.condition_not_evaluated", kind=kind)
    return False


def holds(condition: dict[str, Any], facts: Facts) -> bool:
    """Whether the condition holds (`negate` inverts it)."""
    return _holds(condition, facts) != bool(condition.get("negate"))
