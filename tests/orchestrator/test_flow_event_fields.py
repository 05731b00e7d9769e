"""Every property path the contract defines (analytics.proto, PropertyFilter) read by the flows' runtime,
over real sockets (the orchestrator on SQLite and PostgreSQL; the suite's journeys server, chDB, for person
traits): the event fields `revenue` (the amount as a decimal number, absent when the event has none),
`sentiment_score` (absent when unscored), `text` and `group_id` (strings, always set, as journeys and
decision read them), and `person.<trait>` (the latest value of the trait, asked of journeys only once the
event-level parts of the matcher hold), in triggers, waits, `trigger_property` and `event_since_entry`
conditions. A journeys service that does not answer a trigger's person filter makes ObserveEvents answer
UNAVAILABLE, nothing entered, as for a person condition.

Before, the runtime read only `name`, `type`, `channel`, `properties.*` and `context.*`,
so a trigger on `revenue > 100` never fired and one on `revenue IS_NOT_SET` fired for every event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from tests.client import HoldingProxy
from tests.journeys.conftest import Journeys, error_reason
from tests.journeys.segments_support import event
from tests.orchestrator import behind_proxy
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import Running
from tests.orchestrator.runtime_calls import Fields, State, filtered, publish, send, track, with_fields
from wayline.event.v1 import event_pb2

# The orchestrator behind a proxy to the suite's journeys server (behind_proxy.py).
proxy, running, orchestrator, journeys = behind_proxy.FIXTURES

NOW = datetime.now(UTC)


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


def _identify(person: str, **traits: Any) -> event_pb2.Event:
    found = event(person, "Identify", NOW - timedelta(days=1))
    found.type = event_pb2.EVENT_TYPE_IDENTIFY
    json_format.ParseDict(traits, found.properties)
    return found


def test_a_trigger_on_a_person_trait_reads_the_latest_value_journeys_holds(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    pro, free, upgraded, stranger = _person(), _person(), _person(), _person()
    journeys.write(_identify(pro, plan="pro"), _identify(free, plan="free"), _identify(upgraded, plan="free"))
    later = _identify(upgraded, plan="pro")
    later.timestamp.FromDatetime(NOW - timedelta(hours=1))
    journeys.write(later)
    publish(stub, auth, "pro", _triggered("Checkout Started", filtered("person.plan", "EQUALS", "pro")))
    publish(
        stub, auth, "not-pro", _triggered("Checkout Started", filtered("person.plan", "NOT_EQUALS", "pro"))
    )
    both = _triggered(
        "Checkout Started", filtered("revenue", "GREATER_THAN", 10), filtered("person.plan", "EQUALS", "pro")
    )
    publish(stub, auth, "big-pro", both)
    send(
        stub,
        auth,
        with_fields(track(pro, "Checkout Started", running.clock()), {"revenue": "50"}),
        with_fields(track(free, "Checkout Started", running.clock()), {"revenue": "50"}),
        with_fields(track(upgraded, "Checkout Started", running.clock()), {"revenue": "5"}),
        track(stranger, "Checkout Started", running.clock()),
    )
    assert _entered(state, "pro") == {pro, upgraded}
    assert _entered(state, "not-pro") == {free, stranger}  # a negated filter holds without the trait
    assert _entered(state, "big-pro") == {pro}


def test_a_person_filter_journeys_does_not_answer_makes_observe_events_unavailable_and_nothing_else(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys, proxy: HoldingProxy
) -> None:
    pro = _person()
    journeys.write(_identify(pro, plan="pro"))
    trigger = _triggered(
        "Checkout Started", filtered("revenue", "GREATER_THAN", 10), filtered("person.plan", "EQUALS", "pro")
    )
    publish(stub, auth, "gated", trigger)
    checkout = with_fields(track(pro, "Checkout Started", running.clock()), {"revenue": "50"})
    proxy.holding.set()
    try:
        # Events whose name, type, channel or event filters fail the trigger ask journeys nothing.
        send(stub, auth, track(pro, "Page Viewed", running.clock()))
        send(stub, auth, with_fields(track(pro, "Checkout Started", running.clock()), {"revenue": "5"}))
        with pytest.raises(grpc.RpcError) as raised:
            send(stub, auth, checkout)
    finally:
        proxy.holding.clear()
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(raised.value) == "JOURNEYS_UNAVAILABLE"
    assert (state.entries("gated"), state.runs("gated"), state.messages()) == ([], [], [])
    send(stub, auth, checkout)  # delivered again, as ingest does
    assert _entered(state, "gated") == {pro}


def test_an_entry_reads_the_event_fields_and_traits_in_its_conditions_and_waits(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    """The trigger kept with the entry (its stored form) answers `trigger_property`; a wait wakes on its
    event's text and the person's plan; `event_since_entry` counts the events of a group."""
    helped, free, small = _person(), _person(), _person()
    journeys.write(_identify(helped, plan="pro"), _identify(free, plan="free"), _identify(small, plan="pro"))
    chat = {
        "event_name": "Chat Message",
        "property_filters": [filtered("text", "CONTAINS", "help"), filtered("person.plan", "EQUALS", "pro")],
    }
    acme = {"event_name": "Chat Message", "property_filters": [filtered("group_id", "EQUALS", "acme")]}
    steps = [
        {
            "id": "route",
            "branch": {
                "branches": [
                    {
                        "label": "big",
                        "condition": {"trigger_property": filtered("revenue", "GREATER_THAN", 50)},
                        "next_step_id": "listen",
                    }
                ],
                "default_step_id": "",
            },
        },
        {
            "id": "listen",
            "wait": {
                "event": {"event": chat, "timeout": "86400s", "timeout_step_id": ""},
                "next_step_id": "team",
            },
        },
        {
            "id": "team",
            "branch": {
                "branches": [
                    {
                        "label": "acme",
                        "condition": {"event_since_entry": {"event": acme}},
                        "next_step_id": "hello",
                    }
                ],
                "default_step_id": "",
            },
        },
        _hello(),
    ]
    definition = {
        "trigger": {"event": {"event": {"event_name": "Checkout Started"}}},
        "entry_step_id": "route",
        "steps": steps,
    }
    publish(stub, auth, "support", definition)
    send(
        stub,
        auth,
        *(
            with_fields(track(p, "Checkout Started", running.clock()), {"revenue": amount})
            for p, amount in ((helped, "80"), (free, "80"), (small, "20"))
        ),
    )
    assert state.statuses("support") == sorted(
        [(helped, "WAITING", ""), (free, "WAITING", ""), (small, "EXITED", "completed")]
    )
    said = {"text": "hello there", "group_id": "acme"}
    send(stub, auth, with_fields(track(helped, "Chat Message", running.clock()), said))
    assert [e.step_id for e in state.entries("support") if e.person_id == helped] == ["listen"]
    asked = {"text": "I need help", "group_id": "acme"}
    for person in (helped, free):
        send(stub, auth, with_fields(track(person, "Chat Message", running.clock()), asked))
    assert state.statuses("support") == sorted(
        [(helped, "EXITED", "completed"), (free, "WAITING", ""), (small, "EXITED", "completed")]
    )
    assert [(m.person_id, m.step_id) for m in state.messages()] == [(helped, "hello")]


# An identify event the orchestrator observes before journeys stores it (ingest forwards each event to both
# independently): the flows read the traits it sets as the person's latest, as journeys will once it has it.


def _identified(person: str, at: datetime, **traits: Any) -> event_pb2.Event:
    """An identify event setting `traits`, which journeys has not stored (the test never writes it there)."""
    found = _identify(person, **traits)
    found.timestamp.FromDatetime(at)
    return found


def _on_identify(*filters: dict[str, Any]) -> dict[str, Any]:
    """A flow entered by identify events passing every filter, which sends one email."""
    matcher = {
        "event_name": "Identify",
        "event_type": "EVENT_TYPE_IDENTIFY",
        "property_filters": list(filters),
    }
    return {"trigger": {"event": {"event": matcher}}, "entry_step_id": "hello", "steps": [_hello()]}


def test_an_identify_event_triggers_a_flow_on_the_trait_it_sets_before_journeys_stores_it(
    stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    new, upgraded, downgraded, other = _person(), _person(), _person(), _person()
    journeys.write(
        _identify(upgraded, plan="free", country="fr"),
        _identify(downgraded, plan="pro"),
        _identify(other, plan="pro"),
    )
    publish(stub, auth, "now-pro", _on_identify(filtered("person.plan", "EQUALS", "pro")))
    publish(stub, auth, "not-pro", _on_identify(filtered("person.plan", "NOT_EQUALS", "pro")))
    send(
        stub,
        auth,
        _identified(new, NOW, plan="pro"),
        _identified(upgraded, NOW, plan="pro"),  # journeys holds an older `free`
        _identified(downgraded, NOW, plan="free"),  # journeys holds an older `pro`
        _identified(other, NOW, country="de"),  # no plan in it: journeys' `pro` holds
    )
    assert _entered(state, "now-pro") == {new, upgraded, other}
    assert _entered(state, "not-pro") == {downgraded}


def test_a_late_identify_event_does_not_override_a_newer_trait_journeys_holds(
    stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    """Journeys holds plan=pro set at T; an identify event at T - 1 day setting plan=free arrives late (a
    back-fill): the stored, newer value is the person's plan, in triggers and in person conditions alike.
    An event journeys already stored (the same id as the value's source) is that same event."""
    late, replayed = _person(), _person()
    stored = _identify(replayed, plan="free")
    journeys.write(_identify(late, plan="pro"), stored)  # both set at T = NOW - 1 day
    publish(stub, auth, "late-free", _on_identify(filtered("person.plan", "EQUALS", "free")))
    publish(stub, auth, "late-pro", _on_identify(filtered("person.plan", "EQUALS", "pro")))
    plan_pro = {"person": {"person_property": filtered("person.plan", "EQUALS", "pro")}}
    branch = {
        "branches": [{"label": "pro", "condition": plan_pro, "next_step_id": "hello"}],
        "default_step_id": "",
    }
    definition = {**_on_identify(), "entry_step_id": "route", "steps": [{"id": "route", "branch": branch}]}
    definition["steps"].append(_hello())
    publish(stub, auth, "late-branch", definition)
    send(stub, auth, _identified(late, NOW - timedelta(days=2), plan="free"), stored)
    assert _entered(state, "late-free") == {replayed}
    assert _entered(state, "late-pro") == {late}
    assert [m.person_id for m in state.messages() if m.flow_id == "late-branch"] == [late]


def test_an_identify_event_earlier_in_the_batch_sets_the_traits_a_later_event_reads(
    stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    """The latest identify event of the batch before the triggering one wins, by time (the batch's order
    as sent does not count); the person conditions of the entry's first step read the same traits, and
    journeys answers the parts the events do not carry (here `country`)."""
    fresh, switched, foreign = _person(), _person(), _person()
    journeys.write(
        _identify(fresh, plan="free", country="fr"),
        _identify(switched, plan="free", country="fr"),
        _identify(foreign, plan="free", country="de"),
    )
    plan_pro = {"person_property": filtered("person.plan", "EQUALS", "pro")}
    french = {"person_property": filtered("person.country", "EQUALS", "fr")}
    both = {"person": {"group": {"operator": "LOGICAL_OPERATOR_AND", "conditions": [plan_pro, french]}}}
    definition = {
        "trigger": {"event": {"event": {"event_name": "Checkout Started"}}},
        "entry_step_id": "route",
        "steps": [
            {
                "id": "route",
                "branch": {
                    "branches": [{"label": "pro", "condition": both, "next_step_id": "hello"}],
                    "default_step_id": "",
                },
            },
            _hello(),
        ],
    }
    publish(stub, auth, "checkout", definition)
    publish(
        stub, auth, "pro-checkout", _triggered("Checkout Started", filtered("person.plan", "EQUALS", "pro"))
    )
    at = NOW - timedelta(minutes=10)
    checkout = round((at + timedelta(minutes=5)).timestamp() * 1_000_000)
    send(
        stub,
        auth,
        _identified(switched, at + timedelta(minutes=1), plan="free"),  # the latest: sent first
        _identified(switched, at, plan="pro"),
        *(_identified(p, at, plan="pro") for p in (fresh, foreign)),
        *(track(p, "Checkout Started", checkout) for p in (fresh, switched, foreign)),
    )
    assert _entered(state, "pro-checkout") == {fresh, foreign}
    assert _entered(state, "checkout") == {fresh, switched, foreign}
    assert [m.person_id for m in state.messages() if m.flow_id == "checkout"] == [fresh]
