"""`python -m bench decision-rollout`: a model rollout under closed-loop Decide load, longer than the test
(tests/decision/test_hot_swap.py) and with the benchmarks' model (`bench/decision_model.py`: 60 features,
8 actions, two versions of the same package).

The decision service runs in this process, wired as in production to journeys, identity and ingest, which
run here too (as the test suite starts them): so the callers, the decision service and its peers share the
GIL and the box's cores, and every Decide for a person the online state does not hold asks journeys for
their features (within the default 20 ms budget). The driver (`bench/decision_rollout.py`) deploys v1, then
under load canaries v2 at 10%, promotes it and rolls back, and prints a table per phase. The canary phase
lasts half the time, or longer (up to four times the time) until 2,000 persons have been decided for, so
that its share of persons is measured to about ±0.7 points.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import grpc
from pydantic import SecretStr
from rich.console import Console

from bench.decision_model import ACTIONS, build_package
from bench.decision_rollout import RolloutPlan, phase_table, pool_share, run_rollout
from wayline.common.logging import configure_logging
from wayline.common.server import Server, ServiceDefinition
from wayline.common.settings import ServiceSettings
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline_cli.models import package_files, upload_requests
from wayline_cli.suite import free_port
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings
from wayline_journeys.service import journeys_service
from wayline_journeys.settings import JourneysSettings

__all__ = ["main"]

TOKEN = "bench-internal-token"
TENANT = "bench"
MODEL = "bench-nbo"


def _common(data_dir: Path, port: int = 0) -> dict[str, object]:
    return {
        "data_dir": data_dir,
        "internal_token": SecretStr(TOKEN),
        "host": "127.0.0.1",
        "port": port,
        "metrics_port": 0,
        "shutdown_grace_seconds": 1.0,
    }


def _start(stack: ExitStack, definition: ServiceDefinition, settings: ServiceSettings) -> Server:
    server = Server(definition, settings)
    server.start()
    stack.callback(server.stop, 0)
    if not server.wait_ready(60):
        raise RuntimeError(f"{definition.name} did not become ready")
    return server


def _decision(stack: ExitStack, root: Path) -> Server:
    """Identity, journeys, ingest and the decision service, in this process, as the test suite starts them."""
    journeys_port, ingest_port = free_port(), free_port()
    identity_settings = IdentitySettings(
        **_common(root / "identity"),  # type: ignore[arg-type]
        journeys_address=f"127.0.0.1:{journeys_port}",
        ingest_address=f"127.0.0.1:{ingest_port}",
    )
    identity = _start(stack, identity_service(identity_settings), identity_settings)
    journeys_settings = JourneysSettings(
        **_common(root / "journeys", journeys_port),  # type: ignore[arg-type]
        identity_address=identity.address,
    )
    journeys = _start(stack, journeys_service(journeys_settings), journeys_settings)
    ingest_settings = IngestSettings(
        **_common(root / "ingest", ingest_port),  # type: ignore[arg-type]
        journeys_address=journeys.address,
        identity_address=identity.address,
    )
    ingest = _start(stack, ingest_service(ingest_settings), ingest_settings)
    decision_settings = DecisionSettings(
        **_common(root / "decision"),  # type: ignore[arg-type]
        journeys_address=journeys.address,
        identity_address=identity.address,
        ingest_address=ingest.address,
        orchestrator_address="",
    )
    return _start(stack, decision_service(decision_settings), decision_settings)


def main(seconds: float = 60.0, callers: int = 16) -> None:
    console = Console(width=130)
    configure_logging("bench", "warning", "console")  # in-process servers log through it: no line per call
    metadata = (("x-wayline-internal-token", TOKEN), ("x-wayline-tenant", TENANT))
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as scratch, ExitStack() as stack:
        root = Path(scratch)
        packages = [build_package(root / f"v{v}", model_id=MODEL, version=v) for v in ("1", "2")]
        decision = _decision(stack, root)
        with grpc.insecure_channel(decision.address) as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            for package in packages:
                stub.UploadModelVersion(
                    upload_requests(*package_files(package)), metadata=metadata, timeout=120
                )
            for action_id in ACTIONS:
                action = action_pb2.Action(channel=event_pb2.CHANNEL_WEB, placements=["home_hero"])
                stub.CreateAction(
                    pb.CreateActionRequest(action_id=action_id, action=action), metadata=metadata, timeout=10
                )
        # A sixth of the time on v1 alone, half as the canary (longer when needed to see 2,000 persons: the
        # share's standard error is then 0.67 points), the rest promoted and rolled back.
        plan = RolloutPlan(
            model_id=MODEL,
            stable_version="1",
            new_version="2",
            callers=callers,
            seconds=(seconds / 6, seconds / 2, seconds / 6, seconds / 6),
            canary_min_persons=2_000,
            canary_max_seconds=4 * seconds,
        )
        began = time.perf_counter()
        reports = run_rollout(decision.address, metadata, plan, log=console.log)
        elapsed = time.perf_counter() - began
    calls = sum(r.requests for r in reports)
    console.print(
        f"Hot swap under load: {callers} closed-loop callers, {calls} Decide calls in {elapsed:.0f} s "
        f"({calls / elapsed:.0f}/s), persons drawn from {plan.persons:,}; 'new share' counts the persons of "
        "calls that started after the phase's change returned and ended before the next one"
    )
    console.print("\n".join(phase_table(reports)), highlight=False)
    console.print(
        f"{pool_share(plan):.2%} of the {plan.persons:,} persons of the pool are in the canary's buckets; "
        "the canary's 'new share' is a sample of them (standard error sqrt(0.09 / persons))"
    )
