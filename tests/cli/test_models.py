"""`wayline models push|list|get` against a real gateway and decision service: a package is pushed with its
version on stdout alone, pushed again without change, listed and shown; a broken one exits non-zero with the
violations."""

from __future__ import annotations

import uuid
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import API_KEY
from tests.decision.ml_package import ml_package
from tests.decision.model_packages import build_package, replace_file
from wayline.common.server import Server
from wayline_cli.main import app


def models(gateway: Server, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `wayline models ...` run in this process; the in-process servers'
    log lines are dropped from stdout."""
    result = CliRunner().invoke(
        app, ["models", *args, "--gateway", gateway.address, "--api-key", API_KEY], env={"COLUMNS": "250"}
    )
    own = [line for line in result.stdout.splitlines() if not line.startswith("20") or "[info" not in line]
    return result.exit_code, "\n".join(own), result.stderr


def test_push_list_and_get_a_model(gateway_server: Server, tmp_path: Path) -> None:
    model_id = f"cli-{uuid.uuid4().hex[:6]}"
    package = ml_package(
        tmp_path / "package", model_id=model_id, version="3.1.4"
    )  # as `wayline ml` writes it

    code, out, err = models(gateway_server, "push", str(package))
    assert code == 0, err
    assert out.strip() == f"models/{model_id}/versions/3.1.4"
    assert "registered" in err

    code, out, err = models(gateway_server, "push", str(package))
    assert code == 0, err
    assert out.strip() == f"models/{model_id}/versions/3.1.4"
    assert "already registered" in err

    code, out, _ = models(gateway_server, "list")
    assert code == 0
    row = next(line for line in out.splitlines() if model_id in line)
    assert "3.1.4" in row
    assert "not deployed" in row

    code, out, _ = models(gateway_server, "get", model_id)
    assert code == 0
    assert "3.1.4" in out
    assert "registered" in out
    assert "email_newsletter, discount_10, call_back, push_reminder" in out


def test_a_broken_package_exits_non_zero_naming_the_file(gateway_server: Server, tmp_path: Path) -> None:
    package = build_package(tmp_path / "package", model_id=f"cli-{uuid.uuid4().hex[:6]}")
    replace_file(package, "value.onnx", b"not a graph")
    code, out, err = models(gateway_server, "push", str(package))
    assert code == 1
    assert out.strip() == ""
    assert "INVALID_ARGUMENT" in err
    assert "value.onnx" in err


def test_a_directory_without_a_manifest_is_not_pushed(gateway_server: Server, tmp_path: Path) -> None:
    code, _, err = models(gateway_server, "push", str(tmp_path))
    assert code == 1
    assert "manifest.json" in err


def test_get_an_unknown_model_exits_non_zero(gateway_server: Server) -> None:
    code, _, err = models(gateway_server, "get", "no-such-model")
    assert code == 1
    assert "NOT_FOUND" in err
