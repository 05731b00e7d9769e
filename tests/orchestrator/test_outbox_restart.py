"""A restart between an outbox claim and its record: the orchestrator runs as a real process and is
SIGKILLed while the receiver holds its webhook request (sent, not yet recorded); restarted on the same
database, it claims the message again after the lease and sends it again with the same Idempotency-Key
(at least once, deduplicated by the receiver), then records it DELIVERED and sends nothing more."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.contract.processes import ServiceProcess
from tests.orchestrator.conftest import as_tenant
from tests.orchestrator.receivers import SECRET, HttpReceiver, Reply
from tests.orchestrator.runtime_calls import eventually, publish, send, track
from tools.postgres_server import create_schema
from wayline.common.sql import open_database
from wayline.orchestrator.v1 import connector_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.flows.runtime.outbox_store import OutboxState, OutboxStore

FLOW = {
    "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
    "entry_step_id": "hello",
    "steps": [
        {
            "id": "hello",
            "action": {
                "channel": "CHANNEL_PUSH",
                "purpose": "CONTACT_PURPOSE_TRANSACTIONAL",
                "action_id": "hello",
                "connector": {"connector": "connectors/push-hook", "template_id": "welcome"},
            },
        }
    ],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""


@pytest.fixture
def orchestrator(tmp_path: Path, database_url: str) -> Iterator[ServiceProcess]:
    settings = {"outbox_poll_interval_seconds": "0.1", "outbox_lease_seconds": "1"}
    if database_url:
        settings["database_url"] = database_url
    process = ServiceProcess("orchestrator", tmp_path, settings)
    yield process
    process.stop()


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def test_a_restart_between_claim_and_record_resends_with_the_same_key_then_never_again(
    orchestrator: ServiceProcess, database_url: str, tmp_path: Path, http: HttpReceiver
) -> None:
    auth = as_tenant(f"t-{uuid.uuid4().hex[:8]}")
    person = f"p-{uuid.uuid4().hex[:8]}"
    http.reset(Reply(200, delay=10))  # the first request is held until the process is dead
    orchestrator.start()
    with grpc.insecure_channel(orchestrator.address) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        hook = connector_pb2.Connector(
            kind=connector_pb2.CONNECTOR_KIND_WEBHOOK,
            webhook=connector_pb2.WebhookConfig(url=http.url, signing_secret=SECRET),
        )
        request = pb.CreateConnectorRequest(connector=hook, connector_id="push-hook")
        stub.CreateConnector(request, metadata=auth, timeout=10)
        publish(stub, auth, "welcome", FLOW)
        send(stub, auth, track(person, "Signed Up", time.time_ns() // 1000))
    eventually(lambda: len(http.received) == 1)
    orchestrator.kill()  # sent, not recorded
    orchestrator.start()
    key = f"welcome/1/{person}/1/hello"
    db = open_database(database_url or None, tmp_path / "orchestrator" / "orchestrator.db")
    try:
        outbox = OutboxStore(db)

        def delivered() -> bool:
            settled = outbox.settled(auth[1][1], key)
            return settled is not None and settled.state == OutboxState.DELIVERED

        eventually(delivered, timeout_s=30)
        time.sleep(1.5)  # past another lease: nothing more is sent
        assert [r.headers["Idempotency-Key"] for r in http.received] == [key, key]
        assert all(r.signed for r in http.received)
    finally:
        db.close()
