"""The traces' parts, built from the settings: channels to identity, ingest, journeys and the orchestrator,
the TraceSink Decide records into, what GetDecision, ListDecisions, Feedback and ExportDecisions call, and
what the override feed's follower tells of erasures and merges (forgetting.py)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import descriptor

from wayline.common.clients import internal_channel
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as orchestrator_pb
from wayline_decision.settings import DecisionSettings
from wayline_decision.traces.clients import ContactLedger, EventWriter, JourneysDecisions, PersonIdentifiers
from wayline_decision.traces.feedback import FeedbackRecorder
from wayline_decision.traces.forgetting import TraceForgetting
from wayline_decision.traces.listing import PersonDecisions
from wayline_decision.traces.reads import DecisionTraces
from wayline_decision.traces.recent import RecentTraces
from wayline_decision.traces.sink import IngestTraceSink, SinkPolicy

__all__ = ["Traces", "build_traces"]

_IDENTITY = identity_pb.DESCRIPTOR.services_by_name["IdentityService"]
_INGEST = ingest_pb.DESCRIPTOR.services_by_name["IngestService"]
_JOURNEYS = journeys_pb.DESCRIPTOR.services_by_name["JourneyService"]
_ORCHESTRATOR = orchestrator_pb.DESCRIPTOR.services_by_name["OrchestratorService"]


@dataclass(frozen=True)
class Traces:
    sink: IngestTraceSink  # the TraceSink to give Decide
    reads: DecisionTraces
    person_decisions: PersonDecisions  # ListDecisions
    feedback: FeedbackRecorder
    journeys: JourneysDecisions  # also the canary judge's counts (serving/judge_counts.py)
    forgetting: TraceForgetting  # listens to identity's override feed (the feature service's follower)


def build_traces(settings: DecisionSettings) -> Traces:
    token = settings.require_internal_token()

    def channel(address: str, service: descriptor.ServiceDescriptor) -> grpc.Channel:
        return internal_channel(address, internal_token=token, services=[service], tls=settings.channel_tls())

    people = PersonIdentifiers(
        channel(settings.identity_address, _IDENTITY), ttl_seconds=settings.person_identifier_cache_seconds
    )
    writer = EventWriter(channel(settings.ingest_address, _INGEST))
    journeys = JourneysDecisions(channel(settings.journeys_address, _JOURNEYS))
    address = settings.orchestrator_address
    ledger = ContactLedger(channel(address, _ORCHESTRATOR)) if address else None
    recent = RecentTraces(settings.recent_traces_per_tenant, settings.recent_trace_seconds)
    policy = SinkPolicy(
        capacity=settings.trace_buffer,
        batch_size=settings.trace_batch_size,
        linger_seconds=settings.trace_linger_seconds,
        max_backoff=settings.trace_max_backoff_seconds,
        max_event_bytes=settings.trace_max_event_bytes,
        max_batch_bytes=settings.trace_max_batch_bytes,
    )
    reads = DecisionTraces(journeys, recent, people)
    return Traces(
        sink=IngestTraceSink(writer, people, recent, policy),
        reads=reads,
        person_decisions=PersonDecisions(journeys),
        feedback=FeedbackRecorder(reads, people, writer, ledger, recent),
        journeys=journeys,
        forgetting=TraceForgetting(people, recent),
    )
