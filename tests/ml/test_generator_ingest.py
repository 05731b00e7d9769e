"""A generated population sent through the real gateway with the Python client reaches the journey store,
each person's timeline holding their events from every device identity joined."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import pytest

from tests.conftest import API_KEY
from wayline.client import Client
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_ml.generator import GeneratorConfig, Kind, Population, generate, uuid_strings
from wayline_ml.generator.identifiers import user_id
from wayline_ml.generator.protos import send

Auth = tuple[tuple[str, str], ...]
pytestmark = pytest.mark.slow


def _eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def _expected(population: Population) -> dict[int, set[str]]:
    """Per person who logged in: every event identity can tie to them — those carrying their user id, those
    of every device an identify joined to them (before and after it), and those carrying only their email."""
    e = population.events
    ids = uuid_strings(e.event_id)
    joined_devices = set(e.device[(e.kind == Kind.IDENTIFY) & (e.device >= 0)].tolist())
    on_joined_device = np.isin(e.device, list(joined_devices))
    email_only = (e.device < 0) & (e.email_variant >= 0)
    tied = e.identified | on_joined_device | email_only
    return {p: set(ids[tied & (e.person == p)].tolist()) for p in set(e.person[e.identified].tolist())}


def test_generated_events_reach_the_journey_store(
    gateway_server: Server, gateway_channel: grpc.Channel, auth: Auth
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    config = GeneratorConfig(
        people=25, days=10, seed=5, start=now - timedelta(days=12), namespace=f"t{uuid.uuid4().hex[:8]}"
    )
    population = generate(config)
    assert 100 < len(population.events) < 400
    with Client(gateway_server.address, API_KEY, secure=False) as client:
        assert send(population, client, batch_size=100) == 0
    journeys = journeys_grpc.JourneyServiceStub(gateway_channel)

    def timeline(person: int) -> set[str]:
        identifier = event_pb2.Identifier(type="user_id", value=user_id(config.prefix, person))
        request = journeys_pb.GetTimelineRequest(identifier=identifier, page_size=1000)
        try:
            return {e.event_id for e in journeys.GetTimeline(request, metadata=auth, timeout=10).events}
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return set()
            raise

    expected = _expected(population)
    assert len(expected) >= 5
    assert (population.events.kind == Kind.IDENTIFY).sum() >= 5  # identity has devices to join
    for person, ids in expected.items():
        _eventually(lambda p=person, i=ids: i <= timeline(p), f"person {person}'s timeline is complete")  # type: ignore[misc]
    # Sent as a backfill (generated history), every stored event says so: it counts from its timestamp.
    person = next(iter(expected))
    request = journeys_pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="user_id", value=user_id(config.prefix, person)), page_size=1000
    )
    stored = journeys.GetTimeline(request, metadata=auth, timeout=10).events
    assert stored
    assert all(e.backfill for e in stored)
