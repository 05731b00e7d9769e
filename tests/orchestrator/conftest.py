"""An orchestrator server per engine (SQLite embedded, a real PostgreSQL), started once per module, called
over real sockets with internal metadata; each test takes a tenant of its own, so tests never see each
other's ledgers.

`orchestrator` runs on the real clock; `running` on a fake one, its runtime's tables readable through
`state`. A module whose tests call the one on the fake clock overrides `orchestrator` with
`running.server`, so that `channel` and `stub` reach it; one that needs peers or other settings overrides
`running` with `run_per_engine(..., **settings)`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from pydantic import SecretStr

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.orchestrator.running import ENGINES, NO_PEERS, Running, run_per_engine
from tests.orchestrator.runtime_calls import State
from tools.postgres_server import create_schema
from wayline.common.server import Server
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

# NO_PEERS is defined in running.py (which this module imports) and exported from here too, where the test
# modules have always imported it.
__all__ = ["NO_PEERS", "Auth", "as_tenant", "start_orchestrator"]

Auth = tuple[tuple[str, str], ...]


def as_tenant(tenant: str) -> Auth:
    """The metadata the gateway sends a backend for `tenant`."""
    return (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))


def start_orchestrator(data_dir: object, database_url: str = "", **peers: str) -> Server:
    """An orchestrator on `data_dir`, with the peers given (NO_PEERS otherwise)."""
    addresses = NO_PEERS | peers
    settings = OrchestratorSettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        database_url=SecretStr(database_url) if database_url else None,
        **addresses,  # type: ignore[arg-type]
    )
    return start_server(orchestrator_service(settings), settings)


def start_orchestrator_with_every_peer(
    data_dir: object, *, identity: Server, journeys: Server, decision: Server, ingest: Server
) -> Server:
    """An orchestrator (SQLite) with every peer: flows' person conditions (journeys), decision branches,
    identity's override feed, and the ingest its contacts are written back through."""
    return start_orchestrator(
        data_dir,
        journeys_address=journeys.address,
        decision_address=decision.address,
        identity_address=identity.address,
        ingest_address=ingest.address,
    )


@pytest.fixture(scope="module", params=ENGINES)
def orchestrator(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    url = create_schema(request.getfixturevalue("postgres_url")) if request.param == "postgresql" else ""
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


@pytest.fixture
def auth(tenant: Auth) -> Auth:
    """The test's own tenant, under the name the runtime's tests give it."""
    return tenant


@pytest.fixture(scope="module", params=ENGINES)
def running(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """An orchestrator on a fake clock, without peers."""
    yield from run_per_engine(request, tmp_path_factory)


@pytest.fixture
def state(running: Running, auth: Auth) -> State:
    """The runtime's tables of the test's tenant."""
    return State(running.store, auth)
