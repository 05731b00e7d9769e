"""The rules a catalogued action must satisfy, as field violations (paths under the request's `action`)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator

from wayline.common.errors import FieldViolation
from wayline_decision.actions.model import Action
from wayline_decision.packages import MODEL_ID_PATTERN

__all__ = ["ACTION_ID_PATTERN", "action_id_violations", "action_violations"]

ACTION_ID_PATTERN = MODEL_ID_PATTERN
_PLACEMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SEGMENT = re.compile(r"segments/[a-z0-9][a-z0-9_-]{0,63}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_NAME, _MAX_DESCRIPTION, _MAX_LIST = 200, 2_000, 50


def action_id_violations(action_id: str, field: str = "action_id") -> list[FieldViolation]:
    if ACTION_ID_PATTERN.fullmatch(action_id):
        return []
    return [FieldViolation(field, f"{action_id!r} does not match {ACTION_ID_PATTERN.pattern}")]


def _list(values: Iterable[str], path: str, pattern: re.Pattern[str] | None) -> Iterator[FieldViolation]:
    seen: set[str] = set()
    items = list(values)
    if len(items) > _MAX_LIST:
        yield FieldViolation(path, f"at most {_MAX_LIST} entries, not {len(items)}")
    for index, value in enumerate(items):
        if pattern is not None and not pattern.fullmatch(value):
            yield FieldViolation(f"{path}[{index}]", f"{value!r} does not match {pattern.pattern}")
        elif value.endswith("_UNSPECIFIED"):
            yield FieldViolation(f"{path}[{index}]", "must be a stage, not unspecified")
        if value in seen:
            yield FieldViolation(f"{path}[{index}]", f"{value!r} is listed twice")
        seen.add(value)


def action_violations(action: Action, prefix: str = "action.") -> list[FieldViolation]:
    """Every problem of `action`, each with its field path (`prefix` + the field)."""
    p = prefix
    found: list[FieldViolation] = []
    if len(action.display_name) > _MAX_NAME:
        found.append(FieldViolation(p + "display_name", f"at most {_MAX_NAME} characters"))
    if len(action.description) > _MAX_DESCRIPTION:
        found.append(FieldViolation(p + "description", f"at most {_MAX_DESCRIPTION} characters"))
    if action.channel == "CHANNEL_UNSPECIFIED":
        found.append(FieldViolation(p + "channel", "required: the channel the action is delivered on"))
    found += _list(action.placements, p + "placements", _PLACEMENT)
    if action.value is not None and not (math.isfinite(action.value) and action.value >= 0):
        found.append(
            FieldViolation(p + "value", f"must be a finite number of at least 0, not {action.value}")
        )
    if action.value_currency and not _CURRENCY.fullmatch(action.value_currency):
        found.append(
            FieldViolation(p + "value_currency", f"{action.value_currency!r} is not an ISO 4217 code (EUR)")
        )
    if action.lever is not None and not (math.isfinite(action.lever) and action.lever > 0):
        found.append(FieldViolation(p + "lever", f"must be a finite number above 0, not {action.lever}"))
    if action.start_time is not None and action.end_time is not None and action.end_time <= action.start_time:
        found.append(FieldViolation(p + "end_time", "must be after start_time"))
    eligibility, e = action.eligibility, p + "eligibility."
    found += _list(eligibility.required_segments, e + "required_segments", _SEGMENT)
    found += _list(eligibility.excluded_segments, e + "excluded_segments", _SEGMENT)
    for index, segment in enumerate(eligibility.excluded_segments):
        if segment in eligibility.required_segments:
            found.append(
                FieldViolation(
                    f"{e}excluded_segments[{index}]", f"{segment} is also required: never eligible"
                )
            )
    found += _list(eligibility.lifecycle_stages, e + "lifecycle_stages", None)
    if action.counts_as_contact and action.purpose == "CONTACT_PURPOSE_UNSPECIFIED":
        found.append(FieldViolation(p + "purpose", "required when counts_as_contact: the contact's purpose"))
    return found
