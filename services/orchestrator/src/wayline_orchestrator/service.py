"""Wires the orchestrator together: the contact ledger's, the flows' and the connectors' stores and the
flows' runtime (one database), the flows' timer loop, the outbox dispatcher's loop (dispatch.py), the
follower of identity's override feed (override_feed.py: merges and erasures), the shipper of the timeline's
contact events through ingest (timeline/, ADR 42) and OrchestratorService. The
contact policy, the ledger, the flow definitions' and the connectors' RPCs are served, ObserveEvents runs
the published flows (with a journeys peer, the segment poller and the schedule loop enter persons by segment
and on schedules, ADR 40), GetFlowStats counts them and SimulateFlow replays journeys' history through the
same runtime. `clock`
(microseconds since the epoch) is for tests: a fake one moves the ledger's and the flows' time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import grpc

from wayline.common.server import ServiceDefinition
from wayline.common.sql import open_database
from wayline.common.timestamps import now_us
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.connectors import ConnectorStore, Deliverer
from wayline_orchestrator.connectors.catalogue import ConnectorCatalogue
from wayline_orchestrator.connectors.dead_letters import DeadLetters
from wayline_orchestrator.contacts import ContactLedger, ContactStore
from wayline_orchestrator.contacts.check_cache import CheckCache
from wayline_orchestrator.contacts.invalidation import PostgresChangeListener, SqliteChangeWatch
from wayline_orchestrator.contacts.metrics import ContactMetrics
from wayline_orchestrator.decision_client import GrpcDecisions
from wayline_orchestrator.dispatch import OutboxDispatcher
from wayline_orchestrator.flows import FlowCatalogue, FlowStore
from wayline_orchestrator.flows.runtime import FlowRuntime, RuntimeStore, TimerLoop
from wayline_orchestrator.flows.runtime.decisions import DecisionLookup, NoDecisions
from wayline_orchestrator.flows.runtime.lookups import Lookups, NoPersons
from wayline_orchestrator.flows.runtime.outbox_store import OutboxStore
from wayline_orchestrator.flows.runtime.schedules import Schedules
from wayline_orchestrator.flows.runtime.segment_poller import SegmentPoller
from wayline_orchestrator.flows.runtime.segment_store import SegmentStore
from wayline_orchestrator.flows.runtime.stats_store import StatsStore
from wayline_orchestrator.flows.simulations import FlowSimulations
from wayline_orchestrator.flows.stats import FlowStatistics
from wayline_orchestrator.journeys_history import JourneysHistory
from wayline_orchestrator.journeys_segments import JourneysSegmentFeed
from wayline_orchestrator.merged_persons import MergedPersons
from wayline_orchestrator.override_cursors import OverrideCursors
from wayline_orchestrator.override_feed import IdentityOverrideFeed, OverrideFollower
from wayline_orchestrator.peers import Peers
from wayline_orchestrator.person_lookup import JourneysPersons
from wayline_orchestrator.person_overrides import PersonStates
from wayline_orchestrator.servicer import OrchestratorServicer
from wayline_orchestrator.settings import OrchestratorSettings
from wayline_orchestrator.timeline import ContactEventStore, ContactTimeline
from wayline_orchestrator.timeline.clients import EventWriter, PersonIdentifiers
from wayline_orchestrator.timeline.shipper import ContactEventShipper

__all__ = ["orchestrator_service"]


def _decisions(peers: Peers, settings: OrchestratorSettings) -> DecisionLookup:
    if peers.decision is None:
        return NoDecisions()
    return GrpcDecisions(peers.decision, settings.decision_timeout_seconds)


def _followed(
    settings: OrchestratorSettings, peers: Peers, states: PersonStates
) -> tuple[PersonStates | None, OverrideFollower | None]:
    """The person states and their follower of identity's override feed; neither without an identity
    address, or with polling off."""
    if peers.identity is None or settings.override_poll_seconds <= 0:
        return None, None
    feed = IdentityOverrideFeed(peers.identity)
    return states, OverrideFollower(feed, states, poll_seconds=settings.override_poll_seconds)


def _timeline_shipper(
    settings: OrchestratorSettings, peers: Peers, store: ContactEventStore
) -> TimerLoop | None:
    """The loop shipping the timeline's contact events; none without both an ingest and an identity peer."""
    if peers.ingest is None or peers.identity is None:
        return None
    timeout = settings.ingest_timeout_seconds
    shipper = ContactEventShipper(
        store,
        PersonIdentifiers(peers.identity, timeout),
        EventWriter(peers.ingest, timeout),
        round(settings.contact_events_lease_seconds * 1_000_000),
    )
    return TimerLoop(
        shipper.ship_due,
        settings.contact_events_poll_seconds,
        settings.contact_events_batch_size,
        "contact-events",
    )


class _Background(Protocol):
    """A thread of the service's own: a timer loop, the segment poller, the override follower, the check
    cache's invalidation."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def _check_cache(
    settings: OrchestratorSettings, url: str | None, sqlite_path: Path
) -> tuple[CheckCache | None, _Background | None]:
    """CheckContact's cache of its inputs and what invalidates it (ADR 60); neither when it is turned off."""
    if settings.check_cache_entries <= 0:
        return None, None
    cache = CheckCache(settings.check_cache_entries)
    if url:
        return cache, PostgresChangeListener(url, cache)
    return cache, SqliteChangeWatch(sqlite_path, cache)


def orchestrator_service(
    settings: OrchestratorSettings, clock: Callable[[], int] | None = None
) -> ServiceDefinition:
    url = settings.database_url.get_secret_value() if settings.database_url else None
    sqlite_path = settings.service_dir / "orchestrator.db"
    db = open_database(url, sqlite_path)
    peers = Peers.open(settings)  # journeys, decision, identity: channels connect on first use
    cache, invalidation = _check_cache(settings, url, sqlite_path)
    store = ContactStore(db, cache)
    contact_events = ContactEventStore(db)
    shipper = _timeline_shipper(settings, peers, contact_events)
    timeline = ContactTimeline(contact_events) if shipper else None  # no shipper: no events kept
    contact_metrics = ContactMetrics()
    ledger = (
        ContactLedger(store, clock, timeline, contact_metrics)
        if clock
        else ContactLedger(store, events=timeline, metrics=contact_metrics)
    )
    flow_store = FlowStore(db)
    flows = FlowCatalogue(flow_store)
    connector_store = ConnectorStore(db)
    deliverer = Deliverer(connector_store)
    connectors = ConnectorCatalogue(connector_store, deliverer)
    runtime_store = RuntimeStore(db)
    lease_us = round(settings.timer_lease_seconds * 1_000_000)
    persons = (
        JourneysPersons(peers.journeys, settings.journeys_timeout_seconds) if peers.journeys else NoPersons()
    )
    lookups = Lookups(person=persons, decision=_decisions(peers, settings))
    runtime = (
        FlowRuntime(runtime_store, flow_store, ledger, clock, lease_us, lookups=lookups)
        if clock
        else FlowRuntime(runtime_store, flow_store, ledger, lease_us=lease_us, lookups=lookups)
    )
    statistics = FlowStatistics(flows, StatsStore(runtime_store), clock or now_us)
    simulations = FlowSimulations(
        flows,
        ledger,
        runtime.lookups,
        JourneysHistory(peers.journeys) if peers.journeys else None,
        settings.service_dir / "simulations",
    )
    timers = TimerLoop(runtime.fire_due, settings.timer_poll_interval_seconds, settings.timer_batch_size)
    outbox_store = OutboxStore(db)
    dead_letters = DeadLetters(connector_store, outbox_store)
    dispatcher = OutboxDispatcher(
        outbox_store, connector_store, deliverer, round(settings.outbox_lease_seconds * 1_000_000)
    )
    outbox = TimerLoop(
        dispatcher.dispatch_due,
        settings.outbox_poll_interval_seconds,
        settings.outbox_batch_size,
        "flow-outbox",
    )
    cursors, merged = OverrideCursors(db), MergedPersons(db)
    moved = (runtime_store, outbox_store, store, connector_store, cursors, merged)
    states, follower = _followed(
        settings,
        peers,
        PersonStates(*moved, clock, contact_events=contact_events)
        if clock
        else PersonStates(*moved, contact_events=contact_events),
    )

    segment_store = SegmentStore(db)
    segment_loops = (
        _segment_loops(settings, peers, segment_store, flow_store, runtime, clock) if peers.journeys else []
    )
    # Migrated in this order at start; the loops started in this order, stopped in reverse.
    stores = (
        store,
        flow_store,
        connector_store,
        runtime_store,
        segment_store,
        cursors,
        merged,
        contact_events,
    )
    loops: list[_Background] = [
        *([invalidation] if invalidation else []),
        timers,
        outbox,
        *segment_loops,
        *([follower] if follower else []),
        *([shipper] if shipper else []),
    ]

    def register(server: grpc.Server) -> list[str]:
        servicer = OrchestratorServicer(  # every RPC of the contract (mypy checks: the base's are abstract)
            ledger,
            flows,
            connectors,
            runtime,
            dead_letters,
            statistics=statistics,
            simulations=simulations,
            persons=states,
        )
        pb_grpc.add_OrchestratorServiceServicer_to_server(servicer, server)
        return [pb.DESCRIPTOR.services_by_name["OrchestratorService"].full_name]

    # The kit retries start until it returns: a loop started by an earlier attempt is not started again, and
    # stop stops only the loops that started (a listener never started cannot be joined).
    started: list[_Background] = []

    def start() -> None:
        for migrated in stores:
            migrated.migrate()
        for loop in loops[len(started) :]:
            loop.start()
            started.append(loop)

    def stop() -> None:
        for loop in reversed(started):
            loop.stop()
        deliverer.close()
        peers.close()
        db.close()

    return ServiceDefinition(name="orchestrator", register=register, start=start, stop=stop)


def _segment_loops(  # noqa: PLR0917 - what the two loops are built from
    settings: OrchestratorSettings,
    peers: Peers,
    store: SegmentStore,
    flow_store: FlowStore,
    runtime: FlowRuntime,
    clock: Callable[[], int] | None,
) -> list[TimerLoop]:
    """The segment poller's loop and the schedule loop, over the journeys peer."""
    assert peers.journeys is not None
    feed = JourneysSegmentFeed(peers.journeys, settings.journeys_timeout_seconds)
    schedules = Schedules(
        store,
        flow_store,
        feed,
        runtime,
        clock or now_us,
        page_size=settings.segment_page_size,
        lease_us=round(settings.timer_lease_seconds * 1_000_000),
    )
    poller = SegmentPoller(
        store,
        feed,
        runtime,
        schedules,
        page_size=settings.segment_page_size,
        poll_s=settings.segment_poll_seconds,
    )
    return [
        TimerLoop(poller.poll, settings.segment_poll_seconds, settings.segment_page_size, "flow-segments"),
        TimerLoop(
            schedules.fire_due,
            settings.timer_poll_interval_seconds,
            settings.timer_batch_size,
            "flow-schedules",
        ),
    ]
