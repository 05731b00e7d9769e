"""Where ingest forwards events, as `wayline up` and the Kubernetes manifests configure it: the same sinks,
each a service the suite runs at the address its peer setting names — the orchestrator included, so
consent, channel preference and time zone reach the contact ledger (its delivery: tests/orchestrator/
test_ingest_sink.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.kustomize import OVERLAYS, render
from tests.deploy.test_manifests import workloads
from wayline.common.registry import REGISTRY, SERVICES
from wayline_cli.suite import Suite
from wayline_ingest.settings import IngestSettings

EVERY_CONSUMER = ["journeys", "decision", "orchestrator"]


def test_wayline_up_forwards_to_every_consumer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WAYLINE_INGEST_SINKS", raising=False)
    suite = Suite.on_free_ports(tmp_path)
    env = suite.environment(next(s for s in SERVICES if s.name == "ingest"))
    monkeypatch.setenv("WAYLINE_INGEST_SINKS", env["WAYLINE_INGEST_SINKS"])
    assert IngestSettings().sinks == EVERY_CONSUMER
    for sink in EVERY_CONSUMER:
        assert env[f"WAYLINE_INGEST_{sink.upper()}_ADDRESS"] == suite.address(sink)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_manifests_forward_to_every_consumer(monkeypatch: pytest.MonkeyPatch, overlay: str) -> None:
    ingest = next(w for name, w in workloads(render(overlay)) if name == "ingest")
    (container,) = ingest["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    monkeypatch.setenv("WAYLINE_INGEST_SINKS", env["WAYLINE_INGEST_SINKS"])
    assert IngestSettings().sinks == EVERY_CONSUMER
    for sink in EVERY_CONSUMER:
        assert env[f"WAYLINE_INGEST_{sink.upper()}_ADDRESS"] == f"{sink}:{REGISTRY[sink].port}"
