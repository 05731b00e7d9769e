"""Every send and every suppression in the customer's timeline, through the real suite (ingest, identity,
journeys) on SQLite and PostgreSQL: a flow's send is a `Contact Sent` event with the contact's fields, a
send the policy refused a `Contact Suppressed` event with its reasons, RecordContact's contact a `Contact
Sent` too; events shipped again (the shipper died after ingest stored them) are stored once; events ingest
refuses and persons identity does not know are dropped, not retried; without an ingest address nothing is
kept; while ingest is down the events wait (postponed with a backoff), follow a merge to the survivor and go
with an erasure; the orchestrator observing its own events (ingest's orchestrator sink) starts only the flows
that name them."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from pydantic import SecretStr

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.orchestrator.conftest import NO_PEERS, as_tenant
from tests.orchestrator.helpers import EMAIL, SMS, Auth, Stub, cap, days, record, set_policy
from tests.orchestrator.runtime_calls import SECOND, FakeClock, eventually, publish, send, track
from tools.postgres_server import create_schema
from wayline.common.clients import internal_channel
from wayline.common.server import Server
from wayline.common.sql import Database, open_database
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.ingest.v1 import tracking_plan_pb2 as plan_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline.orchestrator.v1 import contact_policy_pb2 as policy_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_cli.suite import free_port
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings
from wayline_orchestrator.contacts import Contact, ContactStore, Violation
from wayline_orchestrator.flows.runtime import RuntimeStore
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings
from wayline_orchestrator.timeline import ContactEventStore, ContactTimeline
from wayline_orchestrator.timeline.clients import EventWriter, PersonIdentifiers
from wayline_orchestrator.timeline.events import sent, suppressed, track_event
from wayline_orchestrator.timeline.shipper import ContactEventShipper

Identity = identity_grpc.IdentityServiceStub
Journeys = journeys_grpc.JourneyServiceStub
SENT, SUPPRESSED = "Contact Sent", "Contact Suppressed"


@dataclass
class Orchestrator:
    server: Server
    stub: Stub
    events: ContactEventStore  # the server's outbox of contact events, read from its database
    clock: FakeClock
    db: Database  # the server's database


def _start(data_dir: Path, url: str, clock: FakeClock, **peers: str) -> tuple[Server, grpc.Channel, Database]:
    settings = OrchestratorSettings(
        **common_settings(data_dir),  # type: ignore[arg-type]
        database_url=SecretStr(url) if url else None,
        timer_poll_interval_seconds=0.05,
        contact_events_poll_seconds=0.05,
        override_poll_seconds=0.05,
        ingest_timeout_seconds=2.0,
        **(NO_PEERS | peers),  # type: ignore[arg-type]
    )
    server = start_server(orchestrator_service(settings, clock), settings)
    db = open_database(url or None, settings.service_dir / "orchestrator.db")
    return server, grpc.insecure_channel(server.address), db


def _clock() -> FakeClock:
    """An hour ago (ingest refuses events from the future), to the minute."""
    return FakeClock((datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A new database's URL at each call ('' for SQLite: a file of the orchestrator's own)."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_url")
        return lambda: create_schema(server)
    return lambda: ""


@pytest.fixture
def outbox(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: Callable[[], str]
) -> Iterator[tuple[Database, ContactEventStore]]:
    """The contact events' outbox on a database of its own, for a shipper driven by the test."""
    db = open_database(fresh_database() or None, tmp_path_factory.mktemp("outbox") / "orchestrator.db")
    store = ContactEventStore(db)
    store.migrate()
    yield db, store
    db.close()


def _orchestrator(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: Callable[[], str], **peers: str
) -> Iterator[Orchestrator]:
    clock = _clock()
    server, channel, db = _start(tmp_path_factory.mktemp("orchestrator"), fresh_database(), clock, **peers)
    yield Orchestrator(server, pb_grpc.OrchestratorServiceStub(channel), ContactEventStore(db), clock, db)
    channel.close()
    server.stop(0)
    db.close()


@pytest.fixture(scope="module")
def shipping(
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database: Callable[[], str],
    ingest_server: Server,
    identity_server: Server,
) -> Iterator[Orchestrator]:
    """An orchestrator shipping its contact events through the suite's ingest, naming persons by identity."""
    yield from _orchestrator(
        tmp_path_factory,
        fresh_database,
        ingest_address=ingest_server.address,
        identity_address=identity_server.address,
    )


@pytest.fixture(scope="module")
def stalled(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: Callable[[], str], identity_server: Server
) -> Iterator[Orchestrator]:
    """An orchestrator whose ingest is down (nothing listens at its address): its events wait."""
    yield from _orchestrator(
        tmp_path_factory,
        fresh_database,
        ingest_address=f"127.0.0.1:{free_port()}",
        identity_address=identity_server.address,
    )


@pytest.fixture(scope="module")
def silent(
    tmp_path_factory: pytest.TempPathFactory, fresh_database: Callable[[], str], identity_server: Server
) -> Iterator[Orchestrator]:
    """An orchestrator without an ingest address: no timeline."""
    yield from _orchestrator(tmp_path_factory, fresh_database, identity_address=identity_server.address)


@pytest.fixture(scope="module")
def identity(identity_server: Server) -> Iterator[Identity]:
    with grpc.insecure_channel(identity_server.address) as channel:
        yield identity_grpc.IdentityServiceStub(channel)


@pytest.fixture(scope="module")
def journeys(journeys_server: Server) -> Iterator[Journeys]:
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield journeys_grpc.JourneyServiceStub(channel)


@pytest.fixture
def auth() -> Auth:
    return as_tenant(f"tl-{uuid.uuid4().hex[:8]}")


def _tenant(auth: Auth) -> str:
    return dict(auth)["x-wayline-tenant"]


def _person(identity: Identity, auth: Auth, days_ago: int = 1) -> str:
    """A person identity knows (by an email), first seen `days_ago`."""
    request = identity_pb.ResolveIdentitiesRequest(
        inputs=[
            identity_pb.IdentityResolutionInput(
                event_id=str(uuid.uuid4()),
                timestamp=to_timestamp(datetime.now(UTC) - timedelta(days=days_ago)),
                event_type=event_pb2.EVENT_TYPE_IDENTIFY,
                identifiers=[event_pb2.Identifier(type="email", value=f"{uuid.uuid4().hex[:8]}@example.com")],
            )
        ]
    )
    return str(identity.ResolveIdentities(request, metadata=auth, timeout=10).resolutions[0].person_id)


def _timeline(journeys: Journeys, auth: Auth, person: str, name: str) -> list[event_pb2.Event]:
    request = journeys_pb.GetTimelineRequest(person_id=person, event_names=[name], page_size=100)
    return list(journeys.GetTimeline(request, metadata=auth, timeout=10).events)


def _properties(event: event_pb2.Event) -> dict[str, Any]:
    return json_format.MessageToDict(event.properties)


def _welcome(purpose: str = "CONTACT_PURPOSE_MARKETING") -> dict[str, Any]:
    """On `Signed Up`, email the welcome (skipped when suppressed), then leave."""
    return {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "welcome",
        "steps": [
            {
                "id": "welcome",
                "action": {
                    "channel": "CHANNEL_EMAIL",
                    "purpose": purpose,
                    "action_id": "welcome-offer",
                    "next_step_id": "done",
                },
            },
            {"id": "done", "exit": {"reason": "finished"}},
        ],
    }


def test_a_flows_send_is_a_contact_sent_event_in_the_timeline(
    shipping: Orchestrator, identity: Identity, journeys: Journeys, auth: Auth
) -> None:
    person = _person(identity, auth)
    publish(shipping.stub, auth, "welcome", _welcome())
    send(shipping.stub, auth, track(person, "Signed Up", shipping.clock()))

    eventually(lambda: len(_timeline(journeys, auth, person, SENT)) == 1)
    [sent] = _timeline(journeys, auth, person, SENT)
    contact_id = f"welcome/1/{person}/1/welcome"
    assert (sent.type, sent.channel, sent.person_id) == (event_pb2.EVENT_TYPE_TRACK, EMAIL, person)
    assert sent.timestamp.ToMicroseconds() == shipping.clock()
    assert _properties(sent) == {
        "contact_id": contact_id,
        "channel": "CHANNEL_EMAIL",
        "purpose": "CONTACT_PURPOSE_MARKETING",
        "action_id": "welcome-offer",
        "source": "CONTACT_SOURCE_FLOW",
        "flow": "flows/welcome",
        "flow_version": 1.0,
        "flow_step_id": "welcome",
    }
    assert _timeline(journeys, auth, person, SUPPRESSED) == []
    eventually(lambda: shipping.events.waiting(_tenant(auth)) == [])  # shipped: the outbox is empty


def test_a_suppressed_send_and_a_recorded_contact_are_in_the_timeline_with_their_reasons(
    shipping: Orchestrator, identity: Identity, journeys: Journeys, auth: Auth
) -> None:
    person = _person(identity, auth)
    set_policy(shipping.stub, auth, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)]))
    recorded = record(
        shipping.stub, auth, person, to_timestamp(datetime.now(UTC) - timedelta(hours=2)), contact_id="crm-1"
    )
    assert recorded.recorded
    publish(shipping.stub, auth, "welcome", _welcome())
    send(shipping.stub, auth, track(person, "Signed Up", shipping.clock()))

    eventually(lambda: len(_timeline(journeys, auth, person, SUPPRESSED)) == 1)
    [suppressed] = _timeline(journeys, auth, person, SUPPRESSED)
    properties = _properties(suppressed)
    assert suppressed.channel == EMAIL
    assert properties["contact_id"] == f"welcome/1/{person}/1/welcome"
    assert (properties["flow"], properties["flow_step_id"], properties["action_id"]) == (
        "flows/welcome",
        "welcome",
        "welcome-offer",
    )
    [reason] = properties["reasons"]
    assert (reason["reason"], reason["rule"]) == ("FREQUENCY_CAP", "frequency_caps[0]")
    assert reason["description"]

    eventually(lambda: len(_timeline(journeys, auth, person, SENT)) == 1)
    [sent] = _timeline(journeys, auth, person, SENT)  # RecordContact's, and no flow send
    assert _properties(sent)["contact_id"] == "crm-1"
    assert (_properties(sent)["action_id"], _properties(sent)["source"]) == (
        "spring-offer",
        "CONTACT_SOURCE_FLOW",
    )
    assert sent.timestamp.ToMicroseconds() == recorded.contact.contact_time.ToMicroseconds()


def test_a_recorded_contact_again_adds_nothing_and_a_refused_one_is_suppressed_once(
    shipping: Orchestrator, identity: Identity, journeys: Journeys, auth: Auth
) -> None:
    """RecordContact is idempotent by contact id; a contact the policy refuses is a `Contact Suppressed`
    event with its reasons, once however often the caller retries it."""
    person = _person(identity, auth)
    set_policy(shipping.stub, auth, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)]))
    when = to_timestamp(datetime.now(UTC) - timedelta(hours=2))
    assert record(shipping.stub, auth, person, when, contact_id="first").recorded
    assert record(shipping.stub, auth, person, when, contact_id="first").recorded  # the same contact again
    for _ in range(2):  # a refusal, retried by the caller
        refused = record(shipping.stub, auth, person, when, contact_id="second", enforce=True)
        assert not refused.recorded
    eventually(lambda: shipping.events.waiting(_tenant(auth)) == [])
    eventually(lambda: len(_timeline(journeys, auth, person, SUPPRESSED)) == 1)
    assert [_properties(e)["contact_id"] for e in _timeline(journeys, auth, person, SENT)] == ["first"]
    [suppressed] = _timeline(journeys, auth, person, SUPPRESSED)
    assert _properties(suppressed)["contact_id"] == "second"
    assert [r["reason"] for r in _properties(suppressed)["reasons"]] == ["FREQUENCY_CAP"]


def test_events_shipped_again_after_the_shipper_died_are_stored_once(
    outbox: tuple[Database, ContactEventStore],
    ingest_server: Server,
    identity_server: Server,
    identity: Identity,
    journeys: Journeys,
    auth: Auth,
) -> None:
    """A shipper that wrote a batch and died before deleting its rows: after the lease another claims the
    same rows and writes them again; the timeline has each event once, and the outbox is then empty."""
    db, store = outbox
    tenant, person = _tenant(auth), _person(identity, auth)
    now = (datetime.now(UTC) - timedelta(minutes=5)).timestamp()
    contact = Contact(
        "c-1", person, "CHANNEL_SMS", "CONTACT_PURPOSE_MARKETING", "reminder", contact_time=int(now) * SECOND
    )
    refused = Violation("QUIET_HOURS", "quiet_hours[0]", "quiet now")
    timeline = ContactTimeline(store)
    with db.transaction() as tx:
        timeline.sent(tx, tenant, contact)
        timeline.suppressed(
            tx,
            tenant,
            Contact("c-2", person, "CHANNEL_SMS", contact_time=contact.contact_time),
            "c-2~suppressed1",
            [refused],
        )

    with (
        internal_channel(identity_server.address, internal_token=INTERNAL_TOKEN) as people,
        internal_channel(ingest_server.address, internal_token=INTERNAL_TOKEN) as ingest,
    ):
        names, writer = PersonIdentifiers(people, 5.0), EventWriter(ingest, 5.0)
        clock = [int(now) * SECOND]
        lease = 60 * SECOND
        # The first shipper: claims, writes, dies before deleting.
        claimed = store.claim(clock[0], 10, lease)
        assert len(claimed) == 2
        written = writer.write(
            tenant, [track_event(c.event, names.identifier(tenant, person)) for c in claimed]
        )
        assert written.rejected == {}
        assert store.claim(clock[0], 10, lease) == []  # still leased
        # Another, once the lease has passed.
        clock[0] += lease
        shipper = ContactEventShipper(store, names, writer, lease, clock=lambda: clock[0])
        assert shipper.ship_due(10) == 2
        assert store.waiting(tenant) == []
        # A later contact, shipped after both writes: once it is in the timeline, so are they.
        with db.transaction() as tx:
            timeline.sent(tx, tenant, dataclasses.replace(contact, contact_id="c-3"))
        assert shipper.ship_due(10) == 1

    def sent_ids() -> list[str]:
        return sorted(_properties(e)["contact_id"] for e in _timeline(journeys, auth, person, SENT))

    eventually(lambda: "c-3" in sent_ids())
    assert sent_ids() == ["c-1", "c-3"]  # c-1 once, though written twice
    [suppressed] = _timeline(journeys, auth, person, SUPPRESSED)
    assert _properties(suppressed)["reasons"] == [
        {"reason": "QUIET_HOURS", "rule": "quiet_hours[0]", "description": "quiet now"}
    ]
    assert suppressed.channel == event_pb2.CHANNEL_SMS


def test_without_an_ingest_address_no_event_is_kept(
    silent: Orchestrator, identity: Identity, auth: Auth
) -> None:
    person = _person(identity, auth)
    set_policy(silent.stub, auth, policy_pb.ContactPolicy(frequency_caps=[cap(1, days(1), EMAIL)]))
    earlier = to_timestamp(datetime.fromtimestamp(silent.clock() / SECOND - 60, UTC))  # within the cap's day
    assert record(silent.stub, auth, person, earlier, contact_id="c").recorded
    publish(silent.stub, auth, "welcome", _welcome())
    send(silent.stub, auth, track(person, "Signed Up", silent.clock()))  # suppressed by the cap
    listed = silent.stub.ListContacts(pb.ListContactsRequest(person_id=person), metadata=auth, timeout=10)
    assert [c.contact_id for c in listed.contacts] == ["c"]
    assert silent.events.waiting(_tenant(auth)) == []


def test_waiting_events_follow_a_merge_and_go_with_an_erasure(
    stalled: Orchestrator, identity: Identity, auth: Auth
) -> None:
    tenant = _tenant(auth)
    older, newer = _person(identity, auth, 30), _person(identity, auth, 1)
    other = _person(identity, auth, 2)
    now = to_timestamp(datetime.now(UTC))
    for person, contact_id in ((older, "a"), (newer, "b"), (other, "c")):
        assert record(stalled.stub, auth, person, now, contact_id=contact_id).recorded
    assert {e.person_id for e in stalled.events.waiting(tenant)} == {older, newer, other}  # ingest is down

    def attempts() -> list[tuple[int, bool]]:
        """Each row's failed attempts, and whether it waits for a later time (the backoff)."""
        with stalled.db.transaction() as tx:
            rows = tx.execute("SELECT attempts, next_time FROM contact_events WHERE tenant_id = ?", (tenant,))
        return [(int(n), int(due) > 0) for n, due in rows]

    eventually(lambda: all(n >= 1 and later for n, later in attempts()))  # tried, and postponed

    merged = identity.MergeProfiles(
        identity_pb.MergeProfilesRequest(person_ids=[older, newer], reason="same customer"),
        metadata=auth,
        timeout=10,
    )
    survivor = merged.profile.person_id
    eventually(lambda: {e.person_id for e in stalled.events.waiting(tenant)} == {survivor, other})
    moved = [e for e in stalled.events.waiting(tenant) if e.person_id == survivor]
    assert sorted(e.properties["contact_id"] for e in moved) == ["a", "b"]

    identity.DeleteProfile(
        identity_pb.DeleteProfileRequest(person_id=survivor, reason="erasure"), metadata=auth, timeout=10
    )
    eventually(lambda: {e.person_id for e in stalled.events.waiting(tenant)} == {other})
    [kept] = stalled.events.waiting(tenant)
    assert kept.properties["contact_id"] == "c"
    assert [c for c in _contact_ids(stalled.stub, auth, other)] == ["c"]


def _contact_ids(stub: Stub, auth: Auth, person: str) -> list[str]:
    listed = stub.ListContacts(pb.ListContactsRequest(person_id=person), metadata=auth, timeout=10)
    return [c.contact_id for c in listed.contacts]


def test_event_ids_derive_from_the_tenant_and_the_contact_or_the_suppression() -> None:
    """A contact (or a suppression) kept twice is one row and one event: its id is stable."""
    contact = Contact("c-1", "p-1", "CHANNEL_EMAIL", contact_time=1)
    assert sent("t1", contact).event_id == sent("t1", dataclasses.replace(contact, contact_time=2)).event_id
    assert sent("t1", contact).event_id != sent("t2", contact).event_id  # tenants never share an event
    refusal = suppressed("t1", contact, "k~suppressed1", [])
    assert refusal.event_id == suppressed("t1", contact, "k~suppressed1", []).event_id
    assert refusal.event_id not in {
        sent("t1", contact).event_id,
        suppressed("t1", contact, "k~suppressed2", []).event_id,
    }


def test_events_ingest_refuses_and_persons_identity_does_not_know_are_dropped_not_retried(
    outbox: tuple[Database, ContactEventStore],
    ingest_server: Server,
    identity_server: Server,
    identity: Identity,
    journeys: Journeys,
    auth: Auth,
) -> None:
    """A tracking plan in reject mode without `Contact Sent` on email refuses that event; a person identity
    never knew has no identifier to name: both rows go, the sms event is stored, nothing waits to retry."""
    db, store = outbox
    tenant, person = _tenant(auth), _person(identity, auth)
    with internal_channel(ingest_server.address, internal_token=INTERNAL_TOKEN) as ingest:
        plans = ingest_grpc.IngestServiceStub(ingest)
        plans.CreateTrackingPlan(
            ingest_pb.CreateTrackingPlanRequest(
                tracking_plan_id=f"plan-{uuid.uuid4().hex[:8]}",
                tracking_plan=plan_pb.TrackingPlan(
                    display_name="Email events",
                    mode=plan_pb.TRACKING_PLAN_MODE_REJECT,
                    channels=[event_pb2.CHANNEL_EMAIL],
                    enabled=True,
                    allow_unplanned_events=False,
                    event_schemas=[
                        plan_pb.EventSchema(
                            event_type=event_pb2.EVENT_TYPE_TRACK, event_name="Message Opened"
                        )
                    ],
                ),
            ),
            metadata=auth,
            timeout=10,
        )
        at_us = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp()) * SECOND
        timeline = ContactTimeline(store)
        with db.transaction() as tx:
            timeline.sent(tx, tenant, Contact("by-email", person, "CHANNEL_EMAIL", contact_time=at_us))
            timeline.sent(tx, tenant, Contact("by-sms", person, "CHANNEL_SMS", contact_time=at_us))
            timeline.sent(
                tx, tenant, Contact("to-nobody", str(uuid.uuid4()), "CHANNEL_SMS", contact_time=at_us)
            )
        with internal_channel(identity_server.address, internal_token=INTERNAL_TOKEN) as people:
            shipper = ContactEventShipper(
                store, PersonIdentifiers(people, 5.0), EventWriter(ingest, 5.0), SECOND
            )
            assert shipper.ship_due(10) == 3
            assert store.waiting(tenant) == []  # dropped, not postponed
            assert shipper.ship_due(10) == 0
            with db.transaction() as tx:  # a later event: once stored, the ones before it are too
                timeline.sent(tx, tenant, Contact("marker", person, "CHANNEL_SMS", contact_time=at_us + 1))
            assert shipper.ship_due(10) == 1

    def sent_ids() -> list[str]:
        return sorted(_properties(e)["contact_id"] for e in _timeline(journeys, auth, person, SENT))

    eventually(lambda: "marker" in sent_ids())
    assert sent_ids() == ["by-sms", "marker"]


def test_events_over_ingests_batch_byte_limit_together_are_shipped_in_several_batches(
    outbox: tuple[Database, ContactEventStore],
    ingest_server: Server,
    identity_server: Server,
    identity: Identity,
    journeys: Journeys,
    auth: Auth,
) -> None:
    """Forty suppressions with 20 KB of reasons each are 800 KB, over ingest's 500 KiB per TrackBatch: one
    batch would be refused whole, and again at every retry. They are all stored, and nothing waits."""
    db, store = outbox
    tenant, person = _tenant(auth), _person(identity, auth)
    at_us = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp()) * SECOND
    timeline = ContactTimeline(store)
    with db.transaction() as tx:
        for n in range(40):
            refused = Violation("QUIET_HOURS", "quiet_hours[0]", f"{n:02d} " + "x" * 20_000)
            contact = Contact(f"big-{n:02d}", person, "CHANNEL_SMS", contact_time=at_us + n)
            timeline.suppressed(tx, tenant, contact, f"big-{n:02d}~suppressed1", [refused])
    with (
        internal_channel(identity_server.address, internal_token=INTERNAL_TOKEN) as people,
        internal_channel(ingest_server.address, internal_token=INTERNAL_TOKEN) as ingest,
    ):
        shipper = ContactEventShipper(store, PersonIdentifiers(people, 5.0), EventWriter(ingest, 5.0), SECOND)
        assert shipper.ship_due(100) == 40
        assert store.waiting(tenant) == []  # all shipped, none postponed

    def stored() -> list[str]:
        return sorted(_properties(e)["contact_id"] for e in _timeline(journeys, auth, person, SUPPRESSED))

    eventually(lambda: len(stored()) == 40)
    assert stored() == [f"big-{n:02d}" for n in range(40)]


def test_the_orchestrator_observes_its_own_events_without_harm(
    tmp_path_factory: pytest.TempPathFactory,
    fresh_database: Callable[[], str],
    journeys_server: Server,
    identity_server: Server,
    identity: Identity,
    journeys: Journeys,
    auth: Auth,
) -> None:
    """Ingest delivers `Contact Sent` back to the orchestrator (its orchestrator sink): only a flow that names
    the event starts on it (once: its own sms's event does not match the email channel it asks for), and the
    ledger learns no engagement from it."""
    port = free_port()
    orchestrator = _orchestrator(
        tmp_path_factory,
        fresh_database,
        ingest_address=f"127.0.0.1:{port}",
        identity_address=identity_server.address,
    )
    running = next(orchestrator)
    settings = IngestSettings(
        **{**common_settings(tmp_path_factory.mktemp("ingest")), "port": port},  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address=identity_server.address,
        orchestrator_address=running.server.address,
        sinks=["journeys", "orchestrator"],
    )
    ingest = start_server(ingest_service(settings), settings)
    try:
        person = _person(identity, auth)
        publish(running.stub, auth, "welcome", _welcome())
        follow_up = {
            "trigger": {"event": {"event": {"event_name": SENT, "channels": ["CHANNEL_EMAIL"]}}},
            "entry_step_id": "sms",
            "steps": [
                {
                    "id": "sms",
                    "action": {"channel": "CHANNEL_SMS", "action_id": "follow-up", "next_step_id": "done"},
                },
                {"id": "done", "exit": {"reason": "finished"}},
            ],
        }
        publish(running.stub, auth, "follow-up", follow_up)
        # Entered by the sms's `Contact Sent`: once it has an entry, the orchestrator has seen that event.
        noted = {
            "trigger": {"event": {"event": {"event_name": SENT, "channels": ["CHANNEL_SMS"]}}},
            "entry_step_id": "done",
            "steps": [{"id": "done", "exit": {"reason": "noted"}}],
        }
        publish(running.stub, auth, "noted", noted)
        send(running.stub, auth, track(person, "Signed Up", running.clock()))

        entries = RuntimeStore(running.db).entries
        eventually(lambda: len(entries(_tenant(auth), "noted")) == 1)
        assert len(entries(_tenant(auth), "follow-up")) == 1
        listed = running.stub.ListContacts(
            pb.ListContactsRequest(person_id=person), metadata=auth, timeout=10
        )
        assert sorted(c.action_id for c in listed.contacts) == ["follow-up", "welcome-offer"]
        with ContactStore(running.db).transaction() as tx:
            assert ContactStore(running.db).person(tx, _tenant(auth), person).engagement == ()
        eventually(lambda: sorted(e.channel for e in _timeline(journeys, auth, person, SENT)) == [EMAIL, SMS])
    finally:
        ingest.stop(0)
        next(orchestrator, None)
