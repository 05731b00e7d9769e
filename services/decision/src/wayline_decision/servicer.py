"""DecisionService over gRPC: thin — convert, call the domain code, convert back.

The model registry's RPCs (UploadModelVersion, ListModels, GetModel), the model lifecycle's (DeployModel,
SetModelTraffic, RollbackModel), the action catalogue's (CreateAction, GetAction, ListActions, UpdateAction,
ArchiveAction), Decide, the holdouts' (Get/UpdateHoldoutConfig), the online features' ObserveEvents and
the traces' (GetDecision, ListDecisions, Feedback, ExportDecisions) are served here; the rest fall through to
the generated base class, which the kit answers with UNIMPLEMENTED and the RPC's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import grpc

from wayline.common.context import current_call, remaining_seconds, require_tenant
from wayline.common.errors import Unavailable
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.decision.v1 import model_pb2
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
from wayline_decision.decide.traces import PendingTrace
from wayline_decision.decide_converters import decide_input, decide_response, decision_trace
from wayline_decision.features.service import OnlineFeatures
from wayline_decision.holdout_converters import holdout_config_message, holdout_config_of
from wayline_decision.holdouts import Holdouts
from wayline_decision.lifecycle_converters import deploy_request, rollback_request, traffic_request
from wayline_decision.observe_validation import observed_events
from wayline_decision.registry import ModelRegistry
from wayline_decision.serving.lifecycle import ModelLifecycle
from wayline_decision.trace_converters import (
    export_request,
    feedback_input,
    list_decisions_request,
    list_decisions_response,
)
from wayline_decision.traces.wiring import Traces
from wayline_decision.uploads import UploadLimits, receive_package

__all__ = ["DecisionServicer"]


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(
        self,
        registry: ModelRegistry,
        limits: UploadLimits,
        actions: ActionCatalogue,
        lifecycle: ModelLifecycle,
        features: OnlineFeatures,
        *,
        traces: Traces | None = None,
        holdouts: Holdouts,
        decider: Decider,
    ) -> None:
        """`traces` None (tests of the other RPCs): the trace RPCs answer UNAVAILABLE."""
        self._registry = registry
        self._limits = limits
        self._actions = actions
        self._lifecycle = lifecycle
        self._features = features
        self._traces = traces
        self._holdouts = holdouts
        self._decider = decider

    def _require_traces(self) -> Traces:
        if self._traces is None:
            raise Unavailable("this decision server was started without its trace store", retry_after=1.0)
        return self._traces

    def GetDecision(  # noqa: N802
        self, request: pb.GetDecisionRequest, context: grpc.ServicerContext
    ) -> pb.GetDecisionResponse:
        trace = self._require_traces().reads.get(require_tenant(), request.decision_id)
        return pb.GetDecisionResponse(decision=trace)

    def ListDecisions(  # noqa: N802
        self, request: pb.ListDecisionsRequest, context: grpc.ServicerContext
    ) -> pb.ListDecisionsResponse:
        page = self._require_traces().person_decisions.page(require_tenant(), list_decisions_request(request))
        return list_decisions_response(page)

    def Feedback(  # noqa: N802
        self, request: pb.FeedbackRequest, context: grpc.ServicerContext
    ) -> pb.FeedbackResponse:
        tenant = require_tenant()
        self._features.remember(tenant)  # the person's identifier is kept: an erasure must reach it
        recorded = self._require_traces().feedback.record(tenant, feedback_input(request))
        return pb.FeedbackResponse(feedback_id=recorded)

    def ExportDecisions(  # noqa: N802
        self, request: pb.ExportDecisionsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ExportDecisionsResponse]:
        selection = export_request(request)
        traces = self._require_traces()
        for page in traces.reads.export(require_tenant(), selection, remaining_seconds()):
            if not context.is_active():
                return  # the caller went away
            yield pb.ExportDecisionsResponse(decisions=page)

    def ObserveEvents(  # noqa: N802
        self, request: pb.ObserveEventsRequest, context: grpc.ServicerContext
    ) -> pb.ObserveEventsResponse:
        tenant = require_tenant()
        # Followed from now on, even if nothing of these events is kept: identity's erasures there wait for
        # this service's acknowledgement of the override feed (ADR 76).
        self._features.remember(tenant)
        events = observed_events(request)
        try:
            count = self._features.observe(tenant, events)
        except OSError as error:  # the change log cannot be written (a full disk): nothing is acknowledged
            raise Unavailable(
                f"the online feature state cannot record events now ({error.strerror}); "
                "retry the same events",
                reason="FEATURE_STATE_UNAVAILABLE",
            ) from error
        return pb.ObserveEventsResponse(observed_count=count)

    def Decide(  # noqa: N802
        self, request: pb.DecideRequest, context: grpc.ServicerContext
    ) -> pb.DecideResponse:
        tenant = require_tenant()
        self._features.remember(tenant)  # features read, a trace and an identifier kept for the person
        call = current_call()
        result = self._decider.decide(tenant, decide_input(request, call.deadline if call else None))
        response = decide_response(result)
        if self._traces is not None:  # the trace is built and written in the background: Decide does not wait
            trace = PendingTrace(result.decision_id, result.person_id, partial(decision_trace, result))
            self._traces.sink.record(tenant, trace)
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
        version = registration.version
        state, why = self._lifecycle.version_state(tenant, version.package.model_id, version.package.version)
        return pb.UploadModelVersionResponse(
            model_version=version_message(version, state, why), created=registration.created
        )

    def ListModels(  # noqa: N802
        self, request: pb.ListModelsRequest, context: grpc.ServicerContext
    ) -> pb.ListModelsResponse:
        after, limit = list_request(request)
        return list_response(list_models(self._registry, self._lifecycle, require_tenant(), after, limit))

    def GetModel(  # noqa: N802
        self, request: pb.GetModelRequest, context: grpc.ServicerContext
    ) -> pb.GetModelResponse:
        model_id = model_id_of(request.name)
        return pb.GetModelResponse(model=self._model(require_tenant(), model_id))

    def _model(self, tenant: str, model_id: str) -> model_pb2.Model:
        return model_message(get_model(self._registry, self._lifecycle, tenant, model_id))

    def DeployModel(  # noqa: N802
        self, request: pb.DeployModelRequest, context: grpc.ServicerContext
    ) -> pb.DeployModelResponse:
        model_id, version, mode, percent, judgement = deploy_request(request)
        tenant = require_tenant()
        self._lifecycle.deploy(tenant, model_id, version, mode, percent, judgement=judgement)
        return pb.DeployModelResponse(model=self._model(tenant, model_id))

    def SetModelTraffic(  # noqa: N802
        self, request: pb.SetModelTrafficRequest, context: grpc.ServicerContext
    ) -> pb.SetModelTrafficResponse:
        model_id, change = traffic_request(request)
        tenant = require_tenant()
        self._lifecycle.set_traffic(tenant, model_id, change)
        return pb.SetModelTrafficResponse(model=self._model(tenant, model_id))

    def RollbackModel(  # noqa: N802
        self, request: pb.RollbackModelRequest, context: grpc.ServicerContext
    ) -> pb.RollbackModelResponse:
        model_id, version = rollback_request(request)
        tenant = require_tenant()
        self._lifecycle.rollback(tenant, model_id, version)
        return pb.RollbackModelResponse(model=self._model(tenant, model_id))

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
