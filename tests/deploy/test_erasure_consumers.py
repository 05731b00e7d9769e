"""Which feed consumers identity's erasures wait for, as `wayline up` and the Kubernetes manifests configure
it: the decision service and the orchestrator, each following identity's override feed at the identity
address it is given (their erasures: tests/decision/traces/test_erasure_consumer.py,
tests/orchestrator/test_person_overrides.py). Each follows every tenant whose events ingest forwards to it,
so ingest must forward to both: a consumer that never hears of a tenant would keep its erasures waiting
(ADRs 38 and 76)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.kustomize import OVERLAYS, render
from tests.deploy.test_manifests import workloads
from wayline.common.registry import REGISTRY, SERVICES
from wayline_cli.suite import Suite
from wayline_identity.settings import IdentitySettings

CONSUMERS = ["decision", "orchestrator"]


def test_wayline_up_makes_erasures_wait_for_decision_and_the_orchestrator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS", raising=False)
    monkeypatch.delenv("WAYLINE_INGEST_SINKS", raising=False)
    suite = Suite.on_free_ports(tmp_path)
    specs = {spec.name: spec for spec in SERVICES}
    identity = suite.environment(specs["identity"])
    monkeypatch.setenv(
        "WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS", identity["WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS"]
    )
    assert IdentitySettings().erasure_feed_consumers == CONSUMERS
    sinks = json.loads(suite.environment(specs["ingest"])["WAYLINE_INGEST_SINKS"])
    for consumer in CONSUMERS:
        assert consumer in sinks, f"ingest does not forward events to {consumer}"
        environment = suite.environment(specs[consumer])
        prefix = specs[consumer].env_prefix
        assert environment[f"{prefix}IDENTITY_ADDRESS"] == suite.address("identity")


def _environment(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_manifests_make_erasures_wait_for_decision_and_the_orchestrator(
    monkeypatch: pytest.MonkeyPatch, overlay: str
) -> None:
    found = dict(workloads(render(overlay)))
    env = _environment(found["identity"]["spec"]["template"]["spec"]["containers"][0])
    monkeypatch.setenv(
        "WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS", env["WAYLINE_IDENTITY_ERASURE_FEED_CONSUMERS"]
    )
    assert IdentitySettings().erasure_feed_consumers == CONSUMERS
    (ingest,) = found["ingest"]["spec"]["template"]["spec"]["containers"]
    sinks = json.loads(_environment(ingest)["WAYLINE_INGEST_SINKS"])
    for consumer in CONSUMERS:
        assert consumer in sinks, f"ingest does not forward events to {consumer}"
        (container,) = found[consumer]["spec"]["template"]["spec"]["containers"]
        prefix = REGISTRY[consumer].env_prefix
        address = _environment(container)[f"{prefix}IDENTITY_ADDRESS"]
        assert address == f"identity:{REGISTRY['identity'].port}"
