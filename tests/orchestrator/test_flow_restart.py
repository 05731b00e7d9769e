"""Restart in the middle of waits: the orchestrator runs as a real process, is SIGKILLed while persons wait
in a flow (and again while timers are firing), and restarts on the same database; every timer fires once
and the outbox and the ledger hold exactly one message per action step per entry."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.contract.processes import ServiceProcess
from tests.orchestrator.conftest import as_tenant
from tests.orchestrator.runtime_calls import SECOND, State, eventually, publish, send, track
from tools.postgres_server import create_schema
from wayline.common.sql import open_database
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.flows.runtime import RuntimeStore

PERSONS = 20
FLOW = {
    "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
    "entry_step_id": "pause",
    "steps": [
        {"id": "pause", "wait": {"duration": "3s", "next_step_id": "first"}},
        {
            "id": "first",
            "action": {"channel": "CHANNEL_EMAIL", "action_id": "first", "next_step_id": "opened"},
        },
        {
            "id": "opened",
            "wait": {
                "event": {"event": {"event_name": "Opened"}, "timeout": "2s", "timeout_step_id": "second"},
                "next_step_id": "second",
            },
        },
        {"id": "second", "action": {"channel": "CHANNEL_PUSH", "action_id": "second"}},
    ],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""


@pytest.fixture
def orchestrator(tmp_path: Path, database_url: str) -> Iterator[ServiceProcess]:
    settings = {"timer_poll_interval_seconds": "0.1", "timer_lease_seconds": "1"}
    if database_url:
        settings["database_url"] = database_url
    process = ServiceProcess("orchestrator", tmp_path, settings)
    yield process
    process.stop()


def test_restart_in_the_middle_of_waits_fires_each_timer_once(
    orchestrator: ServiceProcess, database_url: str, tmp_path: Path
) -> None:
    auth = as_tenant(f"t-{uuid.uuid4().hex[:8]}")
    persons = [f"p-{i}" for i in range(PERSONS)]
    orchestrator.start()
    with grpc.insecure_channel(orchestrator.address) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        publish(stub, auth, "drip", FLOW)
        now = time.time_ns() // 1000
        send(stub, auth, *(track(p, "Signed Up", now) for p in persons))
        send(stub, auth, *(track(p, "Opened", now + SECOND) for p in persons[:5]))  # not waiting yet: ignored
    orchestrator.kill()  # everyone waits in `pause`
    time.sleep(3.2)  # the waits end while nobody runs
    orchestrator.start()
    time.sleep(0.5)
    orchestrator.kill()  # in the middle of firing, or of the second waits
    orchestrator.start()
    db = open_database(database_url or None, tmp_path / "orchestrator" / "orchestrator.db")
    try:
        state = State(RuntimeStore(db), auth)
        eventually(lambda: all(not e.live for e in state.entries("drip")), timeout_s=60)
        entries = state.entries("drip")
        assert sorted(e.person_id for e in entries) == sorted(persons)
        assert {(e.status.value, e.reason) for e in entries} == {("EXITED", "completed")}
        sent = Counter((m.person_id, m.step_id) for m in state.messages())
        assert sent == Counter({(p, step): 1 for p in persons for step in ("first", "second")})
        runs = Counter((r.person_id, r.step_id, r.outcome) for r in state.runs("drip"))
        for person in persons:
            assert runs[(person, "pause", "WAIT")] == 1
            assert runs[(person, "opened", "WAIT")] == 1
            assert runs[(person, "first", "SENT")] == 1
            assert runs[(person, "second", "SENT")] == 1
        assert RuntimeStore(db).timers(state.tenant) == []
        with grpc.insecure_channel(orchestrator.address) as channel:
            stub = pb_grpc.OrchestratorServiceStub(channel)
            for person in persons:
                request = pb.ListContactsRequest(person_id=person)
                contacts = stub.ListContacts(request, metadata=auth, timeout=10).contacts
                assert sorted(c.flow_step_id for c in contacts) == ["first", "second"]
    finally:
        db.close()
