"""What a step asks the journeys service, decided without it: the `person` conditions of a step's
FlowCondition trees (one call per step, each condition once), the traits an action reads (its
personalisation sources and payload placeholders), and the placeholders filled from traits and the
trigger."""

from __future__ import annotations

from typing import Any

from wayline_orchestrator.flows.runtime.conditions import person_conditions
from wayline_orchestrator.flows.runtime.matching import Occurrence
from wayline_orchestrator.flows.runtime.outbox import fill_placeholders, traits_needed

ORDERED = {"event_count": {"event": {"event_name": "Order Completed"}, "count": "1"}}
PRO = {
    "person_property": {"property": "person.plan", "operator": "FILTER_OPERATOR_EQUALS", "values": ["pro"]}
}
TRIGGER = Occurrence(
    event_id="e1",
    person_id="p1",
    name="Checkout Started",
    time=0,
    type="EVENT_TYPE_TRACK",
    channel="CHANNEL_WEB",
    properties={"item": "lamp", "cart": {"value": 120.0}},
    context={},
)


def test_person_conditions_walks_groups_and_asks_each_condition_once() -> None:
    conditions: list[dict[str, Any]] = [
        {"group": {"conditions": [{"person": ORDERED}, {"trigger_property": {"property": "properties.x"}}]}},
        {"person": PRO, "negate": True},
        {"person": dict(reversed(list(ORDERED.items())))},  # the same condition, keys in another order
        {"event_since_entry": {"event": {"event_name": "Opened"}}},
    ]
    assert person_conditions(conditions) == [ORDERED, PRO]
    assert person_conditions([{"channel_preference": {"channels": ["CHANNEL_EMAIL"]}}]) == []


def test_traits_needed_reads_personalisation_sources_and_payload_placeholders() -> None:
    action = {
        "connector": {
            "personalisation": [
                {"name": "a", "source": "person.first_name"},
                {"name": "b", "source": "trigger.properties.item"},
                {"name": "c", "source": "person.plan"},
            ]
        },
        "payload": {
            "x": ["{{person.tier}} and {{ person.plan }}", {"y": "{{trigger.properties.item}}"}],
            "n": 3,
        },
    }
    assert traits_needed(action) == ["first_name", "plan", "tier"]
    assert traits_needed({"payload": {"x": "no placeholder"}}) == []


def test_fill_placeholders_fills_strings_at_any_depth_and_empties_missing_values() -> None:
    payload = {
        "subject": "{{person.first_name}} left a {{trigger.properties.item}} worth "
        "{{trigger.properties.cart.value}}",
        "lines": ["{{person.nickname}}", {"deep": "tier {{ person.tier }}"}],
        "flag": True,
        "count": 2,
        "other": "{{ unknown.thing }} stays",
    }
    traits = {"first_name": "Ada", "tier": 2.0}
    assert fill_placeholders(payload, TRIGGER, traits) == {
        "subject": "Ada left a lamp worth 120",
        "lines": ["", {"deep": "tier 2"}],
        "flag": True,
        "count": 2,
        "other": "{{ unknown.thing }} stays",
    }
