"""Flow priority over real sockets, on SQLite and PostgreSQL: when one event enters or wakes several flows
for a person, or several of a person's timers fall due together, the flows run highest priority first, so
with a cap of one contact a day the higher-priority flow sends and the other is suppressed — whichever flow
was created first and whatever their ids' order."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.orchestrator.conftest import as_tenant
from tests.orchestrator.helpers import Auth, Stub, cap, days, set_policy
from tests.orchestrator.running import Running
from tests.orchestrator.runtime_calls import State, eventually, publish, send, track
from wayline.common.server import Server
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline_orchestrator.flows.runtime import TimerKind

HOUR = 3600
# (the high-priority flow's id, the low one's): the store lists flows and entries by id, so both orders.
ORDERS = [("alpha", "zulu"), ("zulu", "alpha")]


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    """The orchestrator `stub` calls: the one on the fake clock."""
    return running.server


@pytest.fixture
def auth(stub: Stub) -> Auth:
    """A tenant of its own, whose policy allows one contact a day."""
    tenant = as_tenant(f"t-{uuid.uuid4().hex[:8]}")
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1))]), "frequency_caps")
    return tenant


def _send_step(step_id: str = "send") -> dict[str, Any]:
    return {"id": step_id, "action": {"channel": "CHANNEL_EMAIL", "action_id": step_id}}


def _flow(priority: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": steps[0]["id"],
        "steps": steps,
        "priority": priority,
    }


def _publish_low_then_high(stub: Stub, auth: Auth, high: str, low: str, steps: list[dict[str, Any]]) -> None:
    publish(stub, auth, low, _flow(10, steps))
    publish(stub, auth, high, _flow(900, steps))


def _senders(state: State) -> list[str]:
    return [m.flow_id for m in state.messages()]


def _suppressed(state: State, flow_id: str) -> list[str]:
    return [r.step_id for r in state.runs(flow_id) if r.outcome == "SUPPRESSED"]


@pytest.mark.parametrize(("high", "low"), ORDERS)
def test_one_event_entering_two_flows_sends_the_higher_prioritys_contact(
    running: Running, stub: Stub, auth: Auth, state: State, high: str, low: str
) -> None:
    _publish_low_then_high(stub, auth, high, low, [_send_step()])
    send(stub, auth, track(f"p-{uuid.uuid4().hex[:8]}", "Signed Up", running.clock()))
    assert _senders(state) == [high]
    assert _suppressed(state, low) == ["send"]


@pytest.mark.parametrize(("high", "low"), ORDERS)
def test_one_event_waking_two_flows_sends_the_higher_prioritys_contact(
    running: Running, stub: Stub, auth: Auth, state: State, high: str, low: str
) -> None:
    wait = {
        "id": "wait",
        "wait": {
            "event": {"event": {"event_name": "Cart Abandoned"}, "timeout": "86400s"},
            "next_step_id": "send",
        },
    }
    _publish_low_then_high(stub, auth, high, low, [wait, _send_step()])
    person = f"p-{uuid.uuid4().hex[:8]}"
    send(stub, auth, track(person, "Signed Up", running.clock()))
    assert _senders(state) == []
    send(stub, auth, track(person, "Cart Abandoned", running.clock()))
    assert _senders(state) == [high]
    assert _suppressed(state, low) == ["send"]


@pytest.mark.parametrize(("high", "low"), ORDERS)
def test_a_persons_timers_due_together_fire_in_priority_order(
    running: Running, stub: Stub, auth: Auth, state: State, high: str, low: str
) -> None:
    wait = {"id": "wait", "wait": {"duration": f"{HOUR}s", "next_step_id": "send"}}
    _publish_low_then_high(stub, auth, high, low, [wait, _send_step()])
    person = f"p-{uuid.uuid4().hex[:8]}"
    send(stub, auth, track(person, "Signed Up", running.clock()))
    assert sorted(
        t.flow_id for t in running.store.timers(state.tenant) if t.kind == TimerKind.STEP
    ) == sorted([high, low])
    running.clock.advance(HOUR + 1)
    done = [(person, "EXITED", "completed")]
    eventually(lambda: state.statuses(high) == done and state.statuses(low) == done)
    assert _senders(state) == [high]
    assert _suppressed(state, low) == ["send"]
