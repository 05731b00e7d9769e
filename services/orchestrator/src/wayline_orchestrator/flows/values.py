"""Readers of the values of a definition in its proto3 JSON form (durations as `"90s"`, timestamps as RFC
3339), and the small patterns names follow."""

from __future__ import annotations

import datetime
import re
from typing import Any

from wayline.common.time_zones import load_zone

__all__ = [
    "CONNECTOR",
    "FLOW_ID",
    "SEGMENT",
    "STEP_ID",
    "cron_problem",
    "seconds",
    "timestamp",
    "valid_time_zone",
]

FLOW_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
STEP_ID = re.compile(r"[a-z][a-z0-9_]{0,62}")
SEGMENT = re.compile(r"segments/[a-z0-9][a-z0-9_-]{0,63}")
CONNECTOR = re.compile(r"connectors/[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")  # connector ids: lower-kebab-case, 3-63
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
# ASCII digits (`\d` is any script's), at most 9 of them: int() refuses over 4,300 digits with a ValueError.
_CRON_ITEM = re.compile(r"(\*|[0-9]{1,9}(-[0-9]{1,9})?)(/[0-9]{1,9})?")


def seconds(value: Any) -> float | None:
    """A JSON duration (`"3600s"`) in seconds; None when unset."""
    if value is None:
        return None
    return float(str(value).removesuffix("s"))


def timestamp(value: Any) -> datetime.datetime | None:
    """A JSON timestamp; None when unset."""
    if value is None:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def valid_time_zone(name: str) -> bool:
    return load_zone(name) is not None


def cron_problem(expression: str) -> str:
    """What is wrong with a five-field cron expression ('' when nothing): each field `*`, a number, a range,
    each optionally with a `/step`, or a comma-separated list of those, within the field's range."""
    fields = expression.split()
    if len(fields) != 5:
        return f"a cron expression has 5 fields (minute hour day month weekday), not {len(fields)}"
    names = ("minute", "hour", "day of month", "month", "day of week")
    for text, (low, high), name in zip(fields, _CRON_RANGES, names, strict=True):
        for item in text.split(","):
            match = _CRON_ITEM.fullmatch(item)
            if not match:
                return f"the {name} field {text!r} is not *, a number, a range or a list of them"
            numbers = [int(n) for n in re.findall(r"[0-9]+", match.group(1))]
            if any(not low <= n <= high for n in numbers):
                return f"the {name} field {text!r} is outside {low}-{high}"
            if match.group(3) and int(match.group(3)[1:]) == 0:
                return f"the {name} field {text!r} has a step of 0"
    return ""
