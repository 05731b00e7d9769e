"""Hot swap under load: closed-loop Decide calls from several callers while a tenant's model is deployed,
canaried at 10%, promoted and rolled back, against a decision server wired as in production (real journeys,
identity and ingest; two real packages `wayline_ml` wrote). No call may fail in any phase, every phase must
serve decisions, and the versions must serve the persons the traffic says (the split is counted over calls
started after the change returned: calls in flight across a swap finish on the version they were routed to).
The driver is bench/decision_rollout.py, which `python -m bench decision-rollout` runs for longer."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bench.decision_rollout import RolloutPlan, phase_table, run_rollout
from tests.conftest import INTERNAL_TOKEN
from tests.decision.lifecycle_calls import push
from tests.decision.ml_package import ml_package
from tests.decision.wired import start_wired_decision
from wayline.common.server import Server
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2

SPLIT_TOLERANCE = 0.02  # the issue's ±2 points


def split_tolerance(share: float, persons: int) -> float:
    """±2 points, widened only when too few persons were decided for (a slow shared box) to tell the split
    that closely: 3.5 standard errors of a share over `persons` (2 points from about 2,000 persons at 10%).
    Which person goes where is checked exactly beside it."""
    return max(SPLIT_TOLERANCE, 3.5 * math.sqrt(share * (1 - share) / max(persons, 1)))


@pytest.fixture(scope="module")
def decision(
    journeys_server: Server,
    identity_server: Server,
    ingest_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    server = start_wired_decision(
        tmp_path_factory.mktemp("hot-swap"),
        journeys=journeys_server,
        identity=identity_server,
        ingest=ingest_server,
    )
    yield server
    server.stop(0)


def test_rollout_under_load_fails_no_call_and_splits_as_the_traffic_says(
    decision: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = f"swap-{uuid.uuid4().hex[:8]}"
    metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))
    with grpc.insecure_channel(decision.address) as channel:
        pushed = [
            push(channel, ml_package(tmp_path / f"v{v}", model_id="offers", version=v), metadata)
            for v in ("1", "2")
        ]
        stub = pb_grpc.DecisionServiceStub(channel)
        for action_id in pushed[0].action_ids:
            action = action_pb2.Action(channel=event_pb2.CHANNEL_WEB, placements=["home_hero"])
            stub.CreateAction(
                pb.CreateActionRequest(action_id=action_id, action=action), metadata=metadata, timeout=10
            )
    # The swaps are what can fail a call, and they happen as a phase opens: the phases around the canary
    # run 1.5 s after their change (some hundreds of calls each), not the benchmark's 4-5 s of steady state.
    # The canary phase keeps its 10 s and its 2,000 persons, which the split's tolerance is computed from.
    plan = RolloutPlan(
        model_id="offers",
        stable_version="1",
        new_version="2",
        callers=8,
        seconds=(1.5, 10.0, 1.5, 1.5),
        canary_max_seconds=45.0,
    )
    reports = run_rollout(decision.address, metadata, plan, log=print)
    table = phase_table(reports)
    with capsys.disabled():
        print("\nhot swap under load (pytest):\n" + "\n".join(table))

    for report in reports:
        assert not report.failures, "\n".join(table)
        assert report.served, f"{report.name}: no decision served after the change\n" + "\n".join(table)
        assert report.split_persons == 0, "\n".join(table)
        # Every person on the version the traffic gives them (the canary: by the hash the contract states).
        assert not report.misrouted, report.misrouted[:5]
    full, canary, promoted, rolled_back = reports
    assert full.new_share == 0.0
    assert promoted.new_share == 1.0
    assert rolled_back.new_share == 0.0
    # The canary's persons are those of its buckets, so, over this many persons, about 10% of them.
    tolerance = split_tolerance(0.10, canary.persons)
    with capsys.disabled():
        print(f"canary share {canary.new_share:.2%} of {canary.persons} persons, allowed ±{tolerance:.2%}")
    assert abs(canary.new_share - 0.10) <= tolerance, "\n".join(table)
