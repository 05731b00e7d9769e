"""The console's files as the gateway's HTTP port serves them: only the built files, each with the console's
Content Security Policy and security headers, revalidated by ETag."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import INTERNAL_TOKEN, common_settings
from wayline_cli.suite import free_port
from wayline_gateway.console.assets import CONTENT_SECURITY_POLICY, ConsoleAssets
from wayline_gateway.http.app import gateway_http_app
from wayline_gateway.http.delivery import IngestSender
from wayline_gateway.http.server import HttpServer
from wayline_gateway.keys import ApiKeyAuthenticator
from wayline_gateway.settings import GatewaySettings

FILES = {
    "index.html": b"<!doctype html><title>Wayline</title>",
    "console.js": b"export const x = 1;" * 200,
    "console.css": b"main{}",
}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = GatewaySettings(**common_settings(tmp_path_factory.mktemp("console")))  # type: ignore[arg-type]
    # Never dialled: these tests send no event.
    sender = IngestSender.connect(
        f"127.0.0.1:{free_port()}",
        internal_token=INTERNAL_TOKEN,
        timeout_seconds=1,
        max_message_bytes=1 << 20,
    )
    app = gateway_http_app(ApiKeyAuthenticator({}), sender, settings, console=ConsoleAssets(FILES))
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    with httpx.Client(base_url=server.address, timeout=10) as client:
        yield client
    server.stop(1)
    sender.close()


def test_the_index_and_assets_carry_the_policy(console: httpx.Client) -> None:
    index = console.get("/console/")
    script = console.get("/console/assets/console.js")
    style = console.get("/console/assets/console.css")
    assert index.content == FILES["index.html"]
    assert index.headers["content-type"].startswith("text/html")
    assert script.content == FILES["console.js"]
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    for answer in (index, script, style):
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


def test_an_unchanged_file_is_not_sent_again(console: httpx.Client) -> None:
    first = console.get("/console/assets/console.js")
    again = console.get("/console/assets/console.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert console.get("/console/assets/console.js", headers={"If-None-Match": '"other"'}).status_code == 200


@pytest.mark.parametrize(
    "path", ["/console/assets/index.htm", "/console/assets/../app.py", "/console/assets/%2e%2e/app.py"]
)
def test_nothing_but_the_built_files_is_served(console: httpx.Client, path: str) -> None:
    answer = console.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_the_bare_path_leads_to_the_index(console: httpx.Client) -> None:
    answer = console.get("/console", follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (308, "/console/")


def test_the_package_serves_what_make_console_built() -> None:
    assets = ConsoleAssets.from_package()
    built = Path(__file__).parents[2] / "services/gateway/src/wayline_gateway/console/static"
    assert assets.names() == sorted(
        str(p.relative_to(built)) for p in built.rglob("*") if p.is_file() and not p.name.startswith(".")
    )


def test_a_browser_that_takes_gzip_gets_the_files_compressed(console: httpx.Client) -> None:
    packed = console.get("/console/assets/console.js", headers={"Accept-Encoding": "gzip, br"})
    plain = console.get("/console/assets/console.js", headers={"Accept-Encoding": "identity"})
    refused = console.get("/console/assets/console.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(FILES["console.js"]) / 10
    assert packed.content == FILES["console.js"]  # httpx decodes: the same bytes
    assert "content-encoding" not in plain.headers
    assert "content-encoding" not in refused.headers
    assert plain.content == FILES["console.js"]
    assert packed.headers["etag"] != plain.headers["etag"]  # two representations, two validators
    assert "Accept-Encoding" in packed.headers["vary"]
    again = console.get(
        "/console/assets/console.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]},
    )
    assert again.status_code == 304


EVIL = "https://evil.example"
BRIDGE_PATH = "/wayline.journeys.v1.JourneyService/QueryPaths"


def _preflight(client: httpx.Client, path: str, headers: str = "content-type") -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": headers,
        },
    )


def test_only_segments_paths_are_open_to_other_origins_and_never_with_credentials(
    console: httpx.Client,
) -> None:
    # analytics.js on a shop's pages posts events with a write key: any origin, no credentials.
    collector = _preflight(console, "/v1/t", "authorization, content-type")
    assert collector.status_code == 200
    assert collector.headers["access-control-allow-origin"] == "*"
    assert "authorization" in collector.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in collector.headers
    posted = console.post("/v1/t", content=b"{}", headers={"Origin": EVIL, "Cookie": "session=1"})
    assert "access-control-allow-credentials" not in posted.headers
    # The bridge, the console and the operator's endpoints are the gateway's own origin's: another origin's
    # page gets no CORS header, so its browser neither sends the call nor lets it read the answer.
    refused = _preflight(console, BRIDGE_PATH, "authorization, content-type")
    assert refused.status_code != 200
    assert not any(name.startswith("access-control-") for name in refused.headers)
    for path in ("/console/", "/console/assets/console.js", "/metrics", "/healthz"):
        answer = console.get(path, headers={"Origin": EVIL})  # /healthz: 503, this ingest is never dialled
        assert not any(name.startswith("access-control-") for name in answer.headers), path


def test_over_https_the_console_asks_browsers_to_stay_on_https(console: httpx.Client, tmp_path: Path) -> None:
    assert "strict-transport-security" not in console.get("/console/").headers  # plain HTTP: meaningless
    settings = GatewaySettings(**common_settings(tmp_path))  # type: ignore[arg-type]
    sender = IngestSender.connect(
        f"127.0.0.1:{free_port()}",
        internal_token=INTERNAL_TOKEN,
        timeout_seconds=1,
        max_message_bytes=1 << 20,
    )
    app = gateway_http_app(ApiKeyAuthenticator({}), sender, settings, console=ConsoleAssets(FILES))
    paths = ("/console/", "/console/assets/console.js", "/console/assets/missing.js")

    async def fetch() -> list[httpx.Response]:
        # In process, with the scheme a TLS listener (or a proxy passing it on) gives the app.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://gateway.example") as client:
            return [await client.get(path) for path in paths]

    try:
        for path, answer in zip(paths, asyncio.run(fetch()), strict=True):
            assert answer.headers["strict-transport-security"] == "max-age=31536000", path
            assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
    finally:
        sender.close()
