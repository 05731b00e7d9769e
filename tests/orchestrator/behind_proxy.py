"""Fixtures for flow tests whose orchestrator asks the suite's journeys server about persons through a TCP
proxy that a test can make hold journeys' answers back (a slow or unreachable peer, as the orchestrator sees
it); the journeys server itself is real and untouched. A test module imports the fixtures it uses."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from tests.client import HoldingProxy
from tests.journeys.conftest import Journeys
from tests.orchestrator.helpers import Auth
from tests.orchestrator.running import ENGINES, Running, run_per_engine
from wayline.common.server import Server

__all__ = ["FIXTURES", "JOURNEYS_TIMEOUT_SECONDS", "journeys", "orchestrator", "proxy", "running"]

# The orchestrator's deadline for journeys: the default. A shorter one made the tests that need an answer fail
# on a loaded machine (two test workers and other tenants on two cores), where a query can take over 0.5 s.
JOURNEYS_TIMEOUT_SECONDS = 2.0


@pytest.fixture(scope="module")
def proxy(journeys_server: Server) -> Iterator[HoldingProxy]:
    """The orchestrator's way to journeys, which a test can make hold journeys' answers back."""
    proxy = HoldingProxy(journeys_server.address)
    yield proxy
    proxy.close()


@pytest.fixture(scope="module", params=ENGINES)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, proxy: HoldingProxy
) -> Iterator[Running]:
    yield from run_per_engine(
        request,
        tmp_path_factory,
        journeys_address=proxy.address,
        journeys_timeout_seconds=JOURNEYS_TIMEOUT_SECONDS,
    )


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    """The orchestrator `stub` calls: the one on the fake clock."""
    return running.server


@pytest.fixture
def journeys(journeys_server: Server, auth: Auth) -> Iterator[Journeys]:
    """The journeys service as the tenant's events reach it (ingest writes them there too)."""
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield Journeys(channel, dict(auth)["x-wayline-tenant"])


FIXTURES = (proxy, running, orchestrator, journeys)
"""The fixtures in order, for a test module: `proxy, running, orchestrator, journeys = FIXTURES`."""
