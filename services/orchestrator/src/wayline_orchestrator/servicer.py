"""OrchestratorService over gRPC: thin — convert, call the ledger's domain code, convert back.

The contact policy and ledger's RPCs (GetContactPolicy, UpdateContactPolicy, CheckContact, RecordContact,
ListContacts) are served here, and ObserveEvents keeps what events say of a person (consent, preferred
channel, time zone, engagement with messages), then offers the events to the flows' runtime (entries, waits,
goals). The flow definitions' RPCs (Create/Get/List/Update/Publish/Pause/ArchiveFlow) are served by the
flow catalogue, the connectors' (dead letters included) by ConnectorRpcs. GetFlowStats counts from the
runtime's records (flows/stats.py), and SimulateFlow replays journeys' history through the same runtime
against a throwaway store (flows/simulation.py).
"""

from __future__ import annotations

import grpc

from wayline.common.context import remaining_seconds, require_tenant
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.connector_servicer import ConnectorRpcs
from wayline_orchestrator.connectors.catalogue import ConnectorCatalogue
from wayline_orchestrator.connectors.dead_letters import DeadLetters
from wayline_orchestrator.contact_pages import list_contacts_request, list_contacts_response
from wayline_orchestrator.contacts import ContactLedger
from wayline_orchestrator.converters import (
    check_of,
    contact_message,
    contact_micros,
    contact_of,
    policy_message,
    policy_of,
    result_message,
    violation_message,
)
from wayline_orchestrator.flow_converters import (
    flow_id_of,
    flow_message,
    flow_of,
    list_flows_request,
    list_flows_response,
    pause_mode_of,
)
from wayline_orchestrator.flows import FlowCatalogue
from wayline_orchestrator.flows.runtime import FlowRuntime
from wayline_orchestrator.flows.simulations import FlowSimulations
from wayline_orchestrator.flows.stats import FlowStatistics
from wayline_orchestrator.person_events import (
    check_events,
    engagements,
    occurrences,
    person_statements,
    with_survivors,
)
from wayline_orchestrator.person_overrides import ObservedPersons, Unfollowed
from wayline_orchestrator.stats_converters import flow_stats_message, flow_stats_request, simulation_ask

__all__ = ["OrchestratorServicer"]


class OrchestratorServicer(ConnectorRpcs, pb_grpc.OrchestratorServiceServicer):
    def __init__(
        self,
        ledger: ContactLedger,
        flows: FlowCatalogue,
        connectors: ConnectorCatalogue,
        runtime: FlowRuntime,
        dead_letters: DeadLetters,
        *,
        statistics: FlowStatistics,
        simulations: FlowSimulations,
        persons: ObservedPersons | None = None,
    ) -> None:
        self._ledger = ledger
        self._flows = flows
        self._connectors = connectors
        self._runtime = runtime
        self._dead_letters = dead_letters
        self._statistics = statistics
        self._simulations = simulations
        # What the override feed taught (ADR 38): ObserveEvents' tenants are followed from then on, and an
        # event still under a merged person's id is the survivor's.
        self._persons = persons or Unfollowed()

    def GetContactPolicy(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.GetContactPolicyRequest, context: grpc.ServicerContext
    ) -> pb.GetContactPolicyResponse:
        return pb.GetContactPolicyResponse(
            contact_policy=policy_message(self._ledger.policy(require_tenant()))
        )

    def UpdateContactPolicy(  # noqa: N802
        self, request: pb.UpdateContactPolicyRequest, context: grpc.ServicerContext
    ) -> pb.UpdateContactPolicyResponse:
        changes = policy_of(request.contact_policy)
        updated = self._ledger.update_policy(
            require_tenant(), changes, list(request.update_mask.paths), request.contact_policy.etag
        )
        return pb.UpdateContactPolicyResponse(contact_policy=policy_message(updated))

    def CheckContact(  # noqa: N802
        self, request: pb.CheckContactRequest, context: grpc.ServicerContext
    ) -> pb.CheckContactResponse:
        checks = [check_of(c, f"checks[{i}]") for i, c in enumerate(request.checks)]
        at = (
            contact_micros(request.contact_time, "contact_time") if request.HasField("contact_time") else None
        )
        answer = self._ledger.check(require_tenant(), request.person_id, checks, at)
        return pb.CheckContactResponse(
            results=[result_message(r) for r in answer.results],
            preferred_channel=event_pb2.Channel.Value(answer.preferred_channel),
        )

    def RecordContact(  # noqa: N802
        self, request: pb.RecordContactRequest, context: grpc.ServicerContext
    ) -> pb.RecordContactResponse:
        outcome = self._ledger.record(require_tenant(), contact_of(request.contact), request.enforce_policy)
        return pb.RecordContactResponse(
            recorded=outcome.recorded,
            contact=contact_message(outcome.contact),
            violations=[violation_message(v) for v in outcome.violations],
        )

    def ListContacts(  # noqa: N802
        self, request: pb.ListContactsRequest, context: grpc.ServicerContext
    ) -> pb.ListContactsResponse:
        where, before, limit = list_contacts_request(request)
        return list_contacts_response(self._ledger.contacts(require_tenant(), where, before, limit), where)

    def ObserveEvents(  # noqa: N802
        self, request: pb.ObserveEventsRequest, context: grpc.ServicerContext
    ) -> pb.ObserveEventsResponse:
        tenant = require_tenant()
        check_events(request.events)  # the whole batch, before the ledger or the flows write anything
        self._persons.seen(tenant)
        ids = sorted({event.person_id for event in request.events})
        events = with_survivors(request.events, self._persons.survivors(tenant, ids))
        consents, attributes = person_statements(events)
        self._ledger.observe(tenant, consents, attributes, engagements(events))
        self._runtime.observe(tenant, occurrences(events))
        return pb.ObserveEventsResponse(observed_count=len(request.events))

    def CreateFlow(  # noqa: N802
        self, request: pb.CreateFlowRequest, context: grpc.ServicerContext
    ) -> pb.CreateFlowResponse:
        draft = flow_of(request.flow, request.flow_id)
        return pb.CreateFlowResponse(
            flow=flow_message(self._flows.create(require_tenant(), request.flow_id, draft))
        )

    def GetFlow(  # noqa: N802
        self, request: pb.GetFlowRequest, context: grpc.ServicerContext
    ) -> pb.GetFlowResponse:
        flow_id = flow_id_of(request.name)
        if request.version == 0:
            return pb.GetFlowResponse(flow=flow_message(self._flows.get(require_tenant(), flow_id)))
        flow, published = self._flows.get_version(require_tenant(), flow_id, request.version)
        return pb.GetFlowResponse(flow=flow_message(flow, request.version, published))

    def ListFlows(  # noqa: N802
        self, request: pb.ListFlowsRequest, context: grpc.ServicerContext
    ) -> pb.ListFlowsResponse:
        after, limit, state = list_flows_request(request)
        return list_flows_response(self._flows.list(require_tenant(), after, limit, state), state)

    def UpdateFlow(  # noqa: N802
        self, request: pb.UpdateFlowRequest, context: grpc.ServicerContext
    ) -> pb.UpdateFlowResponse:
        changes = flow_of(request.flow, flow_id_of(request.flow.name, "flow.name"))
        updated = self._flows.update(
            require_tenant(), changes, list(request.update_mask.paths), request.flow.etag
        )
        return pb.UpdateFlowResponse(flow=flow_message(updated))

    def PublishFlow(  # noqa: N802
        self, request: pb.PublishFlowRequest, context: grpc.ServicerContext
    ) -> pb.PublishFlowResponse:
        published = self._flows.publish(require_tenant(), flow_id_of(request.name), request.etag)
        return pb.PublishFlowResponse(flow=flow_message(published))

    def PauseFlow(  # noqa: N802
        self, request: pb.PauseFlowRequest, context: grpc.ServicerContext
    ) -> pb.PauseFlowResponse:
        mode = pause_mode_of(request.mode)
        paused = self._flows.pause(require_tenant(), flow_id_of(request.name), mode)
        return pb.PauseFlowResponse(flow=flow_message(paused))

    def ArchiveFlow(  # noqa: N802
        self, request: pb.ArchiveFlowRequest, context: grpc.ServicerContext
    ) -> pb.ArchiveFlowResponse:
        archived = self._flows.archive(require_tenant(), flow_id_of(request.name))
        return pb.ArchiveFlowResponse(flow=flow_message(archived))

    def GetFlowStats(  # noqa: N802
        self, request: pb.GetFlowStatsRequest, context: grpc.ServicerContext
    ) -> pb.GetFlowStatsResponse:
        flow_id, version, start, end = flow_stats_request(request)
        stats = self._statistics.get(require_tenant(), flow_id, version, start, end)
        return pb.GetFlowStatsResponse(stats=flow_stats_message(stats))

    def SimulateFlow(  # noqa: N802
        self, request: pb.SimulateFlowRequest, context: grpc.ServicerContext
    ) -> pb.SimulateFlowResponse:
        ask = simulation_ask(request)

        def keep_going() -> None:
            remaining_seconds()  # raises DEADLINE_EXCEEDED once the caller's deadline has passed

        result = self._simulations.run(require_tenant(), ask, keep_going)
        return pb.SimulateFlowResponse(
            stats=flow_stats_message(result.stats), evaluated_person_count=result.evaluated_persons
        )
