"""`wayline flows stats` and `wayline flows simulate` against a real gateway, orchestrator and journeys: a
published flow's counts printed (all zero before anyone enters), a flow's draft and a file's definition
simulated over events stored in journeys, and refusals reported with their codes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY, INTERNAL_TOKEN, TENANT, gateway_settings, start_server
from tests.orchestrator.conftest import start_orchestrator
from tests.orchestrator.runtime_calls import SECOND, track
from wayline.api.v1 import annotations_pb2
from wayline.common.server import Server
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.main import app
from wayline_gateway.service import gateway_service

TRIAL = """\
name: flows/cli-trial
display_name: CLI trial
definition:
  trigger: {event: {event: {event_name: Signed Up}}}
  entry_step_id: split
  steps:
    - id: split
      split:
        variants:
          - {label: a, weight: 50, next_step_id: hello}
          - {label: control, weight: 50, control: true}
    - id: hello
      action: {channel: CHANNEL_EMAIL, action_id: hello}
"""
T0 = 1_772_445_600 * SECOND  # 2026-03-02T10:00Z


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, journeys_server: Server) -> Iterator[Server]:
    orchestrator = start_orchestrator(
        tmp_path_factory.mktemp("orchestrator"), journeys_address=journeys_server.address
    )
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"), {"orchestrator": orchestrator.address}, API_KEY, TENANT
    )
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)
    orchestrator.stop(0)


@pytest.fixture
def tenant(gateway: Server) -> tuple[str, str]:
    """A new tenant's id and an admin (and read) key of it."""
    tenant_id = f"cli-{uuid.uuid4().hex[:6]}"
    operator = (("authorization", f"Bearer {API_KEY}"),)
    with grpc.insecure_channel(gateway.address) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        made = admin.CreateTenant(admin_pb.CreateTenantRequest(tenant_id=tenant_id), metadata=operator).tenant
        scopes = [annotations_pb2.SCOPE_ADMIN, annotations_pb2.SCOPE_READ]
        key = admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(parent=made.name, api_key=api_key_pb2.ApiKey(scopes=scopes)),
            metadata=operator,
        )
    return tenant_id, key.secret


def flows(gateway: Server, key: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["flows", *args, "--gateway", gateway.address, "--api-key", key], env={"COLUMNS": "250"}
    )
    own = [line for line in result.stdout.splitlines() if "[info" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def _signed_up(journeys_server: Server, tenant_id: str, persons: int) -> None:
    metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant_id))
    events = [track(f"p-{uuid.uuid4().hex[:8]}", "Signed Up", T0 + i * SECOND) for i in range(persons)]
    with grpc.insecure_channel(journeys_server.address) as channel:
        journeys_grpc.JourneyServiceStub(channel).WriteEvents(
            journeys_pb.WriteEventsRequest(events=events), metadata=metadata, timeout=30
        )


def test_flows_stats_prints_the_counts_of_a_published_flow(
    gateway: Server, tenant: tuple[str, str], tmp_path: Path
) -> None:
    _, key = tenant
    file = tmp_path / "trial.yaml"
    file.write_text(TRIAL)
    assert flows(gateway, key, "apply", str(file), "--publish")[0] == 0
    code, stdout, stderr = flows(gateway, key, "stats", "cli-trial")
    assert code == 0, stderr
    assert stdout.splitlines()[0] == (
        "entered 0, active 0, converted 0, exited 0 (exit conditions 0), suppressed 0"
    )
    assert any(line.split()[:2] == ["│", "split"] for line in stdout.splitlines())
    assert "control (control)" in stdout
    code, _, stderr = flows(gateway, key, "stats", "nope")
    assert code == 1
    assert "NOT_FOUND" in stderr


def test_flows_simulate_a_draft_and_a_file_over_stored_events(
    gateway: Server, journeys_server: Server, tenant: tuple[str, str], tmp_path: Path
) -> None:
    tenant_id, key = tenant
    file = tmp_path / "trial.yaml"
    file.write_text(TRIAL)
    assert flows(gateway, key, "apply", str(file))[0] == 0
    _signed_up(journeys_server, tenant_id, 4)
    window = ["--from", "2026-03-02T09:00", "--to", "2026-03-03T09:00"]
    code, stdout, stderr = flows(gateway, key, "simulate", "cli-trial", *window)
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0] == "flows/cli-trial: 4 persons evaluated"
    assert lines[1].startswith("entered 4, active 0, converted 0, exited 4")
    code, stdout, stderr = flows(gateway, key, "simulate", str(file), *window, "--max-persons", "3")
    assert code == 0, stderr
    assert stdout.splitlines()[0] == "flows/cli-trial: 3 persons evaluated"
    code, _, stderr = flows(
        gateway, key, "simulate", "cli-trial", "--from", "2026-03-03", "--to", "2026-03-02"
    )
    assert code == 1
    assert "INVALID_ARGUMENT" in stderr
    assert "time_range" in stderr
