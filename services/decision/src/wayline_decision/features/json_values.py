"""JSON values as the contract compares and returns them, computed in Python exactly as the store's
ClickHouse computes them, so that an online value and an offline one are equal to the bit.

The store keeps properties as JSON text and reads them back through ClickHouse, which re-prints numbers
(shortest round-trip digits, in JavaScript's layout: `1` for 1.0, `1e21`, `1e-7`, `-0` for -0.0). Two
consequences that `feature_value` reproduces: an integral number inside an object or list reads back as an
integer (`{"a":1}`, not `{"a":1.0}`), and -0.0 reads back as 0. Objects and lists come back as compact JSON
text with sorted keys (the contract's "compact JSON text"; sorting makes it one text per JSON value).
The numbers' layout is `wayline.common.json_text.number_text`, which the text operators read too.
"""

from __future__ import annotations

import json
from typing import Any, Final, TypeGuard

from wayline.common.json_text import number_text

__all__ = ["MISSING", "distinct_key", "feature_value", "is_number"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""The value of a property the event does not have (unlike a property set to null)."""


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
