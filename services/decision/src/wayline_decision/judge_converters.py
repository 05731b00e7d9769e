"""The canary judge's contract (CanaryJudgement, CanaryEvaluation) ⇄ its gRPC-free types (serving/judge.py),
for DeployModel/SetModelTraffic (the policy) and GetModel (the last evaluation)."""

from __future__ import annotations

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.decision.v1 import model_pb2
from wayline_decision.serving.judge import JudgePolicy, Verdict
from wayline_decision.serving.traffic import CanaryEvaluation

__all__ = ["evaluation_message", "judge_policy", "judgement_message"]

_VERDICTS = {
    Verdict.WAIT: model_pb2.CANARY_VERDICT_WAIT,
    Verdict.PROMOTE: model_pb2.CANARY_VERDICT_PROMOTE,
    Verdict.ROLL_BACK: model_pb2.CANARY_VERDICT_ROLL_BACK,
}


def judge_policy(message: model_pb2.CanaryJudgement, path: str = "judgement") -> JudgePolicy | None:
    """The policy a CanaryJudgement states, None when judging is off; InvalidArgument naming each bad field
    (under `path`)."""
    if not message.enabled:
        return None
    violations = []
    if not 0 <= message.margin < 1:
        violations.append(
            FieldViolation(f"{path}.margin", "a difference of rates, from 0 to below 1", "OUT_OF_RANGE")
        )
    if message.min_decisions < 0:
        violations.append(FieldViolation(f"{path}.min_decisions", "must not be negative", "OUT_OF_RANGE"))
    if message.confidence and not 0.5 <= message.confidence <= 0.9999:
        violations.append(FieldViolation(f"{path}.confidence", "0 (0.95), or 0.5 to 0.9999", "OUT_OF_RANGE"))
    if violations:
        raise InvalidArgument("the canary judgement is invalid; see the field violations", violations)
    return JudgePolicy(
        margin=message.margin,
        min_decisions=message.min_decisions or 1000,
        confidence=message.confidence or 0.95,
    )


def judgement_message(policy: JudgePolicy | None) -> model_pb2.CanaryJudgement:
    """The policy as the contract states it; unset (not enabled) for None."""
    if policy is None:
        return model_pb2.CanaryJudgement()
    return model_pb2.CanaryJudgement(
        enabled=True,
        margin=policy.margin,
        min_decisions=policy.min_decisions,
        confidence=policy.confidence,
    )


def evaluation_message(evaluation: CanaryEvaluation) -> model_pb2.CanaryEvaluation:
    judgement = evaluation.judgement
    counts = judgement.counts
    message = model_pb2.CanaryEvaluation(
        verdict=_VERDICTS[judgement.verdict],
        stable_decisions=counts.stable.decisions,
        stable_conversions=counts.stable.conversions,
        canary_decisions=counts.canary.decisions,
        canary_conversions=counts.canary.conversions,
        difference=judgement.difference,
        difference_lower=judgement.lower,
        difference_upper=judgement.upper,
        explanation=judgement.explanation,
        stable_version=evaluation.stable_version,
        canary_version=evaluation.canary_version,
    )
    message.evaluate_time.FromMicroseconds(evaluation.evaluate_time_us)
    return message
