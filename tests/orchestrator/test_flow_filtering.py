"""Events that concern no flow are filtered before any write transaction: on SQLite, ObserveEvents answers
them while another connection holds the database's write lock (it reads the published flows and the persons
inside in snapshots, and the ledger writes nothing for events that state no consent or preference). Most
events are such events, so they must not queue behind the flows' writes. SQLite only: PostgreSQL's readers
never wait for writers."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.orchestrator.conftest import as_tenant, start_orchestrator
from tests.orchestrator.flow_samples import small_flow
from tests.orchestrator.runtime_calls import publish, send, track
from wayline.common.server import Server
from wayline.common.sql import open_database
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc

AUTH = as_tenant("acme")


@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    data_dir = tmp_path_factory.mktemp("orchestrator")
    server = start_orchestrator(data_dir)
    yield server, data_dir / "orchestrator" / "orchestrator.db"
    server.stop(0)


def test_events_of_no_flow_are_answered_while_the_write_lock_is_held(
    orchestrator: tuple[Server, Path],
) -> None:
    server, path = orchestrator
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        publish(stub, AUTH, "welcome", small_flow())  # triggered by `Signed Up`
        now = time.time_ns() // 1_000
        send(stub, AUTH, track("inside", "Signed Up", now))
        writer = open_database(None, path)
        try:
            with writer.transaction():
                probe = sqlite3.connect(path, timeout=0)
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    probe.execute("BEGIN IMMEDIATE")  # the lock is held indeed
                probe.close()
                # Another person's event that no flow's trigger matches: answered, the lock still held.
                send(stub, AUTH, track("outside", "Product Viewed", now), track("other", "Page Viewed", now))
        finally:
            writer.close()
