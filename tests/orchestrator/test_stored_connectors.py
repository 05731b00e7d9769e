"""A connector created before CreateConnector matched ids whole keeps being reachable by its name, over real
sockets on SQLite and PostgreSQL (ADR 78). Until 2026-12 the id was checked with `match`, whose `$` also
matches before a final newline, so `push-hook\\n` could be stored; since names are matched whole too, its
GetConnector, UpdateConnector, DeleteConnector and ListDeadLetters answered INVALID_ARGUMENT: the tenant
could not even delete it. A new id with a final newline stays refused."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from tests.orchestrator.conftest import Auth
from tests.orchestrator.helpers import Stub
from tests.orchestrator.running import Running
from tests.orchestrator.test_connectors import create, hook, refusal
from tests.rpc_errors import violations
from wayline.common.server import Server
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.connector_messages import connector_of
from wayline_orchestrator.connectors.store import ConnectorStore

OLD_ID = "push-hook\n"


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    return running.server


def _stored_before(running: Running, auth: Auth) -> None:
    """The connector `push-hook\\n`, written to the connectors' store as CreateConnector stored it."""
    tenant = dict(auth)["x-wayline-tenant"]
    connector = dataclasses.replace(connector_of(hook(), OLD_ID), create_time=1, update_time=1, revision=1)
    assert ConnectorStore(running.db).insert(tenant, connector)


def test_a_connector_stored_with_a_final_newline_is_read_updated_and_deleted(
    running: Running, stub: Stub, tenant: Auth
) -> None:
    _stored_before(running, tenant)
    name = f"connectors/{OLD_ID}"
    found = stub.GetConnector(pb.GetConnectorRequest(name=name), metadata=tenant, timeout=10).connector
    assert found.name == name
    letters = pb.ListDeadLettersRequest(parent=name)
    assert not stub.ListDeadLetters(letters, metadata=tenant, timeout=10).dead_letters
    stub.DeleteConnector(pb.DeleteConnectorRequest(name=name), metadata=tenant, timeout=10)
    error = refusal(stub.GetConnector, pb.GetConnectorRequest(name=name), tenant)
    assert error.code() is grpc.StatusCode.NOT_FOUND


def test_a_new_id_with_a_final_newline_is_refused(stub: Stub, tenant: Auth) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        create(stub, tenant, hook(), OLD_ID)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(refused.value)) == {"connector_id"}
