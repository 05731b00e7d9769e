"""Rules of each step of a flow, by kind. References between steps are the graph's to check."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from wayline.common.errors import FieldViolation
from wayline_orchestrator.flows.conditions import condition_violations
from wayline_orchestrator.flows.graph import KINDS, step_kind
from wayline_orchestrator.flows.values import CONNECTOR, STEP_ID, seconds, valid_time_zone

__all__ = ["step_violations"]

_SPLIT_TOTAL, _SPLIT_TOLERANCE = 100.0, 1e-6
_MAX_VARIANTS, _MAX_PERSONALISATION = 10, 50
_SOURCES = ("person.", "trigger.properties.")


def _positive(value: Any, path: str, required: bool) -> Iterator[FieldViolation]:
    length = seconds(value)
    if length is None:
        if required:
            yield FieldViolation(path, "required", "REQUIRED")
    elif length <= 0:
        yield FieldViolation(path, f"must be positive, not {value}", "OUT_OF_RANGE")


def _event_named(matcher: Any, path: str) -> Iterator[FieldViolation]:
    if not (matcher or {}).get("event_name"):
        yield FieldViolation(f"{path}.event_name", "name the event", "REQUIRED")


def _wait(wait: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    if not any(k in wait for k in ("duration", "time", "local_time", "event")):
        yield FieldViolation(path, "set one of duration, time, local_time, event", "REQUIRED")
    if "duration" in wait:
        yield from _positive(wait["duration"], f"{path}.duration", True)
    if "local_time" in wait:
        local = wait["local_time"]
        if not 0 <= local.get("hour", 0) <= 23:
            yield FieldViolation(f"{path}.local_time.hour", "must be 0 to 23", "OUT_OF_RANGE")
        if not 0 <= local.get("minute", 0) <= 59:
            yield FieldViolation(f"{path}.local_time.minute", "must be 0 to 59", "OUT_OF_RANGE")
        zone = local.get("time_zone", "")
        if zone and not valid_time_zone(zone):
            yield FieldViolation(f"{path}.local_time.time_zone", f"{zone!r} is not an IANA time zone")
    if "event" in wait:
        yield from _event_named(wait["event"].get("event"), f"{path}.event.event")
        yield from _positive(wait["event"].get("timeout"), f"{path}.event.timeout", True)


def _split(split: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    variants = split.get("variants", [])
    if len(variants) < 2:
        yield FieldViolation(f"{path}.variants", "a split has at least 2 variants", "REQUIRED")
    if len(variants) > _MAX_VARIANTS:
        yield FieldViolation(f"{path}.variants", f"at most {_MAX_VARIANTS} variants", "OUT_OF_RANGE")
    labels: set[str] = set()
    controls = 0
    for i, variant in enumerate(variants):
        label = variant.get("label", "")
        if not label:
            yield FieldViolation(f"{path}.variants[{i}].label", "label the variant", "REQUIRED")
        elif label in labels:
            yield FieldViolation(f"{path}.variants[{i}].label", f"{label!r} labels two variants", "DUPLICATE")
        labels.add(label)
        weight = variant.get("weight", 0.0)
        if not isinstance(weight, int | float) or not math.isfinite(weight) or weight <= 0:
            yield FieldViolation(
                f"{path}.variants[{i}].weight", f"must be a positive percentage, not {weight}"
            )
        controls += bool(variant.get("control"))
    if controls > 1:
        yield FieldViolation(f"{path}.variants", f"at most one control variant, not {controls}")
    total = sum(v.get("weight", 0.0) for v in variants if isinstance(v.get("weight", 0.0), int | float))
    if variants and abs(total - _SPLIT_TOTAL) > _SPLIT_TOLERANCE:
        yield FieldViolation(f"{path}.variants", f"the weights sum to {total:g}, not 100", "SPLIT_WEIGHTS")


def _connector(connector: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    name = connector.get("connector", "")
    if not name:
        yield FieldViolation(f"{path}.connector", "name the connector", "REQUIRED")
    elif not CONNECTOR.fullmatch(name):
        yield FieldViolation(f"{path}.connector", f"{name!r} does not match {CONNECTOR.pattern}")
    if not connector.get("template_id"):
        yield FieldViolation(f"{path}.template_id", "name the template", "REQUIRED")
    fields = connector.get("personalisation", [])
    if len(fields) > _MAX_PERSONALISATION:
        yield FieldViolation(
            f"{path}.personalisation", f"at most {_MAX_PERSONALISATION} fields", "OUT_OF_RANGE"
        )
    names: set[str] = set()
    for i, field in enumerate(fields):
        here = f"{path}.personalisation[{i}]"
        variable = field.get("name", "")
        if not variable:
            yield FieldViolation(f"{here}.name", "name the template variable", "REQUIRED")
        elif variable in names:
            yield FieldViolation(f"{here}.name", f"{variable!r} is filled twice", "DUPLICATE")
        names.add(variable)
        source = field.get("source", "")
        if not source.startswith(_SOURCES) or source in _SOURCES:
            yield FieldViolation(
                f"{here}.source", f"{source!r} is not person.<trait> or trigger.properties.<key>"
            )


def _action(action: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    if action.get("channel", "CHANNEL_UNSPECIFIED") == "CHANNEL_UNSPECIFIED":
        yield FieldViolation(f"{path}.channel", "name the channel to send on", "REQUIRED")
    if not any(action.get(k) for k in ("action_id", "decision_placement", "connector")):
        yield FieldViolation(path, "set action_id, decision_placement or connector", "REQUIRED")
    if action.get("candidate_action_ids") and not action.get("decision_placement"):
        yield FieldViolation(f"{path}.candidate_action_ids", "candidates need a decision_placement")
    if action.get("suppressed_step_id") and action.get("on_suppressed") != "SUPPRESSION_BEHAVIOR_BRANCH":
        yield FieldViolation(
            f"{path}.suppressed_step_id", "only with on_suppressed SUPPRESSION_BEHAVIOR_BRANCH"
        )
    if "connector" in action:
        yield from _connector(action["connector"], f"{path}.connector")


def _kind(kind: str, body: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    if kind == "wait":
        yield from _wait(body, path)
    elif kind == "branch":
        branches = body.get("branches", [])
        if not branches:
            yield FieldViolation(f"{path}.branches", "a branch step has at least one branch", "REQUIRED")
        for i, branch in enumerate(branches):
            yield from condition_violations(branch.get("condition"), f"{path}.branches[{i}].condition")
    elif kind == "engagement_branch":
        if not body.get("action_step_id"):
            yield FieldViolation(f"{path}.action_step_id", "name the action step to watch", "REQUIRED")
        if body.get("engagement", "ENGAGEMENT_TYPE_UNSPECIFIED") == "ENGAGEMENT_TYPE_UNSPECIFIED":
            yield FieldViolation(f"{path}.engagement", "name the engagement to wait for", "REQUIRED")
        yield from _positive(body.get("window"), f"{path}.window", True)
    elif kind == "split":
        yield from _split(body, path)
    elif kind == "action":
        yield from _action(body, path)
    elif kind == "goal":
        yield from _event_named(body.get("event"), f"{path}.event")
        yield from _positive(body.get("timeout"), f"{path}.timeout", False)


def step_violations(steps: list[dict[str, Any]], prefix: str) -> Iterator[FieldViolation]:
    seen: set[str] = set()
    for i, step in enumerate(steps):
        path = f"{prefix}.steps[{i}]"
        sid = step.get("id", "")
        if not sid:
            yield FieldViolation(f"{path}.id", "every step has an id", "REQUIRED")
        elif not STEP_ID.fullmatch(sid):
            yield FieldViolation(f"{path}.id", f"{sid!r} does not match {STEP_ID.pattern}")
        elif sid in seen:
            yield FieldViolation(f"{path}.id", f"{sid!r} is the id of an earlier step", "DUPLICATE_ID")
        seen.add(sid)
        kind = step_kind(step)
        if not kind:
            yield FieldViolation(path, f"set one of {', '.join(KINDS)}", "REQUIRED")
        else:
            yield from _kind(kind, step[kind], f"{path}.{kind}")
