"""One row → one Event, or every reason it cannot be one.

Rows are mapped before anything is sent: a row whose time cannot be read or whose required column is missing
is rejected here, with its row number, and never reaches the server. Each event gets a deterministic id (from
the mapped `event_id` column, or from the file's fingerprint and the row number), which is what makes an
interrupted import safe to resume: a batch that may or may not have been stored is simply sent again and the
pipeline deduplicates it by id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from zoneinfo import ZoneInfo

from google.protobuf import descriptor

from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline_cli.importing.readers import Row
from wayline_cli.importing.spec import FieldSpec, MappingSpec, context_field
from wayline_cli.importing.values import (
    CellError,
    as_text,
    convert,
    enum_value,
    is_empty,
    parse_money,
    parse_timestamp,
)

__all__ = ["NAMESPACE", "Mapped", "Mapper", "Rejected", "Violation"]

# The namespace of import event ids: UUIDv5 over the file's fingerprint and the row number, or over the
# mapped id when that is not a UUID itself (an order number), so overlapping exports share ids.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://wayline.dev/import")
_CHANNEL_ALIASES = {"call_centre": "call_center", "pos": "in_store", "store": "in_store"}
_REQUIRED = ("timestamp", "channel")
_MISSING = object()
_FD = descriptor.FieldDescriptor


@dataclass(frozen=True)
class Violation:
    """One problem of one row: the field (a target, or an event path for the server's), why, which column."""

    field: str
    reason: str
    description: str
    column: str = ""


@dataclass
class Mapped:
    event: event_pb2.Event
    # Event field paths (`identifiers[1]`, `properties.qty`) → the column they came from, so the server's
    # rejections can name the column to fix.
    columns: dict[str, str] = field(default_factory=dict)

    def column_of(self, path: str) -> str:
        best, found = "", ""
        for prefix, column in self.columns.items():
            if (path == prefix or path.startswith((prefix + ".", prefix + "["))) and len(prefix) > len(best):
                best, found = prefix, column
        return found


@dataclass
class Rejected:
    event_id: str
    violations: list[Violation]


@dataclass
class _Pending:
    """Parts of an event that are set once the whole row has been read."""

    properties: dict[str, object] = field(default_factory=dict)
    amount: tuple[int, int] | None = None
    currency: str | None = None


Apply = Callable[[event_pb2.Event, object, Mapped, _Pending], None]


class Mapper:
    def __init__(self, spec: MappingSpec, fingerprint: str) -> None:
        self._tz: tzinfo = ZoneInfo(spec.timezone)
        self._fingerprint = fingerprint
        self._id_spec = next((f for f in spec.fields if f.target == "event_id"), None)
        self._fields = [(f, self._applier(f)) for f in spec.fields if f.target != "event_id"]
        self._identifier_columns = ", ".join(
            f.column for f in spec.fields if f.target.startswith("identifiers.") and f.column
        )

    def map(self, number: int, row: Row) -> Mapped | Rejected:
        event_id = self._event_id(number, row)
        mapped = Mapped(event_pb2.Event(event_id=event_id, type=event_pb2.EVENT_TYPE_TRACK))
        problems: list[Violation] = []
        pending = _Pending()
        for spec, apply in self._fields:
            raw = spec.value if spec.column is None else _lookup(row, spec.column)
            column = spec.column or ""
            if raw is _MISSING or is_empty(raw):
                if spec.target in _REQUIRED:
                    problems.append(_missing(spec.target, column, absent=raw is _MISSING))
                elif column and not spec.target.startswith(("identifiers.", "revenue.")):
                    mapped.columns[spec.target] = column  # the server may require what was left empty
                continue
            try:
                apply(mapped.event, raw, mapped, pending)
            except CellError as error:
                problems.append(Violation(spec.target, error.reason, error.description, column))
        if not problems:
            problems.extend(self._finish(mapped, pending))
        if problems:
            return Rejected(event_id, problems)
        return mapped

    def fallback_id(self, number: int) -> str:
        """The id of row `number` of this file when the mapping gives none: the same on every run."""
        return str(uuid.uuid5(NAMESPACE, f"{self._fingerprint}:{number}"))

    def _event_id(self, number: int, row: Row) -> str:
        spec = self._id_spec
        given = None if spec is None else (spec.value if spec.column is None else _lookup(row, spec.column))
        if given is None or given is _MISSING or is_empty(given):
            return self.fallback_id(number)
        text = as_text(given)
        try:
            return str(uuid.UUID(text))
        except ValueError:
            return str(uuid.uuid5(NAMESPACE, f"id:{text}"))

    def _finish(self, mapped: Mapped, pending: _Pending) -> list[Violation]:
        event = mapped.event
        if pending.properties:
            event.properties.update(pending.properties)  # type: ignore[arg-type]
        if pending.amount is not None:
            if pending.currency is None:
                return [Violation("revenue.currency", "REQUIRED", "an amount needs its currency")]
            units, nanos = pending.amount
            event.revenue.CopyFrom(event_pb2.Money(currency_code=pending.currency, units=units, nanos=nanos))
        if not event.identifiers:
            empty = "every identifier column is empty in this row"
            return [Violation("identifiers", "REQUIRED", empty, self._identifier_columns)]
        return []

    def _applier(self, spec: FieldSpec) -> Apply:
        target, column = spec.target, spec.column or ""
        head, _, rest = target.partition(".")
        tz = self._tz

        def remember(mapped: Mapped, path: str) -> None:
            if column:
                mapped.columns[path] = column

        if target == "timestamp":

            def timestamp(event: event_pb2.Event, raw: object, mapped: Mapped, _: _Pending) -> None:
                event.timestamp.CopyFrom(to_timestamp(parse_timestamp(raw, tz, spec.format)))
                remember(mapped, "timestamp")

            return timestamp
        if target in ("type", "channel"):
            enum = event_pb2.EventType.DESCRIPTOR if target == "type" else event_pb2.Channel.DESCRIPTOR
            aliases = _CHANNEL_ALIASES if target == "channel" else None

            def enumerated(event: event_pb2.Event, raw: object, mapped: Mapped, _: _Pending) -> None:
                setattr(event, target, enum_value(enum, raw, aliases))
                remember(mapped, target)

            return enumerated
        if head == "identifiers":

            def identifier(event: event_pb2.Event, raw: object, mapped: Mapped, _: _Pending) -> None:
                remember(mapped, f"identifiers[{len(event.identifiers)}]")
                event.identifiers.add(type=rest, value=as_text(raw))

            return identifier
        if head == "properties":

            def prop(event: event_pb2.Event, raw: object, mapped: Mapped, pending: _Pending) -> None:
                _nest(pending.properties, rest.split("."), convert(raw, spec.kind, tz))
                remember(mapped, target)

            return prop
        if head == "revenue":

            def revenue(event: event_pb2.Event, raw: object, mapped: Mapped, pending: _Pending) -> None:
                if rest == "amount":
                    pending.amount = parse_money(raw)
                    remember(mapped, "revenue")
                else:
                    pending.currency = as_text(raw).upper()
                    remember(mapped, "revenue.currency_code")

            return revenue
        if head == "context":
            return _context_applier(rest.split("."), spec, tz, remember)

        def text(event: event_pb2.Event, raw: object, mapped: Mapped, _: _Pending) -> None:
            setattr(event, target, as_text(raw))
            remember(mapped, target)

        return text


def _context_applier(
    parts: list[str], spec: FieldSpec, tz: tzinfo, remember: Callable[[Mapped, str], None]
) -> Apply:
    found = context_field(parts)
    assert isinstance(found, _FD)
    path = "context." + ".".join(parts)

    def apply(event: event_pb2.Event, raw: object, mapped: Mapped, _: _Pending) -> None:
        if parts[0] == "extra":
            event.context.extra[parts[1]] = convert(raw, spec.kind, tz)  # type: ignore[assignment]
            remember(mapped, path)
            return
        owner: object = event.context
        for part in parts[:-1]:
            owner = getattr(owner, part)
        try:
            setattr(owner, parts[-1], _scalar(found, raw, tz))
        except (ValueError, TypeError) as error:
            raise CellError("INVALID_VALUE", f"{raw!r} does not fit {path}: {error}") from None
        remember(mapped, path)

    return apply


def _scalar(found: descriptor.FieldDescriptor, raw: object, tz: tzinfo) -> object:
    if found.enum_type is not None:
        return enum_value(found.enum_type, raw)
    if found.type == _FD.TYPE_BOOL:
        return convert(raw, "boolean", tz)
    if found.type in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return convert(raw, "number", tz)
    if found.type in (_FD.TYPE_INT32, _FD.TYPE_INT64, _FD.TYPE_UINT32, _FD.TYPE_UINT64):
        return convert(raw, "integer", tz)
    return as_text(raw)


def _missing(target: str, column: str, *, absent: bool) -> Violation:
    if absent:
        return Violation(target, "MISSING_COLUMN", f"the row has no column {column!r}", column)
    return Violation(target, "MISSING_VALUE", f"the column {column!r} is empty in this row", column)


def _lookup(row: Row, column: str) -> object:
    """The cell of `column`, or of a key path into nested objects (`customer.email` in JSON lines)."""
    if column in row:
        return row[column]
    current: object = row
    for part in column.split("."):
        if not isinstance(current, dict) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _nest(target: dict[str, object], keys: list[str], value: object) -> None:
    for key in keys[:-1]:
        child = target.setdefault(key, {})
        assert isinstance(child, dict)
        target = child
    target[keys[-1]] = value
