"""Every request's property filters, bounded in all (analytics.proto, PropertyFilter): at most MAX_FILTERS
filters and MAX_FILTER_VALUES of their values, wherever in the request they sit (funnel steps and their
alternatives, exclusions, populations, segment conditions, flow definitions).

Each filter becomes its own part of the journey store's SQL: a few hundred person filters made a query past
what ClickHouse parses (an INTERNAL answer), and a 20-step funnel with ten alternatives a step holds 220
matchers. A budget over the whole request bounds the statement whatever the request's shape. The kit checks it
for every request type that can hold a filter, before the servicer runs, so the same rule holds at every
service (the gateway passes bytes through: the service behind it answers).
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor
from google.protobuf.message import Message

from wayline.common.errors import FieldViolation, InvalidArgument

__all__ = ["MAX_FILTERS", "MAX_FILTER_VALUES", "check_filter_budget", "holds_filters"]

MAX_FILTERS = 200
MAX_FILTER_VALUES = 2_000
_FILTER = "wayline.journeys.v1.PropertyFilter"
_JSON = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})


def holds_filters(message: descriptor.Descriptor) -> bool:
    """Whether a message of this type can hold a PropertyFilter, at any depth."""
    return _reaches(message.full_name, message)


@cache
def _reaches(name: str, message: descriptor.Descriptor, seen: frozenset[str] = frozenset()) -> bool:
    if name == _FILTER:
        return True
    if name in _JSON or name in seen:
        return False
    below = seen | {name}
    return any(
        _reaches(field.message_type.full_name, field.message_type, below)
        for field in message.fields
        if field.message_type is not None
    )


def check_filter_budget(request: Message) -> None:
    """INVALID_ARGUMENT naming the first filter (or value) past the budget, when `request` holds more."""
    counts = [0, 0]  # filters, values
    found = _walk(request, "", counts)
    if found is not None:
        raise InvalidArgument(f"{found.field} {found.description}", [found])


def _walk(message: Message, path: str, counts: list[int]) -> FieldViolation | None:
    if message.DESCRIPTOR.full_name == _FILTER:
        counts[0] += 1
        if counts[0] > MAX_FILTERS:
            return FieldViolation(
                path, f"is past the request's {MAX_FILTERS} property filters in all", "OUT_OF_RANGE"
            )
        counts[1] += len(message.values)  # type: ignore[attr-defined]
        if counts[1] > MAX_FILTER_VALUES:
            return FieldViolation(
                f"{path}.values",
                f"are past the request's {MAX_FILTER_VALUES} filter values in all",
                "OUT_OF_RANGE",
            )
        return None
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None or not holds_filters(kind):
            continue
        name = f"{path}.{field.name}" if path else field.name
        if kind.GetOptions().map_entry:
            items = [(f"{name}[{key!r}]", item) for key, item in value.items()]
        elif field.is_repeated:
            items = [(f"{name}[{i}]", item) for i, item in enumerate(value)]
        else:
            items = [(name, value)]
        for where, item in items:
            found = _walk(item, where, counts)
            if found is not None:
                return found
    return None
