"""The online state survives restarts: a stop writes a snapshot, a crash (SIGKILL of a real decision process)
loses nothing ObserveEvents acknowledged — the change log after the last snapshot is replayed — and the reads
after either equal journeys' GetProfileFeatures for the same person and time, from the state (ONLINE)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN
from tests.decision.features.online import (
    SETTLE_AFTER_S,
    decision_settings,
    event,
    feed,
    new_tenant,
    now_us,
    running,
    spec,
)
from wayline.common.server import Server
from wayline_cli.suite import free_port, is_serving
from wayline_decision.features.reader import FeatureOrigin

SPEC = spec()


def test_a_stopped_service_starts_again_with_its_online_state(
    tmp_path: Path, journeys_server: Server
) -> None:
    tenant = new_tenant("restart")
    settings = decision_settings(tmp_path, journeys_server, None)
    with running(settings, journeys_server) as rig:
        rig.runtime.features.register(tenant, SPEC, now_us())
        time.sleep(SETTLE_AFTER_S)
        rig.feed(
            tenant,
            event("ada", hours_ago=100, price=1.5, plan="basic"),
            event("ada", hours_ago=10, tier="gold"),
            event("ben", hours_ago=1, price=2.5),
        )
        before = now_us()
        assert rig.read_online(tenant, SPEC, "ada", before).origin is FeatureOrigin.ONLINE
        assert rig.read_online(tenant, SPEC, "ben", before).origin is FeatureOrigin.ONLINE
    assert (tmp_path / "decision" / "features" / "snapshot.jsonl").exists()

    with running(settings, journeys_server) as rig:
        after = now_us()
        for person in ("ada", "ben"):
            read = rig.read(tenant, SPEC, person, after)
            assert read.origin is FeatureOrigin.ONLINE, person  # whole, without asking journeys again
            assert read.values == rig.profile(tenant, SPEC, person, after), person
        assert rig.read(tenant, SPEC, "ada", after).values[0] == 2.0
        rig.feed(tenant, event("ada", hours_ago=0.5, price=4.0))
        latest = now_us()
        read = rig.read(tenant, SPEC, "ada", latest)
        assert read.origin is FeatureOrigin.ONLINE
        assert read.values == rig.profile(tenant, SPEC, "ada", latest)


@pytest.mark.timeout(180)
def test_a_killed_process_loses_no_acknowledged_event(tmp_path: Path, journeys_server: Server) -> None:
    tenant = new_tenant("crash")
    settings = decision_settings(tmp_path, journeys_server, None)
    with running(settings, journeys_server) as rig:  # the spec, one person, and a snapshot at stop
        rig.runtime.features.register(tenant, SPEC, now_us())
        time.sleep(SETTLE_AFTER_S)
        rig.feed(tenant, event("cy", hours_ago=20, price=1.0))
        assert rig.read_online(tenant, SPEC, "cy", now_us()).origin is FeatureOrigin.ONLINE

    port = free_port()
    environment = os.environ | {
        "WAYLINE_DATA_DIR": str(tmp_path),
        "WAYLINE_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "WAYLINE_DECISION_HOST": "127.0.0.1",
        "WAYLINE_DECISION_PORT": str(port),
        "WAYLINE_DECISION_METRICS_PORT": "0",
        "WAYLINE_DECISION_JOURNEYS_ADDRESS": journeys_server.address,
        "WAYLINE_DECISION_IDENTITY_ADDRESS": "",
        "WAYLINE_DECISION_FEATURES_SETTLE_AFTER_SECONDS": str(SETTLE_AFTER_S),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "wayline_decision"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not is_serving(f"127.0.0.1:{port}"):
            assert process.poll() is None, "the decision process exited"
            assert time.monotonic() < deadline, "the decision process did not start in time"
            time.sleep(0.2)
        with grpc.insecure_channel(journeys_server.address) as journeys:
            feed(
                f"127.0.0.1:{port}",
                journeys,
                tenant,
                event("cy", hours_ago=2, price=2.0, plan="pro"),
                event("dee", hours_ago=1, price=5.0, tier="gold"),
            )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert len(list((tmp_path / "decision" / "features").glob("changes-*.jsonl"))) >= 1

    with running(settings, journeys_server) as rig:
        as_of = now_us()
        cy = rig.read(tenant, SPEC, "cy", as_of)
        assert cy.origin is FeatureOrigin.ONLINE
        assert cy.values == rig.profile(tenant, SPEC, "cy", as_of)
        assert cy.values[0] == 2.0
        assert cy.values[3] == "pro"
        dee = rig.read_online(tenant, SPEC, "dee", as_of)  # first seen by the killed process
        assert dee.origin is FeatureOrigin.ONLINE
        assert dee.values == rig.profile(tenant, SPEC, "dee", as_of)
        assert dee.values[6] == "gold"
