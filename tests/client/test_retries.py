"""Retries over real sockets: the same events with the same ids until the server answers, each stored once,
paced by the server's RetryInfo; a server that is down makes `track` wait instead of memory grow."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.client import Auth, HoldingProxy, local_client, stored_ids_after_settling, wait_until
from tests.conftest import API_KEY, TENANT, gateway_settings, start_server
from wayline.client import Backoff, DeliveryError
from wayline.common.server import Server
from wayline_cli.suite import free_port
from wayline_gateway.service import gateway_service

FAST = Backoff(initial=0.05, maximum=0.2)


def test_track_waits_for_a_gateway_started_late_and_every_event_is_stored_once(
    ingest_server: Server,
    journeys_server: Server,
    gateway_channel: grpc.Channel,
    auth: Auth,
    user_id: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = gateway_settings(
        tmp_path, {"ingest": ingest_server.address, "journeys": journeys_server.address}, API_KEY, TENANT
    ).model_copy(update={"port": port})
    started: list[Server] = []
    failures: list[DeliveryError] = []
    client = local_client(
        f"127.0.0.1:{port}",
        max_queue_events=10,
        max_batch_events=5,
        flush_interval=0.05,
        block_timeout=30,
        backoff=FAST,
        max_retries=1000,
        on_error=failures.append,
    )
    starter = threading.Timer(1.0, lambda: started.append(start_server(gateway_service(settings), settings)))
    try:
        starter.start()
        began = time.monotonic()
        ids = [client.track("Item Viewed", identifiers={"user_id": user_id}) for _ in range(30)]
        assert time.monotonic() - began >= 1.0  # the 11th call waited for room: the queue held 10
        assert client.flush(20)
        stats = client.stats()
    finally:
        client.close(5)
        starter.join()
        for server in started:
            server.stop(0)
    assert failures == []
    assert stats.retries >= 1
    assert stats.accepted == 30
    assert stored_ids_after_settling(gateway_channel, auth, user_id, len(ids)) == sorted(ids)


def test_a_batch_stored_but_unanswered_is_resent_with_the_same_ids_and_stored_once(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    proxy = HoldingProxy(gateway_server.address)
    failures: list[DeliveryError] = []
    try:
        with local_client(
            proxy.address, timeout=1.0, backoff=FAST, max_retries=100, on_error=failures.append
        ) as client:
            ids = [client.track("Warmed Up", identifiers={"user_id": user_id})]
            assert client.flush(10)
            proxy.holding.set()  # from now on the gateway acts on requests but its answers are held
            ids += [client.track("Order Completed", identifiers={"user_id": user_id}) for _ in range(5)]
            assert wait_until(lambda: client.stats().retries >= 2, timeout=10)
            proxy.holding.clear()
            assert client.flush(10)
            stats = client.stats()
    finally:
        proxy.close()
    assert failures == []
    assert stats.accepted == 6
    assert stored_ids_after_settling(gateway_channel, auth, user_id, len(ids)) == sorted(ids)


@pytest.fixture(scope="module")
def stalled_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway whose ingest cannot be reached: every TrackBatch is UNAVAILABLE with a 1 s RetryInfo."""
    settings = gateway_settings(
        tmp_path_factory.mktemp("stalled"), {"ingest": "127.0.0.1:1"}, API_KEY, TENANT
    )
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)


def test_the_servers_retry_delay_paces_the_retries(stalled_gateway: Server, user_id: str) -> None:
    failures: list[DeliveryError] = []
    with local_client(
        stalled_gateway.address,
        backoff=Backoff(initial=0.001, maximum=0.001),
        max_retries=2,
        on_error=failures.append,
    ) as client:
        client.track("Item Viewed", identifiers={"user_id": user_id})
        began = time.monotonic()
        assert client.flush(20)
        elapsed = time.monotonic() - began
        stats = client.stats()
    (failure,) = failures
    assert (failure.code, failure.reason, failure.attempts) == (
        grpc.StatusCode.UNAVAILABLE,
        "BACKEND_UNAVAILABLE",
        3,
    )
    assert (stats.attempts, stats.retries, stats.failed) == (3, 2, 1)
    assert elapsed >= 2.0  # two waits of the gateway's 1 s, though our own backoff asked for 1 ms
