"""Back-pressure: when the server cannot take events, the sender pauses, the bounded queue fills, and
`track` blocks (then raises QueueFull) or drops, per `on_full`; nothing is lost without on_error hearing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.client import local_client, wait_until
from tests.conftest import API_KEY, TENANT, common_settings, gateway_settings, start_server
from wayline.client import Backoff, Client, ClientClosed, DeliveryError, QueueFull
from wayline.common.server import Server
from wayline_gateway.service import gateway_service
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

PATIENT: dict[str, Any] = {"backoff": Backoff(initial=0.05, maximum=0.2), "max_retries": 1000}


@pytest.fixture(scope="module")
def stalled_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway whose ingest cannot be reached: every TrackBatch is UNAVAILABLE."""
    settings = gateway_settings(
        tmp_path_factory.mktemp("stalled"), {"ingest": "127.0.0.1:1"}, API_KEY, TENANT
    )
    server = start_server(gateway_service(settings), settings)
    yield server
    server.stop(0)


@pytest.fixture
def spool_full_gateway(tmp_path: Path) -> Iterator[Server]:
    """A gateway before an ingest whose spool holds 4 KB and whose journeys sink is unreachable, so the
    spool fills after a few events and ingest answers RESOURCE_EXHAUSTED (SPOOL_FULL, with RetryInfo)."""
    ingest_settings = IngestSettings(
        **common_settings(tmp_path),  # type: ignore[arg-type]
        spool_max_bytes=4096,
        journeys_address="127.0.0.1:1",
        identity_address="",
    )
    ingest = start_server(ingest_service(ingest_settings), ingest_settings)
    settings = gateway_settings(tmp_path, {"ingest": ingest.address}, API_KEY, TENANT)
    gateway = start_server(gateway_service(settings), settings)
    yield gateway
    gateway.stop(0)
    ingest.stop(0)


def track_until_full(client: Client, user_id: str, tracked: list[str]) -> None:
    for n in range(5000):
        tracked.append(client.track("Item Viewed", identifiers={"user_id": user_id}, properties={"n": n}))


def test_a_full_queue_blocks_track_for_block_timeout_then_raises_queue_full(
    stalled_gateway: Server, user_id: str
) -> None:
    failures: list[DeliveryError] = []
    client = local_client(
        stalled_gateway.address, max_queue_events=5, block_timeout=0.3, on_error=failures.append, **PATIENT
    )
    queued = [client.track("Item Viewed", identifiers={"user_id": user_id}) for _ in range(5)]
    began = time.monotonic()
    with pytest.raises(QueueFull):
        client.track("Item Viewed", identifiers={"user_id": user_id})
    assert time.monotonic() - began >= 0.3
    stats = client.stats()
    assert (stats.queued, stats.enqueued, stats.dropped, stats.failed) == (5, 5, 1, 0)
    assert failures == []  # still retrying: nothing given up while the server may yet accept

    assert not client.close(0.2)
    assert sorted(i for f in failures for i in f.event_ids) == sorted(queued)
    assert {f.reason for f in failures} == {"CLIENT_CLOSED"}
    assert client.stats().failed == 5


def test_drop_mode_drops_at_once_and_reports_each_dropped_event(
    stalled_gateway: Server, user_id: str
) -> None:
    failures: list[DeliveryError] = []
    with local_client(
        stalled_gateway.address, max_queue_events=3, on_full="drop", on_error=failures.append, **PATIENT
    ) as client:
        began = time.monotonic()
        ids = [client.track("Item Viewed", identifiers={"user_id": user_id}) for _ in range(5)]
        assert time.monotonic() - began < 0.25
        dropped = [f for f in failures if f.reason == "QUEUE_FULL"]
        assert [i for f in dropped for i in f.event_ids] == ids[3:]
        assert {f.code for f in dropped} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert (client.stats().dropped, client.stats().queued) == (2, 3)
        client.close(0.1)


def test_a_full_spool_pauses_the_sender_and_fills_the_queue(spool_full_gateway: Server, user_id: str) -> None:
    failures: list[DeliveryError] = []
    tracked: list[str] = []
    with local_client(
        spool_full_gateway.address,
        max_queue_events=20,
        max_batch_events=5,
        flush_interval=0.01,
        block_timeout=1.0,
        on_error=failures.append,
        backoff=Backoff(initial=0.05, maximum=0.2),
        max_retries=0,  # back-pressure is waited out, not counted as a failure
    ) as client:
        with pytest.raises(QueueFull):
            track_until_full(client, user_id, tracked)
        stats = client.stats()
        assert stats.pushed_back >= 1
        assert stats.queued == 20  # bounded: the rest of the process's events wait in the caller
        assert stats.accepted + stats.queued == len(tracked)
        assert failures == []
        assert not client.close(0.2)
    closed = [i for f in failures if f.reason == "CLIENT_CLOSED" for i in f.event_ids]
    assert len(closed) == 20


def test_close_from_on_error_returns_and_the_client_stays_closed(
    stalled_gateway: Server, user_id: str
) -> None:
    answers: list[bool] = []

    def close_on_error(error: DeliveryError) -> None:
        answers.append(client.close())

    client = local_client(stalled_gateway.address, max_retries=0, on_error=close_on_error)
    client.track("Item Viewed", identifiers={"user_id": user_id})
    assert wait_until(lambda: answers == [False])
    assert client.close(5)
    with pytest.raises(ClientClosed):
        client.track("Item Viewed", identifiers={"user_id": user_id})
