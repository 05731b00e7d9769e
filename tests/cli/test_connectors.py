"""`wayline connectors list|get|apply|delete|test|dead-letters|redrive` against a real gateway and
orchestrator and a real local HTTP receiver: connectors applied from YAML (secrets from the environment;
created, unchanged, updated by the fields named), listed, read back masked and re-applied from what `get`
printed, tested, deleted; a flow's refused message listed as a dead letter and redriven to the receiver;
malformed files and arguments refused before any call."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY, gateway_settings, start_server
from tests.orchestrator.conftest import as_tenant, start_orchestrator
from tests.orchestrator.receivers import SECRET, HttpReceiver, Reply
from tests.orchestrator.runtime_calls import eventually, publish, send, track
from wayline.api.v1 import annotations_pb2
from wayline.common.server import Server
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.main import app
from wayline_gateway.service import gateway_service

OPERATOR = (("authorization", f"Bearer {API_KEY}"),)


class Stack:
    def __init__(self, gateway: Server, orchestrator: Server) -> None:
        self.gateway, self.orchestrator = gateway, orchestrator


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    orchestrator = start_orchestrator(tmp_path_factory.mktemp("orchestrator"))
    settings = gateway_settings(
        tmp_path_factory.mktemp("gateway"), {"orchestrator": orchestrator.address}, API_KEY, "operator"
    )
    gateway = start_server(gateway_service(settings), settings)
    yield Stack(gateway, orchestrator)
    gateway.stop(0)
    orchestrator.stop(0)


@pytest.fixture(scope="module")
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def tenant(stack: Stack) -> tuple[str, str]:
    """A new tenant's id and an admin key of it."""
    tenant_id = f"cli-{uuid.uuid4().hex[:6]}"
    with grpc.insecure_channel(stack.gateway.address) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        made = admin.CreateTenant(admin_pb.CreateTenantRequest(tenant_id=tenant_id), metadata=OPERATOR).tenant
        key = admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(
                parent=made.name,
                api_key=api_key_pb2.ApiKey(scopes=[annotations_pb2.SCOPE_ADMIN, annotations_pb2.SCOPE_READ]),
            ),
            metadata=OPERATOR,
        )
    return tenant_id, key.secret


def connectors(stack: Stack, key: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app,
        ["connectors", *args, "--gateway", stack.gateway.address, "--api-key", key],
        env={"COLUMNS": "250", **(env or {})},
    )
    own = [line for line in result.stdout.splitlines() if "[info" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def _file(tmp_path: Path, url: str, display_name: str = "Push relay", secret: str = "${HOOK_SECRET}") -> str:
    secret_line = f"\n  signing_secret: {secret!r}" if secret else ""
    path = tmp_path / f"connectors-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(
        f"""\
name: connectors/push-hook
display_name: {display_name}
webhook:
  url: {url}{secret_line}
retry_policy: {{max_attempts: 1}}
---
name: connectors/mail
smtp: {{host: 127.0.0.1, port: 2525, from_address: news@shop.example, username: wayline,
       password: "${{SMTP_PASSWORD}}"}}
"""
    )
    return str(path)


ENV = {"HOOK_SECRET": SECRET, "SMTP_PASSWORD": "s3cret-password"}


def test_apply_list_get_test_delete(
    stack: Stack, tenant: tuple[str, str], http: HttpReceiver, tmp_path: Path
) -> None:
    _, key = tenant
    http.reset()
    file = _file(tmp_path, http.url)
    code, stdout, stderr = connectors(stack, key, "apply", file, env=ENV)
    assert code == 0, stderr
    assert stdout.splitlines() == ["created connectors/push-hook", "created connectors/mail"]
    # Secrets cannot be compared: a file that gives them updates; one that names the same fields does not.
    assert connectors(stack, key, "apply", file, env=ENV)[1].splitlines() == [
        "updated connectors/push-hook",
        "updated connectors/mail",
    ]
    without = _file(tmp_path, http.url, secret="")
    assert (
        connectors(stack, key, "apply", without, env=ENV)[1].splitlines()[0]
        == "unchanged connectors/push-hook"
    )
    renamed = _file(tmp_path, http.url, "Push relay 2", secret="")
    assert (
        connectors(stack, key, "apply", renamed, env=ENV)[1].splitlines()[0] == "updated connectors/push-hook"
    )

    code, stdout, _ = connectors(stack, key, "list")
    assert code == 0
    row = next(line for line in stdout.splitlines() if "push-hook" in line)
    assert "webhook" in row
    assert "Push relay 2" in row
    assert http.url in row
    code, printed, _ = connectors(stack, key, "get", "push-hook")
    assert code == 0
    assert "# etag:" in printed
    assert "signing_secret: '********'" in printed
    assert SECRET not in printed
    again = tmp_path / "printed.yaml"
    again.write_text(printed)
    assert connectors(stack, key, "apply", str(again))[1] == "unchanged connectors/push-hook"

    # The secret survived every apply: the receiver verifies the signature of the test message.
    code, stdout, stderr = connectors(stack, key, "test", "push-hook", "--recipient", "p-1")
    assert code == 0, stderr
    assert stdout.startswith("delivered connectors/push-hook")
    assert http.received[-1].signed
    http.reset(Reply(400))
    code, stdout, _ = connectors(stack, key, "test", "push-hook", "--recipient", "p-1")
    assert code == 1
    assert stdout.startswith("failed_permanent connectors/push-hook")
    assert "answer 400" in stdout

    assert connectors(stack, key, "delete", "connectors/mail")[1] == "deleted connectors/mail"
    code, _, stderr = connectors(stack, key, "get", "mail")
    assert code == 1
    assert "NOT_FOUND" in stderr


def test_dead_letters_are_listed_and_redriven(
    stack: Stack, tenant: tuple[str, str], http: HttpReceiver, tmp_path: Path
) -> None:
    tenant_id, key = tenant
    assert connectors(stack, key, "apply", _file(tmp_path, http.url), env=ENV)[0] == 0
    http.reset(Reply(400))
    auth = as_tenant(tenant_id)
    action = {
        "channel": "CHANNEL_PUSH",
        "purpose": "CONTACT_PURPOSE_TRANSACTIONAL",
        "action_id": "hello",
        "connector": {"connector": "connectors/push-hook", "template_id": "welcome"},
    }
    definition = {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "hello",
        "steps": [{"id": "hello", "action": action}],
    }
    person = f"p-{uuid.uuid4().hex[:8]}"
    with grpc.insecure_channel(stack.orchestrator.address) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        publish(stub, auth, "welcome", definition)
        send(stub, auth, track(person, "Signed Up", time.time_ns() // 1000))
    key_of_message = f"welcome/1/{person}/1/hello"
    eventually(lambda: key_of_message in connectors(stack, key, "dead-letters", "push-hook")[1])
    code, stdout, _ = connectors(stack, key, "dead-letters", "push-hook")
    assert code == 0
    row = next(line for line in stdout.splitlines() if key_of_message in line)
    assert "welcome/hello" in row
    assert "permanent" in row
    assert "400" in row

    code, stdout, stderr = connectors(stack, key, "redrive", "push-hook", key_of_message)
    assert code == 0, stderr
    assert stdout == "redrove 1 dead letters of connectors/push-hook"
    eventually(lambda: len(http.received) == 2)
    assert [r.headers["Idempotency-Key"] for r in http.received] == [key_of_message] * 2
    assert key_of_message not in connectors(stack, key, "dead-letters", "push-hook")[1]
    assert connectors(stack, key, "redrive", "push-hook", "--all")[1] == (
        "redrove 0 dead letters of connectors/push-hook"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("display_name: no name\n", "must have a `name`"),
        ("name: connectors/x\netag: '3'\n", "output-only"),
        (
            "name: connectors/x\nwebhook: {url: 'https://x.example',"
            " signing_secret: '${NOT_SET_ANYWHERE}'}\n",
            "NOT_SET",
        ),
        ("name: connectors/x\ntimeout: soon\n", "connectors/x"),
        ("- a list\n", "mapping"),
    ],
)
def test_apply_refuses_a_malformed_file(
    stack: Stack, tenant: tuple[str, str], tmp_path: Path, text: str, message: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    code, _, stderr = connectors(stack, tenant[1], "apply", str(file))
    assert code == 2
    assert message in stderr


def test_redrive_needs_keys_or_all_but_not_both(stack: Stack, tenant: tuple[str, str]) -> None:
    assert connectors(stack, tenant[1], "redrive", "push-hook")[0] == 2
    assert connectors(stack, tenant[1], "redrive", "push-hook", "k-1", "--all")[0] == 2
    code, _, stderr = connectors(stack, tenant[1], "dead-letters", "nope")
    assert code == 1
    assert "NOT_FOUND" in stderr
