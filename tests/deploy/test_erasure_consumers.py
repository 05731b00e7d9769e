"""Which feed consumers identity's erasures wait for, as `wayline up` and the Kubernetes manifests configure
it: the orchestrator, which follows identity's override feed at the identity address it is given (its
erasures: tests/orchestrator/test_person_overrides.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.kustomize import OVERLAYS, render
from tests.deploy.test_manifests import workloads
from wayline.common.registry import REGISTRY, SERVICES
from wayline_cli.suite import Suite
from wayline_identity.settings import IdentitySettings

CONSUMERS = ["orchestrator"]


def test_wayline_up_makes_erasures_wait_for_the_orchestrator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS", raising=False)
    suite = Suite.on_free_ports(tmp_path)
    specs = {spec.name: spec for spec in SERVICES}
    identity = suite.environment(specs["identity"])
    monkeypatch.setenv(
        "WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS", identity["WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS"]
    )
    assert IdentitySettings().erasure_feed_consumers == CONSUMERS
    orchestrator = suite.environment(specs["orchestrator"])
    assert orchestrator["WAYLINE_ORCHESTRATOR_IDENTITY_ADDRESS"] == suite.address("identity")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_manifests_make_erasures_wait_for_the_orchestrator(
    monkeypatch: pytest.MonkeyPatch, overlay: str
) -> None:
    found = dict(workloads(render(overlay)))
    env = {
        e["name"]: e.get("value")
        for e in found["identity"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    monkeypatch.setenv(
        "WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS", env["WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS"]
    )
    assert IdentitySettings().erasure_feed_consumers == CONSUMERS
    (orchestrator,) = found["orchestrator"]["spec"]["template"]["spec"]["containers"]
    addresses = {e["name"]: e.get("value") for e in orchestrator["env"]}
    assert addresses["WAYLINE_ORCHESTRATOR_IDENTITY_ADDRESS"] == f"identity:{REGISTRY['identity'].port}"
