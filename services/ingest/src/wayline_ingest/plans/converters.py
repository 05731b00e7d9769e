"""Tracking plans on the wire ⇄ the domain: enums, resource names and update masks.

Values that cannot be represented in the domain (an enum number this build does not know) are passed on as
names the rules reject, so the caller gets one field violation per problem with the contract's path.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import field_mask_pb2

from wayline.common.errors import FieldViolation, InvalidArgument
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import tracking_plan_pb2 as tp
from wayline_ingest.plans.model import WRITABLE_FIELDS, EventSchema, PlanMode, PlanSpec, TrackingPlan
from wayline_ingest.plans.rules import plan_id_problem

__all__ = ["OUTPUT_ONLY_FIELDS", "mask_fields", "plan_id_from_name", "plan_to_proto", "spec_from_proto"]

OUTPUT_ONLY_FIELDS = frozenset({"name", "revision", "create_time", "update_time", "etag"})
_NAME_PREFIX = "trackingPlans/"
_MODES: dict[int, PlanMode] = {
    tp.TRACKING_PLAN_MODE_UNSPECIFIED: "flag",  # the contract's default
    tp.TRACKING_PLAN_MODE_REJECT: "reject",
    tp.TRACKING_PLAN_MODE_FLAG: "flag",
}
_MODE_VALUES = {"reject": tp.TRACKING_PLAN_MODE_REJECT, "flag": tp.TRACKING_PLAN_MODE_FLAG}


def _names(enum: Iterable[tuple[str, int]], prefix: str) -> dict[int, str]:
    return {number: name.removeprefix(prefix).lower() for name, number in enum}


_CHANNEL_NAMES = _names(event_pb2.Channel.items(), "CHANNEL_")
_TYPE_NAMES = _names(event_pb2.EventType.items(), "EVENT_TYPE_")


def _enum_name(names: dict[int, str], number: int) -> str:
    return names.get(number, f"unknown({number})")


def spec_from_proto(plan: tp.TrackingPlan, path: str = "tracking_plan") -> PlanSpec:
    """The writable fields of a wire plan; INVALID_ARGUMENT only for a mode number nobody knows."""
    mode = _MODES.get(plan.mode)
    if mode is None:
        raise InvalidArgument(
            "the tracking plan is invalid; see the field violations",
            [FieldViolation(f"{path}.mode", f"{plan.mode} is not a TrackingPlanMode", "INVALID")],
        )
    return PlanSpec(
        display_name=plan.display_name,
        description=plan.description,
        mode=mode,
        channels=tuple(_enum_name(_CHANNEL_NAMES, c) for c in plan.channels),
        enabled=plan.enabled,
        allow_unplanned_events=plan.allow_unplanned_events,
        event_schemas=tuple(
            EventSchema(
                event_type=_enum_name(_TYPE_NAMES, s.event_type),
                event_name=s.event_name,
                properties_json_schema=s.properties_json_schema,
                description=s.description,
            )
            for s in plan.event_schemas
        ),
    )


def plan_to_proto(plan: TrackingPlan) -> tp.TrackingPlan:
    spec = plan.spec
    return tp.TrackingPlan(
        name=plan.name,
        display_name=spec.display_name,
        description=spec.description,
        mode=_MODE_VALUES[spec.mode],
        channels=[event_pb2.Channel.Value(f"CHANNEL_{c.upper()}") for c in spec.channels],
        enabled=spec.enabled,
        allow_unplanned_events=spec.allow_unplanned_events,
        event_schemas=[
            tp.EventSchema(
                event_type=event_pb2.EventType.Value(f"EVENT_TYPE_{s.event_type.upper()}"),
                event_name=s.event_name,
                properties_json_schema=s.properties_json_schema,
                description=s.description,
            )
            for s in spec.event_schemas
        ],
        revision=plan.revision,
        create_time=to_timestamp(plan.create_time),
        update_time=to_timestamp(plan.update_time),
        etag=plan.etag,
    )


def plan_id_from_name(name: str, path: str) -> str:
    """The id in `trackingPlans/{id}`; INVALID_ARGUMENT at `path` for anything else."""
    plan_id = name.removeprefix(_NAME_PREFIX)
    problem = plan_id_problem(plan_id, stored=True) if name.startswith(_NAME_PREFIX) else None
    if not name.startswith(_NAME_PREFIX) or problem is not None:
        description = problem or "must be trackingPlans/{tracking_plan_id}"
        raise InvalidArgument(
            f"{name!r} is not a tracking plan name", [FieldViolation(path, description, "INVALID")]
        )
    return plan_id


def mask_fields(mask: field_mask_pb2.FieldMask, path: str = "update_mask") -> frozenset[str]:
    """The writable fields an update mask names (every one when it is empty)."""
    if not mask.paths:
        return WRITABLE_FIELDS
    violations: list[FieldViolation] = []
    for index, field in enumerate(mask.paths):
        if field in OUTPUT_ONLY_FIELDS:
            violations.append(
                FieldViolation(f"{path}.paths[{index}]", f"{field} is output only", "OUTPUT_ONLY")
            )
        elif field not in WRITABLE_FIELDS:
            violations.append(
                FieldViolation(
                    f"{path}.paths[{index}]",
                    f"{field!r} is not a field of TrackingPlan; repeated fields are replaced whole, "
                    f"name them without a sub-path (writable: {', '.join(sorted(WRITABLE_FIELDS))})",
                    "UNKNOWN_FIELD",
                )
            )
    if violations:
        raise InvalidArgument("the update mask is invalid; see the field violations", violations)
    return frozenset(mask.paths)
