"""What `wayline up` hands each child: the caller's settings, under the suite's own decisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wayline_cli.suite import SERVICES, Suite
from wayline_ingest.settings import IngestSettings


def test_caller_settings_reach_the_services_but_the_suite_decides_ports_and_peers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAYLINE_JOURNEYS_CLICKHOUSE_URL", "http://clickhouse:8123")
    monkeypatch.setenv("WAYLINE_LOG_LEVEL", "warning")
    monkeypatch.setenv("WAYLINE_JOURNEYS_PORT", "1")  # the suite's port wins
    suite = Suite.on_free_ports(tmp_path)
    specs = {spec.name: spec for spec in SERVICES}
    journeys = suite.environment(specs["journeys"])
    assert journeys["WAYLINE_JOURNEYS_CLICKHOUSE_URL"] == "http://clickhouse:8123"
    assert journeys["WAYLINE_LOG_LEVEL"] == "warning"
    assert journeys["WAYLINE_JOURNEYS_PORT"] == str(suite.ports["journeys"])
    gateway = suite.environment(specs["gateway"])
    assert gateway["WAYLINE_GATEWAY_INGEST_ADDRESS"] == suite.address("ingest")
    assert gateway["WAYLINE_GATEWAY_API_KEY"] == suite.api_key
    assert {suite.environment(spec)["WAYLINE_INTERNAL_TOKEN"] for spec in SERVICES} == {suite.internal_token}


def test_the_suites_ingest_feeds_the_decision_services_online_features(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WAYLINE_INGEST_SINKS", raising=False)
    suite = Suite.on_free_ports(tmp_path)
    specs = {spec.name: spec for spec in SERVICES}
    ingest = suite.environment(specs["ingest"])
    assert "decision" in json.loads(ingest["WAYLINE_INGEST_SINKS"])
    assert ingest["WAYLINE_INGEST_DECISION_ADDRESS"] == suite.address("decision")
    decision = suite.environment(specs["decision"])
    assert decision["WAYLINE_DECISION_JOURNEYS_ADDRESS"] == suite.address("journeys")
    assert decision["WAYLINE_DECISION_IDENTITY_ADDRESS"] == suite.address("identity")
    # The settings read it as the sink list the forwarder uses.
    monkeypatch.setenv("WAYLINE_INGEST_SINKS", ingest["WAYLINE_INGEST_SINKS"])
    assert IngestSettings().sinks == ["journeys", "decision", "orchestrator"]
    assert ingest["WAYLINE_INGEST_ORCHESTRATOR_ADDRESS"] == suite.address("orchestrator")
