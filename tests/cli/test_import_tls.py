"""`wayline import` to a gateway whose public port serves TLS, with --ca-file trusting a private CA. The
gateway reaches the suite's services in plaintext behind it. (That a plaintext client is refused is
tests/common/test_tls.py's; here it would only wait out the importer's retries.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from tests.certificates import CertificateAuthority
from tests.cli.test_import import Auth, timeline, write_csv
from tests.conftest import API_KEY, TENANT, gateway_settings, start_server
from wayline.common.server import Server
from wayline_cli.main import app
from wayline_gateway.service import gateway_service


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"), "public-ca")


@pytest.fixture(scope="module")
def tls_gateway(
    ca: CertificateAuthority,
    ingest_server: Server,
    journeys_server: Server,
    identity_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    pair = ca.issue("gateway")
    backends = {
        "ingest": ingest_server.address,
        "journeys": journeys_server.address,
        "identity": identity_server.address,
    }
    plain = gateway_settings(tmp_path_factory.mktemp("gateway-tls"), backends, API_KEY, TENANT)
    settings = plain.model_copy(update={"tls_cert_file": pair.cert, "tls_key_file": pair.key})
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)


def wayline_import(gateway: Server, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["import", *args, "--gateway", gateway.address, "--api-key", API_KEY],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.output


def test_import_with_the_ca_file_reaches_a_tls_gateway(
    tls_gateway: Server,
    ca: CertificateAuthority,
    gateway_channel: grpc.Channel,
    auth: Auth,
    user_id: str,
    tmp_path: Path,
) -> None:
    export = write_csv(tmp_path / "crm.csv", ["id", "at"], [[user_id, "2022-01-02T03:04:05Z"]])
    mapping = ["--map", "identifiers.user_id=id", "--map", "timestamp=at"]
    mapping += ["--set", "name=Signed Up", "--set", "channel=call_centre"]
    code, output = wayline_import(tls_gateway, str(export), *mapping, "--ca-file", str(ca.cert))
    assert code == 0, output
    assert [e.name for e in timeline(gateway_channel, auth, user_id, expect=1)] == ["Signed Up"]
