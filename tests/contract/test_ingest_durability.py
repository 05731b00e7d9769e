"""Acknowledged means stored exactly once, whatever crashes: ingest and journeys run as real processes,
are SIGKILLed mid-stream and restarted on the same data, and callers go through a real gateway.

Every scenario streams 20,000 events in batches of 200 (50 people x 400 events), then resends what was
not acknowledged, then reads every timeline back: each event must be there once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2

from tests.conftest import INTERNAL_TOKEN, gateway_settings, start_server
from tests.contract.processes import ServiceProcess
from tests.events import make_event
from wayline.common.errors import status_details
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_gateway.service import gateway_service

pytestmark = [pytest.mark.slow, pytest.mark.long]

PEOPLE, PER_PERSON, BATCH = 50, 400, 200
AUTH = (("authorization", "Bearer wl_crash"),)


def make_batches(prefix: str) -> list[list[event_pb2.Event]]:
    start = datetime.now(UTC) - timedelta(days=2)
    events = [
        make_event(f"{prefix}-{i % PEOPLE}", at=start + timedelta(seconds=i))
        for i in range(PEOPLE * PER_PERSON)
    ]
    return [events[i : i + BATCH] for i in range(0, len(events), BATCH)]


def stream(
    channel: grpc.Channel,
    batches: list[list[event_pb2.Event]],
    on_ack: Callable[[int], None] = lambda n: None,
) -> set[str]:
    """Send `batches` on one StreamEvents call within the server's window; the acknowledged event ids."""
    acked: set[str] = set()
    window = threading.Condition()
    state = {"max_sequence": 1, "done": False}

    def requests() -> Iterator[ingest_pb.StreamEventsRequest]:
        for sequence, batch in enumerate(batches, start=1):

            def may_send(due: int = sequence) -> bool:
                return state["max_sequence"] >= due or bool(state["done"])

            with window:
                window.wait_for(may_send, timeout=60)
                if state["done"]:
                    return
            yield ingest_pb.StreamEventsRequest(sequence=sequence, events=batch)

    try:
        for response in ingest_grpc.IngestServiceStub(channel).StreamEvents(
            requests(), metadata=AUTH, timeout=300
        ):
            with window:
                state["max_sequence"] = max(state["max_sequence"], response.max_sequence)
                window.notify_all()
            if response.sequence:
                assert not response.rejections
                acked.update(response.accepted_event_ids)
                on_ack(len(acked))
    except grpc.RpcError as error:  # the server died mid-stream: what was acknowledged stays acknowledged
        if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            raise
    finally:
        with window:
            state["done"] = True
            window.notify_all()
    return acked


def resend_until_all_acked(
    channel: grpc.Channel, batches: list[list[event_pb2.Event]], acked: set[str]
) -> None:
    for _ in range(20):
        missing = [batch for batch in batches if any(e.event_id not in acked for e in batch)]
        if not missing:
            return
        acked |= stream(channel, missing)
        time.sleep(0.5)
    raise AssertionError("some events were never acknowledged")


def stored_ids(journeys: str, person: str) -> list[str]:
    internal = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", "acme"))
    with grpc.insecure_channel(journeys) as channel:
        response = journeys_grpc.JourneyServiceStub(channel).GetTimeline(
            journeys_pb.GetTimelineRequest(
                identifier=event_pb2.Identifier(type="user_id", value=person), page_size=1000
            ),
            metadata=internal,
            timeout=30,
        )
    return [e.event_id for e in response.events]


def assert_stored_exactly_once(journeys: str, batches: list[list[event_pb2.Event]], prefix: str) -> None:
    expected: dict[str, set[str]] = {}
    for batch in batches:
        for event in batch:
            expected.setdefault(event.identifiers[0].value, set()).add(event.event_id)
    deadline = time.monotonic() + 180
    pending = dict(expected)
    while pending and time.monotonic() < deadline:
        # Persons' events are interleaved in the stream, so they all arrive together: a round stops at the
        # first person still incomplete, whose timeline is then the only one read while the store catches up
        # (reading all of them each round slowed the store the test waits for).
        for person in list(pending):
            ids = stored_ids(journeys, person)
            assert len(ids) == len(set(ids)), f"{person} has duplicates"
            assert set(ids) <= expected[person]
            if len(ids) < len(expected[person]):
                break
            del pending[person]
        else:
            break
        time.sleep(0.5)
    assert not pending, f"{len(pending)} people still miss events"


@pytest.fixture
def suite(tmp_path: Path) -> Iterator[tuple[ServiceProcess, ServiceProcess, Server]]:
    journeys = ServiceProcess("journeys", tmp_path / "journeys-data")
    ingest = ServiceProcess(
        "ingest", tmp_path / "ingest-data", {"journeys_address": journeys.address, "identity_address": ""}
    )
    journeys.data_dir.mkdir()
    ingest.data_dir.mkdir()
    journeys.start()
    ingest.start()
    settings = gateway_settings(
        tmp_path / "gateway", {"ingest": ingest.address, "journeys": journeys.address}, "wl_crash", "acme"
    )
    gateway = start_server(gateway_service(settings), settings)
    yield journeys, ingest, gateway
    gateway.stop(0)
    ingest.stop()
    journeys.stop()


def test_sigkill_of_ingest_mid_stream_loses_and_duplicates_nothing(
    suite: tuple[ServiceProcess, ServiceProcess, Server],
) -> None:
    journeys, ingest, gateway = suite
    batches = make_batches("ik")

    def kill_at(count: int) -> None:
        if count >= 6_000:
            ingest.kill()

    with grpc.insecure_channel(gateway.address) as channel:
        acked = stream(channel, batches, kill_at)
        assert 6_000 <= len(acked) < PEOPLE * PER_PERSON
        ingest.start()
        resend_until_all_acked(channel, batches, acked)
    assert_stored_exactly_once(journeys.address, batches, "ik")


def test_sigkill_of_journeys_mid_stream_is_absorbed_by_the_spool(
    suite: tuple[ServiceProcess, ServiceProcess, Server],
) -> None:
    journeys, _ingest, gateway = suite
    batches = make_batches("jk")

    def kill_at(count: int) -> None:
        if count >= 4_000:
            journeys.kill()

    with grpc.insecure_channel(gateway.address) as channel:
        acked = stream(channel, batches, kill_at)
        assert len(acked) == PEOPLE * PER_PERSON  # ingest kept acknowledging into its spool
    journeys.start()
    assert_stored_exactly_once(journeys.address, batches, "jk")


def test_a_crash_between_write_and_fsync_loses_nothing_acknowledged(
    suite: tuple[ServiceProcess, ServiceProcess, Server],
) -> None:
    journeys, ingest, gateway = suite
    ingest.stop()
    ingest.start(test_crash_before_fsync="25")  # the 25th spool write dies before its fsync
    batches = make_batches("fk")
    with grpc.insecure_channel(gateway.address) as channel:
        acked = stream(channel, batches)
        assert ingest.process is not None
        assert ingest.process.wait(30) != 0  # it really died
        assert len(acked) < PEOPLE * PER_PERSON
        ingest.start(test_crash_before_fsync="0")
        resend_until_all_acked(channel, batches, acked)
    assert_stored_exactly_once(journeys.address, batches, "fk")


def test_a_full_spool_answers_resource_exhausted_and_drains_when_journeys_returns(tmp_path: Path) -> None:
    journeys = ServiceProcess("journeys", tmp_path / "journeys-data")
    ingest = ServiceProcess(
        "ingest",
        tmp_path / "ingest-data",
        {
            "journeys_address": journeys.address,
            "identity_address": "",
            "spool_max_bytes": "262144",
            "spool_segment_bytes": "16384",
        },
    )
    journeys.data_dir.mkdir()
    ingest.data_dir.mkdir()
    ingest.start()  # journeys is down
    settings = gateway_settings(
        tmp_path / "gw", {"ingest": ingest.address, "journeys": journeys.address}, "wl_crash", "acme"
    )
    gateway = start_server(gateway_service(settings), settings)
    try:
        with grpc.insecure_channel(gateway.address) as channel:
            stub = ingest_grpc.IngestServiceStub(channel)
            accepted: list[list[event_pb2.Event]] = []
            refusal: grpc.RpcError | None = None
            for i in range(1000):
                batch = [make_event(f"q-{i % 5}", minutes_ago=1000 - i) for _ in range(20)]
                try:
                    stub.TrackBatch(ingest_pb.TrackBatchRequest(events=batch), metadata=AUTH, timeout=10)
                except grpc.RpcError as error:
                    refusal = error
                    break
                accepted.append(batch)
            assert refusal is not None
            assert refusal.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = status_details(refusal)
            assert [d.reason for d in details if isinstance(d, error_details_pb2.ErrorInfo)] == ["SPOOL_FULL"]
            assert any(isinstance(d, error_details_pb2.RetryInfo) for d in details)
            assert len(accepted) > 10
            journeys.start()
            assert_stored_exactly_once(journeys.address, accepted, "q")
            # Delivered segments were deleted: the spool takes events again.
            stub.TrackBatch(
                ingest_pb.TrackBatchRequest(events=[make_event("q-0")]), metadata=AUTH, timeout=10
            )
    finally:
        gateway.stop(0)
        ingest.stop()
        journeys.stop()
