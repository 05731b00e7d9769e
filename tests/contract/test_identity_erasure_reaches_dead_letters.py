"""Erasure reaches ingest's dead letters: events a sink refused for good (the decision sink pointed at a
real server that does not serve DecisionService, journeys, so ObserveEvents answers UNIMPLEMENTED) are
parked with the person's identifiers; erasing the person in identity drives DeletePersonDeadLetters, and
afterwards no dead letter, no stored event and no profile holds any of their identifiers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc

from tests.conftest import TENANT, common_settings, gateway_settings, start_server
from tests.events import make_event
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_cli.suite import free_port
from wayline_gateway.service import gateway_service
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

AUTH = (("authorization", "Bearer wl_erase"),)


def _eventually(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


def test_erasure_deletes_the_persons_dead_letters(
    journeys_server: Server, tmp_path: Path, user_id: str
) -> None:
    ingest_port = free_port()
    identity_settings = IdentitySettings(
        **common_settings(tmp_path / "identity"),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        ingest_address=f"127.0.0.1:{ingest_port}",
        erasure_retry_seconds=0.2,
    )
    identity = start_server(identity_service(identity_settings), identity_settings)
    ingest_settings = IngestSettings(
        **{**common_settings(tmp_path / "ingest"), "port": ingest_port},  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address=identity.address,
        decision_address=journeys_server.address,  # no DecisionService there
        sinks=["journeys", "decision"],
        sink_retry_initial_seconds=0.01,
    )
    ingest = start_server(ingest_service(ingest_settings), ingest_settings)
    gateway_config = gateway_settings(
        tmp_path / "gateway",
        {"ingest": ingest.address, "journeys": journeys_server.address, "identity": identity.address},
        "wl_erase",
        TENANT,
    )
    gateway = start_server(gateway_service(gateway_config), gateway_config)
    email = f"{user_id}@example.com"
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            ingest_stub = ingest_grpc.IngestServiceStub(channel)
            identity_stub = identity_grpc.IdentityServiceStub(channel)
            events = [make_event(user_id, minutes_ago=5 - i) for i in range(3)]
            for event in events:
                event.identifiers.add(type="email", value=email)
            ingest_stub.TrackBatch(ingest_pb.TrackBatchRequest(events=events), metadata=AUTH, timeout=10)

            def parked() -> int:
                page = ingest_stub.ListDeadLetters(
                    ingest_pb.ListDeadLettersRequest(page_size=100), metadata=AUTH, timeout=10
                )
                return sum(1 for d in page.dead_letters if any(i.value == email for i in d.event.identifiers))

            _eventually(lambda: parked() == 3, "decision's refusals are parked")
            ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user_id))
            person = identity_stub.GetProfile(
                identity_pb.GetProfileRequest(person=ref), metadata=AUTH, timeout=10
            ).profile.person_id

            erased = identity_stub.DeleteProfile(
                identity_pb.DeleteProfileRequest(person_id=person, reason="erasure request 9"),
                metadata=AUTH,
                timeout=10,
            )

            def steps() -> dict[str, int]:
                record = identity_stub.GetErasure(
                    identity_pb.GetErasureRequest(erasure_id=erased.erasure.erasure_id),
                    metadata=AUTH,
                    timeout=10,
                ).erasure
                return {s.store: s.state for s in record.steps}

            _eventually(
                lambda: set(steps().values()) == {identity_pb.ERASURE_STATE_DONE}, "every store confirmed"
            )
            assert set(steps()) == {"identity", "journeys", "ingest"}
            assert parked() == 0
    finally:
        for server in (gateway, ingest, identity):
            server.stop(0)
