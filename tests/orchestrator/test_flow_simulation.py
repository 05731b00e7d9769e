"""SimulateFlow over real sockets, against the real journeys server (chDB) and an orchestrator on SQLite and
on PostgreSQL: the same events, fed live through ObserveEvents on a fake clock (timers fired by the timer
loop) and simulated from journeys' history, give the same statistics; a simulation changes nothing live;
`ignore_contact_policy` and `assumed_engagement_rate` do what they say; bad requests name their fields."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from tests.conftest import INTERNAL_TOKEN
from tests.orchestrator.conftest import start_orchestrator
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.running import (
    ENGINES,
    Running,
    cap_emails,
    choose_persons,
    run_per_engine,
    trial_flow,
)
from tests.orchestrator.runtime_calls import (
    SECOND,
    Fields,
    eventually,
    filtered,
    publish,
    send,
    track,
    with_fields,
)
from tests.rpc_errors import reason, violations
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.orchestrator.v1 import contact_pb2, flow_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.flows.simulation import engaged

FLOW = "trial"
HOUR, DAY = 3600 * SECOND, 86_400 * SECOND


@pytest.fixture(scope="module", params=ENGINES)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, journeys_server: Server
) -> Iterator[Running]:
    yield from run_per_engine(request, tmp_path_factory, journeys_address=journeys_server.address)


@pytest.fixture(scope="module")
def orchestrator(running: Running) -> Server:
    """The orchestrator `stub` calls: the one on the fake clock."""
    return running.server


@pytest.fixture(scope="module")
def journeys(journeys_server: Server) -> Iterator[journeys_grpc.JourneyServiceStub]:
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield journeys_grpc.JourneyServiceStub(channel)


def _tenant(auth: Auth) -> str:
    return dict(auth)["x-wayline-tenant"]


def _store(journeys: journeys_grpc.JourneyServiceStub, auth: Auth, events: list[event_pb2.Event]) -> None:
    metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", _tenant(auth)))
    journeys.WriteEvents(journeys_pb.WriteEventsRequest(events=events), metadata=metadata, timeout=30)


def _agreement_flow() -> dict[str, Any]:
    """The trial flow with timers on the way: an hour's pause between the welcome and the offer, and two days
    at the goal step before leaving."""
    definition = trial_flow()
    steps = {s["id"]: s for s in definition["steps"]}
    steps["welcome"]["action"]["next_step_id"] = "pause"
    steps["bought"]["goal"] |= {"timeout": "172800s"}
    definition["steps"].insert(2, {"id": "pause", "wait": {"duration": "3600s", "next_step_id": "offer"}})
    return definition


def _simulate(stub: Stub, auth: Auth, start: int, end: int, **fields: Any) -> pb.SimulateFlowResponse:
    request = pb.SimulateFlowRequest(**fields)
    request.time_range.start.FromMicroseconds(start)
    request.time_range.end.FromMicroseconds(end)
    return stub.SimulateFlow(request, metadata=auth, timeout=60)


def _definition(definition: dict[str, Any]) -> flow_pb2.FlowDefinition:
    return json_format.ParseDict(definition, flow_pb2.FlowDefinition())


def _live_history(
    running: Running, stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> int:
    """The trial's persons, stored in journeys and fed live, the fake clock moved to each event's time and
    then past every timer; the time the live run ends at."""
    cap_emails(stub, auth)
    publish(stub, auth, FLOW, _agreement_flow())
    free = [f"p-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    in_a, in_control = choose_persons(FLOW, 3, 3)
    t0 = running.clock()
    events = [
        track(person, "Signed Up", t0 + i * SECOND, plan="free" if person in free else "pro")
        for i, person in enumerate(free + in_a + in_control)
    ]
    events += [
        track(person, "Order Completed", t0 + 3 * HOUR + i * SECOND)
        for i, person in enumerate([free[0], in_a[0], in_a[1], in_control[0]])
    ]
    events.append(track(free[1], "Page Viewed", t0 + 4 * HOUR))  # no flow's business
    _store(journeys, auth, events)
    tenant = _tenant(auth)
    for event in events:
        running.clock.advance((event.timestamp.ToMicroseconds() - running.clock()) / SECOND)
        send(stub, auth, event)
        if event.name == "Signed Up" and event is events[len(free + in_a + in_control) - 1]:
            running.clock.advance(2 * HOUR / SECOND)  # past the pauses: the timer loop fires them
            eventually(lambda: all(e.step_id == "bought" for e in running.store.entries(tenant, FLOW)))
    running.clock.advance((t0 + 3 * DAY - running.clock()) / SECOND)  # past the goal step's timeouts
    eventually(lambda: not any(e.live for e in running.store.entries(tenant, FLOW)))
    return t0


def test_simulate_flow_agrees_with_the_live_run_of_the_same_events(
    running: Running, stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> None:
    t0 = _live_history(running, stub, auth, journeys)
    live = stub.GetFlowStats(pb.GetFlowStatsRequest(name=f"flows/{FLOW}"), metadata=auth, timeout=10).stats
    simulated = _simulate(stub, auth, t0 - 60 * SECOND, running.clock(), name=f"flows/{FLOW}")
    assert simulated.evaluated_person_count == 8
    assert (live.entered_count, live.converted_count, live.suppressed_count) == (8, 4, 2)
    assert [(s.reason, s.count) for s in live.suppressions] == [
        (contact_pb2.CONTACT_BLOCK_REASON_FREQUENCY_CAP, 2)
    ]
    assert {s.step_id: s.entered_count for s in live.steps}["pause"] == 2
    assert {(b.label, b.count) for s in live.steps if s.step_id == "bought" for b in s.branches} == {
        ("next", 4),
        ("timeout", 4),
    }
    assert simulated.stats == live  # every count, branch and variant, and the time they are as of


def _routed_by_event_fields() -> dict[str, Any]:
    """Entered by orders over 10 EUR, routed on the order's sentiment, group and text and on the person's
    plan (journeys' traits), each route one email."""

    def route(label: str, condition: dict[str, Any]) -> dict[str, Any]:
        return {"label": label, "condition": {"trigger_property": condition}, "next_step_id": label}

    routes = [
        route("apology", filtered("sentiment_score", "LESS_THAN", -0.5)),
        route("team", filtered("group_id", "EQUALS", "acme")),
        route("refund", filtered("text", "MATCHES_REGEX", "(?i)refund")),
        route("upsell", filtered("person.plan", "EQUALS", "pro")),
    ]
    email = {"channel": "CHANNEL_EMAIL", "next_step_id": ""}
    labels = ["apology", "team", "refund", "upsell", "thanks"]
    matcher = {"event_name": "Order Completed", "property_filters": [filtered("revenue", "GREATER_THAN", 10)]}
    return {
        "trigger": {"event": {"event": matcher}},
        "entry_step_id": "route",
        "steps": [
            {"id": "route", "branch": {"branches": routes, "default_step_id": "thanks"}},
            *({"id": label, "action": {**email, "action_id": label}} for label in labels),
        ],
    }


def test_simulate_flow_agrees_with_the_live_run_on_the_event_fields_and_person_traits(
    running: Running, stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> None:
    flow_id = "fields"
    publish(stub, auth, flow_id, _routed_by_event_fields())
    orders: dict[str, Fields] = {
        "apology": {"revenue": "50", "sentiment_score": -0.9, "text": "broken"},
        "team": {"revenue": "50.25", "group_id": "acme"},
        "refund": {"revenue": "50", "text": "A REFUND, please"},
        "upsell": {"revenue": "11"},
        "thanks": {"revenue": "10.5", "sentiment_score": 0.9},
        "small": {"revenue": "10"},  # not over 10: no entry
        "free": {},  # no revenue: no entry
    }
    persons = {label: f"p-{uuid.uuid4().hex[:10]}" for label in orders}
    t0 = running.clock()
    identify = track(persons["upsell"], "Identify", t0, plan="pro")
    identify.type = event_pb2.EVENT_TYPE_IDENTIFY
    events = [identify] + [
        with_fields(track(persons[label], "Order Completed", t0 + (i + 1) * SECOND), fields)
        for i, (label, fields) in enumerate(orders.items())
    ]
    _store(journeys, auth, events)
    for event in events:
        running.clock.advance((event.timestamp.ToMicroseconds() - running.clock()) / SECOND)
        send(stub, auth, event)
    running.clock.advance(60)
    live = stub.GetFlowStats(pb.GetFlowStatsRequest(name=f"flows/{flow_id}"), metadata=auth, timeout=10).stats
    simulated = _simulate(stub, auth, t0 - 60 * SECOND, running.clock(), name=f"flows/{flow_id}")
    assert live.entered_count == 5
    routed = {(b.label, b.count) for s in live.steps if s.step_id == "route" for b in s.branches}
    assert routed == {("apology", 1), ("team", 1), ("refund", 1), ("upsell", 1), ("default", 1)}
    assert simulated.evaluated_person_count == len(persons)
    assert simulated.stats == live


def test_simulate_flow_agrees_with_the_live_run_of_identify_events_observed_before_journeys_stores_them(
    running: Running, stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> None:
    """Live, each identify event reaches the orchestrator before journeys stores it (ingest's two sinks
    race); the simulation replays them from journeys. Both read the traits the triggering event sets as the
    person's latest (a downgrade to `free` enters nobody, though journeys held `pro` when it was observed)."""
    matcher = {
        "event_name": "Identify",
        "event_type": "EVENT_TYPE_IDENTIFY",
        "property_filters": [filtered("person.plan", "EQUALS", "pro")],
    }
    email = {"channel": "CHANNEL_EMAIL", "action_id": "welcome-pro", "next_step_id": ""}
    flow_id = "pro"
    definition = {
        "trigger": {"event": {"event": matcher}},
        "entry_step_id": "welcome",
        "steps": [{"id": "welcome", "action": email}],
    }
    publish(stub, auth, flow_id, definition)
    t0 = running.clock()

    def identify(person: str, at: int, plan: str) -> event_pb2.Event:
        found = track(person, "Identify", at, plan=plan)
        found.type = event_pb2.EVENT_TYPE_IDENTIFY
        return found

    new, upgraded, downgraded = (f"p-{uuid.uuid4().hex[:10]}" for _ in range(3))
    # What journeys held before the range (the simulation does not replay it).
    _store(journeys, auth, [identify(upgraded, t0 - DAY, "free"), identify(downgraded, t0 - DAY, "pro")])
    events = [
        identify(new, t0, "pro"),
        identify(upgraded, t0 + SECOND, "pro"),
        identify(downgraded, t0 + 2 * SECOND, "free"),
    ]
    for event in events:
        running.clock.advance((event.timestamp.ToMicroseconds() - running.clock()) / SECOND)
        send(stub, auth, event)
        _store(journeys, auth, [event])  # after the orchestrator saw it
    running.clock.advance(60)
    live = stub.GetFlowStats(pb.GetFlowStatsRequest(name=f"flows/{flow_id}"), metadata=auth, timeout=10).stats
    simulated = _simulate(stub, auth, t0 - 60 * SECOND, running.clock(), name=f"flows/{flow_id}")
    assert live.entered_count == 2  # new and upgraded
    assert simulated.evaluated_person_count == 3
    assert simulated.stats == live


def test_simulate_flow_changes_no_live_state(
    running: Running, stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> None:
    t0 = _live_history(running, stub, auth, journeys)
    tenant = _tenant(auth)
    before = (
        running.store.entries(tenant, FLOW),
        running.store.messages(tenant),
        running.store.runs(tenant, FLOW),
        running.store.timers(tenant),
    )
    persons = sorted({e.person_id for e in before[0]})
    contacts_before = [
        stub.ListContacts(pb.ListContactsRequest(person_id=p), metadata=auth, timeout=10) for p in persons
    ]
    _simulate(stub, auth, t0, running.clock(), name=f"flows/{FLOW}")
    _simulate(
        stub, auth, t0, running.clock(), definition=_definition(trial_flow()), ignore_contact_policy=True
    )
    after = (
        running.store.entries(tenant, FLOW),
        running.store.messages(tenant),
        running.store.runs(tenant, FLOW),
        running.store.timers(tenant),
    )
    assert after == before
    assert [
        stub.ListContacts(pb.ListContactsRequest(person_id=p), metadata=auth, timeout=10) for p in persons
    ] == contacts_before
    assert running.store.entries(tenant, "simulation") == []


def test_simulate_flow_ignoring_the_contact_policy_suppresses_nothing(
    running: Running, stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> None:
    t0 = _live_history(running, stub, auth, journeys)
    end = running.clock()
    capped = _simulate(stub, auth, t0, end, name=f"flows/{FLOW}").stats
    free = _simulate(stub, auth, t0, end, name=f"flows/{FLOW}", ignore_contact_policy=True).stats
    offer = {s.step_id: s for s in free.steps}["offer"]
    assert (capped.suppressed_count, free.suppressed_count) == (2, 0)
    assert (len(capped.suppressions), len(free.suppressions)) == (1, 0)
    assert (offer.sent_count, offer.suppressed_count) == (5, 0)
    assert {(b.label, b.count) for b in offer.branches} == {("next", 5)}


def test_simulate_flow_treats_the_assumed_share_of_sends_as_engaged(
    stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> None:
    definition = {
        "trigger": {"event": {"event": {"event_name": "Trial Started"}}},
        "entry_step_id": "mail",
        "steps": [
            {
                "id": "mail",
                "action": {"channel": "CHANNEL_EMAIL", "action_id": "mail", "next_step_id": "seen"},
            },
            {
                "id": "seen",
                "engagement_branch": {
                    "action_step_id": "mail",
                    "engagement": "ENGAGEMENT_TYPE_OPENED",
                    "window": "86400s",
                    "engaged_step_id": "",
                    "not_engaged_step_id": "",
                },
            },
        ],
    }
    t0 = 1_770_000_000 * SECOND
    persons = [f"p-{uuid.uuid4().hex[:10]}" for _ in range(20)]
    _store(journeys, auth, [track(p, "Trial Started", t0 + i * SECOND) for i, p in enumerate(persons)])
    expected = sum(engaged(f"simulation/1/{p}/1/mail", 0.5) for p in persons)
    assert 0 < expected < len(persons)  # the hash splits them (checked, not assumed)

    def paths(rate: float) -> set[tuple[str, int]]:
        stats = _simulate(
            stub,
            auth,
            t0,
            t0 + 2 * DAY,
            definition=_definition(definition),
            **({"assumed_engagement_rate": rate}),
        ).stats
        return {(b.label, b.count) for s in stats.steps if s.step_id == "seen" for b in s.branches}

    assert paths(0.5) == {("engaged", expected), ("not_engaged", len(persons) - expected)}
    assert paths(0.0) == {("not_engaged", len(persons))}
    assert paths(1.0) == {("engaged", len(persons))}


def test_simulate_flow_samples_at_most_max_persons(
    stub: Stub, auth: Auth, journeys: journeys_grpc.JourneyServiceStub
) -> None:
    t0 = 1_770_000_000 * SECOND
    persons = [f"p-{uuid.uuid4().hex[:10]}" for _ in range(6)]
    _store(journeys, auth, [track(p, "Signed Up", t0 + SECOND, plan="free") for p in persons])
    request = {"definition": _definition(trial_flow())}
    assert _simulate(stub, auth, t0, t0 + DAY, **request).evaluated_person_count == 6
    sampled = _simulate(stub, auth, t0, t0 + DAY, max_persons=4, **request)
    assert (sampled.evaluated_person_count, sampled.stats.entered_count, sampled.stats.flow) == (4, 4, "")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"name", "time_range.start", "time_range.end"}),
        ({"name": "flows/trial", "definition": _definition(trial_flow())}, {"definition"}),
        ({"name": "trial", "max_persons": 1_000_001}, {"name", "max_persons"}),
        ({"definition": _definition({**trial_flow(), "entry_step_id": ""})}, {"definition.entry_step_id"}),
        ({"name": "flows/trial", "assumed_engagement_rate": 1.5}, {"assumed_engagement_rate"}),
    ],
)
def test_simulate_flow_refuses_a_malformed_request_with_field_paths(
    stub: Stub, auth: Auth, fields: dict[str, Any], expected: set[str]
) -> None:
    request = pb.SimulateFlowRequest(**fields)
    if "name" in fields or "definition" in fields:
        request.time_range.start.FromMicroseconds(SECOND)
        request.time_range.end.FromMicroseconds(2 * SECOND)
    with pytest.raises(grpc.RpcError) as caught:
        stub.SimulateFlow(request, metadata=auth, timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(violations(caught.value)) == expected


def test_simulate_flow_of_an_unknown_flow_is_not_found(stub: Stub, auth: Auth) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _simulate(stub, auth, SECOND, 2 * SECOND, name="flows/nope")
    assert (caught.value.code(), reason(caught.value)) == (grpc.StatusCode.NOT_FOUND, "FLOW_NOT_FOUND")


def test_simulate_flow_without_journeys_is_a_failed_precondition(tmp_path: Path, auth: Auth) -> None:
    server = start_orchestrator(tmp_path)  # no peer addresses
    try:
        with grpc.insecure_channel(server.address) as channel:
            lonely = pb_grpc.OrchestratorServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                _simulate(lonely, auth, SECOND, 2 * SECOND, definition=_definition(trial_flow()))
    finally:
        server.stop(0)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert reason(caught.value) == "JOURNEYS_NOT_CONFIGURED"


def test_simulate_flow_with_journeys_down_is_unavailable(tmp_path: Path, auth: Auth) -> None:
    server = start_orchestrator(tmp_path, journeys_address="127.0.0.1:1")  # nobody listens there
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.OrchestratorServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                _simulate(stub, auth, SECOND, 2 * SECOND, definition=_definition(trial_flow()))
    finally:
        server.stop(0)
    assert (caught.value.code(), reason(caught.value)) == (
        grpc.StatusCode.UNAVAILABLE,
        "JOURNEYS_UNAVAILABLE",
    )
