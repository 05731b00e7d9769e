"""What `wayline up` hands each child: the caller's settings, under the suite's own decisions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wayline_cli.suite import SERVICES, Suite, is_serving
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


@pytest.mark.slow
def test_restart_stops_one_service_cleanly_and_serves_again_on_its_port(tmp_path: Path) -> None:
    suite = Suite.on_free_ports(tmp_path)
    suite.start_service("identity")
    try:
        suite.wait_serving("identity", timeout=120)
        first = suite.processes["identity"].pid
        assert suite.restart("identity", grace=30, timeout=120) == 0  # drained and exited by itself
        assert suite.processes["identity"].pid != first
        assert is_serving(suite.address("identity"))
        assert (tmp_path / "logs" / "identity.log").read_text().count('"server.stopped"') == 1  # appended
    finally:
        codes = suite.stop()
    assert codes == {"identity": 0}


_PARENT = """
import sys, time
from pathlib import Path
from wayline_cli.suite import Suite
suite = Suite.on_free_ports(Path(sys.argv[1]))
suite.start_service("identity")
suite.wait_serving("identity", timeout=120)
print(suite.processes["identity"].pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_a_service_stops_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline() or b"0")
        assert child
        assert _alive(child)
        parent.kill()  # no cleanup runs: only the kernel's death signal can stop the child
        parent.wait()
        deadline = time.monotonic() + 60
        while _alive(child):
            assert time.monotonic() < deadline, "the service outlived the process that started it"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
