"""JSON values as the contract compares and returns them, computed in Python exactly as the store's
ClickHouse computes them, so that an online value and an offline one are equal to the bit.

The store keeps properties as JSON text and reads them back through ClickHouse, which re-prints numbers
(shortest round-trip digits, in JavaScript's layout: `1` for 1.0, `1e21`, `1e-7`, `-0` for -0.0). Two
consequences that `feature_value` reproduces: an integral number inside an object or list reads back as an
integer (`{"a":1}`, not `{"a":1.0}`), and -0.0 reads back as 0. Objects and lists come back as compact JSON
text with sorted keys (the contract's "compact JSON text"; sorting makes it one text per JSON value).
`number_text` is also what the text operators (CONTAINS, MATCHES_REGEX) see of a number.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final

__all__ = ["MISSING", "distinct_key", "feature_value", "is_number", "number_text", "raw_text"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""The value of a property the event does not have (unlike a property set to null)."""

_FIXED_UP_TO = 21  # decimal exponents below this print in full (1e20 → 100000000000000000000)
_FIXED_FROM = -6  # and above this (1e-6 → 0.000001; 1e-7 → 1e-7)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_text(value: float) -> str:
    """The number as ClickHouse prints it: shortest round-trip digits, laid out as JavaScript does."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign, digit_tuple, exponent = Decimal(repr(float(value))).as_tuple()
    assert isinstance(exponent, int)  # a finite number (JSON has no other)
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    point = len(digit_tuple) + exponent  # the value is 0.<digits> * 10**point
    prefix = "-" if sign else ""
    if _FIXED_FROM < point <= _FIXED_UP_TO:
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{digits}"
        if len(digits) <= point:
            return prefix + digits + "0" * (point - len(digits))
        return f"{prefix}{digits[:point]}.{digits[point:]}"
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    return f"{prefix}{mantissa}e{point - 1}"


def _reread(value: Any) -> Any:
    """The value as json.loads reads ClickHouse's text of it: integral-looking numbers become ints."""
    if isinstance(value, dict):
        return {k: _reread(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reread(v) for v in value]
    if is_number(value):
        text = number_text(value)
        return int(text) if text.lstrip("-").isdigit() else float(value)
    return value


def feature_value(value: Any) -> float | str | bool | None:
    """A JSON value (not MISSING) as a feature value: numbers as floats, strings and booleans as they are,
    null as None, objects and lists as compact JSON text with sorted keys."""
    if isinstance(value, bool | str) or value is None:
        return value
    if is_number(value):
        return float(value) + 0.0  # -0.0 reads back as 0
    return json.dumps(_reread(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def distinct_key(value: Any) -> object:
    """What COUNT_DISTINCT compares: JSON values, so 1 and 1.0 (and 0 and -0) are one value, and objects
    are equal whatever their key order."""
    if isinstance(value, bool):
        return ("b", value)
    if is_number(value):
        return ("n", float(value))
    if isinstance(value, str):
        return ("s", value)
    return ("j", feature_value(value))


def raw_text(value: Any) -> str:
    """A present value "as text", as the text operators read it: a string itself, anything else its JSON
    text as ClickHouse prints it (objects keep their stored key order, which this reading of an event's
    properties cannot know; text operators on objects are best effort)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        return number_text(value)
    if value is None:
        return "null"
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)}:{_inner_text(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    return "[" + ",".join(_inner_text(v) for v in value) + "]"


def _inner_text(value: Any) -> str:
    """`raw_text`, with strings quoted (a value inside an object or a list)."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else raw_text(value)
