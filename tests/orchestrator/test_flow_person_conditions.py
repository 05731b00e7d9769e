"""Flows asking the journeys service about the person, over real sockets (the suite's journeys server, chDB;
the orchestrator on SQLite and PostgreSQL): branches on purchases, customer value and lifecycle stage, entry
audiences, exit conditions, personalisation from traits; and a journeys service that does not answer in time
(or cannot be reached) makes ObserveEvents answer UNAVAILABLE (nothing recorded) and a due timer wait for its
lease, until it answers.

The orchestrator reaches journeys through a TCP proxy that can hold journeys' answers back (a slow or
unreachable peer, as the orchestrator sees it); the journeys server itself is real and untouched."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from tests.client import HoldingProxy
from tests.conftest import common_settings, start_server
from tests.journeys.conftest import Journeys, error_reason
from tests.journeys.segments_support import event
from tests.orchestrator import behind_proxy
from tests.orchestrator.behind_proxy import JOURNEYS_TIMEOUT_SECONDS
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import NO_PEERS, Running
from tests.orchestrator.runtime_calls import State, eventually, publish, send, track
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.suite import free_port
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

# The orchestrator behind a proxy to the suite's journeys server (behind_proxy.py).
proxy, running, orchestrator, journeys = behind_proxy.FIXTURES

NOW = datetime.now(UTC)
HOUR = 3600


def _person() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def _identify(person: str, **traits: Any) -> event_pb2.Event:
    found = event(person, "Identify", NOW - timedelta(days=1))
    found.type = event_pb2.EVENT_TYPE_IDENTIFY
    json_format.ParseDict(traits, found.properties)
    return found


def _orders(person: str, count: int) -> list[event_pb2.Event]:
    return [event(person, "Order Completed", NOW - timedelta(days=i + 1), revenue="40") for i in range(count)]


def _action(step_id: str, following: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "action": {"channel": "CHANNEL_EMAIL", "action_id": step_id, "next_step_id": following, **extra},
    }


def _flow(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "trigger": {"event": {"event": {"event_name": "Checkout Started"}}},
        "entry_step_id": steps[0]["id"],
        "steps": steps,
        **extra,
    }


_PURCHASES_3 = {
    "customer_value": {
        "metric": "CUSTOMER_VALUE_METRIC_PURCHASE_COUNT",
        "currency_code": "EUR",
        "count": "3",
    }
}
_RETAINED = {"lifecycle_stage": {"stages": ["LIFECYCLE_STAGE_RETENTION"]}}
_ORDERED = {"event_count": {"event": {"event_name": "Order Completed"}, "count": "1"}}


def _tiers() -> dict[str, Any]:
    """A branch on the person: VIP (three purchases and retained), buyer (an order), else everyone."""
    vip = {
        "group": {
            "operator": "LOGICAL_OPERATOR_AND",
            "conditions": [{"person": _PURCHASES_3}, {"person": _RETAINED}],
        }
    }
    return {
        "id": "route",
        "branch": {
            "branches": [
                {"label": "vip", "condition": vip, "next_step_id": "vip_offer"},
                {"label": "buyer", "condition": {"person": _ORDERED}, "next_step_id": "buyer_offer"},
            ],
            "default_step_id": "welcome",
        },
    }


def _sent(state: State) -> list[tuple[str, str]]:
    return sorted((m.person_id, m.step_id) for m in state.messages())


def test_branch_on_person_takes_the_tier_journeys_computes(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    vip, buyer, stranger = _person(), _person(), _person()
    journeys.write(*_orders(vip, 3), *_orders(buyer, 1), event(stranger, "Viewed", NOW - timedelta(hours=1)))
    steps = [_tiers(), _action("vip_offer"), _action("buyer_offer"), _action("welcome")]
    publish(stub, auth, "tiers", _flow(steps))
    send(stub, auth, *(track(p, "Checkout Started", running.clock()) for p in (vip, buyer, stranger)))
    assert _sent(state) == sorted([(vip, "vip_offer"), (buyer, "buyer_offer"), (stranger, "welcome")])
    labels = {r.person_id: r.detail.get("label") for r in state.runs("tiers") if r.outcome == "BRANCH"}
    assert labels == {vip: "vip", buyer: "buyer", stranger: ""}


def test_negated_person_condition_inverts_the_answer(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    buyer, newcomer = _person(), _person()
    journeys.write(*_orders(buyer, 1))
    branch = {
        "id": "route",
        "branch": {
            "branches": [
                {"label": "first", "condition": {"person": _ORDERED, "negate": True}, "next_step_id": "first"}
            ],
            "default_step_id": "again",
        },
    }
    publish(stub, auth, "first-order", _flow([branch, _action("first"), _action("again")]))
    send(
        stub,
        auth,
        track(buyer, "Checkout Started", running.clock()),
        track(newcomer, "Checkout Started", running.clock()),
    )
    assert _sent(state) == sorted([(buyer, "again"), (newcomer, "first")])


def test_audience_lets_in_only_the_persons_it_holds_for(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    pro, free = _person(), _person()
    journeys.write(_identify(pro, plan="pro"), _identify(free, plan="free"))
    audience = {
        "person_property": {
            "property": "person.plan",
            "operator": "FILTER_OPERATOR_EQUALS",
            "values": ["pro"],
        }
    }
    publish(stub, auth, "pro-only", _flow([_action("hello")], entry_rules={"audience": audience}))
    send(
        stub,
        auth,
        track(pro, "Checkout Started", running.clock()),
        track(free, "Checkout Started", running.clock()),
    )
    assert state.statuses("pro-only") == [(pro, "EXITED", "completed")]
    assert {r.person_id for r in state.runs("pro-only")} == {pro}  # nothing recorded for the refused person
    assert _sent(state) == [(pro, "hello")]


def test_action_personalises_from_traits_and_the_trigger(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    ada, stranger = _person(), _person()
    journeys.write(_identify(ada, first_name="Ada", tier=2))
    connector = {
        "connector": "connectors/mailer",
        "template_id": "cart",
        "personalisation": [
            {"name": "first_name", "source": "person.first_name", "default_value": "there"},
            {"name": "plan", "source": "person.plan", "default_value": "free"},
            {"name": "item", "source": "trigger.properties.item"},
        ],
    }
    payload = {
        "subject": "{{person.first_name}}, your {{ trigger.properties.item }} is waiting",
        "lines": ["tier {{person.tier}}", {"note": "{{person.nickname}}!"}],
        "count": 3,
    }
    publish(stub, auth, "cart", _flow([_action("remind", connector=connector, payload=payload)]))
    send(
        stub,
        auth,
        track(ada, "Checkout Started", running.clock(), item="lamp"),
        track(stranger, "Checkout Started", running.clock()),
    )
    messages = {m.person_id: m for m in state.messages()}
    assert messages[ada].personalisation == {"first_name": "Ada", "plan": "free", "item": "lamp"}
    assert messages[ada].payload == {
        "subject": "Ada, your lamp is waiting",
        "lines": ["tier 2", {"note": "!"}],
        "count": 3,
    }
    assert messages[stranger].personalisation == {"first_name": "there", "plan": "free", "item": ""}
    assert messages[stranger].payload["subject"] == ", your  is waiting"


def test_observe_events_answers_unavailable_while_journeys_does_not_answer_then_enters(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys, proxy: HoldingProxy
) -> None:
    buyer = _person()
    journeys.write(*_orders(buyer, 1))
    publish(
        stub,
        auth,
        "held",
        _flow([_tiers(), _action("vip_offer"), _action("buyer_offer"), _action("welcome")]),
    )
    trigger = track(buyer, "Checkout Started", running.clock())
    proxy.holding.set()
    try:
        with pytest.raises(grpc.RpcError) as raised:
            send(stub, auth, trigger)
    finally:
        proxy.holding.clear()
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(raised.value) == "JOURNEYS_UNAVAILABLE"
    assert (state.entries("held"), state.runs("held"), state.messages()) == ([], [], [])
    send(stub, auth, trigger)  # delivered again, as ingest does
    assert _sent(state) == [(buyer, "buyer_offer")]
    assert [e.number for e in state.entries("held")] == [1]


def test_a_due_timer_waits_for_journeys_and_fires_once_it_answers(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys, proxy: HoldingProxy
) -> None:
    buyer = _person()
    journeys.write(*_orders(buyer, 1))
    steps = [
        {"id": "pause", "wait": {"duration": "3600s", "next_step_id": "route"}},
        _tiers(),
        _action("vip_offer"),
        _action("buyer_offer"),
        _action("welcome"),
    ]
    publish(stub, auth, "later", _flow(steps))
    send(stub, auth, track(buyer, "Checkout Started", running.clock()))
    assert state.statuses("later") == [(buyer, "WAITING", "")]
    proxy.holding.set()
    try:
        running.clock.advance(HOUR + 1)
        # The timer is claimed, and its run times out and rolls back.
        time.sleep(JOURNEYS_TIMEOUT_SECONDS + 1.5)
        assert state.statuses("later") == [(buyer, "WAITING", "")]
        # The entry's path to `pause` and its wait; nothing of the timer's rolled-back run.
        assert sorted((r.step_id, r.outcome) for r in state.runs("later")) == [
            ("pause", "WAIT"),
            ("~entry", "PATH"),
        ]
        assert state.messages() == []
    finally:
        proxy.holding.clear()
    running.clock.advance(2)  # the claim's lease ends (on the runtime's clock): the timer fires again
    eventually(lambda: state.statuses("later") == [(buyer, "EXITED", "completed")])
    assert _sent(state) == [(buyer, "buyer_offer")]


def test_exit_condition_on_the_person_ends_the_entry_when_journeys_says_so(
    running: Running, stub: Stub, auth: Auth, state: State, journeys: Journeys
) -> None:
    shopper = _person()
    complained = {"event_count": {"event": {"event_name": "Complaint Filed"}, "count": "1"}}
    steps = [{"id": "pause", "wait": {"duration": "86400s", "next_step_id": "hello"}}, _action("hello")]
    publish(stub, auth, "calm", _flow(steps, exit_conditions=[{"person": complained}]))
    send(stub, auth, track(shopper, "Checkout Started", running.clock()))
    send(stub, auth, track(shopper, "Page Viewed", running.clock()))  # journeys holds no complaint yet
    assert state.statuses("calm") == [(shopper, "WAITING", "")]
    journeys.write(event(shopper, "Complaint Filed", NOW - timedelta(minutes=1)))
    send(stub, auth, track(shopper, "Page Viewed", running.clock()))
    assert state.statuses("calm") == [(shopper, "EXITED", "exit_condition")]
    assert state.messages() == []


def test_an_unreachable_journeys_refuses_audience_entries_as_unavailable(tmp_path: Path, auth: Auth) -> None:
    settings = OrchestratorSettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        **{**NO_PEERS, "journeys_address": f"127.0.0.1:{free_port()}"},  # type: ignore[arg-type]
        journeys_timeout_seconds=0.5,
    )
    server = start_server(orchestrator_service(settings), settings)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.OrchestratorServiceStub(channel)
            audience = {"has_identifier_type": "email"}
            publish(stub, auth, "gated", _flow([_action("hello")], entry_rules={"audience": audience}))
            with pytest.raises(grpc.RpcError) as raised:
                send(stub, auth, track(_person(), "Checkout Started", time.time_ns() // 1000))
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_reason(raised.value) == "JOURNEYS_UNAVAILABLE"
            # Events that trigger nothing need no journeys: they are observed as before.
            send(stub, auth, track(_person(), "Page Viewed", time.time_ns() // 1000))
    finally:
        server.stop(0)
