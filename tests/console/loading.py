"""The journeys the console's tests look at: two fresh tenants made through AdminService with the operator's
key, their API keys, and their data sent through the gateway as any client would send it.

Tenant A gets a small seeded population from the ML generator (about 150 persons and 3,000 events over four
weeks, every channel, funnels that convert and drop off) and a few hand-made persons whose identifiers the
tests know: Ann, whose cookie, email and phone events stitch into one profile; Max, whose email profile and
phone profile a later event merges (a merge to unmerge); and a person with the email that tenant B also uses.
Tenant B gets a distinct small set whose event names all begin with `Beta `, so that any of them in an answer
to A's key is a leak. Loading ends when journeys holds every event and identity has stitched and merged, never
after a blind sleep."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf import struct_pb2

from tests.console.calls import IDENTITY, JOURNEYS, Rpc
from wayline.api.v1 import annotations_pb2
from wayline.client import Client, money
from wayline.common.json_messages import message_to_json
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import profile_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_ml.generator import GeneratorConfig, Population, generate
from wayline_ml.generator.protos import send

__all__ = ["B_EVENT_PREFIX", "ConsoleData", "KnownPerson", "Tenant", "load_console_data", "make_tenant"]

# Every event name of tenant B begins with this, and no event name of tenant A does.
B_EVENT_PREFIX = "Beta "

# The generated population of tenant A: small enough to load in seconds, large enough for every chart.
_PEOPLE = 150
_DAYS = 28
_SEED = 14

_READ, _WRITE, _ADMIN = annotations_pb2.SCOPE_READ, annotations_pb2.SCOPE_WRITE, annotations_pb2.SCOPE_ADMIN
_WEB, _APP, _EMAIL = event_pb2.CHANNEL_WEB, event_pb2.CHANNEL_MOBILE_APP, event_pb2.CHANNEL_EMAIL
_SMS, _CHAT = event_pb2.CHANNEL_SMS, event_pb2.CHANNEL_CHATBOT

_LOAD_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class KnownPerson:
    """A hand-made person of a tenant: their person id once identity resolved them, their identifiers by
    type, and the names of their events (oldest first)."""

    person_id: str
    identifiers: dict[str, str]
    event_names: tuple[str, ...]

    @property
    def email(self) -> str:
        return self.identifiers["email"]

    @property
    def identifier(self) -> str:
        """The console's spelling of the person's email identifier: `#/customer?identifier=email:<value>`."""
        return f"email:{self.email}"


@dataclass(frozen=True)
class ConsoleData:
    """What the suite holds for the console's tests (one loading per session; treat it as read-only, except
    `max`, whose phone the unmerge test moves out, so no other test relies on Max's profile)."""

    tenant_a: str
    tenant_b: str
    read_key_a: str
    """SCOPE_READ only: what the console is signed in with unless a test says otherwise."""
    admin_key_a: str
    """SCOPE_READ and SCOPE_ADMIN: unmerges, flows and models."""
    write_key_a: str
    """SCOPE_WRITE only: sends events."""
    read_key_b: str
    write_key_b: str
    start: datetime
    """The start of the data's time range (inclusive, midnight UTC): every event of both tenants is in
    [start, end)."""
    end: datetime
    """The end of the data's time range (exclusive, midnight UTC, after the load)."""
    population: Population
    """Tenant A's generated population (its events and persons: `population.events`, `population.people`)."""
    events_a: int
    """How many events journeys holds for A."""
    events_b: int
    """How many events journeys holds for B."""
    ann: KnownPerson
    """A's person stitched across channels: a web cookie (anonymous_id), an email, a phone; no merge."""
    max: KnownPerson
    """A's person made of two profiles (email; phone) that an event carrying both merged: one merge in the
    history, the phone to unmerge. Only the unmerge test may rely on (and change) this profile."""
    shared_a: KnownPerson
    """A's person with the email `shared_b` also has in tenant B."""
    b_only: KnownPerson
    """B's person with an email A never saw."""
    shared_b: KnownPerson
    """B's person with the same email as `shared_a`, and events of its own (named `Beta ...`)."""
    b_event_names: frozenset[str]
    """Every event name of tenant B (each begins with B_EVENT_PREFIX)."""

    def time_range(self) -> dict[str, str]:
        """The data's time range as the proto3 JSON of a `wayline.event.v1.TimeRange`."""
        return {"start": _rfc3339(self.start), "end": _rfc3339(self.end)}


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class _Planned:
    """A hand-made person's events before identity gave them a person id."""

    identifiers: dict[str, str]
    events: list[event_pb2.Event]


def _event(
    name: str,
    channel: event_pb2.Channel.ValueType,
    at: datetime,
    identifiers: dict[str, str],
    *,
    kind: event_pb2.EventType.ValueType = event_pb2.EVENT_TYPE_TRACK,
    revenue: str = "",
    **properties: Any,
) -> event_pb2.Event:
    event = event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=kind,
        name=name,
        channel=channel,
        timestamp=to_timestamp(at),
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers.items()],
    )
    if properties:
        event.properties.CopyFrom(struct_pb2.Struct())
        event.properties.update(properties)
    if revenue:
        event.revenue.CopyFrom(money(revenue, "EUR"))
    return event


def _ann(day: datetime) -> _Planned:
    cookie = {"anonymous_id": "ann-cookie-7f3a"}
    email = {"email": "ann@example.com"}
    phone = {"phone": "+447700900123"}
    return _Planned(
        cookie | email | phone,
        [
            _event("Home", _WEB, day, cookie, kind=event_pb2.EVENT_TYPE_PAGE),
            _event("Product Viewed", _WEB, day + timedelta(minutes=2), cookie, sku="SKU-0042"),
            _event("Signed Up", _WEB, day + timedelta(minutes=5), cookie | email),
            _event("Email Opened", _EMAIL, day + timedelta(days=1), email),
            _event("Product Added", _APP, day + timedelta(days=1, minutes=10), email | phone, sku="SKU-0042"),
            _event("Order Completed", _WEB, day + timedelta(days=2), phone, revenue="42.50"),
            _event("Chat Message", _CHAT, day + timedelta(days=3), phone),
        ],
    )


def _max(day: datetime) -> _Planned:
    email = {"email": "max@example.com"}
    phone = {"phone": "+447700900456"}
    return _Planned(
        email | phone,
        [
            _event("Home", _WEB, day, email, kind=event_pb2.EVENT_TYPE_PAGE),
            _event("Product Viewed", _WEB, day + timedelta(minutes=1), email, sku="SKU-0007"),
            _event("SMS Clicked", _SMS, day + timedelta(hours=5), phone),
            _event("Product Viewed", _APP, day + timedelta(hours=6), phone, sku="SKU-0007"),
            # Carries both identifiers: identity merges the phone's profile into the email's.
            _event("Order Completed", _APP, day + timedelta(days=1), email | phone, revenue="19.90"),
        ],
    )


def _shared(day: datetime, names: Sequence[str]) -> _Planned:
    email = {"email": "shared@example.com"}
    return _Planned(
        email, [_event(name, _WEB, day + timedelta(hours=index), email) for index, name in enumerate(names)]
    )


def _tenant_b(day: datetime) -> tuple[_Planned, _Planned, list[event_pb2.Event]]:
    """B's known persons (b-only, shared) and a few anonymous visitors, every event named `Beta ...`."""
    b_only = _Planned(
        {"email": "b-only@example.com"},
        [
            _event(f"{B_EVENT_PREFIX}Landing", _WEB, day, {"email": "b-only@example.com"}),
            _event(
                f"{B_EVENT_PREFIX}Signup", _WEB, day + timedelta(minutes=3), {"email": "b-only@example.com"}
            ),
            _event(
                f"{B_EVENT_PREFIX}Purchase",
                _EMAIL,
                day + timedelta(days=1),
                {"email": "b-only@example.com"},
                revenue="990.00",
            ),
        ],
    )
    shared = _shared(day, [f"{B_EVENT_PREFIX}Secret Viewed"] * 3)
    visitors = [
        _event(
            f"{B_EVENT_PREFIX}{name}",
            _WEB,
            day + timedelta(hours=visitor, minutes=step),
            {"anonymous_id": f"b-visitor-{visitor}"},
        )
        for visitor in range(8)
        for step, name in enumerate(["Landing", "Signup", "Landing"])
    ]
    return b_only, shared, visitors


@dataclass(frozen=True)
class Tenant:
    """A tenant made for the console's tests, with its keys by name (`read`, `write`, `admin`)."""

    tenant_id: str
    keys: dict[str, str]


def make_tenant(channel: grpc.Channel, operator_key: str, label: str) -> Tenant:
    """A new tenant and its keys (`read`, `write`, `admin` = read+admin), made by the operator (also for a
    test whose data must not change A's or B's: a flow's events, a model)."""
    admin = admin_grpc.AdminServiceStub(channel)
    operator = (("authorization", f"Bearer {operator_key}"),)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"console-{label}-{uuid.uuid4().hex[:6]}"),
        metadata=operator,
        timeout=10,
    ).tenant

    def key(*scopes: annotations_pb2.Scope.ValueType) -> str:
        made = admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=list(scopes))),
            metadata=operator,
            timeout=10,
        )
        return made.secret

    return Tenant(
        tenant.name.removeprefix("tenants/"),
        {"read": key(_READ), "write": key(_WRITE), "admin": key(_READ, _ADMIN)},
    )


def _eventually(what: str, check: Callable[[], bool], deadline: float) -> None:
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"loading the console's data: {what} did not happen in time")
        time.sleep(0.2)


def _stored_events(rpc: Rpc, time_range: dict[str, str]) -> int:
    stored = 0
    for chunk in rpc.stream(JOURNEYS, "ExportEvents", {"timeRange": time_range}):
        assert isinstance(chunk, journeys_pb.ExportEventsResponse)
        stored += len(chunk.events)
    return stored


def _holds(rpc: Rpc, time_range: dict[str, str], count: int) -> Callable[[], bool]:
    """Whether journeys holds `count` events of the key's tenant in `time_range`, when called."""
    return lambda: _stored_events(rpc, time_range) == count


def _profile(rpc: Rpc, email: str) -> profile_pb2.Profile | None:
    request = {"person": {"identifier": {"type": "email", "value": email}}}
    try:
        response = rpc.call(IDENTITY, "GetProfile", request)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    assert isinstance(response, identity_pb.GetProfileResponse)
    return response.profile


def _timeline_names(rpc: Rpc, email: str) -> tuple[str, ...]:
    request = {"identifier": {"type": "email", "value": email}, "pageSize": 1000}
    try:
        response = rpc.call(JOURNEYS, "GetTimeline", request)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return ()
        raise
    assert isinstance(response, journeys_pb.GetTimelineResponse)
    return tuple(sorted(event.name for event in response.events))


def _known(rpc: Rpc, planned: _Planned) -> KnownPerson:
    profile = _profile(rpc, planned.identifiers["email"])
    assert profile is not None
    return KnownPerson(profile.person_id, planned.identifiers, tuple(event.name for event in planned.events))


def _send(gateway_address: str, write_key: str, events: Sequence[event_pb2.Event]) -> None:
    with Client(gateway_address, write_key, secure=False) as client:
        rejected = client.send(events, backfill=True).rejections
    assert not rejected, rejected


def _wait_until_stored(
    rpc_a: Rpc,
    rpc_b: Rpc,
    time_range: dict[str, str],
    counts: tuple[int, int],
    ann: _Planned,
    max_: _Planned,
) -> None:
    """Poll until journeys holds every event of A and of B (`counts`), identity has merged Max's two
    profiles, and journeys has moved the merged profile's events and stitched Ann's identifiers."""
    deadline = time.monotonic() + _LOAD_TIMEOUT_SECONDS
    ann_names = tuple(sorted(event.name for event in ann.events))
    _eventually(
        "the last of A's events reaching journeys",
        lambda: _timeline_names(rpc_a, ann.identifiers["email"]) == ann_names,
        deadline,
    )
    for rpc, count, tenant in ((rpc_a, counts[0], "A"), (rpc_b, counts[1], "B")):
        _eventually(f"every event of {tenant} reaching journeys", _holds(rpc, time_range, count), deadline)

    def max_merged() -> bool:
        profile = _profile(rpc_a, max_.identifiers["email"])
        return profile is not None and len(profile.merge_history) == 1

    _eventually("identity merging Max's phone profile into his email profile", max_merged, deadline)
    # Journeys applies identity's overrides on its own: Max's timeline holds the phone's events too.
    max_names = tuple(sorted(event.name for event in max_.events))
    _eventually(
        "journeys moving Max's phone events to his profile",
        lambda: _timeline_names(rpc_a, max_.identifiers["email"]) == max_names,
        deadline,
    )
    ann_profile = _profile(rpc_a, ann.identifiers["email"])
    assert ann_profile is not None
    held = {(i.identifier.type, i.identifier.value) for i in ann_profile.identifiers}
    assert held >= set(ann.identifiers.items()), message_to_json(ann_profile)


def load_console_data(channel: grpc.Channel, gateway_address: str, operator_key: str) -> ConsoleData:
    """Make tenants A and B with their keys, send their journeys through the gateway at `gateway_address`
    (`channel` dials it), and wait until the suite holds all of it."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=_DAYS + 2), today + timedelta(days=1)
    a, b = make_tenant(channel, operator_key, "a"), make_tenant(channel, operator_key, "b")

    population = generate(
        GeneratorConfig(people=_PEOPLE, days=_DAYS, seed=_SEED, start=start, namespace="console")
    )
    ann, max_, shared_a = (
        _ann(today - timedelta(days=9)),
        _max(today - timedelta(days=6)),
        _shared(today - timedelta(days=5), ["Product Viewed", "Product Viewed"]),
    )
    b_only, shared_b, visitors = _tenant_b(today - timedelta(days=7))

    with Client(gateway_address, a.keys["write"], secure=False) as client:
        assert send(population, client, batch_size=1000) == 0
    # Max's email and phone events go first, in a batch of their own, so that two profiles exist when the
    # event carrying both arrives: a merge, not one profile growing.
    _send(gateway_address, a.keys["write"], max_.events[:-1])
    _send(gateway_address, a.keys["write"], ann.events + shared_a.events + max_.events[-1:])
    _send(gateway_address, b.keys["write"], b_only.events + shared_b.events + visitors)

    rpc_a, rpc_b = Rpc(channel, a.keys["read"]), Rpc(channel, b.keys["read"])
    events_a = len(population.events) + len(ann.events) + len(max_.events) + len(shared_a.events)
    events_b = len(b_only.events) + len(shared_b.events) + len(visitors)
    time_range = {"start": _rfc3339(start), "end": _rfc3339(end)}
    _wait_until_stored(rpc_a, rpc_b, time_range, (events_a, events_b), ann, max_)

    return ConsoleData(
        tenant_a=a.tenant_id,
        tenant_b=b.tenant_id,
        read_key_a=a.keys["read"],
        admin_key_a=a.keys["admin"],
        write_key_a=a.keys["write"],
        read_key_b=b.keys["read"],
        write_key_b=b.keys["write"],
        start=start,
        end=end,
        population=population,
        events_a=events_a,
        events_b=events_b,
        ann=_known(rpc_a, ann),
        max=_known(rpc_a, max_),
        shared_a=_known(rpc_a, shared_a),
        b_only=_known(rpc_b, b_only),
        shared_b=_known(rpc_b, shared_b),
        b_event_names=frozenset(event.name for event in b_only.events + shared_b.events + visitors),
    )
