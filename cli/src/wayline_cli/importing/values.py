"""Cell values → Event field values: the timestamp shapes exports use, exact money, typed properties.

Exports disagree on everything: CSV gives strings, JSON lines and Parquet give numbers, booleans, dates and
decimals. These conversions accept each shape a value honestly has and refuse the rest with a CellError
carrying a machine-readable reason, so a row that cannot be mapped is reported with why instead of being sent
half-filled. Historic data is the norm here, so nothing assumes a date after 1970 or even 1900.
"""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from google.protobuf import descriptor

__all__ = [
    "KINDS",
    "CellError",
    "as_text",
    "convert",
    "enum_value",
    "is_empty",
    "parse_money",
    "parse_timestamp",
]

KINDS = ("auto", "string", "integer", "number", "boolean", "json", "timestamp")
EPOCH_FORMATS = ("epoch_s", "epoch_ms")
# |value| at or above this is read as milliseconds: 1e11 seconds would be the year 5138, while 1e11
# milliseconds is March 1973. Use the format epoch_s or epoch_ms where that guess is wrong.
_EPOCH_MS_FROM = Decimal(100_000_000_000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
_BASIC_DATE = re.compile(r"\d{8}")  # 19870615: a date, not 1970-08-18 in epoch seconds
_NANOS = Decimal("1e-9")
_INT64 = 2**63
_EXACT_INTEGERS = 2**53  # every integer up to it is a double
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class CellError(ValueError):
    """One value that cannot become the field it is mapped to."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


def is_empty(value: object) -> bool:
    """Empty cells are skipped rather than sent as empty strings: CSV cannot tell "" from "no value"."""
    return value is None or (isinstance(value, str) and not value.strip())


def as_text(value: object) -> str:
    """Text as a person would write it: 12345 stays "12345" (not "12345.0"), decimals keep their digits."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True)


def parse_timestamp(value: object, tz: tzinfo, fmt: str | None = None) -> datetime:
    """An aware UTC datetime from ISO 8601 (with or without zone), a date, epoch seconds or milliseconds,
    or a strptime `fmt`. Naive values are read in `tz`."""
    try:
        moment = _moment(value, fmt)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        return moment.astimezone(UTC)
    except CellError:
        raise
    except (ValueError, OverflowError, ArithmeticError) as error:
        expected = f"the format {fmt!r}" if fmt else "ISO 8601, a date, or epoch seconds/milliseconds"
        raise CellError("INVALID_TIMESTAMP", f"{value!r} is not a time in {expected} ({error})") from None


def _moment(value: object, fmt: str | None) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise CellError("INVALID_TIMESTAMP", f"{value!r} is not a time")
    if isinstance(value, int | float | Decimal):
        return _from_epoch(Decimal(str(value)), fmt)
    if not isinstance(value, str):
        raise CellError("INVALID_TIMESTAMP", f"a {type(value).__name__} is not a time")
    text = value.strip()
    if fmt in EPOCH_FORMATS or (fmt is None and _NUMBER.fullmatch(text) and not _BASIC_DATE.fullmatch(text)):
        return _from_epoch(Decimal(text), fmt)
    if fmt:
        return datetime.strptime(text, fmt)
    return datetime.fromisoformat(text)


def _from_epoch(number: Decimal, fmt: str | None) -> datetime:
    if not number.is_finite():
        raise ValueError("not a finite number")
    milliseconds = fmt == "epoch_ms" or (fmt != "epoch_s" and abs(number) >= _EPOCH_MS_FROM)
    micros = number * (1000 if milliseconds else 1_000_000)
    return _EPOCH + timedelta(microseconds=int(micros.to_integral_value()))


def parse_money(amount: object) -> tuple[int, int]:
    """`(units, nanos)` of an exact decimal amount, both with the amount's sign (google.type.Money)."""
    try:
        if isinstance(amount, bool) or not isinstance(amount, int | float | Decimal | str):
            raise InvalidOperation
        exact = Decimal(amount.strip() if isinstance(amount, str) else str(amount))
        if not exact.is_finite():
            raise InvalidOperation
        exact = exact.quantize(_NANOS, rounding=ROUND_HALF_EVEN)
    except (InvalidOperation, ValueError):
        raise CellError("INVALID_AMOUNT", f"{amount!r} is not a decimal amount such as 59.90") from None
    units = int(exact)  # truncates toward zero, so nanos keeps the sign of units
    if not -_INT64 <= units < _INT64:
        raise CellError("INVALID_AMOUNT", f"{amount!r} is too large for an amount")
    return units, int((exact - units) * 1_000_000_000)


def convert(value: object, kind: str, tz: tzinfo) -> object:
    """A JSON-like value for `google.protobuf.Struct`, as `kind` says (see KINDS); `auto` keeps the type the
    file gave (so CSV cells stay strings)."""
    try:
        if kind == "string":
            return as_text(value)
        if kind == "integer":
            return _integer(value)
        if kind == "number":
            return _number(value)
        if kind == "boolean":
            return _boolean(value)
        if kind == "json" and isinstance(value, str):
            return _jsonable(json.loads(value))
        if kind == "timestamp":
            return parse_timestamp(value, tz).isoformat().replace("+00:00", "Z")
        return _jsonable(value)
    # RecursionError: a JSON cell nested deeper than the decoder recurses.
    except (ValueError, ArithmeticError, TypeError, RecursionError) as error:
        if isinstance(error, CellError):
            raise
        raise CellError(f"INVALID_{kind.upper()}", f"{_shown(value)} is not a valid {kind}") from None


def _shown(value: object) -> str:
    """A cell in a message: its repr, cut (a cell can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _integer(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError
    exact = Decimal(value.strip() if isinstance(value, str) else str(value))
    if not exact.is_finite() or exact != exact.to_integral_value():
        raise ValueError
    if abs(exact) > _EXACT_INTEGERS:  # a Struct's number is a double: 2**53 + 1 would arrive as 2**53
        raise CellError(
            "INVALID_INTEGER",
            f"{_shown(value)} is past ±2**53, which a JSON number cannot hold exactly; map it as a string",
        )
    return int(exact)


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError
    number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError
    return number


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = as_text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError


def _jsonable(value: object) -> object:
    """The file's value as Struct can hold it: decimals and numbers as numbers, times as ISO text."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        float(value)  # OverflowError (an ArithmeticError) past a double's range, which no Struct holds
        return value
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        return number
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def enum_value(enum: descriptor.EnumDescriptor, value: object, aliases: dict[str, str] | None = None) -> int:
    """The number of an enum value named with or without its prefix, in any case, with - or space for _:
    `in-store`, `IN_STORE` and `CHANNEL_IN_STORE` are all CHANNEL_IN_STORE."""
    prefix = enum.values[0].name.removesuffix("UNSPECIFIED")
    text = re.sub(r"[\s\-]+", "_", as_text(value).strip().lower())
    text = (aliases or {}).get(text, text).upper()
    for name in (text, prefix + text):
        found = enum.values_by_name.get(name)
        if found is not None and found.number != 0:
            return int(found.number)
    known = ", ".join(v.name.removeprefix(prefix).lower() for v in enum.values[1:])
    raise CellError(f"INVALID_{prefix.rstrip('_')}", f"{value!r} is not one of: {known}")
