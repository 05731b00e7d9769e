"""The online feature service's test rig: a real decision server (its own data dir, the suite's journeys and
identity), events fed through ObserveEvents over its socket and written to journeys alike, and the values
journeys' GetProfileFeatures gives at the same time to compare the online reads with."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from wayline.common.feature_encoding import python_value
from wayline.common.server import Server
from wayline.common.timestamps import from_micros, to_micros, to_timestamp
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import feature_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_decision.features.model import FeatureValue
from wayline_decision.features.reader import FeatureOrigin, FeatureRead
from wayline_decision.features.runtime import FeatureRuntime
from wayline_decision.features.spec_compiler import compile_spec
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings

SETTLE_AFTER_S = 1.0
"""Short, so that persons can be verified a second after a spec registers (the production default is 1 h)."""


def spec() -> feature_pb2.FeatureSpec:
    """Every kind of slot: counts (all-time and windowed), numbers, values, days, a trait."""
    found = feature_pb2.FeatureSpec(name="online", version="1")
    add = found.features.add
    add(name="events", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
    week = add(name="views_7d", aggregation=feature_pb2.FEATURE_AGGREGATION_COUNT)
    week.events.event_name = "Product Viewed"
    week.window.FromTimedelta(timedelta(days=7))
    add(name="spend", aggregation=feature_pb2.FEATURE_AGGREGATION_SUM, property="properties.price")
    add(
        name="last_plan",
        aggregation=feature_pb2.FEATURE_AGGREGATION_LAST_VALUE,
        property="properties.plan",
        value_type=feature_pb2.FEATURE_VALUE_TYPE_CATEGORY,
        categories=["basic", "pro", "trial", "plan0", "plan1", "plan2"],
    )
    add(name="active_days", aggregation=feature_pb2.FEATURE_AGGREGATION_ACTIVE_DAYS)
    add(name="days_since_first", aggregation=feature_pb2.FEATURE_AGGREGATION_DAYS_SINCE_FIRST)
    tier = add(
        name="tier",
        aggregation=feature_pb2.FEATURE_AGGREGATION_PERSON_PROPERTY,
        property="person.tier",
        value_type=feature_pb2.FEATURE_VALUE_TYPE_CATEGORY,
        categories=["gold", "none"],
    )
    tier.default_value.string_value = "none"
    return found


def now_us() -> int:
    return to_micros(datetime.now(UTC))


def event(
    person_id: str,
    *,
    hours_ago: float,
    received_us: int | None = None,
    name: str = "Product Viewed",
    price: float | None = None,
    plan: str | None = None,
    tier: str | None = None,
) -> event_pb2.Event:
    """An event as ingest's forwarder delivers it (identity resolved): happened `hours_ago`, received now
    (or at `received_us`)."""
    received = received_us if received_us is not None else now_us()
    found = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_IDENTIFY if tier is not None else event_pb2.EVENT_TYPE_TRACK,
        name="" if tier is not None else name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=to_timestamp(from_micros(received - int(hours_ago * 3_600_000_000))),
        received_at=to_timestamp(from_micros(received)),
        person_id=person_id,
        identifiers=[event_pb2.Identifier(type="user_id", value=person_id)],
    )
    if price is not None:
        found.properties["price"] = price
    if plan is not None:
        found.properties["plan"] = plan
    if tier is not None:
        found.properties["tier"] = tier
    return found


def metadata(tenant: str) -> tuple[tuple[str, str], ...]:
    return (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))


def observe(address: str, tenant: str, *events: event_pb2.Event) -> int:
    """ObserveEvents on the decision server at `address`; its `observed_count`."""
    with grpc.insecure_channel(address) as channel:
        response: pb.ObserveEventsResponse = pb_grpc.DecisionServiceStub(channel).ObserveEvents(
            pb.ObserveEventsRequest(events=events), metadata=metadata(tenant), timeout=10
        )
    return response.observed_count


def feed(address: str, journeys: grpc.Channel, tenant: str, *events: event_pb2.Event) -> None:
    """To journeys (WriteEvents) and to the online state (ObserveEvents), as ingest's two sinks do."""
    journeys_grpc.JourneyServiceStub(journeys).WriteEvents(
        journeys_pb.WriteEventsRequest(events=events), metadata=metadata(tenant), timeout=30
    )
    assert observe(address, tenant, *events) == len(events)


@dataclass
class Rig:
    """One decision server and its feature runtime, journeys beside it."""

    server: Server
    runtime: FeatureRuntime
    journeys_channel: grpc.Channel

    @property
    def decision(self) -> pb_grpc.DecisionServiceStub:
        return pb_grpc.DecisionServiceStub(grpc.insecure_channel(self.server.address))

    def observe(self, tenant: str, *events: event_pb2.Event) -> int:
        return observe(self.server.address, tenant, *events)

    def feed(self, tenant: str, *events: event_pb2.Event) -> None:
        feed(self.server.address, self.journeys_channel, tenant, *events)

    def profile(
        self, tenant: str, spec: feature_pb2.FeatureSpec, person: str, as_of_us: int
    ) -> list[FeatureValue]:
        """GetProfileFeatures itself, with all the time it needs."""
        request = journeys_pb.GetProfileFeaturesRequest(
            person=event_pb2.PersonRef(person_id=person), spec=spec, as_of=to_timestamp(from_micros(as_of_us))
        )
        response = journeys_grpc.JourneyServiceStub(self.journeys_channel).GetProfileFeatures(
            request, metadata=metadata(tenant), timeout=60
        )
        values = response.features.values
        return [python_value(values[f.name]) if f.name in values else None for f in spec.features]

    def read(
        self,
        tenant: str,
        message: feature_pb2.FeatureSpec,
        person: str,
        as_of_us: int,
        budget_s: float = 60.0,
    ) -> FeatureRead:
        return self.runtime.features.read_spec(
            tenant, message, compile_spec(message, "feature_spec."), person, as_of_us, budget_s=budget_s
        )

    def read_online(
        self, tenant: str, message: feature_pb2.FeatureSpec, person: str, as_of_us: int
    ) -> FeatureRead:
        """A read once the person's verification (asked by the first read) has answered."""
        first = self.read(tenant, message, person, as_of_us)
        if first.origin is FeatureOrigin.ONLINE:
            return first
        assert self.runtime.features.wait_for_verifications(60)
        return self.read(tenant, message, person, as_of_us)


def decision_settings(
    data_dir: Path, journeys: Server, identity: Server | None, **extra: Any
) -> DecisionSettings:
    values: dict[str, Any] = {
        **common_settings(data_dir),
        "journeys_address": journeys.address,
        "identity_address": identity.address if identity is not None else "",
        "override_poll_seconds": 0.2,
        "features_settle_after_seconds": SETTLE_AFTER_S,
    }
    return DecisionSettings(**(values | extra))


@contextmanager
def running(settings: DecisionSettings, journeys: Server) -> Iterator[Rig]:
    runtime = FeatureRuntime(settings)
    server = start_server(decision_service(settings, runtime), settings)
    try:
        with grpc.insecure_channel(journeys.address) as channel:
            yield Rig(server, runtime, channel)
    finally:
        server.stop(0)


def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def new_tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
