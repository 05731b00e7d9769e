"""The rules a holdout config must satisfy, as field violations (paths under the request's
`holdout_config`)."""

from __future__ import annotations

import math
import re

from wayline.common.errors import FieldViolation
from wayline_decision.holdouts.model import HoldoutConfig

__all__ = ["MAX_GROUPS", "MAX_PERCENT", "holdout_violations"]

MAX_GROUPS = 20
MAX_PERCENT = 50.0
_GROUP_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_MODEL = re.compile(r"models/[a-z0-9][a-z0-9_-]{0,63}")
_PLACEMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_MAX_NAME, _MAX_ID, _MAX_SALT = 200, 63, 200


def holdout_violations(config: HoldoutConfig, prefix: str = "holdout_config.") -> list[FieldViolation]:
    found: list[FieldViolation] = []
    if len(config.groups) > MAX_GROUPS:
        found.append(
            FieldViolation(prefix + "groups", f"at most {MAX_GROUPS} groups, not {len(config.groups)}")
        )
    seen: set[str] = set()
    for index, group in enumerate(config.groups):
        p = f"{prefix}groups[{index}]."
        if not (_GROUP_ID.fullmatch(group.group_id) and len(group.group_id) <= _MAX_ID):
            found.append(
                FieldViolation(
                    p + "group_id", f"{group.group_id!r} is not lower-kebab-case (1 to 63 characters)"
                )
            )
        elif group.group_id in seen:
            found.append(FieldViolation(p + "group_id", f"{group.group_id!r} is used by an earlier group"))
        seen.add(group.group_id)
        if len(group.display_name) > _MAX_NAME:
            found.append(FieldViolation(p + "display_name", f"at most {_MAX_NAME} characters"))
        if not (math.isfinite(group.percent) and 0 <= group.percent <= MAX_PERCENT):
            found.append(FieldViolation(p + "percent", f"must be 0 to {MAX_PERCENT:g}, not {group.percent}"))
        if not group.salt:
            found.append(FieldViolation(p + "salt", "required: the assignment seed (any text)"))
        elif len(group.salt) > _MAX_SALT:
            found.append(FieldViolation(p + "salt", f"at most {_MAX_SALT} characters"))
        for i, model in enumerate(group.models):
            if not _MODEL.fullmatch(model):
                found.append(FieldViolation(f"{p}models[{i}]", f"{model!r} is not `models/{{model_id}}`"))
        for i, placement in enumerate(group.placements):
            if not _PLACEMENT.fullmatch(placement):
                found.append(
                    FieldViolation(
                        f"{p}placements[{i}]", f"{placement!r} does not match {_PLACEMENT.pattern}"
                    )
                )
    return found
