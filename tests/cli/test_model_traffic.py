"""`wayline models deploy|traffic|rollback` against a real gateway and decision service: the traffic after
each command on stdout, a refusal exiting non-zero with the service's reason."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.cli.test_models import models
from tests.decision.ml_package import ml_package
from wayline.common.server import Server


def test_deploy_canary_shadow_promote_and_roll_back(gateway_server: Server, tmp_path: Path) -> None:
    model_id = f"cli-{uuid.uuid4().hex[:6]}"
    for version in ("1", "2", "3"):
        code, _, _ = models(
            gateway_server, "push", str(ml_package(tmp_path / version, model_id=model_id, version=version))
        )
        assert code == 0
    name = f"models/{model_id}"
    steps = [
        (("deploy", model_id, "1"), f"{name} stable=1"),
        (("deploy", model_id, "2", "--canary", "10"), f"{name} stable=1 canary=2@10%"),
        (("deploy", model_id, "3", "--shadow"), f"{name} stable=1 canary=2@10% shadow=3"),
        (
            ("traffic", model_id, "--stable", "1", "--canary", "2", "--percent", "50"),
            f"{name} stable=1 canary=2@50%",
        ),
        (("traffic", model_id, "--stable", "2"), f"{name} stable=2 previous=1"),
        (("rollback", model_id), f"{name} stable=1 previous=2"),
        (("rollback", model_id, "--version", "3"), f"{name} stable=3 previous=1"),
    ]
    for args, expected in steps:
        code, out, err = models(gateway_server, *args)
        assert (code, out.strip().splitlines()[-1]) == (0, expected), err
    code, out, _ = models(gateway_server, "get", model_id)
    assert code == 0
    assert out.strip().splitlines()[-1] == f"{name} stable=3 previous=1"
    assert "loaded" in out


def test_a_refused_change_exits_non_zero_with_the_reason(gateway_server: Server, tmp_path: Path) -> None:
    model_id = f"cli-{uuid.uuid4().hex[:6]}"
    models(gateway_server, "push", str(ml_package(tmp_path / "1", model_id=model_id, version="1")))
    code, _, err = models(gateway_server, "deploy", model_id, "9")
    assert code == 1
    assert "NOT_FOUND" in err
    assert "versions/9" in err
    code, _, err = models(gateway_server, "rollback", model_id)
    assert code == 1
    assert "FAILED_PRECONDITION" in err
    assert "previous stable version" in err
    code, _, err = models(gateway_server, "deploy", model_id, "1", "--canary", "5", "--shadow")
    assert code == 2
