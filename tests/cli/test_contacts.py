"""`wayline contacts policy get|set` and `wayline contacts list` against a real gateway and orchestrator: a
policy file set then read back, an invalid one refused with its field paths, a malformed one refused before
any call, and a person's contacts listed newest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY, TENANT, gateway_settings, start_server
from tests.orchestrator.conftest import start_orchestrator
from tests.orchestrator.helpers import SMS, at, record
from tests.orchestrator.test_through_gateway import keys
from wayline.common.server import Server
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.main import app
from wayline_gateway.service import gateway_service

POLICY = """\
frequencyCaps:
- channel: CHANNEL_EMAIL
  maxContacts: 3
  window: 604800s
quietHours:
- startMinute: 1260
  endMinute: 480
  defaultTimeZone: Europe/Paris
consentRules:
- channel: CHANNEL_EMAIL
  purpose: CONTACT_PURPOSE_MARKETING
  mode: CONSENT_MODE_OPT_IN
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    orchestrator = start_orchestrator(tmp_path_factory.mktemp("orchestrator"))
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"), {"orchestrator": orchestrator.address}, API_KEY, TENANT
    )
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)
    orchestrator.stop(0)


def contacts(gateway: Server, key: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["contacts", *args, "--gateway", gateway.address, "--api-key", key], env={"COLUMNS": "250"}
    )
    own = [line for line in result.stdout.splitlines() if not line.startswith("20") or "[info" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def test_policy_set_then_get_round_trips(gateway: Server, tmp_path: Path) -> None:
    with grpc.insecure_channel(gateway.address) as channel:
        writer, _ = keys(channel)
    key = writer[0][1].removeprefix("Bearer ")
    file = tmp_path / "policy.yaml"
    file.write_text(POLICY)
    code, stdout, stderr = contacts(gateway, key, "policy", "set", str(file))
    assert code == 0, stderr
    assert "revision 1" in stdout
    code, stdout, _ = contacts(gateway, key, "policy", "get")
    assert code == 0
    assert "maxContacts: 3" in stdout
    assert "defaultTimeZone: Europe/Paris" in stdout
    assert "etag: '1'" in stdout
    printed = tmp_path / "printed.yaml"
    printed.write_text(
        "\n".join(
            line for line in stdout.splitlines() if not line.startswith(("revision", "etag", "updateTime"))
        )
    )
    assert contacts(gateway, key, "policy", "set", str(printed))[0] == 0  # what get prints, set takes


def test_policy_set_refuses_invalid_and_malformed_files(gateway: Server, tmp_path: Path) -> None:
    with grpc.insecure_channel(gateway.address) as channel:
        writer, _ = keys(channel)
    key = writer[0][1].removeprefix("Bearer ")
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("quietHours:\n- startMinute: 1500\n  endMinute: 60\n")
    code, _, stderr = contacts(gateway, key, "policy", "set", str(invalid))
    assert code == 1
    assert "INVALID_ARGUMENT" in stderr
    assert "contact_policy.quiet_hours[0].start_minute" in stderr
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("frequencyCaps: {maxContacts: three}\n")
    assert contacts(gateway, key, "policy", "set", str(malformed))[0] == 2
    output_only = tmp_path / "output-only.yaml"
    output_only.write_text("revision: 4\n")
    assert contacts(gateway, key, "policy", "set", str(output_only))[0] == 2


def test_list_shows_a_persons_contacts_newest_first(gateway: Server) -> None:
    with grpc.insecure_channel(gateway.address) as channel:
        writer, reader = keys(channel)
        stub = pb_grpc.OrchestratorServiceStub(channel)
        record(stub, writer, "p1", at("2026-03-01T10:00"), contact_id="older")
        record(stub, writer, "p1", at("2026-03-02T10:00"), channel=SMS, contact_id="newer")
    code, stdout, stderr = contacts(gateway, reader[0][1].removeprefix("Bearer "), "list", "p1")
    assert code == 0, stderr
    assert stdout.index("newer") < stdout.index("older")
    assert "sms" in stdout
    assert "2026-03-02T10:00:00Z" in stdout
