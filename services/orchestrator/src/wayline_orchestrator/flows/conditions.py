"""Rules of a flow's conditions (branch conditions, exit conditions). Person conditions are the journeys
service's to evaluate and check; only that one is set is checked here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from wayline.common.errors import FieldViolation

__all__ = ["MAX_DEPTH", "condition_violations"]

MAX_DEPTH = 8
_KINDS = ("group", "trigger_property", "person", "event_since_entry", "channel_preference", "decision")


def condition_violations(condition: Any, path: str, depth: int = 1) -> Iterator[FieldViolation]:
    if not isinstance(condition, dict) or not any(k in condition for k in _KINDS):
        yield FieldViolation(path, f"set one of {', '.join(_KINDS)}", "REQUIRED")
        return
    if depth > MAX_DEPTH:
        yield FieldViolation(path, f"conditions nest at most {MAX_DEPTH} deep", "OUT_OF_RANGE")
        return
    if "group" in condition:
        group = condition["group"]
        members = group.get("conditions", [])
        if not members:
            yield FieldViolation(
                f"{path}.group.conditions", "a group holds at least one condition", "REQUIRED"
            )
        for i, member in enumerate(members):
            yield from condition_violations(member, f"{path}.group.conditions[{i}]", depth + 1)
    elif "event_since_entry" in condition:
        since = condition["event_since_entry"]
        if not (since.get("event") or {}).get("event_name"):
            yield FieldViolation(f"{path}.event_since_entry.event.event_name", "name the event", "REQUIRED")
        if int(since.get("min_count", 0)) < 0:
            yield FieldViolation(f"{path}.event_since_entry.min_count", "must be at least 0", "OUT_OF_RANGE")
    elif "channel_preference" in condition:
        yield from _preference(condition["channel_preference"], f"{path}.channel_preference")
    elif "decision" in condition:
        yield from _decision(condition["decision"], f"{path}.decision")


def _preference(preference: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    channels = preference.get("channels", [])
    if not channels:
        yield FieldViolation(f"{path}.channels", "name at least one channel", "REQUIRED")
    for i, channel in enumerate(channels):
        if channel == "CHANNEL_UNSPECIFIED":
            yield FieldViolation(f"{path}.channels[{i}]", "CHANNEL_UNSPECIFIED is not a channel")


def _decision(decision: dict[str, Any], path: str) -> Iterator[FieldViolation]:
    if not decision.get("placement"):
        yield FieldViolation(f"{path}.placement", "name the placement to decide for", "REQUIRED")
    model = decision.get("model", "")
    if model and (
        not model.startswith("models/") or "/" in model.removeprefix("models/") or model == "models/"
    ):
        yield FieldViolation(f"{path}.model", f"{model!r} is not models/{{model_id}}")
    actions = decision.get("action_ids", [])
    if not actions:
        yield FieldViolation(f"{path}.action_ids", "name at least one action", "REQUIRED")
    seen: set[str] = set()
    for i, action in enumerate(actions):
        if not action:
            yield FieldViolation(f"{path}.action_ids[{i}]", "an action id is not empty")
        elif action in seen:
            yield FieldViolation(f"{path}.action_ids[{i}]", f"{action!r} is listed twice", "DUPLICATE")
        seen.add(action)
