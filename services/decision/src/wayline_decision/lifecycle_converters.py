"""DeployModel, SetModelTraffic and RollbackModel requests ⇄ the lifecycle's arguments."""

from __future__ import annotations

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.decision.v1 import decision_service_pb2 as pb
from wayline_decision.converters import model_id_of
from wayline_decision.judge_converters import judge_policy
from wayline_decision.serving.judge import JudgePolicy
from wayline_decision.serving.traffic import DeployMode, TrafficChange

__all__ = ["deploy_request", "rollback_request", "traffic_request"]

_MODES = {
    pb.DEPLOY_MODE_UNSPECIFIED: DeployMode.FULL,
    pb.DEPLOY_MODE_FULL: DeployMode.FULL,
    pb.DEPLOY_MODE_CANARY: DeployMode.CANARY,
    pb.DEPLOY_MODE_SHADOW: DeployMode.SHADOW,
}


def deploy_request(
    request: pb.DeployModelRequest,
) -> tuple[str, str, DeployMode, int, JudgePolicy | None]:
    """(model id, version, mode, canary percent, how the canary is judged)."""
    model_id = model_id_of(request.name)
    violations = []
    if not request.version:
        violations.append(FieldViolation("version", "name the registered version to deploy"))
    mode = _MODES.get(request.mode)
    if mode is None:
        violations.append(FieldViolation("mode", f"{request.mode} is not a DeployMode"))
    if violations or mode is None:
        raise InvalidArgument(
            f"the deployment is invalid: {violations[0].field}: {violations[0].description}", violations
        )
    return model_id, request.version, mode, request.canary_percent, judge_policy(request.judgement)


def traffic_request(request: pb.SetModelTrafficRequest) -> tuple[str, TrafficChange]:
    """(model id, the traffic asked for); the lifecycle checks it against the rules."""
    traffic = request.traffic
    return model_id_of(request.name), TrafficChange(
        stable_version=traffic.stable_version,
        canary_version=traffic.canary_version,
        canary_percent=traffic.canary_percent,
        shadow_version=traffic.shadow_version,
        judgement=judge_policy(traffic.judgement, "traffic.judgement"),
    )


def rollback_request(request: pb.RollbackModelRequest) -> tuple[str, str]:
    """(model id, the version to roll back to; '' for the previous stable version)."""
    return model_id_of(request.name), request.version
