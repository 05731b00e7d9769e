"""Identity's erasures reach journeys in batches (docs/adr/0096-erasures-in-batches.md), against the suite's
real journeys server: profiles erased one after the other all complete, each with its own count; one pass of
the driver erases a backlog of a tenant in one BatchDeletePersonEvents call; a journeys without that call
(a rolling upgrade) gets DeletePersonEvents per person; and a store that cannot confirm keeps its steps
pending, retried, without holding up the other store.

The driver's way to journeys passes a relay: a gRPC server forwarding each call, metadata and errors
included, to the real journeys untouched, and noting the method asked. Told to withhold a method it answers
UNIMPLEMENTED for it, as a journeys older than the method does; nothing else about journeys is stood in for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.conftest import INTERNAL_TOKEN, common_settings, start_server
from tests.events import make_event
from tests.relay import Relay
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.server import Server
from wayline.common.sql import Database, open_database
from wayline.common.timestamps import to_micros, to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.suite import free_port
from wayline_identity.erasers import grpc_erasers
from wayline_identity.erasure import DONE, PENDING
from wayline_identity.erasure_driver import ErasureDriver
from wayline_identity.identity import Identity
from wayline_identity.metrics import IdentityMetrics
from wayline_identity.model import Key, ResolutionInput
from wayline_identity.service import identity_service
from wayline_identity.settings import IdentitySettings
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

Metadata = tuple[tuple[str, str], ...]
BATCH, ONE = "BatchDeletePersonEvents", "DeletePersonEvents"


def _internal(tenant: str) -> Metadata:
    return ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, tenant))


def _eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)


@pytest.fixture
def relay(journeys_server: Server) -> Iterator[Relay]:
    found = Relay(journeys_server.address)
    yield found
    found.close()


@pytest.fixture
def journeys(journeys_server: Server) -> Iterator[journeys_grpc.JourneyServiceStub]:
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield journeys_grpc.JourneyServiceStub(channel)


def _tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _timeline(
    journeys: journeys_grpc.JourneyServiceStub,
    tenant: str,
    person_id: str = "",
    identifier: Key | None = None,
) -> set[str]:
    """The event ids journeys reads as the person, or carrying the identifier (none: NOT_FOUND)."""
    request = journeys_pb.GetTimelineRequest(person_id=person_id, page_size=100)
    if identifier is not None:
        request.identifier.CopyFrom(event_pb2.Identifier(type=identifier[0], value=identifier[1]))
    try:
        response = journeys.GetTimeline(request, metadata=_internal(tenant), timeout=10)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return set()
    return {e.event_id for e in response.events}


# --- Through identity's own server: DeleteProfile after DeleteProfile ---------------------------------------


def test_profiles_erased_in_quick_succession_all_complete_with_their_own_counts(
    journeys_server: Server, journeys: journeys_grpc.JourneyServiceStub, tmp_path: Path
) -> None:
    """An identity and an ingest of the test's own around the suite's journeys: journeys follows the suite's
    identity, not this one, so only this identity's erasure calls delete the persons' events there, and each
    count is what they deleted."""
    ingest_port = free_port()
    identity_settings = IdentitySettings(
        **common_settings(tmp_path / "identity"),  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        ingest_address=f"127.0.0.1:{ingest_port}",
        erasure_retry_seconds=0.2,
    )
    identity_server = start_server(identity_service(identity_settings), identity_settings)
    ingest_settings = IngestSettings(
        **{**common_settings(tmp_path / "ingest"), "port": ingest_port},  # type: ignore[arg-type]
        journeys_address=journeys_server.address,
        identity_address=identity_server.address,
    )
    ingest_server = start_server(ingest_service(ingest_settings), ingest_settings)
    tenant = _tenant()
    metadata = _internal(tenant)
    try:
        with (
            grpc.insecure_channel(identity_server.address) as identity_channel,
            grpc.insecure_channel(ingest_server.address) as ingest_channel,
        ):
            identity = identity_grpc.IdentityServiceStub(identity_channel)
            ingest = ingest_grpc.IngestServiceStub(ingest_channel)
            # Five persons, each with a number of events of their own.
            tracked: dict[str, set[str]] = {}
            for n in range(1, 6):
                user = f"u{n}-{tenant}"
                events = [make_event(user, minutes_ago=10 - i) for i in range(n)]
                ingest.TrackBatch(ingest_pb.TrackBatchRequest(events=events), metadata=metadata, timeout=10)
                tracked[user] = {e.event_id for e in events}

            def arrived(user: str) -> bool:
                return _timeline(journeys, tenant, identifier=("user_id", user)) == tracked[user]

            for user in tracked:
                _eventually(partial(arrived, user), f"{user}'s events are in journeys")
            persons = {
                user: identity.GetProfile(
                    identity_pb.GetProfileRequest(
                        person=event_pb2.PersonRef(
                            identifier=event_pb2.Identifier(type="user_id", value=user)
                        )
                    ),
                    metadata=metadata,
                    timeout=10,
                ).profile.person_id
                for user in tracked
            }
            for user, person in persons.items():
                assert _timeline(journeys, tenant, person_id=person) == tracked[user]

            erasures = {
                user: identity.DeleteProfile(
                    identity_pb.DeleteProfileRequest(person_id=person, reason="erasure request"),
                    metadata=metadata,
                    timeout=10,
                ).erasure.erasure_id
                for user, person in persons.items()
            }

            def erasure(erasure_id: str) -> identity_pb.Erasure:
                request = identity_pb.GetErasureRequest(erasure_id=erasure_id)
                found: identity_pb.Erasure = identity.GetErasure(
                    request, metadata=metadata, timeout=10
                ).erasure
                return found

            _eventually(
                lambda: all(erasure(i).state == identity_pb.ERASURE_STATE_DONE for i in erasures.values()),
                "every erasure completed",
            )
            for user, erasure_id in erasures.items():
                steps = {s.store: s for s in erasure(erasure_id).steps}
                assert set(steps) == {"identity", "journeys", "ingest"}
                assert steps["journeys"].deleted_count == len(tracked[user]), user
                assert _timeline(journeys, tenant, person_id=persons[user]) == set()
                assert _timeline(journeys, tenant, identifier=("user_id", user)) == set()
    finally:
        ingest_server.stop(0)
        identity_server.stop(0)


# --- The driver itself, over a database of the test's own ---------------------------------------------------


class Backlog:
    """Profiles of one tenant in an identity store of the test's own, their events written to the real
    journeys as ingest writes them (stamped with the person identity resolved), then erased: erasures
    waiting for the driver."""

    def __init__(
        self, identity: Identity, journeys: journeys_grpc.JourneyServiceStub, tenant: str | None = None
    ) -> None:
        self.identity = identity
        self.journeys = journeys
        self.tenant = tenant or _tenant()
        self.events: dict[str, set[str]] = {}  # erasure id → the ids of its persons' events
        self.person_ids: dict[str, list[str]] = {}  # erasure id → its persons

    def _resolve(self, event_type: str, *identifiers: Key) -> str:
        item = ResolutionInput(uuid.uuid4().hex, to_micros(datetime.now(UTC)), event_type, identifiers)
        self.identity.resolve(self.tenant, [item])
        return self.identity.person_of(self.tenant, identifier=identifiers[0])

    def _write(self, person_id: str, identifier: Key, count: int) -> set[str]:
        now = datetime.now(UTC)
        events = [
            event_pb2.Event(
                event_id=str(uuid.uuid4()),
                type=event_pb2.EVENT_TYPE_TRACK,
                name="Product Viewed",
                channel=event_pb2.CHANNEL_WEB,
                timestamp=to_timestamp(now - timedelta(minutes=i + 1)),
                received_at=to_timestamp(now),
                identifiers=[event_pb2.Identifier(type=identifier[0], value=identifier[1])],
                person_id=person_id,
            )
            for i in range(count)
        ]
        self.journeys.WriteEvents(
            journeys_pb.WriteEventsRequest(events=events), metadata=_internal(self.tenant), timeout=10
        )
        return {e.event_id for e in events}

    def erase_profile(self, count: int) -> str:
        """A profile of one person with `count` events, erased; the erasure's id."""
        user: Key = ("user_id", uuid.uuid4().hex)
        person = self._resolve("track", user)
        written = self._write(person, user, count)
        return self._erase(person, written)

    def erase_merged_profile(self, anonymous_count: int, user_count: int) -> str:
        """A profile merged from two persons (a device's, then the user's once they logged in on it), each
        with events of their own, erased; the erasure's id."""
        device: Key = ("anonymous_id", uuid.uuid4().hex)
        user: Key = ("user_id", uuid.uuid4().hex)
        on_device = self._write(self._resolve("track", device), device, anonymous_count)
        as_user = self._write(self._resolve("track", user), user, user_count)
        merged = self._resolve("identify", user, device)
        return self._erase(merged, on_device | as_user)

    def _erase(self, person: str, written: set[str]) -> str:
        erased = self.identity.delete(self.tenant, person)
        self.events[erased.erasure_id] = written
        self.person_ids[erased.erasure_id] = erased.person_ids
        return erased.erasure_id

    def step(self, erasure_id: str, store: str = "journeys") -> tuple[str, int, int, str]:
        """(state, deleted count, attempts, last error) of the erasure's step in `store`."""
        found = next(s for s in self.identity.erasure(self.tenant, erasure_id).steps if s.store == store)
        return found.state, found.deleted_count, found.attempt_count, found.last_error

    def assert_erased(self) -> None:
        """Every erasure complete, its journeys step counting its persons' events, and none of them left."""
        for erasure_id, written in self.events.items():
            assert self.identity.erasure(self.tenant, erasure_id).state == DONE
            assert self.step(erasure_id)[:2] == (DONE, len(written))
            for person_id in self.person_ids[erasure_id]:
                assert _timeline(self.journeys, self.tenant, person_id=person_id) == set()


@pytest.fixture
def settings(tmp_path: Path) -> IdentitySettings:
    """The identity settings the erasers' channels take their internal token from."""
    return IdentitySettings(**common_settings(tmp_path / "identity"))  # type: ignore[arg-type]


def _driver(
    db: Database,
    settings: IdentitySettings,
    journeys_address: str,
    ingest_address: str = "",
    metrics: IdentityMetrics | None = None,
) -> tuple[ErasureDriver, list[grpc.Channel]]:
    erasers, channels = grpc_erasers(settings, journeys_address, ingest_address)
    return ErasureDriver(db, erasers, metrics=metrics), channels


def _gauge(reader: InMemoryMetricReader, name: str) -> float:
    return next(iter(_points(reader, name).values()))


def _points(reader: InMemoryMetricReader, name: str) -> dict[tuple[str, ...], float]:
    """Each data point of `name` by its attributes' values, in their order."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        tuple(str(v) for v in (point.attributes or {}).values()): float(point.value)  # type: ignore[union-attr]
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


def test_one_pass_erases_a_backlog_with_one_batch_call_per_tenant(
    database: Database,
    settings: IdentitySettings,
    relay: Relay,
    journeys: journeys_grpc.JourneyServiceStub,
) -> None:
    identity = Identity(database, erasure_stores=["journeys"])
    identity.migrate()
    first, second = Backlog(identity, journeys), Backlog(identity, journeys)
    for count in (1, 2, 3):
        first.erase_profile(count)
    merged = first.erase_merged_profile(2, 1)
    assert len(first.person_ids[merged]) == 2
    second.erase_profile(4)
    second.erase_profile(1)
    driver, channels = _driver(database, settings, relay.address)
    try:
        assert driver.run_once() == 6

        assert relay.asked == [BATCH, BATCH]  # one per tenant, each with every person of its erasures
        first.assert_erased()
        second.assert_erased()
        assert driver.run_once() == 0  # nothing left to do: no call
        assert relay.asked == [BATCH, BATCH]
    finally:
        for channel in channels:
            channel.close()


def test_a_journeys_without_the_batch_call_gets_one_call_per_person(
    settings: IdentitySettings, relay: Relay, journeys: journeys_grpc.JourneyServiceStub, tmp_path: Path
) -> None:
    database = open_database(None, tmp_path / "identity.db")
    identity = Identity(database, erasure_stores=["journeys"])
    identity.migrate()
    backlog = Backlog(identity, journeys)
    backlog.erase_profile(2)
    backlog.erase_merged_profile(1, 3)
    relay.withheld = {BATCH}
    driver, channels = _driver(database, settings, relay.address)
    try:
        assert driver.run_once() == 2

        assert relay.asked == [BATCH, ONE, ONE, ONE]  # refused, then each of the three persons
        backlog.assert_erased()
    finally:
        for channel in channels:
            channel.close()
        database.close()


def test_a_store_that_cannot_confirm_keeps_every_step_pending_and_holds_up_no_other_store(
    database: Database,
    settings: IdentitySettings,
    relay: Relay,
    journeys: journeys_grpc.JourneyServiceStub,
    ingest_server: Server,
) -> None:
    """A journeys serving neither erasing call: the fallback is tried and fails, then each erasure alone,
    and every journeys step stays pending with the error and one more attempt a pass; ingest's steps complete
    meanwhile. Once journeys erases
    again, the next pass completes them all."""
    identity = Identity(database, erasure_stores=["journeys", "ingest"])
    identity.migrate()
    backlog = Backlog(identity, journeys)
    erasures = [backlog.erase_profile(1), backlog.erase_profile(2)]
    relay.withheld = {BATCH, ONE}
    reader = InMemoryMetricReader()
    metrics = IdentityMetrics(MeterProvider([reader]).get_meter("test"))
    driver, channels = _driver(database, settings, relay.address, ingest_server.address, metrics)
    try:
        assert _points(reader, "identity.erasure.steps") == {
            (store, outcome): 0 for store in ("journeys", "ingest") for outcome in ("done", "failed")
        }
        assert driver.run_once() == 0
        time.sleep(0.05)
        assert driver.run_once() == 0
        # Operators see the erasures stuck, and the store that does not confirm them.
        assert _gauge(reader, "identity.erasures.pending") == 2
        assert _gauge(reader, "identity.erasures.oldest_pending_age") > 0.05
        steps = _points(reader, "identity.erasure.steps")
        assert steps[("journeys", "failed")] == 4  # each erasure alone, each pass
        assert steps[("ingest", "done")] == 2

        # Each pass: the batch (its fallback's first call failing), then each erasure alone, so that one the
        # store keeps refusing would hold up only itself.
        assert relay.asked == [BATCH, ONE] * 3 * 2
        for erasure_id in erasures:
            state, deleted, attempts, error = backlog.step(erasure_id)
            assert (state, deleted, attempts) == (PENDING, 0, 2)
            assert "UNIMPLEMENTED" in error
            assert backlog.step(erasure_id, "ingest")[:3] == (DONE, 0, 1)  # done once, not asked again
            assert identity.erasure(backlog.tenant, erasure_id).state == PENDING

        relay.withheld = set()
        assert driver.run_once() == 2
        backlog.assert_erased()
        assert all(backlog.step(i)[2] == 3 for i in erasures)
        assert _gauge(reader, "identity.erasures.pending") == 0
        assert _gauge(reader, "identity.erasures.oldest_pending_age") == 0
        assert _points(reader, "identity.erasure.steps")[("journeys", "done")] == 2
    finally:
        for channel in channels:
            channel.close()
