"""Validation of a flow definition: every violation at once, each with its field path.

Two levels, as the contract says: a draft may be incomplete (CreateFlow, UpdateFlow), so only malformed
values are refused then; publication refuses every problem, including what is missing, references to steps
that do not exist, unreachable steps, cycles without a wait and split weights that do not sum to 100. The
reasons of the problems a draft may still have are `INCOMPLETE`. At both levels, every property filter must be
well formed as the contract states it (filters.py: its path, its operator's values, an ordering bound a number
or an RFC 3339 time, a MATCHES_REGEX pattern RE2 accepts); one without a property, an operator or the values
its operator needs is incomplete."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wayline.common.errors import FieldViolation
from wayline_orchestrator.flows.conditions import condition_violations
from wayline_orchestrator.flows.filters import filter_violations
from wayline_orchestrator.flows.graph import graph_violations
from wayline_orchestrator.flows.model import Definition
from wayline_orchestrator.flows.steps import step_violations
from wayline_orchestrator.flows.values import SEGMENT, cron_problem, seconds, timestamp, valid_time_zone

__all__ = ["DEFAULT_MAX_DURATION", "INCOMPLETE", "draft_violations", "publish_violations"]

INCOMPLETE = frozenset(
    {"REQUIRED", "UNKNOWN_STEP", "UNREACHABLE", "CYCLE_WITHOUT_WAIT", "NOT_AN_ACTION_STEP", "SPLIT_WEIGHTS"}
)
DEFAULT_MAX_DURATION = 90 * 86_400.0
MAX_STEPS, MAX_PRIORITY, MIN_INTERVAL = 200, 1_000, 3_600.0


def _segment(value: str, path: str) -> Iterator[FieldViolation]:
    if not value:
        yield FieldViolation(path, "name the segment", "REQUIRED")
    elif not SEGMENT.fullmatch(value):
        yield FieldViolation(path, f"{value!r} does not match {SEGMENT.pattern}")


def _schedule(schedule: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    yield from _segment(schedule.get("segment", ""), f"{path}.segment")
    if "cron" in schedule:
        problem = cron_problem(schedule["cron"])
        if problem:
            yield FieldViolation(f"{path}.cron", problem)
    elif "interval" in schedule:
        interval = seconds(schedule["interval"]) or 0.0
        if interval < MIN_INTERVAL:
            yield FieldViolation(f"{path}.interval", "must be at least one hour (3600s)", "OUT_OF_RANGE")
    else:
        yield FieldViolation(path, "set cron or interval", "REQUIRED")
    zone = schedule.get("time_zone", "")
    if zone and not valid_time_zone(zone):
        yield FieldViolation(f"{path}.time_zone", f"{zone!r} is not an IANA time zone")
    start, end = timestamp(schedule.get("start_time")), timestamp(schedule.get("end_time"))
    if start and end and end <= start:
        yield FieldViolation(f"{path}.end_time", "must be after start_time")


def _trigger(definition: Definition, path: str) -> Iterator[FieldViolation]:
    trigger = definition.get("trigger") or {}
    if "event" in trigger:
        if not (trigger["event"].get("event") or {}).get("event_name"):
            yield FieldViolation(f"{path}.event.event.event_name", "name the triggering event", "REQUIRED")
    elif "segment_entry" in trigger:
        yield from _segment(trigger["segment_entry"].get("segment", ""), f"{path}.segment_entry.segment")
    elif "schedule" in trigger:
        yield from _schedule(trigger["schedule"], f"{path}.schedule")
    else:
        yield FieldViolation(path, "set the entry trigger: event, segment_entry or schedule", "REQUIRED")


def _entry_rules(rules: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    cooldown = seconds(rules.get("reentry_cooldown"))
    if cooldown is not None and cooldown < 0:
        yield FieldViolation(f"{path}.reentry_cooldown", "must not be negative", "OUT_OF_RANGE")
    if cooldown and rules.get("reentry") != "REENTRY_POLICY_AFTER_EXIT":
        yield FieldViolation(f"{path}.reentry_cooldown", "only with reentry REENTRY_POLICY_AFTER_EXIT")


def _goal_and_exits(definition: Definition, prefix: str, longest: float) -> Iterator[FieldViolation]:
    if "goal" in definition:
        goal, path = definition["goal"], f"{prefix}.goal"
        if not (goal.get("event") or {}).get("event_name"):
            yield FieldViolation(f"{path}.event.event_name", "name the conversion event", "REQUIRED")
        window = seconds(goal.get("window"))
        if window is None:
            yield FieldViolation(f"{path}.window", "set the conversion window", "REQUIRED")
        elif not 0 < window <= longest:
            yield FieldViolation(
                f"{path}.window", "must be positive and at most max_duration", "OUT_OF_RANGE"
            )
    for i, condition in enumerate(definition.get("exit_conditions", [])):
        yield from condition_violations(condition, f"{prefix}.exit_conditions[{i}]")
    for i, exit_ in enumerate(definition.get("time_exits", [])):
        path = f"{prefix}.time_exits[{i}]"
        if "segment_exit" in exit_:
            yield from _segment(exit_["segment_exit"].get("segment", ""), f"{path}.segment_exit.segment")
        elif "time_in_flow" in exit_:
            length = seconds(exit_["time_in_flow"]) or 0.0
            if not 0 < length < longest:
                yield FieldViolation(
                    f"{path}.time_in_flow", "must be positive and shorter than max_duration", "OUT_OF_RANGE"
                )
        elif "end_time" not in exit_:
            yield FieldViolation(path, "set segment_exit, time_in_flow or end_time", "REQUIRED")


def _all(definition: Definition, prefix: str) -> Iterator[FieldViolation]:
    yield from _trigger(definition, f"{prefix}.trigger")
    yield from _entry_rules(definition.get("entry_rules") or {}, f"{prefix}.entry_rules")
    steps = definition.get("steps", [])
    if not steps:
        yield FieldViolation(f"{prefix}.steps", "a flow has at least one step", "REQUIRED")
    elif len(steps) > MAX_STEPS:
        yield FieldViolation(
            f"{prefix}.steps", f"at most {MAX_STEPS} steps, not {len(steps)}", "OUT_OF_RANGE"
        )
    if not definition.get("entry_step_id"):
        yield FieldViolation(f"{prefix}.entry_step_id", "name the first step", "REQUIRED")
    yield from step_violations(steps, prefix)
    longest = seconds(definition.get("max_duration"))
    if longest is not None and longest <= 0:
        yield FieldViolation(f"{prefix}.max_duration", "must be positive", "OUT_OF_RANGE")
    yield from _goal_and_exits(definition, prefix, longest if longest else DEFAULT_MAX_DURATION)
    if not 0 <= definition.get("priority", 0) <= MAX_PRIORITY:
        yield FieldViolation(f"{prefix}.priority", f"must be 0 to {MAX_PRIORITY}", "OUT_OF_RANGE")
    if len(steps) <= MAX_STEPS:  # the graph's checks recurse once per step: only over a bounded graph
        yield from graph_violations(definition, prefix)
    # Every property filter, wherever it is: as the contract, journeys and decision read it (filters.py);
    # a MATCHES_REGEX pattern compiles in RE2 (ADR 72).
    yield from filter_violations(definition, prefix)


def publish_violations(definition: Definition, prefix: str = "flow.definition") -> list[FieldViolation]:
    """Every problem of a definition, as publication checks it."""
    return list(_all(definition, prefix))


def draft_violations(definition: Definition, prefix: str = "flow.definition") -> list[FieldViolation]:
    """The problems a draft may not have: malformed values (a draft may be incomplete)."""
    return [v for v in _all(definition, prefix) if v.reason not in INCOMPLETE]
