"""Person lookups asked for a whole batch (ADR 92), against the suite's real journeys server: a run of a batch
asks the traits or the person conditions one person's step needs for every person of the batch in one call
(BatchGetPersonProperties, BatchEvaluatePersonConditions), each person getting their own answer; and, on both
engines, a segment's members entering a branching, personalised flow page by page, due timers and the
persons of an ObserveEvents call each get their own, with a call per batch."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import grpc
import pytest

from tests.conftest import INTERNAL_TOKEN
from tests.journeys.conftest import Journeys
from tests.journeys.person_support import identify
from tests.journeys.segments_support import count, delete_all_segments, event, wait_ready
from tests.orchestrator.conftest import as_tenant
from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.receivers import SECRET, HttpReceiver
from tests.orchestrator.running import ENGINES, Running, run_per_engine
from tests.orchestrator.runtime_calls import eventually, publish, send, track
from tests.relay import Relay
from wayline.common.clients import internal_channel
from wayline.common.grpc_types import UnaryUnaryClientInterceptor
from wayline.common.server import Server
from wayline.orchestrator.v1 import connector_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.flows.runtime.answers import RunPersons, Unanswered
from wayline_orchestrator.person_lookup import MAX_PERSONS_PER_CALL, JourneysPersons

START = datetime.now(UTC) - timedelta(days=2)
T = TypeVar("T")


class CallCounter(UnaryUnaryClientInterceptor):
    """Counts the unary calls made through a channel, by method name."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.calls[details.method.rsplit("/", 1)[-1]] += 1
        return continuation(details, request)


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def journeys_channel(journeys_server: Server) -> Iterator[grpc.Channel]:
    """A channel as the orchestrator's to journeys: with the suite's internal token."""
    channel = internal_channel(journeys_server.address, internal_token=INTERNAL_TOKEN)
    yield channel
    channel.close()


@pytest.fixture
def journeys(journeys_channel: grpc.Channel, tenant: str) -> Iterator[Journeys]:
    found = Journeys(journeys_channel, tenant)
    yield found
    delete_all_segments(found)


def named_persons(journeys: Journeys, named: int, unnamed: int) -> dict[str, str | None]:
    """Persons with a first name (a later identify event renaming every third), and persons without one;
    person id → their latest first name."""
    expected: dict[str, str | None] = {}
    events = []
    for i in range(named):
        person = f"p-{i:04d}-{uuid.uuid4().hex[:6]}"
        events.append(identify(person, START, first_name=f"First{i}", plan="basic"))
        expected[person] = f"First{i}"
        if i % 3 == 0:
            events.append(identify(person, START + timedelta(minutes=5), first_name=f"Renamed{i}"))
            expected[person] = f"Renamed{i}"
    for i in range(unnamed):
        person = f"q-{i:04d}-{uuid.uuid4().hex[:6]}"
        events.append(identify(person, START, plan="pro"))
        expected[person] = None
    for start in range(0, len(events), 1_000):
        journeys.write(*events[start : start + 1_000])
    return expected


def counted(journeys_channel: grpc.Channel) -> tuple[JourneysPersons, CallCounter]:
    counter = CallCounter()
    return JourneysPersons(grpc.intercept_channel(journeys_channel, counter), timeout_s=30), counter


def answered(question: Callable[[], T]) -> T:
    """A run's answer, asked first when it has none (as the engine does between two attempts of a run)."""
    try:
        return question()
    except Unanswered as missing:
        missing.ask()
    return question()


def asked(run: RunPersons, tenant: str, person: str, keys: list[str]) -> dict[str, Any]:
    return answered(lambda: run.properties(tenant, person, keys))


def test_a_batch_asks_one_persons_traits_for_every_person_in_one_call(
    journeys: Journeys, journeys_channel: grpc.Channel, tenant: str
) -> None:
    expected = named_persons(journeys, named=40, unnamed=10)
    persons = list(expected)
    lookup, counter = counted(journeys_channel)
    run = RunPersons(lookup, persons)

    answers = {p: asked(run, tenant, p, ["first_name"]) for p in persons}

    assert counter.calls == {"BatchGetPersonProperties": 1}
    assert answers == {p: {"first_name": n} if n else {} for p, n in expected.items()}
    # Each answer is the person's alone, sources included.
    single, _ = counted(journeys_channel)
    for person in persons[:: len(persons) // 8]:
        assert run.traits(tenant, person, ["first_name"]) == single.traits(tenant, person, ["first_name"])

    # Another key is another call for the batch; a person outside the batch is asked alone (a batch of one).
    assert asked(run, tenant, persons[-1], ["plan"]) == {"plan": "pro"}
    assert {p: run.properties(tenant, p, ["plan"]) for p in persons[:2]} == {
        p: {"plan": "basic"} for p in persons[:2]
    }
    stranger = f"s-{uuid.uuid4().hex[:8]}"
    assert asked(run, tenant, stranger, ["plan"]) == {}
    assert counter.calls == {"BatchGetPersonProperties": 3}


PRO = {
    "person_property": {"property": "person.plan", "operator": "FILTER_OPERATOR_EQUALS", "values": ["pro"]}
}
RENAMED = {"event_count": {"event": {"event_name": "Identify"}, "count": "2"}}


def held(run: RunPersons, tenant: str, person: str, conditions: list[dict[str, Any]]) -> list[bool]:
    return answered(lambda: run.holds(tenant, person, conditions))


def test_a_batch_asks_one_persons_conditions_for_every_person_in_one_call(
    journeys: Journeys, journeys_channel: grpc.Channel, tenant: str
) -> None:
    expected = named_persons(journeys, named=30, unnamed=10)
    persons = list(expected)
    lookup, counter = counted(journeys_channel)
    run = RunPersons(lookup, persons)

    answers = {p: held(run, tenant, p, [PRO, RENAMED]) for p in persons}

    assert counter.calls == {"BatchEvaluatePersonConditions": 1}
    # Plan pro: the persons without a first name; two identify events: every third named one.
    assert answers == {
        p: [name is None, name is not None and name.startswith("Renamed")] for p, name in expected.items()
    }
    # The same answers one person at a time; a condition not asked before is another call for the batch.
    single, _ = counted(journeys_channel)
    assert {p: single.holds(tenant, p, [PRO, RENAMED]) for p in persons[::7]} == {
        p: answers[p] for p in persons[::7]
    }
    not_pro = {**PRO, "negate": True}
    assert held(run, tenant, persons[-1], [RENAMED, PRO, not_pro]) == [False, True, False]
    assert run.holds(tenant, persons[0], [not_pro]) == [True]
    assert counter.calls == {"BatchEvaluatePersonConditions": 2}


def test_a_batch_larger_than_one_call_takes_a_call_per_thousand_persons(
    journeys: Journeys, journeys_channel: grpc.Channel, tenant: str
) -> None:
    expected = named_persons(journeys, named=MAX_PERSONS_PER_CALL + 150, unnamed=0)
    lookup, counter = counted(journeys_channel)

    found = lookup.traits_of(tenant, list(expected), ["first_name"])

    assert counter.calls == {"BatchGetPersonProperties": 2}
    assert {p: t["first_name"].value for p, t in found.items()} == expected


# The orchestrator's batches, end to end: its way to journeys passes a proxy that counts the calls.


PAGE = 7  # members (and changes) read from journeys a call: several pages, several batches


@pytest.fixture(scope="module")
def proxy(journeys_server: Server) -> Iterator[Relay]:
    found = Relay(journeys_server.address)
    yield found
    found.close()


@pytest.fixture(scope="module", params=ENGINES)
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, proxy: Relay
) -> Iterator[Running]:
    yield from run_per_engine(
        request,
        tmp_path_factory,
        segment_poll_seconds=0.1,
        segment_page_size=PAGE,
        journeys_address=proxy.address,
    )


@pytest.fixture
def stub(running: Running) -> Iterator[Stub]:
    with grpc.insecure_channel(running.server.address) as channel:
        yield pb_grpc.OrchestratorServiceStub(channel)


@pytest.fixture(scope="module")
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def auth(stub: Stub, tenant: str, http: HttpReceiver) -> Auth:
    """The test's tenant, with the webhook connector its flows send through."""
    http.reset()
    found: Auth = as_tenant(tenant)
    hook = connector_pb2.Connector(
        kind=connector_pb2.CONNECTOR_KIND_WEBHOOK,
        webhook=connector_pb2.WebhookConfig(url=http.url, signing_secret=SECRET),
    )
    stub.CreateConnector(pb.CreateConnectorRequest(connector=hook, connector_id="push-hook"), metadata=found)
    return found


def hello(step_id: str = "hello") -> dict[str, Any]:
    """An action step greeting the person by first name, its step id as its template's."""
    return {
        "id": step_id,
        "action": {
            "channel": "CHANNEL_PUSH",
            "purpose": "CONTACT_PURPOSE_TRANSACTIONAL",
            "action_id": step_id,
            "connector": {
                "connector": "connectors/push-hook",
                "template_id": step_id,
                "personalisation": [
                    {"name": "first_name", "source": "person.first_name", "default_value": "there"}
                ],
            },
        },
    }


HELLO = hello()


def greeted(http: HttpReceiver, expected: dict[str, str | None]) -> dict[str, str]:
    """Each person's greeting, once every expected person got one; one message each."""
    eventually(lambda: len(http.received) >= len(expected), timeout_s=60)
    documents = [json.loads(r.body)["data"] for r in list(http.received)]
    assert len(documents) == len(expected)
    return {d["person_id"]: d["personalisation"]["first_name"] for d in documents}


def templates(http: HttpReceiver) -> dict[str, str]:
    documents = [json.loads(r.body)["data"] for r in list(http.received)]
    return {d["person_id"]: d["template_id"] for d in documents}


def test_a_segments_members_entering_page_by_page_branch_and_are_personalised_a_call_per_page(
    stub: Stub, auth: Auth, journeys: Journeys, proxy: Relay, http: HttpReceiver
) -> None:
    expected = named_persons(journeys, named=20, unnamed=5)
    journeys.write(*(event(p, "Pinged") for p in expected))
    segment = wait_ready(journeys, journeys.create_segment(count("Pinged"), "pinged").name)
    eventually(lambda: len(journeys.segment_members(segment.name)[0]) == len(expected))
    # Pro plans get their own greeting: a branch on a person condition, then a personalised action.
    route = {"branches": [{"label": "pro", "condition": {"person": PRO}, "next_step_id": "hello_pro"}]}
    flow = {
        "trigger": {"segment_entry": {"segment": segment.name, "include_existing_members": True}},
        "entry_step_id": "route",
        "steps": [
            {"id": "route", "branch": {**route, "default_step_id": "hello"}},
            HELLO,
            hello("hello_pro"),
        ],
    }
    proxy.clear()

    publish(stub, auth, "greeting", flow)

    assert greeted(http, expected) == {p: name or "there" for p, name in expected.items()}
    assert templates(http) == {p: "hello" if name else "hello_pro" for p, name in expected.items()}
    # One question of each kind per page of members at most, where each member asked both before.
    pages = -(-len(expected) // PAGE)
    assert 1 <= proxy.calls["BatchEvaluatePersonConditions"] <= pages
    assert 1 <= proxy.calls["BatchGetPersonProperties"] <= pages


def test_due_timers_and_observed_events_ask_the_traits_of_their_batch_at_once(
    running: Running, stub: Stub, auth: Auth, journeys: Journeys, proxy: Relay, http: HttpReceiver
) -> None:
    expected = named_persons(journeys, named=12, unnamed=3)
    flow = {
        "trigger": {"event": {"event": {"event_name": "Cart Abandoned"}}},
        "entry_step_id": "later",
        "steps": [{"id": "later", "wait": {"duration": "3600s", "next_step_id": "hello"}}, HELLO],
    }
    publish(stub, auth, "reminder", flow)
    proxy.clear()

    # The persons' events in one ObserveEvents call: they enter, and wait an hour.
    send(stub, auth, *(track(p, "Cart Abandoned", running.clock()) for p in expected))
    assert proxy.calls["BatchGetPersonProperties"] == 0
    # An hour later their timers come due together (one claim: the loop claims up to 100).
    running.clock.advance(3_601)

    assert greeted(http, expected) == {p: name or "there" for p, name in expected.items()}
    assert proxy.calls["BatchGetPersonProperties"] <= 2  # a claim may catch some timers before the rest

    # An action right at entry reads the traits of the persons of the ObserveEvents call in one call too.
    http.reset()
    publish(
        stub,
        auth,
        "welcome",
        {
            "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
            "entry_step_id": "hello",
            "steps": [HELLO],
        },
    )
    proxy.clear()
    send(stub, auth, *(track(p, "Signed Up", running.clock()) for p in expected))
    assert greeted(http, expected) == {p: name or "there" for p, name in expected.items()}
    assert proxy.calls["BatchGetPersonProperties"] == 1
