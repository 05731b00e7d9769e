"""Holdout configs: protobuf ⇄ domain."""

from __future__ import annotations

from wayline.common.errors import FieldViolation
from wayline.decision.v1 import holdout_pb2
from wayline_decision.errors import HoldoutConfigInvalid
from wayline_decision.holdouts import HoldoutConfig, HoldoutGroup, Treatment

__all__ = ["holdout_config_message", "holdout_config_of"]


def holdout_config_of(message: holdout_pb2.HoldoutConfig) -> HoldoutConfig:
    groups = []
    problems = []
    for index, group in enumerate(message.groups):
        if group.treatment not in holdout_pb2.HoldoutTreatment.values():
            path = f"holdout_config.groups[{index}].treatment"
            problems.append(FieldViolation(path, f"{group.treatment} is not a HoldoutTreatment"))
            continue
        treatment = (
            Treatment(holdout_pb2.HoldoutTreatment.Name(group.treatment))
            if group.treatment != holdout_pb2.HOLDOUT_TREATMENT_UNSPECIFIED
            else Treatment.NO_ACTION
        )
        groups.append(
            HoldoutGroup(
                group_id=group.group_id,
                display_name=group.display_name,
                enabled=group.enabled,
                percent=group.percent,
                salt=group.salt,
                models=tuple(group.models),
                placements=tuple(group.placements),
                treatment=treatment,
            )
        )
    if problems:
        raise HoldoutConfigInvalid(problems)
    return HoldoutConfig(tuple(groups))


def holdout_config_message(config: HoldoutConfig) -> holdout_pb2.HoldoutConfig:
    message = holdout_pb2.HoldoutConfig(
        groups=[
            holdout_pb2.HoldoutGroup(
                group_id=g.group_id,
                display_name=g.display_name,
                enabled=g.enabled,
                percent=g.percent,
                salt=g.salt,
                models=g.models,
                placements=g.placements,
                treatment=holdout_pb2.HoldoutTreatment.Value(g.treatment.value),
            )
            for g in config.groups
        ],
        etag=config.etag,
    )
    if config.update_time:
        message.update_time.FromMicroseconds(config.update_time)
    return message
