"""`wayline actions apply|list|archive` against a real gateway and decision service: a file applied twice
creates once and then changes nothing, an edit updates, the list shows the catalogue, archive hides an action
from the active list; a malformed file and an invalid action exit non-zero saying why."""

from __future__ import annotations

import uuid
from pathlib import Path

import grpc
from typer.testing import CliRunner

from tests.conftest import API_KEY
from wayline.api.v1 import annotations_pb2
from wayline.common.server import Server
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline_cli.main import app

CATALOGUE = """\
- id: winback_10
  display_name: 10% off, by email
  channel: CHANNEL_EMAIL
  value: 12.5
  value_currency: EUR
  lever: 1.5
  start_time: 2026-01-01T00:00:00Z
  end_time: 2027-01-01
  eligibility:
    required_segments: [segments/lapsing]
    lifecycle_stages: [LIFECYCLE_STAGE_RETENTION]
    required_reachable_channel: CHANNEL_EMAIL
  counts_as_contact: true
  purpose: CONTACT_PURPOSE_MARKETING
- id: hero-banner
  channel: CHANNEL_WEB
  placements: [home_hero]
"""


def tenant_key(gateway: Server) -> str:
    """The secret of a read + admin key of a new tenant, so the catalogue is the test's own."""
    with grpc.insecure_channel(gateway.address) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        auth = (("authorization", f"Bearer {API_KEY}"),)
        tenant = admin.CreateTenant(
            admin_pb.CreateTenantRequest(tenant_id=f"cli-actions-{uuid.uuid4().hex[:6]}"),
            metadata=auth,
            timeout=10,
        ).tenant
        scopes = [annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_ADMIN]
        return str(
            admin.CreateApiKey(
                admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=scopes)),
                metadata=auth,
                timeout=10,
            ).secret
        )


def actions(gateway: Server, key: str, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout (the in-process servers' log lines dropped) and stderr of `wayline actions ...`."""
    result = CliRunner().invoke(
        app, ["actions", *args, "--gateway", gateway.address, "--api-key", key], env={"COLUMNS": "250"}
    )
    own = [line for line in result.stdout.splitlines() if not line.startswith("20") or "[info" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def test_apply_is_idempotent_then_list_and_archive(gateway_server: Server, tmp_path: Path) -> None:
    key = tenant_key(gateway_server)
    file = tmp_path / "actions.yaml"
    file.write_text(CATALOGUE)
    code, out, err = actions(gateway_server, key, "apply", str(file))
    assert code == 0, err
    assert out.splitlines() == ["created actions/winback_10", "created actions/hero-banner"]

    code, out, err = actions(gateway_server, key, "apply", str(file))
    assert code == 0, err
    assert out.splitlines() == ["unchanged actions/winback_10", "unchanged actions/hero-banner"]

    file.write_text(CATALOGUE.replace("lever: 1.5", "lever: 2"))
    code, out, err = actions(gateway_server, key, "apply", str(file))
    assert code == 0, err
    assert out.splitlines() == ["updated actions/winback_10", "unchanged actions/hero-banner"]

    code, out, _ = actions(gateway_server, key, "list")
    assert code == 0
    row = next(line for line in out.splitlines() if "winback_10" in line)
    assert all(cell in row for cell in ("email", "active", "12.5 EUR", "2", "yes"))
    assert "home_hero" in next(line for line in out.splitlines() if "hero-banner" in line)

    code, out, err = actions(gateway_server, key, "archive", "hero-banner")
    assert (code, out.strip()) == (0, "archived actions/hero-banner"), err
    code, out, _ = actions(gateway_server, key, "list")
    assert "hero-banner" not in out
    code, out, _ = actions(gateway_server, key, "list", "--state", "archived")
    assert "hero-banner" in out
    assert "winback_10" not in out
    code, out, _ = actions(gateway_server, key, "list", "--channel", "email", "--state", "all")
    assert "winback_10" in out
    assert "hero-banner" not in out


def test_apply_refuses_a_malformed_file_and_an_invalid_action(gateway_server: Server, tmp_path: Path) -> None:
    key = tenant_key(gateway_server)
    file = tmp_path / "actions.yaml"
    file.write_text("id: not-a-list\n")
    code, _, err = actions(gateway_server, key, "apply", str(file))
    assert code == 2
    assert "list" in err
    file.write_text("- id: x\n  channel: CHANNEL_NOWHERE\n")
    code, _, err = actions(gateway_server, key, "apply", str(file))
    assert code == 2
    assert "CHANNEL_NOWHERE" in err
    file.write_text("- id: x\n  channel: CHANNEL_EMAIL\n  counts_as_contact: true\n  lever: -1\n")
    code, _, err = actions(gateway_server, key, "apply", str(file))
    assert code == 1
    assert "INVALID_ARGUMENT" in err
    assert "action.lever" in err
    assert "action.purpose" in err
    code, _, err = actions(gateway_server, key, "archive", "missing")
    assert code == 1
    assert "NOT_FOUND" in err
