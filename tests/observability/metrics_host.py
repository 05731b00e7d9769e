"""The whole suite in one process with the kit's Prometheus endpoint on, driven until every instrument the
dashboard and the alerts read has recorded: `python -m tests.observability.metrics_host PORT DIR`.

A process of its own because the OpenTelemetry pipeline is configured once per process, before any server
exists (`configure_telemetry`), as in production; the pytest process has its own already. The servers are
the real ones over sockets; the traffic goes through the gateway where a caller's would. To park a dead
letter, ingest's orchestrator sink points at journeys, which does not serve OrchestratorService (the
misconfigured address `tests/contract/test_ingest_dead_letters.py` uses); the orchestrator server is reached
directly for the contact checks. Writes `DIR/ready` once driven, then serves until stdin closes.
"""

from __future__ import annotations

import gc
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import grpc

from tests.conftest import API_KEY, TENANT, common_settings, gateway_settings, start_server
from tests.decision.lifecycle_calls import OPERATOR, damage, deploy, push
from tests.decision.ml_package import ml_package
from tests.orchestrator.conftest import as_tenant
from tests.orchestrator.helpers import EMAIL, MARKETING, at, check, set_policy
from wayline.common.garbage import PauseMetrics
from wayline.common.server import Server
from wayline.common.telemetry import configure_telemetry
from wayline.common.timestamps import to_timestamp
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.decision.v1 import decision_service_pb2_grpc as decision_grpc
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as orchestrator_grpc
from wayline_cli.suite import free_port
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings
from wayline_gateway.service import gateway_service
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings
from wayline_journeys.service import journeys_service
from wayline_journeys.settings import JourneysSettings
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

AUTH = (("authorization", f"Bearer {API_KEY}"),)
MODEL = "metered"


def local(port: int) -> str:
    return f"127.0.0.1:{port}"


def start_suite(root: Path) -> dict[str, Server]:
    journeys_port, ingest_port = free_port(), free_port()
    identity_config = IdentitySettings(
        **common_settings(root / "identity"),  # type: ignore[arg-type]
        journeys_address=local(journeys_port),
        ingest_address=local(ingest_port),
    )
    identity = start_server(identity_service(identity_config), identity_config)
    journeys_config = JourneysSettings(
        **{**common_settings(root / "journeys"), "port": journeys_port},  # type: ignore[arg-type]
        identity_address=identity.address,
    )
    journeys = start_server(journeys_service(journeys_config), journeys_config)
    orchestrator_config = OrchestratorSettings(
        **common_settings(root / "orchestrator"),  # type: ignore[arg-type]
        journeys_address="",
        decision_address="",
        identity_address="",
        ingest_address="",
    )
    orchestrator = start_server(orchestrator_service(orchestrator_config), orchestrator_config)
    decision_config = DecisionSettings(
        **common_settings(root / "decision"),  # type: ignore[arg-type]
        journeys_address=journeys.address,
        identity_address=identity.address,
        ingest_address=local(ingest_port),
        orchestrator_address="",
    )
    decision = start_server(decision_service(decision_config), decision_config)
    ingest_config = IngestSettings(
        **{**common_settings(root / "ingest"), "port": ingest_port},  # type: ignore[arg-type]
        journeys_address=journeys.address,
        identity_address=identity.address,
        decision_address=decision.address,
        orchestrator_address=journeys.address,  # no OrchestratorService there: its events are parked
        sinks=["journeys", "decision", "orchestrator"],
        sink_retry_initial_seconds=0.01,
    )
    ingest = start_server(ingest_service(ingest_config), ingest_config)
    backends = {name: server.address for name, server in (("ingest", ingest), ("journeys", journeys))}
    backends |= {
        "identity": identity.address,
        "decision": decision.address,
        "orchestrator": orchestrator.address,
    }
    gateway_config = gateway_settings(root / "gateway", backends, API_KEY, TENANT)
    gateway = start_server(gateway_service(gateway_config), gateway_config)
    return {
        "identity": identity,
        "journeys": journeys,
        "orchestrator": orchestrator,
        "decision": decision,
        "ingest": ingest,
        "gateway": gateway,
    }


def event(event_type: int, name: str, **identifiers: str) -> event_pb2.Event:
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_type,  # type: ignore[arg-type]
        name=name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=to_timestamp(datetime.now(UTC)),
        identifiers=[event_pb2.Identifier(type=k, value=v) for k, v in identifiers.items()],
    )


def refused(call: Callable[[], object], code: grpc.StatusCode) -> None:
    """Make `call`, which must be refused with `code`."""
    try:
        call()
    except grpc.RpcError as error:
        if error.code() != code:
            raise
        return
    raise AssertionError(f"the call was not refused with {code.name}")


def drive(gateway: grpc.Channel, orchestrator: grpc.Channel, root: Path) -> None:
    """Every fact the dashboard shows, once: events accepted and refused, a merge, a dead letter, a
    decision, a failed model load, contacts refused by the policy."""
    ingest = ingest_grpc.IngestServiceStub(gateway)
    anonymous, user = uuid.uuid4().hex, uuid.uuid4().hex
    ingest.Track(
        ingest_pb.TrackRequest(event=event(event_pb2.EVENT_TYPE_TRACK, "Viewed", anonymous_id=anonymous)),
        metadata=AUTH,
        timeout=10,
    )
    viewed = event(event_pb2.EVENT_TYPE_TRACK, "Viewed", user_id=user)
    ingest.Track(ingest_pb.TrackRequest(event=viewed), metadata=AUTH, timeout=10)
    ingest.Track(ingest_pb.TrackRequest(event=viewed), metadata=AUTH, timeout=10)  # a retry: a duplicate
    ingest.Track(  # both identifiers on one identify: their two profiles merge
        ingest_pb.TrackRequest(
            event=event(event_pb2.EVENT_TYPE_IDENTIFY, "", anonymous_id=anonymous, user_id=user)
        ),
        metadata=AUTH,
        timeout=10,
    )
    nameless = ingest_pb.TrackRequest(event=event(event_pb2.EVENT_TYPE_TRACK, ""))
    refused(lambda: ingest.Track(nameless, metadata=AUTH, timeout=10), grpc.StatusCode.INVALID_ARGUMENT)

    decision = decision_grpc.DecisionServiceStub(gateway)
    push(gateway, ml_package(root / "package-1", model_id=MODEL, version="1"), OPERATOR)
    deploy(gateway, MODEL, "1", auth=OPERATOR)
    decision.CreateAction(
        decision_pb.CreateActionRequest(
            action_id="offer", action=action_pb2.Action(channel=event_pb2.CHANNEL_WEB)
        ),
        metadata=AUTH,
        timeout=10,
    )
    person = event_pb2.PersonRef(person_id=f"person-{uuid.uuid4().hex[:6]}")
    decision.Decide(
        decision_pb.DecideRequest(person=person, channel=event_pb2.CHANNEL_WEB, placement="home_hero"),
        metadata=AUTH,
        timeout=10,
    )
    broken = push(gateway, ml_package(root / "package-2", model_id=MODEL, version="2"), OPERATOR)
    version_dir = Path(broken.artifact_uri)
    damage(version_dir, "response.onnx", (version_dir / "response.onnx").read_bytes()[:-16])
    refused(lambda: deploy(gateway, MODEL, "2", auth=OPERATOR), grpc.StatusCode.FAILED_PRECONDITION)

    stub = orchestrator_grpc.OrchestratorServiceStub(orchestrator)
    tenant = as_tenant(TENANT)
    all_day = policy_pb.QuietHours(start_minute=0, end_minute=24 * 60 - 1, default_time_zone="UTC")
    set_policy(stub, tenant, policy_pb.ContactPolicy(quiet_hours=[all_day]))
    check(stub, tenant, "person-1", at("2026-03-02T10:00"), (EMAIL, MARKETING))


def main() -> None:
    port, root = int(sys.argv[1]), Path(sys.argv[2])
    telemetry = configure_telemetry(None, otlp_endpoint=None, metrics_host="127.0.0.1", metrics_port=port)
    # As `wayline.common.server.run` does in each service's process.
    gc_pauses = PauseMetrics(telemetry.meter_provider.get_meter("wayline.common"))
    servers = start_suite(root)
    try:
        with (
            grpc.insecure_channel(servers["gateway"].address) as gateway,
            grpc.insecure_channel(servers["orchestrator"].address) as orchestrator,
        ):
            drive(gateway, orchestrator, root)
        gc.collect()  # one full collection for the pause histogram, whatever the suite's own allocations did
        (root / "ready").write_text("driven\n")
        sys.stdin.read()  # until the test closes our stdin
    finally:
        for server in reversed(servers.values()):
            server.stop(0)
        gc_pauses.close()


if __name__ == "__main__":
    main()
