"""What makes a tracking plan acceptable: field rules, schema rules and the one-plan-per-channel rule.

Checked on every create and update, before anything is written, so that the hot path only ever meets plans
it can compile. Field paths are the contract's (`tracking_plan.event_schemas[2].event_name`), because
these violations go to the caller as they are.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from wayline.common.errors import FieldViolation
from wayline_ingest.plans.jsonschemas import schema_problem
from wayline_ingest.plans.model import (
    CHANNELS,
    EVENT_TYPES,
    NAMED_EVENT_TYPES,
    UNNAMED_EVENT_TYPES,
    WRITABLE_FIELDS,
    PlanSpec,
    TrackingPlan,
)

__all__ = [
    "MAX_DISPLAY_NAME_CHARS",
    "MAX_EVENT_NAME_CHARS",
    "PLAN_ID_PATTERN",
    "find_overlap",
    "plan_id_problem",
    "validate_spec",
]

# lower-kebab-case, 3 to 63 characters, starting with a letter and not ending with a hyphen (AIP-122).
PLAN_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")
MAX_DISPLAY_NAME_CHARS = 200
MAX_EVENT_NAME_CHARS = 200  # as for Event.name


def plan_id_problem(plan_id: str, *, stored: bool = False) -> str | None:
    """Why `plan_id` is not a valid tracking plan id, or None. A new id is matched whole; with `stored` (an id
    a name or a page token names) as ids were matched until 2026-12 (`match`, whose `$` also matches before a
    final newline): a plan created then as `checkout\n` stays reachable, to be read, changed or deleted (ADR
    78)."""
    if (PLAN_ID_PATTERN.match if stored else PLAN_ID_PATTERN.fullmatch)(plan_id):
        return None
    return (
        "must be lower-kebab-case (a-z, 0-9, '-'), 3 to 63 characters, start with a letter and not end "
        "with '-'"
    )


def validate_spec(
    spec: PlanSpec, path: str = "tracking_plan", fields: Collection[str] = WRITABLE_FIELDS
) -> list[FieldViolation]:
    """Every problem of the `fields` of `spec`, with paths under `path`."""
    violations: list[FieldViolation] = []
    if "display_name" in fields and len(spec.display_name) > MAX_DISPLAY_NAME_CHARS:
        violations.append(
            FieldViolation(f"{path}.display_name", f"at most {MAX_DISPLAY_NAME_CHARS} characters", "TOO_LONG")
        )
    if "channels" in fields:
        for index, channel in enumerate(spec.channels):
            if channel not in CHANNELS:
                violations.append(FieldViolation(f"{path}.channels[{index}]", "is not a channel", "INVALID"))
    if "event_schemas" in fields:
        violations.extend(_schema_violations(spec, path))
    return violations


def _schema_violations(spec: PlanSpec, path: str) -> Iterable[FieldViolation]:
    seen: dict[tuple[str, str], int] = {}
    for index, schema in enumerate(spec.event_schemas):
        at = f"{path}.event_schemas[{index}]"
        if schema.event_type not in EVENT_TYPES:
            yield FieldViolation(f"{at}.event_type", "set the event type the schema applies to", "REQUIRED")
        elif schema.event_type in UNNAMED_EVENT_TYPES and schema.event_name:
            yield FieldViolation(
                f"{at}.event_name",
                f"must be empty for {schema.event_type} events (the schema describes their properties)",
                "NOT_ALLOWED",
            )
        elif schema.event_type in NAMED_EVENT_TYPES - {"page"} and not schema.event_name:
            yield FieldViolation(
                f"{at}.event_name", f"name the {schema.event_type} event the schema applies to", "REQUIRED"
            )
        if len(schema.event_name) > MAX_EVENT_NAME_CHARS:
            yield FieldViolation(f"{at}.event_name", f"at most {MAX_EVENT_NAME_CHARS} characters", "TOO_LONG")
        key = (schema.event_type, schema.event_name)
        if key in seen:
            yield FieldViolation(
                f"{at}.event_name",
                f"event_schemas[{seen[key]}] already describes this (event_type, event_name)",
                "DUPLICATE",
            )
        else:
            seen[key] = index
        if schema.properties_json_schema:
            problem = schema_problem(schema.properties_json_schema)
            if problem is not None:
                yield FieldViolation(f"{at}.properties_json_schema", problem, "INVALID_JSON_SCHEMA")


def find_overlap(plan: TrackingPlan, others: Iterable[TrackingPlan]) -> tuple[TrackingPlan, list[str]] | None:
    """The first other enabled plan that shares a channel with `plan`, and the shared channels.

    Empty channels mean every channel. A disabled plan overlaps nothing.
    """
    if not plan.spec.enabled:
        return None
    mine = set(plan.spec.channels or CHANNELS)
    for other in sorted(others, key=lambda p: p.plan_id):
        if other.plan_id == plan.plan_id or not other.spec.enabled:
            continue
        shared = mine & set(other.spec.channels or CHANNELS)
        if shared:
            return other, sorted(shared, key=CHANNELS.index)
    return None
