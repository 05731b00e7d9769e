"""A model's traffic as data, and the pure rules that change it (DeployModel, SetModelTraffic,
RollbackModel, the canary judge's verdict), free of storage, loading and gRPC.

Each change is a function of the traffic it was made against, so the lifecycle can apply it again to the
traffic another replica wrote in between (optimistic concurrency on `generation`) and get the answer a
serial order would have given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from wayline.common.errors import FieldViolation
from wayline_decision.errors import NoPreviousVersion, TrafficInvalid
from wayline_decision.serving.judge import Judgement, JudgePolicy, Verdict

__all__ = [
    "BASIS_POINTS",
    "CanaryEvaluation",
    "DeployMode",
    "Traffic",
    "TrafficChange",
    "canary_run",
    "conclude_canary",
    "deploy",
    "rollback",
    "set_traffic",
]

BASIS_POINTS = 10_000  # canary shares are kept in basis points: 1 % = 100


class DeployMode(StrEnum):
    FULL = "full"
    CANARY = "canary"
    SHADOW = "shadow"


@dataclass(frozen=True, slots=True)
class CanaryEvaluation:
    """The canary judge's look at a canary, when it looked, and the versions it compared (kept with the
    verdict: a decisive one ends the run, after which the traffic no longer names the canary)."""

    judgement: Judgement
    evaluate_time_us: int
    stable_version: str = ""
    canary_version: str = ""  # '' in evaluations stored before the versions were


@dataclass(frozen=True, slots=True)
class Traffic:
    """Which versions of one model serve: `generation` counts the changes (0: never deployed)."""

    model_id: str
    stable_version: str = ""
    canary_version: str = ""
    canary_basis_points: int = 0  # 0..10,000 of persons
    shadow_version: str = ""
    previous_stable_version: str = ""
    update_time_us: int = 0
    generation: int = 0
    # The canary's run: when this canary started serving beside this stable version (the judge counts both
    # arms from then), how it is judged (None: by the operator only), and the judge's last look, which is
    # kept after the canary ends (so the verdict that ended it stays readable) until the next run starts.
    canary_start_us: int = 0
    judgement: JudgePolicy | None = None
    evaluation: CanaryEvaluation | None = None

    @property
    def canary_percent(self) -> int:
        return self.canary_basis_points // 100

    @property
    def deployed(self) -> bool:
        return bool(self.stable_version)

    def versions(self) -> tuple[str, ...]:
        """The versions this traffic needs loaded, stable first."""
        return tuple(
            dict.fromkeys(v for v in (self.stable_version, self.canary_version, self.shadow_version) if v)
        )


@dataclass(frozen=True, slots=True)
class TrafficChange:
    """The versions a change asks for, before they are checked against the current traffic."""

    stable_version: str
    canary_version: str = ""
    canary_percent: int = 0
    shadow_version: str = ""
    judgement: JudgePolicy | None = None


def _with_stable(current: Traffic, stable: str) -> Traffic:
    """`current` with `stable` as its stable version; the old stable becomes the previous one when it
    changes."""
    if stable == current.stable_version:
        return current
    return replace(current, stable_version=stable, previous_stable_version=current.stable_version)


def deploy(
    current: Traffic,
    version: str,
    mode: DeployMode,
    canary_percent: int,
    judgement: JudgePolicy | None = None,
) -> Traffic:
    """DeployModel's rule. FULL makes `version` stable and clears the canary (and the shadow when it is
    that version); CANARY and SHADOW need a stable version and add `version` beside it, CANARY with how it
    is judged (`judgement`, replacing the canary's previous one)."""
    violations: list[FieldViolation] = []
    if mode is not DeployMode.CANARY and judgement is not None:
        violations.append(FieldViolation("judgement", "is only given with DEPLOY_MODE_CANARY"))
    if mode is DeployMode.CANARY and not 1 <= canary_percent <= 100:
        violations.append(FieldViolation("canary_percent", "a canary takes 1 to 100 percent of persons"))
    if mode is not DeployMode.CANARY and canary_percent:
        violations.append(FieldViolation("canary_percent", "is only given with DEPLOY_MODE_CANARY"))
    if mode is not DeployMode.FULL:
        if not current.deployed:
            violations.append(
                FieldViolation(
                    "mode", f"models/{current.model_id} has no stable version yet: deploy one in full first"
                )
            )
        elif version == current.stable_version:
            violations.append(FieldViolation("version", f"{version} is already the stable version"))
    if violations:
        raise TrafficInvalid(violations)
    if mode is DeployMode.FULL:
        shadow = "" if current.shadow_version == version else current.shadow_version
        return replace(
            _with_stable(current, version), canary_version="", canary_basis_points=0, shadow_version=shadow
        )
    if mode is DeployMode.CANARY:
        return replace(
            current, canary_version=version, canary_basis_points=canary_percent * 100, judgement=judgement
        )
    return replace(current, shadow_version=version)


def set_traffic(current: Traffic, change: TrafficChange) -> Traffic:
    """SetModelTraffic's rule: the traffic replaced as a whole, checked first."""
    violations: list[FieldViolation] = []
    if not change.stable_version:
        violations.append(
            FieldViolation("traffic.stable_version", "a model's traffic needs a stable version")
        )
    if not 0 <= change.canary_percent <= 100:
        violations.append(FieldViolation("traffic.canary_percent", "must be 0 to 100"))
    if change.canary_percent and not change.canary_version:
        violations.append(FieldViolation("traffic.canary_percent", "a percentage needs a canary_version"))
    if change.canary_version and change.canary_version == change.stable_version:
        violations.append(FieldViolation("traffic.canary_version", "must differ from the stable version"))
    if change.shadow_version and change.shadow_version == change.stable_version:
        violations.append(FieldViolation("traffic.shadow_version", "must differ from the stable version"))
    if change.judgement is not None and not change.canary_version:
        violations.append(FieldViolation("traffic.judgement", "a judgement needs a canary_version"))
    if violations:
        raise TrafficInvalid(violations)
    return replace(
        _with_stable(current, change.stable_version),
        canary_version=change.canary_version,
        canary_basis_points=change.canary_percent * 100,
        shadow_version=change.shadow_version,
        judgement=change.judgement,
    )


def rollback(current: Traffic, version: str) -> Traffic:
    """RollbackModel's rule: `version` (or the previous stable version) serves every decision; the canary
    and the shadow are cleared."""
    target = version or current.previous_stable_version
    if not target:
        raise NoPreviousVersion(current.model_id)
    return replace(_with_stable(current, target), canary_version="", canary_basis_points=0, shadow_version="")


def conclude_canary(current: Traffic, judged: Traffic, evaluation: CanaryEvaluation) -> Traffic:
    """The canary judge's rule: a PROMOTE verdict makes the judged canary the stable version at 100%, a
    ROLL_BACK drops it (the stable version keeps serving); the evaluation is kept either way. Unchanged when
    the canary run judged (`judged`, the traffic the counts were read for) is over: another replica (or an
    admin) changed it first, and the verdict was about a run that no longer serves."""
    verdict = evaluation.judgement.verdict
    if verdict is Verdict.WAIT:
        raise ValueError("a wait verdict changes no traffic")
    if (
        not judged.canary_version
        or current.canary_version != judged.canary_version
        or current.stable_version != judged.stable_version
        or current.canary_start_us != judged.canary_start_us
    ):
        return current
    if verdict is Verdict.PROMOTE:
        shadow = "" if current.shadow_version == current.canary_version else current.shadow_version
        promoted = _with_stable(current, current.canary_version)
        return replace(
            promoted, canary_version="", canary_basis_points=0, shadow_version=shadow, evaluation=evaluation
        )
    return replace(current, canary_version="", canary_basis_points=0, evaluation=evaluation)


def canary_run(current: Traffic, proposed: Traffic, now_us: int) -> Traffic:
    """`proposed` with its canary run kept up, whatever rule made it: no canary, no run (nor judgement); a
    new canary version, or a new stable version under the canary, starts a run now, with no evaluation yet
    (the judge compares both arms from the run's start, so a change of either restarts the count)."""
    if not proposed.canary_version:
        return replace(proposed, canary_start_us=0, judgement=None)
    if proposed.canary_version != current.canary_version or proposed.stable_version != current.stable_version:
        return replace(proposed, canary_start_us=now_us, evaluation=None)
    return proposed
