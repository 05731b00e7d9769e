"""The text of a JSON value, as the text operators of a PropertyFilter read it (analytics.proto's
FilterOperator: CONTAINS, NOT_CONTAINS, MATCHES_REGEX; ADR 77).

Journeys evaluates filters in ClickHouse on the JSON text it stores, decision and the orchestrator in Python
on the event; the contract gives all three one text per value, the one journeys' ClickHouse reads back, so
that a filter holds for the same events everywhere:
- a string is itself;
- a number is the shortest decimal that reads back as the same double, laid out as ECMAScript's
  Number::toString lays it out: `2` for 2.0, `2.5`, `100000000000000000000` for 1e20, `1e21`, `0.000001`,
  `1e-7`, `-0` for -0.0. ClickHouse prints every number it parses so (JSONExtractRaw, toJSONString), whatever
  text the stored JSON had (`2.0`, `2`, `2e0`): it does not depend on how the number was written;
- `true`, `false`, and `null` (a text operator holds only on a set property, so never on null; a filter's
  null value is looked for as `null`);
- an object or a list has none (None): its keys' order is not part of the value (a Struct is a map, and the
  order a writer's map gives them varies from process to process), and ClickHouse cannot sort the keys of a
  nested object, so no text would be the same in the store and in an event.

This module is shared, like `wayline.common.patterns`, because two services evaluate the same contract in
Python and must agree to the character; journeys' SQL is the reference they are tested against.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["number_text", "text_of"]

_FIXED_UP_TO = 21  # decimal exponents below this print in full (1e20 → 100000000000000000000)
_FIXED_FROM = -6  # and above this (1e-6 → 0.000001; 1e-7 → 1e-7)


def number_text(value: float) -> str:
    """The number as ClickHouse prints it: shortest round-trip digits, laid out as ECMAScript does."""
    text = repr(float(value))
    if "e" not in text and "n" not in text:
        # Python writes 1e-4 <= |x| < 1e16 (and zero) in full, with the same shortest digits: only an
        # integral number's `.0` differs from ECMAScript's layout, which writes that range in full too.
        return text.removesuffix(".0")
    sign, digit_tuple, exponent = Decimal(text).as_tuple()
    if not isinstance(exponent, int):  # NaN or an infinity: no JSON number, so no text ClickHouse prints
        raise ValueError(f"{value!r} is not a JSON number")
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


def text_of(value: object) -> str | None:
    """A JSON value's text (a property's, or a filter value's); None for an object or a list."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    if value is None:
        return "null"
    return None
