"""End to end: events tracked through ingest reach the orchestrator's contact ledger through ingest's
`orchestrator` sink (ObserveEvents, the person resolved by identity): a consent granted in an event makes an
opt-in contact allowed, a later withdrawal forbids it again, and the event's time zone is the one quiet
hours use. The same sink enters persons into published flows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from tests.conftest import common_settings, start_server
from tests.events import make_event
from tests.orchestrator.conftest import as_tenant, start_orchestrator
from tests.orchestrator.helpers import EMAIL, MARKETING, SMS, blocks, check, set_policy
from tests.orchestrator.runtime_calls import publish
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_orchestrator(tmp_path_factory.mktemp("orchestrator"))
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def ingest(
    ledger: Server, identity_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """An ingest whose only sink is the orchestrator (no sink of its own here: the suite's journeys is
    not needed to show the delivery)."""
    settings = IngestSettings(
        **common_settings(tmp_path_factory.mktemp("ingest")),  # type: ignore[arg-type]
        identity_address=identity_server.address,
        orchestrator_address=ledger.address,
        sinks=["orchestrator"],
    )
    server = start_server(ingest_service(settings), settings)
    yield server
    server.stop(0)


def _eventually(check_: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check_():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def _now() -> Timestamp:
    now = Timestamp()
    now.GetCurrentTime()
    return now


def test_consent_and_time_zone_tracked_through_ingest_reach_the_ledger(
    ingest: Server, ledger: Server, identity_server: Server
) -> None:
    auth = as_tenant(f"sink-{uuid.uuid4().hex[:8]}")
    user = f"user-{uuid.uuid4().hex[:8]}"
    # Quiet from an hour before to an hour after now in Tokyo, for sms only; email needs consent.
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    minute = local.hour * 60 + local.minute
    quiet = policy_pb.QuietHours(
        channels=[SMS], start_minute=(minute - 60) % 1440, end_minute=(minute + 60) % 1440
    )
    opt_in = policy_pb.ConsentRule(channel=EMAIL, purpose=MARKETING, mode=policy_pb.CONSENT_MODE_OPT_IN)
    with (
        grpc.insecure_channel(ingest.address) as ingest_channel,
        grpc.insecure_channel(ledger.address) as ledger_channel,
        grpc.insecure_channel(identity_server.address) as identity_channel,
    ):
        track = ingest_grpc.IngestServiceStub(ingest_channel).Track
        stub = pb_grpc.OrchestratorServiceStub(ledger_channel)
        set_policy(stub, auth, policy_pb.ContactPolicy(quiet_hours=[quiet], consent_rules=[opt_in]))

        def send(name: str, timezone: str = "", **properties: object) -> None:
            event = make_event(user, name=name)
            event.properties.update(properties)  # type: ignore[arg-type]
            event.context.timezone = timezone
            track(ingest_pb.TrackRequest(event=event), metadata=auth, timeout=10)

        def person() -> str:
            request = identity_pb.GetProfileRequest(
                person=event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user))
            )
            try:
                profile = (
                    identity_grpc.IdentityServiceStub(identity_channel)
                    .GetProfile(request, metadata=auth, timeout=10)
                    .profile
                )
            except grpc.RpcError:
                return ""
            return str(profile.person_id)

        def verdicts() -> list[list[tuple[str, str]]]:
            answer = check(stub, auth, person(), _now(), (EMAIL, MARKETING), (SMS, MARKETING))
            return [blocks(r) for r in answer.results]

        send("Consent Updated", channel="email", purpose="marketing", granted=True)
        _eventually(lambda: person() != "")
        # Both rules checked in UTC (no zone known yet, the rule names none), where it is not quiet now...
        _eventually(lambda: verdicts() == [[], []])
        # ...until an event says the person lives in Tokyo; then a withdrawal forbids email again.
        send("Page Viewed", timezone="Asia/Tokyo")
        _eventually(lambda: verdicts() == [[], [("QUIET_HOURS", "quiet_hours[0]")]])
        send("Consent Updated", channel="all", purpose="all", granted=False)
        _eventually(
            lambda: verdicts() == [[("NO_CONSENT", "consent_rules[0]")], [("QUIET_HOURS", "quiet_hours[0]")]]
        )


# A flow that sends a push to whoever signs up: what reaches the ledger shows who entered it.
WELCOME = {
    "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
    "entry_step_id": "hello",
    "steps": [{"id": "hello", "action": {"channel": "CHANNEL_PUSH", "action_id": "hello"}}],
}


class _Welcome:
    """The session's services with the welcome flow published for a tenant of its own."""

    def __init__(self, ingest: Server, ledger: Server, identity: Server) -> None:
        self.auth = as_tenant(f"sink-{uuid.uuid4().hex[:8]}")
        self._channels = [grpc.insecure_channel(s.address) for s in (ingest, ledger, identity)]
        self._track = ingest_grpc.IngestServiceStub(self._channels[0]).Track
        self._ledger = pb_grpc.OrchestratorServiceStub(self._channels[1])
        self._profiles = identity_grpc.IdentityServiceStub(self._channels[2])
        publish(self._ledger, self.auth, "welcome", WELCOME)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def track(self, event: event_pb2.Event) -> None:
        self._track(ingest_pb.TrackRequest(event=event), metadata=self.auth, timeout=10)

    def person(self, user: str) -> str:
        """The user's person id; "" while identity does not know them."""
        identifier = event_pb2.Identifier(type="user_id", value=user)
        request = identity_pb.GetProfileRequest(person=event_pb2.PersonRef(identifier=identifier))
        try:
            return str(self._profiles.GetProfile(request, metadata=self.auth, timeout=10).profile.person_id)
        except grpc.RpcError:
            return ""

    def contacts(self, user: str) -> list[str]:
        person = self.person(user)
        if not person:
            return []
        request = pb.ListContactsRequest(person_id=person)
        listed = self._ledger.ListContacts(request, metadata=self.auth, timeout=10)
        return [f"{c.flow}:{c.flow_step_id}" for c in listed.contacts]


@pytest.fixture
def welcome(ingest: Server, ledger: Server, identity_server: Server) -> Iterator[_Welcome]:
    opened = _Welcome(ingest, ledger, identity_server)
    yield opened
    opened.close()


def test_an_event_tracked_through_ingest_enters_a_published_flow_and_its_action_reaches_the_ledger(
    welcome: _Welcome,
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    welcome.track(make_event(user, name="Signed Up"))
    _eventually(lambda: welcome.contacts(user) == ["flows/welcome:hello"])


def test_an_event_whose_integrations_turn_the_orchestrator_off_enters_no_flow(welcome: _Welcome) -> None:
    """Segment's `integrations`, honoured by ingest's sinks (ADR 109): the orchestrator's own key decides,
    then `All`; the events are sent in this order, so once the last one's action is in the ledger the first
    one has been passed by."""
    users = {kind: f"{kind}-{uuid.uuid4().hex[:8]}" for kind in ("off", "on_by_key", "plain")}
    selections = {"off": {"orchestrator": False}, "on_by_key": {"All": False, "orchestrator": True}}
    # A profile for the first user, so that "no contact" below can only mean its Signed Up never came.
    welcome.track(make_event(users["off"], name="Page Viewed"))
    for kind in ("off", "on_by_key", "plain"):
        event = make_event(users[kind], name="Signed Up")
        if kind in selections:
            event.integrations.update(selections[kind])
        welcome.track(event)
    _eventually(lambda: welcome.contacts(users["plain"]) == ["flows/welcome:hello"])
    _eventually(lambda: welcome.contacts(users["on_by_key"]) == ["flows/welcome:hello"])
    assert welcome.person(users["off"])
    assert welcome.contacts(users["off"]) == []
