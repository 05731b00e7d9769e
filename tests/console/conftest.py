"""The console's end-to-end harness: a running suite over real sockets, loaded once per session with
generated journeys for tenant A and a distinct small set for tenant B, and a headless Chromium (Debian's
`/usr/bin/chromium`, driven by Playwright's sync API) that opens the console signed in with a key.

The suite is the session's own servers (`tests/conftest.py`: identity, journeys, decision) plus what the
console needs beyond them: an orchestrator (the Flows pages) following journeys, identity and decision; an
ingest that forwards to journeys, decision and that orchestrator, as the deployed suite's does; and a gateway
routing to all of them, whose HTTP server serves the console and the JSON bridge.

Fixtures (see tests/console/README.md for examples):
- `console_data` (session): `ConsoleData` — tenants, keys (`read_key_a`, `admin_key_a`, `write_key_a`,
  `read_key_b`, `write_key_b`), the known persons (`ann`, `max`, `shared_a`, `b_only`, `shared_b`), the data's
  time range (`start`, `end`, `time_range()`), B's event names.
- `console_url` (session): the gateway's HTTP base URL, `http://127.0.0.1:<port>`.
- `console_gateway` (session): the gateway's `Server` (its gRPC `address`).
- `rpc` (session): `rpc(key)` → `Rpc`: `.call(service, method, request)` / `.json(...)` / `.stream(...)`
  through the gateway's gRPC port.
- `bridge` (session): `bridge(key)` → `Bridge`: `.call(service, method, request)` / `.post(...)` through
  the HTTP JSON bridge.
- `browser` (session): the Playwright `Browser`.
- `console` (per test): a `Console` on a new browser context: `.open(path, key=...)`, `.go(path)`,
  `.wait_ready(page_id)`, `.sign_in(key)`, `.shot(name)`, `.page`; the test fails if the page logged a
  JavaScript error or a CSP violation, and a failing test leaves a screenshot. `read_table(locator)`
  (tests/console/browser.py) reads a data table's numbers.

Tests that use the browser install Debian's chromium when it is missing and they run as root (as CI and a
fresh machine do), and are skipped only where it cannot be installed."""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import grpc
import pytest
from playwright.sync_api import Browser, Playwright, expect, sync_playwright

from tests.conftest import API_KEY, TENANT, common_settings, gateway_settings, start_server
from tests.console.browser import CHROMIUM, STEP_TIMEOUT_MS, Console, artifacts_dir
from tests.console.calls import Bridge, Rpc
from tests.console.loading import ConsoleData, load_console_data
from tests.debian_servers import install_debian_packages
from tests.orchestrator.conftest import start_orchestrator_with_every_peer
from wayline.common.server import Server
from wayline_gateway.service import gateway_service
from wayline_gateway.settings import GatewaySettings
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

_HERE = Path(__file__).parent

_CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests of this directory need Debian's chromium (and a font, so screenshots show text),
    installed here when missing and the tests run as root, as the servers the other tests start are
    (tests/debian_servers.py); skipped (with the reason) only where it cannot be installed. Every test of the
    directory that starts the suite is slow."""
    mine = [item for item in items if _HERE in item.path.parents]
    browsing = any("browser" in getattr(item, "fixturenames", ()) for item in mine)
    missing = browsing and not install_debian_packages(
        ["chromium", "fonts-dejavu-core"], lambda: os.access(CHROMIUM, os.X_OK)
    )
    for item in mine:
        fixtures = getattr(item, "fixturenames", ())
        if "console_data" in fixtures or "console_gateway" in fixtures:
            item.add_marker(pytest.mark.slow)
        if missing and "browser" in fixtures:
            item.add_marker(pytest.mark.skip(reason=f"{CHROMIUM} is absent: apt-get install chromium"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the `console` fixture knows at teardown whether it failed."""
    report = yield
    setattr(item, f"console_report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def console_orchestrator(
    journeys_server: Server,
    identity_server: Server,
    decision_server: Server,
    ingest_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """The console's orchestrator, with every peer."""
    server = start_orchestrator_with_every_peer(
        tmp_path_factory.mktemp("console-orchestrator"),
        identity=identity_server,
        journeys=journeys_server,
        decision=decision_server,
        ingest=ingest_server,
    )
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def console_ingest(
    journeys_server: Server,
    identity_server: Server,
    decision_server: Server,
    console_orchestrator: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """An ingest forwarding to the journey store, the decision service and the console's orchestrator (the
    deployed suite's sinks), so that flows see the events the console's tests send."""
    settings = IngestSettings(
        **common_settings(tmp_path_factory.mktemp("console-ingest")),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address=identity_server.address,
        decision_address=decision_server.address,
        orchestrator_address=console_orchestrator.address,
        sinks=["journeys", "decision", "orchestrator"],
    )
    server = start_server(ingest_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def console_gateway(
    console_ingest: Server,
    journeys_server: Server,
    identity_server: Server,
    decision_server: Server,
    console_orchestrator: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A gateway routing to every service, with its HTTP server (console, JSON bridge) on a port of its own;
    its bootstrap key is the operator's (API_KEY)."""
    backends = {
        "ingest": console_ingest.address,
        "journeys": journeys_server.address,
        "identity": identity_server.address,
        "decision": decision_server.address,
        "orchestrator": console_orchestrator.address,
    }
    settings = gateway_settings(tmp_path_factory.mktemp("console-gateway"), backends, API_KEY, TENANT)
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def console_url(console_gateway: Server) -> str:
    settings = console_gateway.settings
    assert isinstance(settings, GatewaySettings)
    return f"http://127.0.0.1:{settings.http_port}"


@pytest.fixture(scope="session")
def console_channel(console_gateway: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(console_gateway.address) as channel:
        yield channel


@pytest.fixture(scope="session")
def console_data(console_channel: grpc.Channel, console_gateway: Server) -> ConsoleData:
    return load_console_data(console_channel, console_gateway.address, API_KEY)


@pytest.fixture(scope="session")
def rpc(console_channel: grpc.Channel) -> Callable[[str], Rpc]:
    """`rpc(key)`: gRPC calls through the console's gateway with `key`."""
    return lambda key: Rpc(console_channel, key)


@pytest.fixture(scope="session")
def bridge(console_url: str) -> Callable[[str], Bridge]:
    """`bridge(key)`: HTTP JSON bridge calls to the console's gateway with `key` ("" sends none)."""
    return lambda key: Bridge(console_url, key)


@pytest.fixture(scope="session")
def fresh_artifacts(request: pytest.FixtureRequest) -> None:
    """The screenshots of an earlier run are removed once, so that the artefacts are this run's."""
    for stale in artifacts_dir(request.config.rootpath).glob("*.png"):
        stale.unlink()


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while it
# is started, and every other test that calls asyncio.run() (NATS, the benches' smoke tests) would then fail.
# pytest stops it as soon as the next test is outside tests/console, whatever order the tests run in.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="package")
def browser(playwright: Playwright, fresh_artifacts: None) -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright's own browsers are never downloaded)."""
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=_CHROMIUM_ARGS)
    expect.set_options(timeout=STEP_TIMEOUT_MS)
    yield launched
    launched.close()


@pytest.fixture
def console(
    browser: Browser, console_url: str, console_data: ConsoleData, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """The console in a fresh browser context (empty sessionStorage), signed in by `open` with A's read key
    unless a key is given. Fails the test at teardown on any JavaScript error or CSP violation the page
    reported; saves a screenshot when the test failed (`-failed`) or the page reported one (`-problems`)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="UTC")
    opened = Console(
        context.new_page(),
        console_url,
        console_data.read_key_a,
        artifacts_dir(request.config.rootpath),
        request.node.name,
    )
    yield opened
    call_report = getattr(request.node, "console_report_call", None)
    if call_report is not None and call_report.failed:
        opened.shot("failed")
    elif opened.problems:
        opened.shot("problems")
    context.close()
    opened.assert_no_problems()
