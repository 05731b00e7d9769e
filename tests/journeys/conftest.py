"""A JourneyService client on the suite's real journeys server (a socket, chDB), with its own tenant."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from clickhouse_connect.driver.client import Client
from google.rpc import error_details_pb2

from tests.conftest import INTERNAL_TOKEN
from wayline.common.errors import status_details
from wayline.common.server import Server
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import person_override_pb2
from wayline.journeys.v1 import condition_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_journeys.events import EventRecord
from wayline_journeys.store import JourneyStore
from wayline_journeys.store.client import connect_clickhouse

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def new_person() -> str:
    return str(uuid.uuid4())


def stored_event(person_id: str, *identifiers: tuple[str, str], minute: int = 0) -> event_pb2.Event:
    """An event as ingest delivers it after identity resolution: stored with `person_id`."""
    at = T0 + timedelta(minutes=minute)
    return event_pb2.Event(
        event_id=str(uuid.uuid4()),
        type=event_pb2.EVENT_TYPE_TRACK,
        name="Product Viewed",
        channel=event_pb2.CHANNEL_WEB,
        timestamp=to_timestamp(at),
        received_at=to_timestamp(at),
        identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers],
        person_id=person_id,
    )


def received_now(event: event_pb2.Event) -> event_pb2.Event:
    """`event` as ingest receives it now: after any erasure the test made before (erased_writes.py leaves out
    an erased person's events received before their erasure)."""
    event.received_at.CopyFrom(to_timestamp(datetime.now(UTC)))
    return event


def stored_record(
    person_id: str, at: datetime, identifier: tuple[str, str], properties_json: str = "{}"
) -> EventRecord:
    """The store's record of a "Viewed" event on the web at `at`, carrying `identifier`, stored with
    `person_id` (for tests that write to a JourneyStore directly)."""
    return EventRecord(
        event_id=str(uuid.uuid4()),
        type="track",
        name="Viewed",
        channel="web",
        timestamp=at,
        received_at=at,
        identifier_types=(identifier[0],),
        identifier_values=(identifier[1],),
        person_id=person_id,
        properties_json=properties_json,
    )


def override(
    person_id: str, target: str, version: int, identifier: tuple[str, str] | None = None
) -> person_override_pb2.PersonOverride:
    found = person_override_pb2.PersonOverride(
        person_id=person_id, override_person_id=target, version=version, merge_id=f"merge-{version}"
    )
    if identifier is not None:
        found.identifier.CopyFrom(event_pb2.Identifier(type=identifier[0], value=identifier[1]))
    return found


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """Field path → reason of every BadRequest violation a failed call carries."""
    return {
        v.field: v.reason
        for detail in status_details(error)
        if isinstance(detail, error_details_pb2.BadRequest)
        for v in detail.field_violations
    }


def error_reason(error: grpc.RpcError) -> str:
    """The reason of the ErrorInfo a failed call carries."""
    return str(next(d.reason for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)))


class Journeys:
    """JourneyService as internal callers use it, for one tenant."""

    def __init__(self, channel: grpc.Channel, tenant: str) -> None:
        self.channel = channel
        self.stub = pb_grpc.JourneyServiceStub(channel)
        self.tenant = tenant
        self.metadata = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", tenant))

    def for_tenant(self, tenant: str) -> Journeys:
        return Journeys(self.channel, tenant)

    def write(self, *events: event_pb2.Event) -> list[event_pb2.Event]:
        self.stub.WriteEvents(pb.WriteEventsRequest(events=events), metadata=self.metadata, timeout=10)
        return list(events)

    def apply(self, *overrides: person_override_pb2.PersonOverride) -> pb.ApplyPersonOverridesResponse:
        response: pb.ApplyPersonOverridesResponse = self.stub.ApplyPersonOverrides(
            pb.ApplyPersonOverridesRequest(person_overrides=overrides), metadata=self.metadata, timeout=10
        )
        return response

    def delete(self, person_id: str, *identifiers: tuple[str, str]) -> int:
        request = pb.DeletePersonEventsRequest(
            person_id=person_id, identifiers=[event_pb2.Identifier(type=t, value=v) for t, v in identifiers]
        )
        response: pb.DeletePersonEventsResponse = self.stub.DeletePersonEvents(
            request, metadata=self.metadata, timeout=30
        )
        return response.deleted_event_count

    def timeline(
        self, person_id: str = "", identifier: tuple[str, str] | None = None, page_size: int = 100
    ) -> list[event_pb2.Event]:
        """Every event of the subject, oldest first, read page by page."""
        request = pb.GetTimelineRequest(page_size=page_size)
        if identifier is not None:
            request.identifier.CopyFrom(event_pb2.Identifier(type=identifier[0], value=identifier[1]))
        else:
            request.person_id = person_id
        events: list[event_pb2.Event] = []
        while True:
            response: pb.GetTimelineResponse = self.stub.GetTimeline(
                request, metadata=self.metadata, timeout=10
            )
            events.extend(response.events)
            if not response.next_page_token:
                return events
            request.page_token = response.next_page_token

    def profile_features(self, request: pb.GetProfileFeaturesRequest) -> pb.GetProfileFeaturesResponse:
        response: pb.GetProfileFeaturesResponse = self.stub.GetProfileFeatures(
            request, metadata=self.metadata, timeout=30
        )
        return response

    def export_training_set(
        self, request: pb.ExportTrainingSetRequest, timeout: float = 60
    ) -> list[pb.ExportTrainingSetResponse]:
        """Every message of the stream, in order."""
        return list(self.stub.ExportTrainingSet(request, metadata=self.metadata, timeout=timeout))

    def create_segment(
        self, condition: condition_pb2.PersonCondition, segment_id: str = "", display_name: str = ""
    ) -> segment_pb2.Segment:
        segment = segment_pb2.Segment(display_name=display_name, condition=condition)
        request = pb.CreateSegmentRequest(segment=segment, segment_id=segment_id)
        response: pb.CreateSegmentResponse = self.stub.CreateSegment(
            request, metadata=self.metadata, timeout=10
        )
        return response.segment

    def segment_members(
        self, name: str, page_size: int = 0
    ) -> tuple[list[str], pb.ListSegmentMembersResponse]:
        """Every member's person id, read page by page, and the first page (its status and total)."""
        request = pb.ListSegmentMembersRequest(segment=name, page_size=page_size)
        members: list[str] = []
        first: pb.ListSegmentMembersResponse | None = None
        while True:
            response: pb.ListSegmentMembersResponse = self.stub.ListSegmentMembers(
                request, metadata=self.metadata, timeout=10
            )
            first = first or response
            members.extend(m.person_id for m in response.members)
            if not response.next_page_token:
                return members, first
            request.page_token = response.next_page_token

    def segment_changes(
        self, after: int = 0, segment: str = "", page_size: int = 0
    ) -> tuple[list[segment_pb2.SegmentMembershipChange], pb.ListSegmentMembershipChangesResponse]:
        """Every change after `after`, read page by page, and the last page (its freshness)."""
        request = pb.ListSegmentMembershipChangesRequest(
            after_sequence=after, segment=segment, page_size=page_size
        )
        changes: list[segment_pb2.SegmentMembershipChange] = []
        while True:
            response: pb.ListSegmentMembershipChangesResponse = self.stub.ListSegmentMembershipChanges(
                request, metadata=self.metadata, timeout=10
            )
            changes.extend(response.changes)
            if not response.next_page_token:
                return changes, response
            request.page_token = response.next_page_token


def ids(events: list[event_pb2.Event]) -> list[str]:
    return [e.event_id for e in events]


@pytest.fixture
def journeys(journeys_server: Server) -> Iterator[Journeys]:
    """A client with a tenant of its own, so each test sees only its events and overrides."""
    with grpc.insecure_channel(journeys_server.address) as channel:
        yield Journeys(channel, f"tenant-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def fresh_database(journeys_server: Server, chdb_path: Path) -> Iterator[Callable[[], Client]]:
    """A connector to a database of its own in the process's chDB engine (the journeys server owns the
    process's one engine; one engine per process is chDB's rule), dropped afterwards."""
    database = f"test_{uuid.uuid4().hex[:8]}"
    clients: list[Client] = []

    def connect() -> Client:
        client = connect_clickhouse("", database, chdb_path)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()  # closing twice is harmless; the code under test may have closed it
    admin = connect_clickhouse("", database, chdb_path)
    admin.command(f"DROP DATABASE IF EXISTS {database}")
    admin.close()


@pytest.fixture
def store(fresh_database: Callable[[], Client]) -> Iterator[JourneyStore]:
    """An open JourneyStore on a database of its own (migrated on open); a module that needs another backend
    defines its own `store`."""
    store = JourneyStore(fresh_database)
    store.open()
    yield store
    store.close()
