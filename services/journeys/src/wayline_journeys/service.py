"""Wires the journeys service together: store, servicer, the override-feed follower, lifecycle."""

from __future__ import annotations

import grpc

from wayline.common.clients import internal_channel
from wayline.common.server import ServiceDefinition
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_journeys.follower import KnownTenants, OverrideFollower
from wayline_journeys.identity_feed import IdentityOverrideFeed
from wayline_journeys.person_changes import PersonChanges
from wayline_journeys.read_models import ReadModels
from wayline_journeys.servicer import JourneyServicer
from wayline_journeys.settings import JourneysSettings
from wayline_journeys.store import ClickHouseEventStore, PersonOverrideStore, connect_clickhouse
from wayline_journeys.store.feed import FeedStateStore

__all__ = ["journeys_service"]


def _follower(
    settings: JourneysSettings, store: ClickHouseEventStore, changes: PersonChanges
) -> OverrideFollower | None:
    """The follower of identity's override feed; None when the settings turn it off."""
    if not settings.identity_address or settings.override_poll_seconds <= 0:
        return None
    channel = internal_channel(
        settings.identity_address,
        internal_token=settings.resolved_internal_token(),
        services=[identity_pb.DESCRIPTOR.services_by_name["IdentityService"]],
        max_message_bytes=settings.max_message_bytes,
    )
    state = FeedStateStore(lambda: store.client)
    return OverrideFollower(
        IdentityOverrideFeed(channel),
        changes,
        state,
        KnownTenants(state.tenants),
        poll_seconds=settings.override_poll_seconds,
    )


def journeys_service(settings: JourneysSettings) -> ServiceDefinition:
    store = ClickHouseEventStore(
        lambda: connect_clickhouse(
            settings.clickhouse_url, settings.clickhouse_database, settings.service_dir / "chdb"
        )
    )
    overrides = PersonOverrideStore(lambda: store.client)
    changes = PersonChanges(store, overrides)
    follower = _follower(settings, store, changes)
    models = ReadModels()

    def register(server: grpc.Server) -> list[str]:
        # RPCs JourneyServicer does not define yet fall through to the generated base: UNIMPLEMENTED.
        servicer = JourneyServicer(  # type: ignore[abstract]
            store,
            overrides,
            changes,
            settings.timeline_max_page_size,
            models=models,
            note_tenant=follower.tenants.note if follower else lambda tenant: None,
        )
        pb_grpc.add_JourneyServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["JourneyService"].full_name]

    def start() -> None:
        store.open()
        store.ping()
        if follower:
            follower.start()  # once the store is open; a second call does nothing

    def stop() -> None:
        if follower:
            follower.stop()  # before the store closes; closes the channel to identity
        store.close()

    return ServiceDefinition(name="journeys", register=register, start=start, stop=stop)
