"""The client against the real gateway → ingest → journeys: what it queues is stored, batched by size,
bytes and time, flushed on demand, on close and on exit; what the server refuses reaches on_error."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import grpc

from tests.client import Auth, local_client, stored_events, wait_until
from tests.conftest import API_KEY
from wayline.client import DeliveryError, money, track_event
from wayline.common.server import Server
from wayline.common.timestamps import to_datetime
from wayline.event.v1 import event_pb2


def test_every_call_is_stored_under_the_id_it_returned(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    who = {"user_id": user_id}
    with local_client(gateway_server.address) as client:
        ids = {
            client.track(
                "Order Completed",
                identifiers=who,
                properties={"order_id": "A-1001"},
                revenue=money("59.90", "EUR"),
                text="Thanks!",
            ): event_pb2.EVENT_TYPE_TRACK,
            client.identify(identifiers={**who, "email": f"{user_id}@example.com"}, traits={"plan": "pro"}): (
                event_pb2.EVENT_TYPE_IDENTIFY
            ),
            client.page("Home", identifiers=who, url="https://shop.example/"): event_pb2.EVENT_TYPE_PAGE,
            client.screen("Checkout", identifiers=who, channel="mobile_app"): event_pb2.EVENT_TYPE_SCREEN,
            client.group("acct-7", identifiers=who, traits={"seats": 5}): event_pb2.EVENT_TYPE_GROUP,
            client.alias(identifiers=[("user_id", user_id), ("crm_id", f"c-{user_id}")]): (
                event_pb2.EVENT_TYPE_ALIAS
            ),
        }
    stored = {event.event_id: event for event in stored_events(gateway_channel, auth, user_id, 6)}
    assert {event_id: event.type for event_id, event in stored.items()} == ids
    order = next(e for e in stored.values() if e.type == event_pb2.EVENT_TYPE_TRACK)
    assert order.properties["order_id"] == "A-1001"
    assert (order.revenue.units, order.revenue.nanos, order.text) == (59, 900_000_000, "Thanks!")
    assert order.context.library.name == "wayline-python"


def test_timestamp_is_the_call_time_and_sent_at_the_send_time(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    with local_client(gateway_server.address, flush_interval=60) as client:
        called = datetime.now(UTC)
        client.track("Signed Up", identifiers={"user_id": user_id})
        time.sleep(0.5)
        assert client.flush(10)
    (event,) = stored_events(gateway_channel, auth, user_id, 1)
    assert abs(to_datetime(event.timestamp) - called) < timedelta(seconds=0.3)
    assert to_datetime(event.sent_at) - called >= timedelta(seconds=0.5)


def test_a_full_batch_is_sent_at_once_and_the_rest_waits_for_the_interval(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    with local_client(gateway_server.address, max_batch_events=10, flush_interval=60) as client:
        for n in range(25):
            client.track("Item Viewed", identifiers={"user_id": user_id}, properties={"n": n})
        assert wait_until(lambda: client.stats().accepted == 20)
        time.sleep(0.3)
        assert (client.stats().batches, client.stats().accepted, client.stats().queued) == (2, 20, 5)
        assert client.flush(10)
        assert (client.stats().batches, client.stats().accepted) == (3, 25)
    assert len(stored_events(gateway_channel, auth, user_id, 25)) == 25


def test_events_are_sent_once_the_oldest_has_waited_the_flush_interval(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    with local_client(gateway_server.address, flush_interval=0.5) as client:
        started = time.monotonic()
        for _ in range(3):
            client.track("Item Viewed", identifiers={"user_id": user_id})
        time.sleep(0.2)
        assert client.stats().attempts == 0
        assert wait_until(lambda: client.stats().accepted == 3, timeout=5)
        assert time.monotonic() - started >= 0.5
        assert client.stats().batches == 1
    assert len(stored_events(gateway_channel, auth, user_id, 3)) == 3


def test_batches_are_cut_to_the_servers_byte_limit(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    failures: list[DeliveryError] = []
    with local_client(gateway_server.address, flush_interval=60, on_error=failures.append) as client:
        for _ in range(40):  # 40 x 30 KB: 1.2 MB, far over the 500 KB a TrackBatch may carry
            client.track("Note Added", identifiers={"user_id": user_id}, text="x" * 30_000)
        assert client.flush(20)
        assert client.stats().batches >= 3
    assert failures == []
    assert len(stored_events(gateway_channel, auth, user_id, 40)) == 40


def test_close_sends_what_is_queued(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    client = local_client(gateway_server.address, flush_interval=60)
    event_id = client.track("Logged Out", identifiers={"user_id": user_id})
    assert client.close(10)
    assert [e.event_id for e in stored_events(gateway_channel, auth, user_id, 1)] == [event_id]


def test_interpreter_exit_sends_what_is_queued(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    script = (
        "import sys\n"
        "from wayline.client import Client\n"
        "client = Client(sys.argv[1], sys.argv[2], secure=False, channel='web', flush_interval=60)\n"
        "print(client.track('Job Finished', identifiers={'user_id': sys.argv[3]}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, gateway_server.address, API_KEY, user_id],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [e.event_id for e in stored_events(gateway_channel, auth, user_id, 1)] == [done.stdout.strip()]


def test_rejected_events_reach_on_error_and_the_rest_are_stored(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    failures: list[DeliveryError] = []
    with local_client(gateway_server.address, on_error=failures.append) as client:
        good = client.track("Fine", identifiers={"user_id": user_id})
        old = datetime(1990, 1, 1, tzinfo=UTC)
        bad = client.track("Too Old", identifiers={"user_id": user_id}, timestamp=old)
        assert client.flush(10)
        assert (client.stats().accepted, client.stats().rejected) == (1, 1)
    (failure,) = failures
    assert (failure.reason, failure.code, failure.event_ids) == (
        "EVENT_REJECTED",
        grpc.StatusCode.INVALID_ARGUMENT,
        [bad],
    )
    assert [v.field for v in failure.violations] == ["events[1].timestamp"]
    assert [e.event_id for e in stored_events(gateway_channel, auth, user_id, 1)] == [good]


def test_a_non_retryable_error_is_reported_once_and_not_retried(gateway_server: Server, user_id: str) -> None:
    failures: list[DeliveryError] = []
    with local_client(gateway_server.address, "wl_unknown", on_error=failures.append) as client:
        for _ in range(3):
            client.track("Fine", identifiers={"user_id": user_id})
        assert client.flush(10)
        stats = client.stats()
    assert (stats.attempts, stats.retries, stats.failed) == (1, 0, 3)
    (failure,) = failures
    assert (failure.code, failure.attempts, len(failure.events)) == (grpc.StatusCode.UNAUTHENTICATED, 1, 3)


def test_send_answers_inline_with_indices_into_the_callers_list(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    events = [track_event("Fine", identifiers={"user_id": user_id}, channel="web") for _ in range(5)]
    events[3].timestamp.FromDatetime(datetime(1990, 1, 1, tzinfo=UTC))
    with local_client(gateway_server.address, max_batch_events=2) as client:
        response = client.send(events, timeout=10)
        assert client.stats().batches == 3
    assert response.accepted_count == 4
    assert [r.index for r in response.rejections] == [3]
    assert [v.field for v in response.rejections[0].violations] == ["events[3].timestamp"]
    expected = [e.event_id for i, e in enumerate(events) if i != 3]
    assert list(response.accepted_event_ids) == expected
    assert sorted(e.event_id for e in stored_events(gateway_channel, auth, user_id, 4)) == sorted(expected)


def test_an_event_built_by_hand_is_queued_as_a_copy_with_its_own_id(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    event = event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TRACK,
        name="Imported",
        channel=event_pb2.CHANNEL_OTHER,
        identifiers=[event_pb2.Identifier(type="user_id", value=user_id)],
    )
    with local_client(gateway_server.address) as client:
        returned = client.enqueue(event)
    assert uuid.UUID(returned)
    assert (event.event_id, event.HasField("timestamp")) == ("", False)
    assert [e.event_id for e in stored_events(gateway_channel, auth, user_id, 1)] == [returned]
