"""Dead letters end to end: a sink that refuses events for good gets them parked while journeys, another
sink, stores them; the caller lists and replays them through the gateway. The refusing sink: ingest's
decision sink pointed at a real server that does not serve DecisionService (journeys), which answers
ObserveEvents with UNIMPLEMENTED, as a misconfigured address would."""

from __future__ import annotations

import time
from pathlib import Path

import grpc

from tests.conftest import TENANT, common_settings, gateway_settings, start_server
from tests.events import make_event
from wayline.common.server import Server
from wayline.ingest.v1 import dead_letter_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_gateway.service import gateway_service
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

AUTH = (("authorization", "Bearer wl_dead"),)


def wait_for_dead_letters(
    stub: ingest_grpc.IngestServiceStub, count: int
) -> ingest_pb.ListDeadLettersResponse:
    deadline = time.monotonic() + 20
    while True:
        page = stub.ListDeadLetters(
            ingest_pb.ListDeadLettersRequest(page_size=100), metadata=AUTH, timeout=10
        )
        if page.total_size >= count or time.monotonic() > deadline:
            return page
        time.sleep(0.1)


def test_events_a_sink_refuses_are_parked_listed_and_replayed(
    journeys_server: Server, tmp_path: Path, user_id: str
) -> None:
    settings = IngestSettings(
        **common_settings(tmp_path / "ingest"),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address="",
        decision_address=journeys_server.address,  # no DecisionService there
        sinks=["journeys", "decision"],
        sink_retry_initial_seconds=0.01,
    )
    ingest = start_server(ingest_service(settings), settings)
    gateway_config = gateway_settings(
        tmp_path / "gateway",
        {"ingest": ingest.address, "journeys": journeys_server.address},
        "wl_dead",
        TENANT,
    )
    gateway = start_server(gateway_service(gateway_config), gateway_config)
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            stub = ingest_grpc.IngestServiceStub(channel)
            events = [make_event(user_id, minutes_ago=10 - i) for i in range(5)]
            stub.TrackBatch(ingest_pb.TrackBatchRequest(events=events), metadata=AUTH, timeout=10)
            page = wait_for_dead_letters(stub, 5)
            assert page.total_size == 5
            assert {d.event.event_id for d in page.dead_letters} == {e.event_id for e in events}
            parked = page.dead_letters[0]
            assert parked.sink == dead_letter_pb2.SINK_DECISION
            assert parked.state == dead_letter_pb2.DEAD_LETTER_STATE_PENDING
            assert parked.error_code == "UNIMPLEMENTED"
            assert parked.raw_payload  # the spooled bytes, as the sink was sent them

            replayed = stub.ReplayDeadLetters(
                ingest_pb.ReplayDeadLettersRequest(names=[parked.name]), metadata=AUTH, timeout=10
            )
            assert replayed.replayed_count == 1
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # refused again: back to PENDING, one replay counted
                again = stub.ListDeadLetters(
                    ingest_pb.ListDeadLettersRequest(
                        filter=dead_letter_pb2.DeadLetterFilter(error_code="UNIMPLEMENTED")
                    ),
                    metadata=AUTH,
                    timeout=10,
                )
                current = next(d for d in again.dead_letters if d.name == parked.name)
                if current.replay_count == 1 and current.state == dead_letter_pb2.DEAD_LETTER_STATE_PENDING:
                    break
                time.sleep(0.1)
            assert current.replay_count == 1
            assert current.state == dead_letter_pb2.DEAD_LETTER_STATE_PENDING
            assert current.attempt_count > parked.attempt_count
    finally:
        gateway.stop(0)
        ingest.stop(0)
