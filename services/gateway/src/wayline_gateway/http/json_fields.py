"""Reading typed values out of a parsed JSON object, with the path of every wrong one.

Segment payloads arrive as plain JSON; a field of the wrong type must become a field violation naming where
it is (`batch[3].context.app.name`), not a TypeError. One `Fields` reader per object collects the problems of
a whole message, so a caller learns all of them at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2

from wayline.common.errors import FieldViolation

__all__ = ["Fields", "Violations"]

Violations = list[FieldViolation]


class Fields:
    """Typed access to one JSON object; problems go to the shared `found` list with `prefix` on their path."""

    def __init__(self, data: Mapping[str, Any], prefix: str, found: Violations) -> None:
        self.data = data
        self.prefix = prefix
        self.found = found

    def path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def report(self, key: str, description: str, reason: str = "INVALID") -> None:
        self.found.append(FieldViolation(self.path(key), description, reason))

    def text(self, key: str) -> str:
        """A string; empty when absent or null."""
        value = self.data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.report(key, "must be a string", "INVALID_TYPE")
            return ""
        return value

    def ident(self, key: str) -> str:
        """An id: a string or an integer (SDKs send numeric user ids), as text; empty when absent or null."""
        value = self.data.get(key)
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.report(key, "must be a string (or an integer)", "INVALID_TYPE")
            return ""
        return str(value)

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.report(key, "must be a number", "INVALID_TYPE")
            return None
        try:
            return float(value)
        except OverflowError:  # an int of 400 digits, which Python's JSON reads whole
            self.report(key, "is past what a JSON number holds (about 1.8e308)", "OUT_OF_RANGE")
            return None

    def count(self, key: str, most: int) -> int | None:
        """A number from 0 to `most` (a pixel count for an int32 field), its fraction dropped (React Native
        sends density-independent widths such as 392.727); None when absent, null or outside, which is
        reported (`1e999` parses as infinity, and 2**31 does not fit the field)."""
        value = self.number(key)
        if value is None:
            return None
        if not 0 <= value <= most:  # NaN fails it too
            self.report(key, f"must be a number from 0 to {most}", "OUT_OF_RANGE")
            return None
        return int(value)

    def copy_into(self, target: struct_pb2.Struct, key: str, data: Mapping[str, Any]) -> None:
        """`data`, the object at `key`, into a Struct, whose numbers are doubles: an integer past a double's
        range (Python's JSON reads 400 digits as an int) is reported at `key` instead of raising."""
        try:
            target.update(data)
        except OverflowError:
            self.report(key, "holds an integer past what a JSON number holds (about 1.8e308)", "OUT_OF_RANGE")

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.report(key, "must be true or false", "INVALID_TYPE")
            return None
        return value

    def obj(self, key: str) -> Fields | None:
        """A nested object as a reader; None when absent or null (or not an object, which is reported)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.report(key, "must be a JSON object", "INVALID_TYPE")
            return None
        return Fields(value, self.path(key), self.found)

    def time(self, key: str) -> datetime | None:
        """An ISO-8601 date-time (Segment's format); one without an offset is taken as UTC."""
        value = self.data.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.report(key, "must be an ISO-8601 date-time string", "INVALID_TYPE")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.report(key, "must be an ISO-8601 date-time such as 2024-05-01T12:00:00.000Z", "INVALID_TIME")
            return None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            # In UTC here: an offset can carry 0001-01-01 or 9999-12-31 past what a datetime (and a Timestamp)
            # holds, which would overflow later, in the conversion to the event.
            return parsed.astimezone(UTC)
        except OverflowError:
            self.report(key, "lies outside 0001-01-01 to 9999-12-31 in UTC", "INVALID_TIME")
            return None

    def rest(self, known: frozenset[str]) -> dict[str, Any]:
        """The keys that are not in `known`, verbatim (null values dropped: they carry nothing)."""
        return {k: v for k, v in self.data.items() if k not in known and v is not None}
