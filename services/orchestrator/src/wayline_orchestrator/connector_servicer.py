"""OrchestratorService's connector RPCs over gRPC, thin: convert, call the catalogue, convert back. A mixin
of OrchestratorServicer (kept apart from the ledger's and the flows' RPCs)."""

from __future__ import annotations

import grpc

from wayline.common.context import require_tenant
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb
from wayline_orchestrator.connector_messages import (
    connector_message,
    connector_of,
    list_connectors_request,
    list_connectors_response,
    merged,
    outcome_message,
)
from wayline_orchestrator.connectors.catalogue import ConnectorCatalogue, parse_name
from wayline_orchestrator.connectors.dead_letters import DeadLetters
from wayline_orchestrator.dead_letter_pages import list_dead_letters_request, list_dead_letters_response

__all__ = ["ConnectorRpcs"]


class ConnectorRpcs:
    _connectors: ConnectorCatalogue
    _dead_letters: DeadLetters

    def CreateConnector(  # noqa: N802 - gRPC method names are the contract's
        self, request: pb.CreateConnectorRequest, context: grpc.ServicerContext
    ) -> pb.CreateConnectorResponse:
        draft = connector_of(request.connector, request.connector_id)
        created = self._connectors.create(require_tenant(), draft)
        return pb.CreateConnectorResponse(connector=connector_message(created))

    def GetConnector(  # noqa: N802
        self, request: pb.GetConnectorRequest, context: grpc.ServicerContext
    ) -> pb.GetConnectorResponse:
        found = self._connectors.get(require_tenant(), parse_name(request.name))
        return pb.GetConnectorResponse(connector=connector_message(found))

    def ListConnectors(  # noqa: N802
        self, request: pb.ListConnectorsRequest, context: grpc.ServicerContext
    ) -> pb.ListConnectorsResponse:
        after, limit = list_connectors_request(request)
        return list_connectors_response(*self._connectors.page(require_tenant(), after, limit))

    def UpdateConnector(  # noqa: N802
        self, request: pb.UpdateConnectorRequest, context: grpc.ServicerContext
    ) -> pb.UpdateConnectorResponse:
        tenant = require_tenant()
        current = self._connectors.get(tenant, parse_name(request.connector.name, "connector.name"))
        updated = merged(current, request.connector, list(request.update_mask.paths))
        stored = self._connectors.update(tenant, current, updated, request.connector.etag)
        return pb.UpdateConnectorResponse(connector=connector_message(stored))

    def DeleteConnector(  # noqa: N802
        self, request: pb.DeleteConnectorRequest, context: grpc.ServicerContext
    ) -> pb.DeleteConnectorResponse:
        self._connectors.delete(require_tenant(), parse_name(request.name), request.etag)
        return pb.DeleteConnectorResponse()

    def TestConnector(  # noqa: N802
        self, request: pb.TestConnectorRequest, context: grpc.ServicerContext
    ) -> pb.TestConnectorResponse:
        outcome = self._connectors.test(require_tenant(), parse_name(request.name), request.recipient)
        return pb.TestConnectorResponse(outcome=outcome_message(outcome))

    def ListDeadLetters(  # noqa: N802
        self, request: pb.ListDeadLettersRequest, context: grpc.ServicerContext
    ) -> pb.ListDeadLettersResponse:
        connector_id, before, limit = list_dead_letters_request(request)
        page = self._dead_letters.page(require_tenant(), connector_id, before, limit)
        return list_dead_letters_response(page, connector_id)

    def RedriveDeadLetters(  # noqa: N802
        self, request: pb.RedriveDeadLettersRequest, context: grpc.ServicerContext
    ) -> pb.RedriveDeadLettersResponse:
        connector_id = parse_name(request.parent, "parent")
        keys = list(request.idempotency_keys)
        count = self._dead_letters.redrive(require_tenant(), connector_id, keys, request.all)
        return pb.RedriveDeadLettersResponse(redriven_count=count)
