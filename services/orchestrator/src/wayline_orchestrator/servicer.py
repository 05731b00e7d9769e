"""OrchestratorService over gRPC: thin — convert, call the ledger's domain code, convert back.

The contact policy and ledger's RPCs (GetContactPolicy, UpdateContactPolicy, CheckContact, RecordContact,
ListContacts) are served here, and ObserveEvents keeps what events say of a person (consent, preferred
channel, time zone). The flows' RPCs fall through to the generated base class, which the kit answers with
UNIMPLEMENTED and the RPC's name, until the flows issue lands (ObserveEvents will feed flows too).
"""

from __future__ import annotations

import grpc

from wayline.common.context import require_tenant
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline.orchestrator.v1 import orchestrator_service_pb2_grpc as pb_grpc
from wayline_orchestrator.connector_servicer import ConnectorRpcs
from wayline_orchestrator.connectors.catalogue import ConnectorCatalogue
from wayline_orchestrator.contact_pages import list_contacts_request, list_contacts_response
from wayline_orchestrator.contacts import ContactLedger
from wayline_orchestrator.converters import (
    check_of,
    contact_message,
    contact_of,
    micros,
    policy_message,
    policy_of,
    result_message,
    violation_message,
)
from wayline_orchestrator.person_events import person_statements

__all__ = ["OrchestratorServicer"]


class OrchestratorServicer(ConnectorRpcs, pb_grpc.OrchestratorServiceServicer):
    def __init__(self, ledger: ContactLedger, connectors: ConnectorCatalogue) -> None:
        self._ledger = ledger
        self._connectors = connectors

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
        at = micros(request.contact_time) if request.HasField("contact_time") else None
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
        consents, attributes = person_statements(request.events)
        self._ledger.observe(tenant, consents, attributes)
        return pb.ObserveEventsResponse(observed_count=len(request.events))
