"""The event fields the contract defines (analytics.proto, PropertyFilter) read by the flows' runtime, over
real sockets (the orchestrator on SQLite and PostgreSQL): `revenue` (the amount as a decimal number, absent
when the event has none), `sentiment_score` (absent when unscored), `text` and `group_id` (strings, always
set, as journeys and decision read them).

Before, the runtime read only `name`, `type`, `channel`, `properties.*` and `context.*`, so a trigger on
`revenue > 100` never fired and one on `revenue IS_NOT_SET` fired for every event."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import Running
from tests.orchestrator.runtime_calls import Fields, State, filtered, publish, send, track, with_fields
from wayline.common.server import Server


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    """The orchestrator `stub` calls: the one on the fake clock."""
    return running.server


def _person() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def _hello(following: str = "") -> dict[str, Any]:
    return {
        "id": "hello",
        "action": {"channel": "CHANNEL_EMAIL", "action_id": "hello", "next_step_id": following},
    }


def _triggered(name: str, *filters: dict[str, Any]) -> dict[str, Any]:
    """A flow entered by `name` events passing every filter, which sends one email."""
    matcher = {"event_name": name, "property_filters": list(filters)}
    return {"trigger": {"event": {"event": matcher}}, "entry_step_id": "hello", "steps": [_hello()]}


def _entered(state: State, flow_id: str) -> set[str]:
    return {e.person_id for e in state.entries(flow_id)}


# One order each: the amount (a refund is negative; zero is an amount, set), the sentiment of its text (unset
# when unscored), the text (empty when none) and the group.
ORDERS: dict[str, Fields] = {
    "big": {"revenue": "100.5", "sentiment_score": 0.8, "text": "Thanks, lovely lamp", "group_id": "acme"},
    "exact": {"revenue": "100", "sentiment_score": -0.7, "text": "Where is my refund?", "group_id": "globex"},
    "zero": {"revenue": "0"},
    "refund": {"revenue": "-20.25", "sentiment_score": -0.2, "text": "Order CANCELLED", "group_id": "acme"},
    "none": {},
}
EVERYONE = set(ORDERS)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (filtered("revenue", "GREATER_THAN", 100), {"big"}),
        (filtered("revenue", "LESS_THAN_OR_EQUAL", 100), {"exact", "zero", "refund"}),
        (filtered("revenue", "EQUALS", 100.5), {"big"}),
        (filtered("revenue", "LESS_THAN", 0), {"refund"}),
        (filtered("revenue", "IS_SET"), {"big", "exact", "zero", "refund"}),
        (filtered("revenue", "IS_NOT_SET"), {"none"}),
        (filtered("sentiment_score", "LESS_THAN", -0.5), {"exact"}),
        (filtered("sentiment_score", "GREATER_THAN_OR_EQUAL", 0), {"big"}),
        (filtered("sentiment_score", "IS_NOT_SET"), {"zero", "none"}),
        (filtered("sentiment_score", "NOT_EQUALS", 0.8), EVERYONE - {"big"}),
        (filtered("text", "CONTAINS", "refund"), {"exact"}),
        (filtered("text", "MATCHES_REGEX", "(?i)cancel+ed"), {"refund"}),
        (filtered("text", "NOT_CONTAINS", "refund"), EVERYONE - {"exact"}),
        (filtered("text", "IS_SET"), EVERYONE),  # a string field: always set, "" included
        (filtered("group_id", "EQUALS", "acme"), {"big", "refund"}),
        (filtered("group_id", "NOT_EQUALS", "acme"), {"exact", "zero", "none"}),
    ],
    ids=lambda p: p if isinstance(p, set) else f"{p['property']} {p['operator'][16:]} {p['values']}",
)
def test_a_trigger_on_an_event_field_enters_the_persons_whose_event_passes(
    running: Running, stub: Stub, auth: Auth, state: State, condition: dict[str, Any], expected: set[str]
) -> None:
    publish(stub, auth, "orders", _triggered("Order Completed", condition))
    persons = {label: _person() for label in ORDERS}
    send(
        stub,
        auth,
        *(
            with_fields(track(p, "Order Completed", running.clock()), ORDERS[label])
            for label, p in persons.items()
        ),
    )
    assert _entered(state, "orders") == {persons[label] for label in expected}
