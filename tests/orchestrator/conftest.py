"""An orchestrator server per engine (SQLite embedded, a real PostgreSQL), started once per module, called
over real sockets with internal metadata; each test takes a tenant of its own, so tests never see each
other's ledgers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from pydantic import SecretStr

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tools.postgres_server import create_database
from wayline.common.server import Server
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

Auth = tuple[tuple[str, str], ...]


def as_tenant(tenant: str) -> Auth:
    """The metadata the gateway sends a backend for `tenant`."""
    return (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))


# An orchestrator's peer addresses in tests: none unless a test gives them, so that no test dials a default
# address nobody listens on (gRPC backs off reconnecting, for every channel of the process to that address).
NO_PEERS = {"journeys_address": "", "decision_address": "", "identity_address": "", "ingest_address": ""}


def start_orchestrator(data_dir: object, database_url: str = "", **peers: str) -> Server:
    """An orchestrator on `data_dir`, with the peers given (NO_PEERS otherwise)."""
    addresses = NO_PEERS | peers
    settings = OrchestratorSettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        database_url=SecretStr(database_url) if database_url else None,
        **addresses,  # type: ignore[arg-type]
    )
    return start_server(orchestrator_service(settings), settings)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def orchestrator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    url = create_database(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
    server = start_orchestrator(tmp_path_factory.mktemp("orchestrator"), url)
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def channel(orchestrator: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(orchestrator.address) as opened:
        yield opened


@pytest.fixture
def stub(channel: grpc.Channel) -> pb_grpc.OrchestratorServiceStub:
    return pb_grpc.OrchestratorServiceStub(channel)


@pytest.fixture
def tenant() -> Auth:
    """A tenant of the test's own."""
    return as_tenant(f"t-{uuid.uuid4().hex[:8]}")
