"""What the flow runtime's tests share: a fake clock, publishing a definition, events at the clock's time,
and the runtime's state read straight from the orchestrator's database."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from tests.orchestrator.flow_calls import create, flow
from tests.orchestrator.helpers import Auth, Stub
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.flows.runtime import Entry, Message, RuntimeStore, StepRun

__all__ = [
    "FakeClock",
    "Fields",
    "State",
    "eventually",
    "filtered",
    "money",
    "publish",
    "send",
    "track",
    "with_fields",
]

SECOND = 1_000_000


class FakeClock:
    """Microseconds since the epoch, moved by the test."""

    def __init__(self, start: str = "2026-03-02T10:00") -> None:
        moment = datetime.fromisoformat(start).replace(tzinfo=UTC)
        self._now = int(moment.timestamp()) * SECOND
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += round(seconds * SECOND)


def publish(stub: Stub, auth: Auth, flow_id: str, definition: dict[str, Any]) -> int:
    """Create the flow (or replace its draft) and publish it; the new version's number."""
    found = stub.ListFlows(pb.ListFlowsRequest(page_size=100), metadata=auth, timeout=10).flows
    if any(f.name == f"flows/{flow_id}" for f in found):
        message = flow(definition)
        message.name = f"flows/{flow_id}"
        stub.UpdateFlow(pb.UpdateFlowRequest(flow=message), metadata=auth, timeout=10)
    else:
        create(stub, auth, flow_id, flow(definition))
    request = pb.PublishFlowRequest(name=f"flows/{flow_id}")
    return stub.PublishFlow(request, metadata=auth, timeout=10).flow.published_version


def track(person: str, name: str, at_us: int, event_id: str = "", **properties: Any) -> event_pb2.Event:
    """A web track event of the person at a time, with properties."""
    when = Timestamp()
    when.FromMicroseconds(at_us)
    message = event_pb2.Event(
        event_id=event_id or str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name=name,
        channel=event_pb2.CHANNEL_WEB,
        timestamp=when,
        person_id=person,
    )
    json_format.ParseDict(properties, message.properties)
    return message


Fields = dict[str, Any]  # an event's fields: revenue (a decimal string), sentiment_score, text, group_id


def money(amount: str) -> event_pb2.Money:
    """An amount in EUR, written as a decimal string (`-20.25`)."""
    value = Decimal(amount)
    units = int(value)
    return event_pb2.Money(currency_code="EUR", units=units, nanos=int((value - units) * 1_000_000_000))


def with_fields(message: event_pb2.Event, fields: Fields) -> event_pb2.Event:
    """`message` carrying the event fields given (a field not given stays unset)."""
    if "revenue" in fields:
        message.revenue.CopyFrom(money(fields["revenue"]))
    if "sentiment_score" in fields:
        message.sentiment_score = fields["sentiment_score"]
    message.text = fields.get("text", "")
    message.group_id = fields.get("group_id", "")
    return message


def filtered(path: str, operator: str, *values: Any) -> dict[str, Any]:
    """A PropertyFilter's JSON form: `filtered("revenue", "GREATER_THAN", 100)`."""
    return {"property": path, "operator": f"FILTER_OPERATOR_{operator}", "values": list(values)}


def send(stub: Stub, auth: Auth, *events: event_pb2.Event) -> None:
    stub.ObserveEvents(pb.ObserveEventsRequest(events=list(events)), metadata=auth, timeout=30)


def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


class State:
    """The runtime's tables of one tenant, read from the database the server writes."""

    def __init__(self, store: RuntimeStore, auth: Auth) -> None:
        self._store = store
        self.tenant = dict(auth)["x-wayline-tenant"]

    def entries(self, flow_id: str) -> list[Entry]:
        return self._store.entries(self.tenant, flow_id)

    def messages(self) -> list[Message]:
        return self._store.messages(self.tenant)

    def runs(self, flow_id: str) -> list[StepRun]:
        return self._store.runs(self.tenant, flow_id)

    def statuses(self, flow_id: str) -> list[tuple[str, str, str]]:
        """(person, status, reason) of each entry, by person and entry number."""
        return [(e.person_id, e.status.value, e.reason) for e in self.entries(flow_id)]
