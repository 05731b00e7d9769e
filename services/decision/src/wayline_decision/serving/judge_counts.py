"""The counts the canary judge needs, from the journey store (CountDecisionOutcomes): the decisions each arm
served since the canary started, and how many of them received a conversion feedback."""

from __future__ import annotations

from wayline.decision.v1 import decision_pb2
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_decision.serving.judge import ArmCounts, CanaryCounts
from wayline_decision.traces.clients import JourneysDecisions

__all__ = ["canary_counts"]

_STABLE = decision_pb2.ModelArm.Name(decision_pb2.MODEL_ARM_STABLE)
_CANARY = decision_pb2.ModelArm.Name(decision_pb2.MODEL_ARM_CANARY)


def canary_counts(
    journeys: JourneysDecisions,
    tenant: str,
    model_id: str,
    *,
    stable_version: str,
    canary_version: str,
    since_us: int,
) -> CanaryCounts:
    """The stable version's decisions on the stable arm and the canary version's on the canary arm, made
    since `since_us` (when the canary started: both arms over the same period, so a trend in conversion
    affects both alike)."""
    time_range = event_pb2.TimeRange()
    time_range.start.FromMicroseconds(since_us)
    response = journeys.count_outcomes(
        tenant, journeys_pb.CountDecisionOutcomesRequest(model=f"models/{model_id}", time_range=time_range)
    )
    arms = {(c.model_version, c.arm): ArmCounts(c.decisions, c.converted_decisions) for c in response.counts}
    return CanaryCounts(
        stable=arms.get((stable_version, _STABLE), ArmCounts(0, 0)),
        canary=arms.get((canary_version, _CANARY), ArmCounts(0, 0)),
    )
