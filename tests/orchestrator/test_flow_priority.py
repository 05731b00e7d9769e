"""Flow priority over real sockets, on SQLite and PostgreSQL: when one event enters or wakes several flows
for a person, or several of a person's timers fall due together, the flows run highest priority first, so
with a cap of one contact a day the higher-priority flow sends and the other is suppressed — whichever flow
was created first and whatever their ids' order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

from tests.conftest import common_settings, start_server
from tests.orchestrator.conftest import NO_PEERS, as_tenant
from tests.orchestrator.helpers import Auth, Stub, cap, days, set_policy
from tests.orchestrator.runtime_calls import FakeClock, State, eventually, publish, send, track
from tools.postgres_server import create_database
from wayline.common.server import Server
from wayline.common.sql import open_database
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.flows.runtime import RuntimeStore, TimerKind
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

HOUR = 3600
# (the high-priority flow's id, the low one's): the store lists flows and entries by id, so both orders.
ORDERS = [("alpha", "zulu"), ("zulu", "alpha")]


class Running:
    def __init__(self, server: Server, clock: FakeClock, store: RuntimeStore) -> None:
        self.server, self.clock, self.store = server, clock, store


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    url = create_database(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    settings = OrchestratorSettings(
        **common_settings(tmp_path_factory.mktemp("orchestrator")),  # type: ignore[arg-type]
        database_url=SecretStr(url) if url else None,
        timer_poll_interval_seconds=0.05,
        timer_lease_seconds=1,
        **NO_PEERS,  # type: ignore[arg-type]
    )
    clock = FakeClock()
    server = start_server(orchestrator_service(settings, clock), settings)
    db = open_database(url or None, settings.service_dir / "orchestrator.db")
    yield Running(server, clock, RuntimeStore(db))
    server.stop(0)
    db.close()


@pytest.fixture(scope="module")
def stub(running: Running) -> Iterator[Stub]:
    with grpc.insecure_channel(running.server.address) as channel:
        yield pb_grpc.OrchestratorServiceStub(channel)


@pytest.fixture
def auth(stub: Stub) -> Auth:
    """A tenant of its own, whose policy allows one contact a day."""
    tenant = as_tenant(f"t-{uuid.uuid4().hex[:8]}")
    set_policy(stub, tenant, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1))]), "frequency_caps")
    return tenant


@pytest.fixture
def state(running: Running, auth: Auth) -> State:
    return State(running.store, auth)


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
