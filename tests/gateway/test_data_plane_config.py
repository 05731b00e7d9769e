"""What the control plane renders for nginx (ADR 105): which calls nginx may pass itself, what each costs of
the events quota, and a configuration nginx accepts (`nginx -t`) for each TLS arrangement."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.certificates import CertificateAuthority
from tests.conftest import require_nginx
from wayline_gateway.data_plane.config import EdgeConfig, edge_routes, make_socket_directory, render
from wayline_gateway.routes import ERASING_METHODS, PACED_BY_BACKEND, build_routes
from wayline_gateway.service import BACKEND_SERVICES

ROUTES = build_routes(BACKEND_SERVICES)


def rendered_route(path: str) -> str:
    match = re.search(re.escape(f'["{path}"] = {{') + r"([^}]*)\}", edge_routes(ROUTES))
    assert match is not None, path
    return match.group(1).strip()


def test_streams_erasures_and_keyless_probes_go_to_the_control_plane() -> None:
    for path, route in ROUTES.items():
        handed_over = route.client_streaming or route.server_streaming or path in ERASING_METHODS
        handed_over |= route.scope == "public"
        handed_over &= path not in PACED_BY_BACKEND
        assert (rendered_route(path) == "control = true") == handed_over, path


def test_a_stream_its_service_paces_is_passed_with_its_limits() -> None:
    stream = "/wayline.ingest.v1.IngestService/StreamEvents"
    assert stream in PACED_BY_BACKEND
    assert rendered_route(stream) == 'backend = "wayline_ingest", scope = "write", events = "paced"'
    # every other stream stays with the control plane, which paces what it reads
    assert all(
        rendered_route(path) == "control = true"
        for path in ROUTES
        if path not in PACED_BY_BACKEND and (ROUTES[path].client_streaming or ROUTES[path].server_streaming)
    )


def test_a_call_costs_its_events_as_the_gateway_counts_them() -> None:
    assert rendered_route("/wayline.ingest.v1.IngestService/Track").endswith('events = "one"')
    batch = ROUTES["/wayline.ingest.v1.IngestService/TrackBatch"]
    assert rendered_route(batch.method).endswith(f"events = {batch.event_field}")
    assert rendered_route("/wayline.journeys.v1.JourneyService/GetTimeline").endswith("events = nil")
    assert 'backend = "wayline_journeys", scope = "read"' in rendered_route(
        "/wayline.journeys.v1.JourneyService/GetTimeline"
    )


def config(directory: Path, **tls: Path | str) -> EdgeConfig:
    return EdgeConfig(
        directory=directory,
        listen="127.0.0.1:1",
        control_address="127.0.0.1:2",
        sockets=make_socket_directory(directory),
        backends={"ingest": "127.0.0.1:3", "journeys": "localhost:4"},
        routes=ROUTES,
        internal_token='a "token" \\ with quotes',
        key_cache_seconds=5.0,
        default_deadline_seconds=10.0,
        max_deadline_seconds=60.0,
        max_message_bytes=1 << 20,
        **tls,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("arrangement", ["plaintext", "tls", "mutual tls both ways"])
def test_nginx_accepts_what_is_rendered(tmp_path: Path, arrangement: str) -> None:
    require_nginx()
    authority = CertificateAuthority(tmp_path, "ca")
    pair = authority.issue("gateway")
    tls: dict[str, Path | str] = {}
    if arrangement != "plaintext":
        tls = {"tls_cert_file": pair.cert, "tls_key_file": pair.key}
    if arrangement == "mutual tls both ways":
        tls |= {
            "tls_client_ca_file": authority.cert,
            "backend_ca_file": authority.cert,
            "backend_cert_file": pair.cert,
            "backend_key_file": pair.key,
            "backend_server_name": "localhost",
        }
    directory = tmp_path / "data-plane"
    directory.mkdir()
    conf = render(config(directory, **tls))
    checked = subprocess.run(
        ["nginx", "-e", "stderr", "-p", str(directory), "-c", str(conf), "-t", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    lua = (directory / "wayline_edge_config.lua").read_text()
    assert r'internal_token = "a \034token\034 \092 with quotes"' in lua  # Lua's decimal escapes
