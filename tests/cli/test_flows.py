"""`wayline flows apply|list|get|publish|pause|archive` against a real gateway and orchestrator: the shipped
abandoned-cart example applied (created, then unchanged, then updated), published, listed, read back and
re-applied from what `get` printed, paused and archived; an incomplete flow refused at publication with its
field paths; a malformed file refused before any call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from tests.conftest import API_KEY, TENANT, gateway_settings, start_server
from tests.orchestrator.conftest import start_orchestrator
from tests.orchestrator.flow_samples import ABANDONED_CART
from tests.orchestrator.test_through_gateway import keys
from wayline.common.server import Server
from wayline_cli.main import app
from wayline_gateway.service import gateway_service

INCOMPLETE = """\
name: flows/half-done
display_name: Half done
definition:
  entry_step_id: first
  steps:
    - id: first
      wait: {duration: 60s, next_step_id: ghost}
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


@pytest.fixture
def key(gateway: Server) -> str:
    """An admin key of a new tenant."""
    with grpc.insecure_channel(gateway.address) as channel:
        admin, _ = keys(channel)
    return admin[0][1].removeprefix("Bearer ")


def flows(gateway: Server, key: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["flows", *args, "--gateway", gateway.address, "--api-key", key], env={"COLUMNS": "250"}
    )
    own = [line for line in result.stdout.splitlines() if "[info" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def test_apply_publish_list_get_pause_archive(gateway: Server, key: str, tmp_path: Path) -> None:
    example = str(ABANDONED_CART)
    assert flows(gateway, key, "apply", example)[1] == "created flows/abandoned-cart"
    assert flows(gateway, key, "apply", example)[1] == "unchanged flows/abandoned-cart"
    code, stdout, stderr = flows(gateway, key, "publish", "abandoned-cart")
    assert code == 0, stderr
    assert stdout == "published flows/abandoned-cart: published, version 1"
    code, stdout, _ = flows(gateway, key, "list")
    assert code == 0
    row = next(line for line in stdout.splitlines() if "abandoned-cart" in line)
    assert "published" in row
    assert "event Cart Abandoned" in row
    code, stdout, _ = flows(gateway, key, "get", "abandoned-cart")
    assert code == 0
    assert "# state: FLOW_STATE_PUBLISHED" in stdout
    assert "template_id: cart-reminder-push" in stdout
    printed = tmp_path / "printed.yaml"
    printed.write_text(stdout.replace("priority: 50", "priority: 60"))
    assert flows(gateway, key, "apply", str(printed), "--publish")[1].splitlines() == [
        "updated flows/abandoned-cart",
        "published flows/abandoned-cart version 2",
    ]
    assert "priority: 50" in flows(gateway, key, "get", "abandoned-cart", "--version", "1")[1]
    assert flows(gateway, key, "pause", "abandoned-cart", "--drain")[1].startswith(
        "paused flows/abandoned-cart"
    )
    assert flows(gateway, key, "list", "--state", "paused")[1].count("abandoned-cart") == 1
    assert flows(gateway, key, "archive", "abandoned-cart")[1] == (
        "archived flows/abandoned-cart: archived, version 2"
    )
    code, _, stderr = flows(gateway, key, "publish", "abandoned-cart")
    assert code == 1
    assert "FAILED_PRECONDITION" in stderr


def test_publish_of_an_incomplete_flow_names_its_fields(gateway: Server, key: str, tmp_path: Path) -> None:
    file = tmp_path / "half.yaml"
    file.write_text(INCOMPLETE)
    assert flows(gateway, key, "apply", str(file))[0] == 0  # a draft may be incomplete
    code, _, stderr = flows(gateway, key, "publish", "half-done")
    assert code == 1
    assert "flow.definition.trigger" in stderr
    assert "flow.definition.steps[0].wait.next_step_id" in stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("display_name: no name\n", "must have a `name`"),
        ("name: flows/x\nstate: FLOW_STATE_PUBLISHED\n", "output-only"),
        ("name: flows/x\ndefinition: {steps: [{id: a, wait: {duration: soon}}]}\n", "flows/x"),
        ("- a list\n", "mapping"),
    ],
)
def test_apply_refuses_a_malformed_file(
    gateway: Server, key: str, tmp_path: Path, text: str, message: str
) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    code, _, stderr = flows(gateway, key, "apply", str(file))
    assert code == 2
    assert message in stderr
