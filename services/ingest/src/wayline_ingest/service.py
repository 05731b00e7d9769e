"""Wires the ingest service together: spool, pipeline, forwarder and sinks, plans and dead letters."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import structlog

from wayline.common.clients import internal_channel
from wayline.common.errors import Unavailable
from wayline.common.server import ServiceDefinition
from wayline.common.sql import PostgresDatabase, SqliteDatabase, open_database
from wayline.decision.v1 import decision_service_pb2 as decision_pb
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline_ingest.batches import BatchLimits
from wayline_ingest.deadletters import DeadLetters
from wayline_ingest.deadletters.rpcs import DeadLetterRpcs
from wayline_ingest.dedup import DedupWindow
from wayline_ingest.delivery import DeliveryPolicy
from wayline_ingest.enrichment import Enricher
from wayline_ingest.forwarder import SINK_BITS, Forwarder, Transform
from wayline_ingest.pipeline import Pipeline
from wayline_ingest.plans import PlanStore, TrackingPlanRpcs, TrackingPlans
from wayline_ingest.servicer import IngestServicer, add_to_server
from wayline_ingest.settings import IngestSettings
from wayline_ingest.sinks.base import Sink
from wayline_ingest.sinks.grpc import EventsSink
from wayline_ingest.sinks.identity import IdentityResolver, ResolvingSink
from wayline_ingest.sinks.nats_relay import JetStreamRelay, jetstream_mode
from wayline_ingest.spool import Spool, SpoolBatch
from wayline_ingest.validation import EventLimits
from wayline_ingest.wire import needs_enrichment

__all__ = ["ingest_service"]

log = structlog.get_logger("wayline.ingest")

# The RPC each sink is written through; every one takes `repeated Event events = 1`.
_SINK_METHODS = {
    "journeys": (journeys_pb.DESCRIPTOR.services_by_name["JourneyService"], "WriteEvents"),
    "decision": (decision_pb.DESCRIPTOR.services_by_name["DecisionService"], "ObserveEvents"),
    "orchestrator": (orchestrator_pb.DESCRIPTOR.services_by_name["OrchestratorService"], "ObserveEvents"),
}


@dataclass
class _Runtime:
    """What start() builds and stop() releases."""

    pipeline: Pipeline | None = None
    spool: Spool | None = None
    forwarder: Forwarder | None = None
    relay: JetStreamRelay | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    draining: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM: streams end

    def require_spool(self) -> Spool:
        if self.spool is None:
            raise Unavailable("ingest is opening its spool; retry shortly", retry_after=0.5)
        return self.spool


def _sinks(settings: IngestSettings) -> list[Sink]:
    sinks: list[Sink] = []
    resolver = None
    if settings.identity_address:
        identity_channel = internal_channel(
            settings.identity_address,
            internal_token=settings.require_internal_token(),
            services=[identity_pb.DESCRIPTOR.services_by_name["IdentityService"]],
            max_message_bytes=settings.max_message_bytes,
            tls=settings.channel_tls(),
        )
        resolver = IdentityResolver(identity_channel)
    for name in settings.sinks:  # the settings accept only names listed here
        service, method = _SINK_METHODS[name]
        channel = internal_channel(
            getattr(settings, f"{name}_address"),
            internal_token=settings.require_internal_token(),
            services=[service],
            max_message_bytes=settings.max_message_bytes,
            tls=settings.channel_tls(),
        )
        sink: Sink = EventsSink(name, channel, f"/{service.full_name}/{method}")
        if resolver is not None:
            sink = ResolvingSink(sink, resolver, journeys=channel if name == "journeys" else None)
        sinks.append(sink)
    return sinks


def _enrichment(settings: IngestSettings) -> Transform | None:
    """User agents and sentiment, applied by the forwarder on the way to the sinks (off the ack path)."""
    if not settings.user_agent_parsing and settings.sentiment == "off":
        return None
    enricher = Enricher(user_agents=settings.user_agent_parsing, sentiment=settings.sentiment == "lexicon")

    def enrich(events: Sequence[bytes]) -> list[bytes]:
        out = []
        event = event_pb2.Event()
        for raw in events:
            if not needs_enrichment(raw):  # most events: nothing to derive, no parse
                out.append(raw)
                continue
            event.ParseFromString(raw)
            enricher.enrich(event)
            out.append(event.SerializeToString())
        return out

    return enrich


def _database(settings: IngestSettings) -> SqliteDatabase | PostgresDatabase:
    url = settings.database_url.get_secret_value() if settings.database_url else None
    return open_database(url, settings.service_dir / "ingest.db")


def _purge_dead_letters(dead_letters: DeadLetters, retention_days: int, stopping: threading.Event) -> None:
    """Drop expired dead letters now and then every hour (every replica may; the delete is idempotent)."""
    while True:
        try:
            purged = dead_letters.purge_expired(datetime.now(UTC), retention_days)
            if purged:
                log.info("ingest.dead_letters_purged", count=purged)
        except Exception as error:  # noqa: BLE001 - retried at the next round; the store may be down
            log.warning("ingest.dead_letter_purge_failed", error=str(error))
        if stopping.wait(3600):
            return


def ingest_service(settings: IngestSettings) -> ServiceDefinition:
    runtime = _Runtime()
    database = _database(settings)

    def requeue(sink: str, tenant: str, payloads: list[bytes]) -> None:
        runtime.require_spool().append(SpoolBatch(tenant, payloads, sink_mask=SINK_BITS[sink]))

    dead_letters = DeadLetters(database, requeue)
    plans = TrackingPlans(PlanStore(database))
    limits = EventLimits(
        max_event_bytes=settings.max_event_bytes,
        max_future_skew=timedelta(seconds=settings.max_future_skew_seconds),
        min_timestamp=settings.min_timestamp,
        backfill_min_timestamp=settings.backfill_min_timestamp,
    )

    def pipeline() -> Pipeline:
        if runtime.pipeline is None:
            raise Unavailable("ingest is opening its spool; retry shortly", retry_after=0.5)
        return runtime.pipeline

    def register(server: grpc.Server) -> list[str]:
        servicer = IngestServicer(
            pipeline,
            BatchLimits(settings.max_batch_events, settings.max_batch_bytes),
            settings.stream_window_batches,
            tracking_plans=TrackingPlanRpcs(plans),
            dead_letters=DeadLetterRpcs(dead_letters),
            draining=runtime.draining,
        )
        add_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["IngestService"].full_name]

    def start() -> None:
        if runtime.pipeline is not None:
            return
        dead_letters.migrate()
        plans.start()  # raises Unavailable while the database is down: the kit retries start
        policy = DeliveryPolicy(
            initial_delay=settings.sink_retry_initial_seconds,
            max_delay=settings.sink_retry_max_seconds,
            failures_to_open=settings.sink_breaker_failures,
        )
        sinks = _sinks(settings)
        if settings.nats_url:  # JetStream mode: the spool feeds the stream, durable consumers the sinks
            publisher, runtime.relay = jetstream_mode(
                settings.nats_url, settings.nats_stream, sinks, policy, dead_letters
            )
            sinks = [publisher]
        spool = Spool(
            settings.service_dir / "spool",
            [sink.name for sink in sinks],
            segment_bytes=settings.spool_segment_bytes,
            max_bytes=settings.spool_max_bytes,
            crash_before_fsync_after=settings.test_crash_before_fsync,
        )
        built = Pipeline(limits, spool, DedupWindow(settings.dedup_window_events), plans)
        remembered = built.remember_spooled()
        forwarder = Forwarder(
            spool,
            sinks,
            policy=policy,
            dead_letters=dead_letters,
            max_write_bytes=settings.max_write_bytes,
            transform=_enrichment(settings),
            linger=settings.sink_linger_seconds,
            linger_by_sink=settings.sink_linger_by_sink,
            catch_up_write_bytes_by_sink=settings.catch_up_write_bytes_by_sink,
            burst_events_per_second=settings.burst_events_per_second,
            burst_hold_seconds=settings.burst_hold_seconds,
        )
        forwarder.start()
        if runtime.relay is not None:
            runtime.relay.start()
        threading.Thread(
            target=_purge_dead_letters,
            args=(dead_letters, settings.dead_letter_retention_days, runtime.stopping),
            name="dead-letter-purge",
            daemon=True,
        ).start()
        runtime.spool, runtime.forwarder, runtime.pipeline = spool, forwarder, built
        log.info("ingest.spool_open", sinks=[s.name for s in sinks], remembered_event_ids=remembered)

    def stop() -> None:
        runtime.stopping.set()
        if runtime.relay is not None:
            runtime.relay.stop()
        if runtime.forwarder is not None:
            runtime.forwarder.stop()
        if runtime.spool is not None:
            runtime.spool.close()
        plans.stop()
        database.close()

    return ServiceDefinition(
        name="ingest", register=register, start=start, stop=stop, drain=runtime.draining.set
    )
