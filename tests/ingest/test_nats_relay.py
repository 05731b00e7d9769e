"""The JetStream relay against a real nats-server and a real journeys server: every event delivered once,
across a stop and restart, and held (not acked) while the downstream is down."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
import pytest
from nats.js.api import ConsumerInfo

from tests.conftest import INTERNAL_TOKEN
from tests.events import make_event
from tests.nats import consumer_info, nats_url, unique_stream  # noqa: F401 - the session's server
from tests.orchestrator.conftest import start_orchestrator
from wayline.common.clients import internal_channel
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.sinks.grpc import EventsSink
from wayline_ingest.sinks.nats import JetStreamPublisher, StreamSpec
from wayline_ingest.sinks.nats_relay import JetStreamRelay, RelayLimits, jetstream_mode

pytestmark = pytest.mark.slow

WRITE_EVENTS = "/wayline.journeys.v1.JourneyService/WriteEvents"
OBSERVE_EVENTS = "/wayline.orchestrator.v1.OrchestratorService/ObserveEvents"
POLICY = DeliveryPolicy(initial_delay=0.05, max_delay=0.2, failures_to_open=2)
DURABLE = JetStreamRelay.durable_name("journeys")


class Recording:
    """A real sink, observed: the event ids it took, in order (to prove none went twice)."""

    def __init__(self, sink: EventsSink, pause: float = 0.0) -> None:
        self.name = sink.name
        self.taken: list[str] = []
        self._sink = sink
        self._pause = pause
        self._lock = threading.Lock()

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        time.sleep(self._pause)
        self._sink.deliver(tenant, events)
        with self._lock:
            self.taken.extend(event_pb2.Event.FromString(e).event_id for e in events)

    def close(self) -> None:
        self._sink.close()


def journeys_sink(address: str, pause: float = 0.0) -> Recording:
    channel = internal_channel(
        address,
        internal_token=INTERNAL_TOKEN,
        services=[journeys_pb.DESCRIPTOR.services_by_name["JourneyService"]],
    )
    return Recording(EventsSink("journeys", channel, WRITE_EVENTS, timeout=2.0), pause)


def timeline_ids(address: str, tenant: str, user_id: str) -> list[str]:
    metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))
    request = journeys_pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="user_id", value=user_id), page_size=1000
    )
    with grpc.insecure_channel(address) as channel:
        try:
            response = journeys_grpc.JourneyServiceStub(channel).GetTimeline(
                request, metadata=metadata, timeout=10
            )
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return []
            raise
    return [e.event_id for e in response.events]


def consumer(url: str, stream: StreamSpec) -> ConsumerInfo:
    info = consumer_info(url, stream.name, DURABLE)
    assert info is not None, "the relay created no durable consumer"
    return info


def ack_pending(url: str, stream: StreamSpec) -> int:
    info = consumer_info(url, stream.name, DURABLE)
    return (info.num_ack_pending or 0) if info is not None else 0


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def publish(url: str, stream: StreamSpec, tenant: str, user_id: str, count: int) -> list[str]:
    events = [make_event(user_id, minutes_ago=count - i) for i in range(count)]
    publisher = JetStreamPublisher(url, stream)
    try:
        for start in range(0, count, 50):
            publisher.deliver(tenant, [e.SerializeToString() for e in events[start : start + 50]])
    finally:
        publisher.close()
    return [e.event_id for e in events]


def relay(
    url: str, stream: StreamSpec, sink: Recording, batch: int = 20, max_write_bytes: int = 2**20
) -> JetStreamRelay:
    limits = RelayLimits(
        batch=batch, max_ack_pending=batch * 2, fetch_timeout_seconds=0.5, max_write_bytes=max_write_bytes
    )
    return JetStreamRelay(url, [sink], policy=POLICY, dead_letters=None, stream=stream, limits=limits)


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:10]}"


def test_relay_delivers_every_event_once_to_journeys(
    nats_url: str,  # noqa: F811
    journeys_server: Server,
    tenant: str,
) -> None:
    stream = unique_stream()
    sink = journeys_sink(journeys_server.address)
    publisher, running = jetstream_mode(nats_url, stream, [sink], POLICY, None)
    events = [make_event("someone", minutes_ago=60 - i) for i in range(60)]
    running.start()
    try:
        publisher.deliver(tenant, [e.SerializeToString() for e in events])
        wait_until(lambda: len(sink.taken) >= 60)
        wait_until(lambda: ack_pending(nats_url, stream) == 0)
    finally:
        running.stop()
        publisher.close()
    expected = [e.event_id for e in events]
    assert sink.taken == expected  # once each, in the stream's order
    assert timeline_ids(journeys_server.address, tenant, "someone") == expected
    info = consumer(nats_url, stream)
    assert info.num_pending == 0
    assert info.ack_floor is not None
    assert info.ack_floor.stream_seq == 60


def test_relay_stopped_midway_is_resumed_by_the_next_without_duplicates(
    nats_url: str,  # noqa: F811
    journeys_server: Server,
    tenant: str,
    user_id: str,
) -> None:
    stream = unique_stream()
    expected = publish(nats_url, stream, tenant, user_id, 200)
    first_sink = journeys_sink(journeys_server.address, pause=0.05)
    first = relay(nats_url, stream, first_sink, batch=10, max_write_bytes=1)  # one call per event
    first.start()
    wait_until(lambda: len(first_sink.taken) >= 35)  # in the middle of a fetched batch
    started = time.monotonic()
    first.stop(timeout=5.0)
    assert time.monotonic() - started < 5.0
    assert 35 <= len(first_sink.taken) < 200  # really stopped mid-way
    second_sink = journeys_sink(journeys_server.address)
    second = relay(nats_url, stream, second_sink)
    second.start()
    try:
        # Well within ack_wait (60 s): what the first held undelivered was handed back (nak) at its stop.
        wait_until(lambda: len(first_sink.taken) + len(second_sink.taken) >= 200, timeout=20.0)
        wait_until(lambda: ack_pending(nats_url, stream) == 0)
    finally:
        second.stop()
    taken = first_sink.taken + second_sink.taken
    assert sorted(taken) == sorted(expected)  # every event, none twice
    assert sorted(timeline_ids(journeys_server.address, tenant, user_id)) == sorted(expected)


def test_relay_holds_events_while_the_downstream_is_down_and_catches_up(
    nats_url: str,  # noqa: F811
    journeys_server: Server,
    tenant: str,
    user_id: str,
) -> None:
    stream = unique_stream()
    expected = publish(nats_url, stream, tenant, user_id, 30)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        nothing_listening = f"127.0.0.1:{probe.getsockname()[1]}"
    down = journeys_sink(nothing_listening)
    failing = relay(nats_url, stream, down)
    failing.start()
    try:
        wait_until(lambda: ack_pending(nats_url, stream) > 0)
        time.sleep(1.0)  # several retries
        info = consumer(nats_url, stream)
        assert info.ack_floor is not None
        assert info.ack_floor.stream_seq == 0  # nothing acked
        assert (info.num_ack_pending or 0) + (info.num_pending or 0) == 30
        assert failing.breaker_states()["journeys"] != "closed"  # retrying behind the breaker
    finally:
        failing.stop(timeout=5.0)
    assert down.taken == []

    up = journeys_sink(journeys_server.address)
    recovered = relay(nats_url, stream, up)
    recovered.start()
    try:
        wait_until(lambda: len(up.taken) >= 30)
    finally:
        recovered.stop()
    assert up.taken == expected
    assert timeline_ids(journeys_server.address, tenant, user_id) == expected


def test_the_relay_leaves_out_the_events_that_turn_its_sink_off(
    nats_url: str,  # noqa: F811
    tenant: str,
    tmp_path: Path,
) -> None:
    """Segment's `integrations` in JetStream mode (ADR 109): the orchestrator's relay hands the real
    orchestrator only the events that did not turn it off, in order, and acks the others all the same."""
    ledger = start_orchestrator(tmp_path / "orchestrator")
    channel = internal_channel(
        ledger.address,
        internal_token=INTERNAL_TOKEN,
        services=[orchestrator_pb.DESCRIPTOR.services_by_name["OrchestratorService"]],
    )
    sink = Recording(EventsSink("orchestrator", channel, OBSERVE_EVENTS, timeout=2.0))
    stream = unique_stream()
    events = []
    for i in range(30):
        event = make_event("someone", minutes_ago=30 - i)
        event.person_id = "person-1"  # as ingest's identity resolution leaves it
        if i % 3 == 0 or i >= 25:  # the last five: a whole fetched run for nobody here
            event.integrations.update({"orchestrator": False})
        elif i % 3 == 1:
            event.integrations.update({"All": False, "orchestrator": True})
        events.append(event)
    expected = [e.event_id for i, e in enumerate(events) if i % 3 != 0 and i < 25]
    running = relay(nats_url, stream, sink, batch=5)
    publisher = JetStreamPublisher(nats_url, stream)
    durable = JetStreamRelay.durable_name("orchestrator")
    running.start()
    try:
        publisher.deliver(tenant, [e.SerializeToString() for e in events])

        def all_acked() -> bool:
            info = consumer_info(nats_url, stream.name, durable)
            return info is not None and info.ack_floor is not None and info.ack_floor.stream_seq == 30

        wait_until(all_acked)
    finally:
        running.stop()
        publisher.close()
        sink.close()
        ledger.stop(0)
    assert sink.taken == expected
