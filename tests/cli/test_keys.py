"""`wayline keys` against a real gateway: a key is created with its secret on stdout alone, works, is listed
without its secret, and stops working once revoked."""

from __future__ import annotations

import uuid

import grpc
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY
from wayline.common.server import Server
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.gateway.v1 import tenant_pb2
from wayline_cli.main import app


def keys(gateway: Server, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `wayline keys ...` run in this process. The in-process servers log to
    the same stdout, so their JSON/console log lines are dropped from it."""
    result = CliRunner().invoke(
        app, ["keys", *args, "--gateway", gateway.address, "--api-key", API_KEY], env={"COLUMNS": "250"}
    )
    own = [line for line in result.stdout.splitlines() if not line.startswith("20") or "[info" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def test_create_list_rotate_and_revoke_a_key(gateway_server: Server, gateway_channel: grpc.Channel) -> None:
    admin = admin_grpc.AdminServiceStub(gateway_channel)
    tenant = f"cli-{uuid.uuid4().hex[:6]}"
    admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=tenant, tenant=tenant_pb2.Tenant(display_name="CLI")),
        metadata=(("authorization", f"Bearer {API_KEY}"),),
        timeout=10,
    )
    code, out, err = keys(
        gateway_server, "create", tenant, "--scope", "read", "--scope", "admin", "--name", "ops"
    )
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("wl_live_")
    assert "\n" not in secret
    key_id = err.split("apiKeys/")[1].split(";")[0]

    own = (("authorization", f"Bearer {secret}"),)
    got = admin.GetTenant(admin_pb.GetTenantRequest(name=f"tenants/{tenant}"), metadata=own, timeout=10)
    assert got.tenant.display_name == "CLI"

    code, out, _ = keys(gateway_server, "list", tenant)
    assert code == 0
    assert key_id in out
    assert "read, admin" in out or "admin, read" in out
    assert secret not in out

    code, out, err = keys(gateway_server, "rotate", tenant, key_id, "--overlap-hours", "0")
    assert code == 0, err
    replacement = out.strip()
    assert replacement.startswith("wl_live_")
    assert replacement != secret
    with pytest.raises(grpc.RpcError) as refused:
        admin.GetTenant(admin_pb.GetTenantRequest(name=f"tenants/{tenant}"), metadata=own, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    new_id = err.split("apiKeys/")[1].split(";")[0]
    code, _, err = keys(gateway_server, "revoke", tenant, new_id)
    assert code == 0, err
    with pytest.raises(grpc.RpcError) as revoked:
        admin.GetTenant(
            admin_pb.GetTenantRequest(name=f"tenants/{tenant}"),
            metadata=(("authorization", f"Bearer {replacement}"),),
            timeout=10,
        )
    assert revoked.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_errors_name_the_status_and_exit_non_zero(gateway_server: Server) -> None:
    code, out, err = keys(gateway_server, "revoke", "no-such-tenant", "k1")
    assert code == 1
    assert out.strip() == ""
    assert "NOT_FOUND" in err
