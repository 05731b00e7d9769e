"""The flows' DecisionLookup over gRPC: one DecisionService.Decide call per question, for the tenant in
metadata, within `decision_timeout_seconds` (or the caller's remaining deadline, when shorter: the channel's
interceptor passes it on).

As DecisionCondition's contract says, a decision service that fails, times out, has no model deployed or
ranks nothing is not an error of the flow: the answer is a fallback with its reason (logged), and the
condition does not hold or the action sends its own `action_id`. Called with no transaction open (the
engine's replay, decisions.py), so Decide may call back into this orchestrator (CheckContact) freely.
"""

from __future__ import annotations

import grpc
import structlog
from google.protobuf import struct_pb2

from wayline.common.context import TENANT_HEADER
from wayline.decision.v1 import action_pb2
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline.decision.v1 import decision_service_pb2_grpc as pb_grpc
from wayline.event.v1 import event_pb2
from wayline_orchestrator.flows.runtime.decisions import Decided, DecisionQuestion, Fallback

__all__ = ["GrpcDecisions"]

log = structlog.get_logger("wayline.orchestrator")

_FALLBACK_OF_CODE = {
    grpc.StatusCode.FAILED_PRECONDITION: Fallback.NO_MODEL,
    grpc.StatusCode.DEADLINE_EXCEEDED: Fallback.TIMEOUT,
    grpc.StatusCode.UNAVAILABLE: Fallback.UNAVAILABLE,
    grpc.StatusCode.INVALID_ARGUMENT: Fallback.REJECTED,
    grpc.StatusCode.NOT_FOUND: Fallback.REJECTED,
}


def decide_request(question: DecisionQuestion) -> pb.DecideRequest:
    """The Decide request of a flow's question: one action wanted, the flow named in the context."""
    context = struct_pb2.Struct()
    context.update({"caller": "flow", "flow": question.flow})
    return pb.DecideRequest(
        person=event_pb2.PersonRef(person_id=question.person_id),
        channel=event_pb2.Channel.Value(question.channel),
        placement=question.placement,
        context=context,
        candidates=[action_pb2.CandidateAction(action_id=a) for a in question.candidates],
        max_actions=1,
        model=question.model,
    )


class GrpcDecisions:
    def __init__(self, channel: grpc.Channel, timeout_seconds: float) -> None:
        self._stub = pb_grpc.DecisionServiceStub(channel)
        self._timeout = timeout_seconds

    def decide(self, question: DecisionQuestion) -> Decided:
        where = {"tenant": question.tenant, "placement": question.placement, "flow": question.flow}
        if question.channel not in event_pb2.Channel.keys():  # noqa: SIM118 - an enum wrapper, not a dict
            log.warning(
                "flows.decision_fallback", reason=Fallback.REJECTED, channel=question.channel, **where
            )
            return Decided(fallback=Fallback.REJECTED)
        try:
            response: pb.DecideResponse = self._stub.Decide(
                decide_request(question),
                metadata=((TENANT_HEADER, question.tenant),),
                timeout=self._timeout,
            )
        except grpc.RpcError as failed:
            code = failed.code()
            reason = _FALLBACK_OF_CODE.get(code, Fallback.ERROR)
            log.warning("flows.decision_fallback", reason=reason, code=code.name, **where)
            return Decided(fallback=reason)
        if not response.actions:
            reason = Fallback.HOLDOUT if response.holdout else Fallback.NOTHING_RANKED
            log.info("flows.decision_fallback", reason=reason, decision_id=response.decision_id, **where)
            return Decided(decision_id=response.decision_id, fallback=reason)
        top = response.actions[0].action_id
        log.info("flows.decided", decision_id=response.decision_id, action_id=top, **where)
        return Decided(action_id=top, decision_id=response.decision_id)
