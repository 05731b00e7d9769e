"""Fixtures that start real Wayline servers in this process, on free ports, over real sockets.

chDB allows one engine path per process, so the embedded ClickHouse lives at one session-wide path and
tests that need isolation use their own database (or their own tenant) in it.
"""

from __future__ import annotations

import faulthandler
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from hypothesis import settings
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from tests.debian_servers import install_debian_packages
from tests.postgres import database, fresh_postgres_url, postgres_url  # noqa: F401 - fixtures for every test
from wayline.common.server import Server, ServiceDefinition
from wayline.common.settings import ServiceSettings
from wayline.common.telemetry import process_telemetry
from wayline_cli.suite import free_port
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings
from wayline_gateway.data_plane.process import NGINX_PACKAGES, nginx_unavailable
from wayline_gateway.service import gateway_service
from wayline_gateway.settings import GatewaySettings
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings
from wayline_journeys.service import journeys_service
from wayline_journeys.settings import JourneysSettings

# Speed is measured in bench/, not asserted in tests: hypothesis' per-example deadline (200 ms) only measured
# how busy the two shared cores were (a CLV example took 473 ms once on a loaded machine, 0.12 ms rerun).
settings.register_profile("wayline", deadline=None)
# For a thorough local run (`make test-deep`, or `--hypothesis-profile wayline-deep`): every property test's
# examples scale with it (tests/breadth.py). CI's examples are a sample; rare cases show only with many more.
settings.register_profile("wayline-deep", parent=settings.get_profile("wayline"), max_examples=5000)
settings.load_profile("wayline")

INTERNAL_TOKEN = "test-internal-token"
API_KEY = "wl_test_key"
TENANT = "acme"

StartServer = Callable[[ServiceDefinition, ServiceSettings], Server]


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist's workers inherit COLUMNS=80, and rich fixes a console's width from COLUMNS when the
    console is made: the CLI makes its consoles on import, while the test files are collected, so every
    table the CLI tests read would be cut at 80 columns whatever COLUMNS each test gives the CLI."""
    os.environ.pop("COLUMNS", None)
    config.stash[_CRASH_TRACE_FD] = os.dup(2)  # the terminal's, as pytest's faulthandler takes it


# When the embedded engine starts it takes the fatal signals, and the store gives them back with
# faulthandler writing to standard error (wayline_journeys/store/engine_signals.py), which is the captured
# output while a test runs: a test that crashed its worker lost its trace with the worker. Each test's call
# writes a crash's trace to the terminal, as pytest's faulthandler does before the engine starts.
_CRASH_TRACE_FD = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    if faulthandler.is_enabled():
        faulthandler.enable(file=item.config.stash[_CRASH_TRACE_FD], all_threads=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    os.close(config.stash[_CRASH_TRACE_FD])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files marked `long` first, the rest in their order: pytest-xdist hands out whole files in this
    order (`make pytest`: `--dist loadfile --no-loadscope-reorder`), and its own order, by number of tests,
    started the one-test demo last, so one worker ran it alone for a minute or two at the end (ADR 62)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session", autouse=True)
def _journeys_linger() -> Iterator[None]:
    """Ingest spaces its small writes to the journey store 0.25 s apart instead of its default 1 s (fewer
    INSERTs at production rates; ADR 61), in every ingest the tests start, in this process or as `wayline
    up`'s children: hundreds of tests wait for their events there. tests/ingest/test_forwarder_linger.py
    tests the spacing itself."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WAYLINE_INGEST_SINK_LINGER_BY_SINK", '{"journeys": 0.25}')
        yield


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Every span the in-process servers finish (whichever started first), through the process's one
    pipeline."""
    exporter = InMemorySpanExporter()
    process_telemetry().add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="session")
def suite_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("suite")


@pytest.fixture(scope="session")
def chdb_path(suite_data_dir: Path) -> Path:
    """The one embedded ClickHouse engine path of this process (the journeys server's)."""
    return suite_data_dir / "journeys" / "chdb"


def common_settings(data_dir: Path) -> dict[str, object]:
    return {
        "data_dir": data_dir,
        "internal_token": SecretStr(INTERNAL_TOKEN),
        "host": "127.0.0.1",
        "port": 0,
        "metrics_port": 0,
        "shutdown_grace_seconds": 1.0,
    }


def start_server(definition: ServiceDefinition, settings: ServiceSettings, timeout: float = 30.0) -> Server:
    server = Server(definition, settings)
    server.start()
    if not server.wait_ready(timeout):
        server.stop(0)
        raise RuntimeError(f"{definition.name} did not become ready in {timeout}s")
    return server


@pytest.fixture(scope="session")
def journeys_port() -> int:
    """Chosen before identity starts: identity calls journeys (erasures), journeys follows identity's feed.
    Identity starts first, so journeys' follower never dials an address nobody listens on yet (gRPC would
    back off reconnecting, for every channel of the process to that address)."""
    return free_port()


@pytest.fixture(scope="session")
def ingest_port() -> int:
    """Chosen before identity starts, like journeys_port: identity's erasures reach ingest's dead letters."""
    return free_port()


@pytest.fixture(scope="session")
def identity_server(
    journeys_port: int, ingest_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    settings = IdentitySettings(
        **common_settings(tmp_path_factory.mktemp("identity")),  # type: ignore[arg-type]
        # Dialled only once an erasure is pending, long after both are up.
        journeys_address=f"127.0.0.1:{journeys_port}",
        ingest_address=f"127.0.0.1:{ingest_port}",
        erasure_retry_seconds=0.2,
    )
    server = start_server(identity_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def journeys_server(suite_data_dir: Path, journeys_port: int, identity_server: Server) -> Iterator[Server]:
    settings = JourneysSettings(
        **{**common_settings(suite_data_dir), "port": journeys_port},  # type: ignore[arg-type]
        identity_address=identity_server.address,
        override_poll_seconds=0.2,
        erasure_purge_seconds=0.5,  # erased rows leave the disk within the tests' waits
        erasure_sweep_seconds=0.5,  # an erased person's late event goes within the tests' waits
        # Segment passes fast enough for the tests to see entries and lapses within a second or two.
        segment_refresh_seconds=0.2,
        segment_window_check_seconds=0.5,
        segment_settle_seconds=0.3,
    )
    server = start_server(journeys_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def ingest_server(
    journeys_server: Server,
    identity_server: Server,
    ingest_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    settings = IngestSettings(
        **{**common_settings(tmp_path_factory.mktemp("ingest")), "port": ingest_port},  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address=identity_server.address,
    )
    server = start_server(ingest_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def decision_server(
    journeys_server: Server,
    identity_server: Server,
    ingest_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    settings = DecisionSettings(
        **common_settings(tmp_path_factory.mktemp("decision")),  # type: ignore[arg-type]
        # The suite's own peers (the defaults would dial ports nothing listens on, and the override
        # follower would log its failures into the output of the CLI tests that share the process).
        journeys_address=journeys_server.address,
        identity_address=identity_server.address,
        ingest_address=ingest_server.address,
        orchestrator_address="",
    )
    server = start_server(decision_service(settings), settings)
    yield server
    server.stop(0)


def gateway_settings(data_dir: Path, backends: dict[str, str], api_key: str, tenant: str) -> GatewaySettings:
    return GatewaySettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        **{f"{name}_address": address for name, address in backends.items()},  # type: ignore[arg-type]
        api_key=SecretStr(api_key),
        tenant=tenant,
        http_port=free_port(),  # the Segment-compatible collector, on a port of its own per gateway
    )


def session_gateway_settings(
    data_dir: Path, ingest: Server, journeys: Server, identity: Server, decision: Server
) -> GatewaySettings:
    """A gateway's settings in front of the session's services, with the test key and tenant."""
    backends = {"ingest": ingest, "journeys": journeys, "identity": identity, "decision": decision}
    return gateway_settings(data_dir, {name: s.address for name, s in backends.items()}, API_KEY, TENANT)


@pytest.fixture(scope="session")
def gateway_server(
    ingest_server: Server,
    journeys_server: Server,
    identity_server: Server,
    decision_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    backends = (ingest_server, journeys_server, identity_server, decision_server)
    settings = session_gateway_settings(tmp_path_factory.mktemp("gateway"), *backends)
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)


@dataclass(frozen=True)
class EdgeGateway:
    """A gateway behind its nginx data plane: `address` is nginx's public port, `server` the Python gateway
    (the control plane) on its loopback control port."""

    address: str
    server: Server
    settings: GatewaySettings


def require_nginx() -> None:
    """nginx with the Lua module, installed with apt-get when missing (tests/debian_servers.py), or the test
    fails saying how to install it."""
    if not install_debian_packages(NGINX_PACKAGES, lambda: nginx_unavailable() is None):
        pytest.fail(
            f"{nginx_unavailable()}; the nginx data plane's tests need it (what .ci/run installs).",
            pytrace=False,
        )


def start_edge_gateway(settings: GatewaySettings) -> EdgeGateway:
    """`settings` with the nginx data plane on free ports, started: nginx in front of the control plane."""
    require_nginx()
    edge = settings.model_copy(
        update={"data_plane": "nginx", "port": free_port(), "control_port": free_port()}
    )
    server = start_server(gateway_service(edge), edge.grpc_server_settings())
    return EdgeGateway(f"127.0.0.1:{edge.port}", server, edge)


@pytest.fixture(scope="session")
def edge_gateway(
    ingest_server: Server,
    journeys_server: Server,
    identity_server: Server,
    decision_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EdgeGateway]:
    """The gateway of `gateway_server`, with the same backends, behind the nginx data plane (ADR 105)."""
    backends = (ingest_server, journeys_server, identity_server, decision_server)
    edge = start_edge_gateway(session_gateway_settings(tmp_path_factory.mktemp("edge-gateway"), *backends))
    yield edge
    edge.server.stop(0)


@pytest.fixture
def gateway_channel(gateway_server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway_server.address) as channel:
        yield channel


@pytest.fixture
def auth() -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {API_KEY}"),)


@pytest.fixture
def user_id() -> str:
    """A user id no other test uses, so timelines are the test's own."""
    return f"user-{uuid.uuid4().hex[:12]}"
