"""Wires the journeys service together: store, servicer, the override-feed follower, lifecycle, segments."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from wayline.common.clients import internal_channel
from wayline.common.server import ServiceDefinition
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.journeys.v1 import journeys_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as pb_grpc
from wayline_journeys.erasure_sweep import LateEventSweep
from wayline_journeys.follower import KnownTenants, OverrideFollower
from wayline_journeys.identity_feed import IdentityOverrideFeed
from wayline_journeys.lifecycle_models import LifecycleModels
from wayline_journeys.person_changes import PersonChanges
from wayline_journeys.person_conditions import PersonConditions
from wayline_journeys.read_models import ReadModels
from wayline_journeys.segment_evaluator import SegmentEvaluator
from wayline_journeys.segment_registry import Segments
from wayline_journeys.segments_converters import parse_condition
from wayline_journeys.servicer import JourneyServicer
from wayline_journeys.settings import JourneysSettings
from wayline_journeys.store import JourneyStore, connect_clickhouse
from wayline_journeys.store.activity_lifecycle import ClickHouseActivityLifecycle
from wayline_journeys.store.customer_value import ClickHouseCustomerValues
from wayline_journeys.store.decisions import ClickHouseDecisions
from wayline_journeys.store.erased_persons import ClickHouseErasedPersons
from wayline_journeys.store.event_export import ClickHouseEventExport
from wayline_journeys.store.event_names import ClickHouseEventNames
from wayline_journeys.store.features import ClickHouseFeatures
from wayline_journeys.store.feed import FeedStateStore
from wayline_journeys.store.funnels import ClickHouseFunnels
from wayline_journeys.store.lifecycle import ClickHouseLifecycleStore
from wayline_journeys.store.lifecycle_models import ClickHouseLifecycleModelStore
from wayline_journeys.store.paths import ClickHousePaths
from wayline_journeys.store.person_conditions import ClickHousePersonConditions
from wayline_journeys.store.retention import ClickHouseRetention
from wayline_journeys.store.segment_evaluation import ClickHouseSegmentEvaluation
from wayline_journeys.store.segments import ClickHouseSegments
from wayline_journeys.store.topology import Topology
from wayline_journeys.store.trends import ClickHouseTrends

__all__ = ["journeys_service"]


def _follower(
    settings: JourneysSettings, store: JourneyStore, changes: PersonChanges
) -> OverrideFollower | None:
    """The follower of identity's override feed; None when the settings turn it off."""
    if not settings.identity_address or settings.override_poll_seconds <= 0:
        return None
    channel = internal_channel(
        settings.identity_address,
        internal_token=settings.require_internal_token(),
        services=[identity_pb.DESCRIPTOR.services_by_name["IdentityService"]],
        max_message_bytes=settings.max_message_bytes,
        tls=settings.channel_tls(),
    )
    state = FeedStateStore(lambda: store.client)
    return OverrideFollower(
        IdentityOverrideFeed(channel),
        changes,
        state,
        KnownTenants(state.tenants),
        poll_seconds=settings.override_poll_seconds,
    )


def _segment_evaluator(
    settings: JourneysSettings, store: JourneyStore, lifecycle_models: LifecycleModels
) -> SegmentEvaluator:
    return SegmentEvaluator(
        ClickHouseSegmentEvaluation(lambda: store.client),
        parse_condition,
        lifecycle_models.model_for,
        # 0 (off) on every replica but the one named for it: one writer keeps each tenant's change sequence.
        refresh_seconds=settings.segment_refresh_seconds if settings.evaluates_segments else 0,
        window_check_seconds=settings.segment_window_check_seconds,
        full_evaluation_seconds=settings.segment_full_evaluation_seconds,
        settle_seconds=settings.segment_settle_seconds,
    )


def journeys_service(settings: JourneysSettings) -> ServiceDefinition:
    store = JourneyStore(
        lambda: connect_clickhouse(
            settings.clickhouse_url,
            settings.clickhouse_database,
            settings.service_dir / "chdb",
            settings.clickhouse_cluster,
            uncompressed_cache_bytes=settings.embedded_uncompressed_cache_bytes,
        ),
        Topology(cluster=settings.clickhouse_cluster, database=settings.clickhouse_database),
        purge_seconds=settings.erasure_purge_seconds,
    )
    overrides = store.overrides
    lifecycle_models = LifecycleModels(ClickHouseLifecycleModelStore(lambda: store.client))
    evaluator = _segment_evaluator(settings, store, lifecycle_models)
    erased = ClickHouseErasedPersons(store)
    changes = PersonChanges(store, overrides, erased, on_erased=evaluator.note_persons)
    sweep = LateEventSweep(
        erased, changes.erase_again, settings.erasure_sweep_seconds, settings.erasure_sweep_window_seconds
    )
    follower = _follower(settings, store, changes)
    segments = Segments(ClickHouseSegments(lambda: store.client), on_change=evaluator.wake)
    trends = ClickHouseTrends(lambda: store.client)  # trends and stickiness read the same event rows
    models = ReadModels(
        customer_value=ClickHouseCustomerValues(lambda: store.client),
        funnels=ClickHouseFunnels(lambda: store.client),
        lifecycle=ClickHouseLifecycleStore(lambda: store.client),
        lifecycle_models=lifecycle_models,
        paths=ClickHousePaths(lambda: store.client),
        persons=PersonConditions(
            ClickHousePersonConditions(lambda: store.client),
            segments.get,
            lifecycle_models.model_for,
            lambda: datetime.now(UTC),
        ),
        retention=ClickHouseRetention(lambda: store.client),
        trends=trends,
        stickiness=trends,
        activity_lifecycle=ClickHouseActivityLifecycle(lambda: store.client),
        segments=segments,
        features=ClickHouseFeatures(lambda: store.client, settings.training_set_max_rows),
        decisions=ClickHouseDecisions(store),
        event_export=ClickHouseEventExport(store),
        event_names=ClickHouseEventNames(lambda: store.client),
    )

    def register(server: grpc.Server) -> list[str]:
        servicer = JourneyServicer(
            store,
            store,
            overrides,
            changes,
            settings.timeline_max_page_size,
            models=models,
            export_max_events=settings.export_max_events,
            note_tenant=follower.tenants.note if follower else lambda tenant: None,
        )
        pb_grpc.add_JourneyServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["JourneyService"].full_name]

    def start() -> None:
        store.open()
        store.ping()
        store.purge.start()  # once the store is open
        sweep.start()
        if follower:
            follower.start()  # once the store is open; a second call does nothing
        evaluator.start()  # once the store is open; does nothing when the settings turn it off

    def stop() -> None:
        evaluator.stop()  # before the store closes
        if follower:
            follower.stop()  # before the store closes; closes the channel to identity
        sweep.stop()
        store.purge.stop()  # after the erasing paths stopped, before the store closes
        store.close()

    return ServiceDefinition(name="journeys", register=register, start=start, stop=stop)
