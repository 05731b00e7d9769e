"""DecisionService over gRPC: thin — convert, call the domain code, convert back.

The model registry's RPCs (UploadModelVersion, ListModels, GetModel), the action catalogue's (CreateAction,
GetAction, ListActions, UpdateAction, ArchiveAction), Decide and the holdouts' (Get/UpdateHoldoutConfig)
are served here; the rest fall through to the generated base class, which the kit answers with
UNIMPLEMENTED and the RPC's name.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from wayline.common.context import current_call, require_tenant
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline_decision.action_converters import (
    action_id_of,
    action_message,
    action_of,
    list_actions_request,
    list_actions_response,
)
from wayline_decision.actions import ActionCatalogue
from wayline_decision.catalog import get_model, list_models
from wayline_decision.converters import (
    list_request,
    list_response,
    model_id_of,
    model_message,
    upload_parts,
    version_message,
)
from wayline_decision.decide.pipeline import Decider
from wayline_decision.decide.traces import TraceSink
from wayline_decision.decide_converters import decide_input, decide_response, decision_trace
from wayline_decision.holdout_converters import holdout_config_message, holdout_config_of
from wayline_decision.holdouts import Holdouts
from wayline_decision.registry import ModelRegistry
from wayline_decision.uploads import UploadLimits, receive_package

__all__ = ["DecisionServicer"]


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(
        self,
        registry: ModelRegistry,
        limits: UploadLimits,
        actions: ActionCatalogue,
        *,
        holdouts: Holdouts,
        decider: Decider,
        traces: TraceSink,
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._actions = actions
        self._holdouts = holdouts
        self._decider = decider
        self._traces = traces

    def Decide(  # noqa: N802
        self, request: pb.DecideRequest, context: grpc.ServicerContext
    ) -> pb.DecideResponse:
        tenant = require_tenant()
        call = current_call()
        result = self._decider.decide(tenant, decide_input(request, call.deadline if call else None))
        response = decide_response(result)
        self._traces.record(tenant, decision_trace(result))
        return response

    def GetHoldoutConfig(  # noqa: N802
        self, request: pb.GetHoldoutConfigRequest, context: grpc.ServicerContext
    ) -> pb.GetHoldoutConfigResponse:
        config = self._holdouts.get(require_tenant())
        return pb.GetHoldoutConfigResponse(holdout_config=holdout_config_message(config))

    def UpdateHoldoutConfig(  # noqa: N802
        self, request: pb.UpdateHoldoutConfigRequest, context: grpc.ServicerContext
    ) -> pb.UpdateHoldoutConfigResponse:
        changes = holdout_config_of(request.holdout_config)
        updated = self._holdouts.update(
            require_tenant(), changes, list(request.update_mask.paths), request.holdout_config.etag
        )
        return pb.UpdateHoldoutConfigResponse(holdout_config=holdout_config_message(updated))

    def UploadModelVersion(  # noqa: N802 - gRPC method names are the contract's
        self, request_iterator: Iterator[pb.UploadModelVersionRequest], context: grpc.ServicerContext
    ) -> pb.UploadModelVersionResponse:
        tenant = require_tenant()
        try:
            registration = receive_package(
                self._registry, tenant, upload_parts(request_iterator), self._limits
            )
        except (
            grpc.RpcError
        ):  # the caller cancelled or its deadline passed mid-stream; the upload is discarded
            context.abort(grpc.StatusCode.CANCELLED, "the upload stream ended before it was complete")
        return pb.UploadModelVersionResponse(
            model_version=version_message(registration.version), created=registration.created
        )

    def ListModels(  # noqa: N802
        self, request: pb.ListModelsRequest, context: grpc.ServicerContext
    ) -> pb.ListModelsResponse:
        after, limit = list_request(request)
        return list_response(list_models(self._registry, require_tenant(), after, limit))

    def GetModel(  # noqa: N802
        self, request: pb.GetModelRequest, context: grpc.ServicerContext
    ) -> pb.GetModelResponse:
        model_id = model_id_of(request.name)
        return pb.GetModelResponse(model=model_message(get_model(self._registry, require_tenant(), model_id)))

    def CreateAction(  # noqa: N802
        self, request: pb.CreateActionRequest, context: grpc.ServicerContext
    ) -> pb.CreateActionResponse:
        draft = action_of(request.action, request.action_id)
        return pb.CreateActionResponse(
            action=action_message(self._actions.create(require_tenant(), request.action_id, draft))
        )

    def GetAction(  # noqa: N802
        self, request: pb.GetActionRequest, context: grpc.ServicerContext
    ) -> pb.GetActionResponse:
        action = self._actions.get(require_tenant(), action_id_of(request.name))
        return pb.GetActionResponse(action=action_message(action))

    def ListActions(  # noqa: N802
        self, request: pb.ListActionsRequest, context: grpc.ServicerContext
    ) -> pb.ListActionsResponse:
        after, limit, state, channel = list_actions_request(request)
        page = self._actions.list(require_tenant(), after, limit, state, channel)
        return list_actions_response(page, state, channel)

    def UpdateAction(  # noqa: N802
        self, request: pb.UpdateActionRequest, context: grpc.ServicerContext
    ) -> pb.UpdateActionResponse:
        changes = action_of(request.action, action_id_of(request.action.name, "action.name"))
        updated = self._actions.update(
            require_tenant(), changes, list(request.update_mask.paths), request.action.etag
        )
        return pb.UpdateActionResponse(action=action_message(updated))

    def ArchiveAction(  # noqa: N802
        self, request: pb.ArchiveActionRequest, context: grpc.ServicerContext
    ) -> pb.ArchiveActionResponse:
        archived = self._actions.archive(require_tenant(), action_id_of(request.name), request.etag)
        return pb.ArchiveActionResponse(action=action_message(archived))
