"""Requests drawn from a request message's descriptor, for the test that every RPC refuses what a caller got
wrong: every field of every message reachable from the request, with the values callers get wrong most —
strings with NUL, empty or 100,000 characters long, ints at and past their type's ends, NaN and infinities,
Timestamps and Durations outside protobuf's ranges or with nanos out of range, enum numbers this build does
not define, Structs nested past protobuf's recursion limit, repeated fields with thousands of items, page
tokens that are random bytes or a well-formed token holding the wrong cursor, oneofs set to their empty
member — and now and then a plausible value (a resource name, a time of this year), so that validation past
the first check is reached too. Built from the descriptor alone, so a new field or RPC is drawn without
anyone writing a strategy for it."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from typing import Any, cast

from google.protobuf import descriptor, message_factory, struct_pb2
from google.protobuf.message import Message
from hypothesis import strategies as st

from wayline.common.paging import encode_page_token
from wayline.common.timestamps import MAX_DURATION_SECONDS, MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS

__all__ = ["requests"]

FD = descriptor.FieldDescriptor
Draw = Callable[[st.SearchStrategy[Any]], Any]

# Message fields are drawn this many levels below the request; deeper ones are left unset (the recursive
# messages, conditions and filters, would otherwise grow without bound).
_MAX_DEPTH = 5
# A repeated field's "thousands of items": copies of one small item.
_MANY = 2000

_INT64 = (-(2**63), 2**63 - 1)
_INT_RANGES = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: _INT64,
    FD.TYPE_SINT64: _INT64,
    FD.TYPE_SFIXED64: _INT64,
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}

_COLLECTIONS = (
    "tenants",
    "apiKeys",
    "persons",
    "profiles",
    "segments",
    "flows",
    "connectors",
    "models",
    "versions",
    "actions",
    "decisions",
    "trackingPlans",
    "erasures",
    "deadLetters",
)
_ODD_STRINGS = (
    "",
    "\x00",
    "a\x00b",
    " ",
    "x" * 100_000,
    "é" * 50_000,
    "../..",
    "*",
    "%",
    "_",
    "'",
    '"',
    "\\",
    "{",
    "null",
    "-1",
    "1e999",
    "NaN",
    "2026-03-02T10:00:00Z",
    "9999-12-31T23:59:60Z",
    "0000-00-00",
    "tenants/acme",
    "00000000-0000-0000-0000-000000000000",
    "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "user@example.com",
    "web",
    "page",
    "\u00b2",  # passes str.isdigit, but int() refuses it
    "\u0661\u0662",  # Arabic-Indic digits, which int() reads
    "\u00b2:web:/pricing",  # a path node id with such a position
    "[" * 100_000,  # JSON text nested past the decoder's recursion
    '{"allOf": [' * 300 + "{}" + "]}" * 300,  # valid JSON, nested past what a recursive reader of it goes
)
_STRINGS: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(_ODD_STRINGS),
    st.text(max_size=24),
    st.builds(
        "/".join,
        st.lists(st.one_of(st.sampled_from(_COLLECTIONS), st.text(max_size=8)), min_size=1, max_size=4),
    ),
)
_SMALL_STRINGS = st.text(max_size=8)

_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),  # NaN and the infinities included: Value's number_value carries them
    st.integers(-(2**70), 2**70).map(float),
    st.sampled_from(_ODD_STRINGS),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_SMALL_STRINGS, inner, max_size=4)),
    max_leaves=12,
)


def _nested(depth: int) -> dict[str, Any]:
    """A JSON object `depth` objects deep: each level is three messages deep on the wire (Struct, the map
    entry, Value), so a depth of 40 is past the 100 levels protobuf parses."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


_STRUCT_DICTS = st.one_of(
    st.dictionaries(_STRINGS, _JSON, max_size=5),
    st.sampled_from([10, 40]).map(_nested),
)

_PAGE_TOKENS = st.one_of(
    _STRINGS,
    st.binary(max_size=64).map(lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")),
    st.binary(max_size=64).map(lambda raw: base64.b64encode(raw).decode()),
    st.dictionaries(_SMALL_STRINGS, _JSON, max_size=4).map(encode_page_token),
    st.dictionaries(
        st.sampled_from(
            ["after", "cursor", "offset", "key", "k", "id", "time", "seq", "digest", "fingerprint"]
        ),
        _JSON,
        max_size=4,
    ).map(encode_page_token),
)


def _integers(field: descriptor.FieldDescriptor) -> st.SearchStrategy[int]:
    low, high = _INT_RANGES[field.type]
    ends = [v for v in (0, 1, -1, 2, 100, 10**6, 2**31 - 1, 2**31, 2**53 + 1, low, high) if low <= v <= high]
    return st.one_of(st.sampled_from(ends), st.integers(low, high), st.integers(max(low, -5), 1000))


def _floats(field: descriptor.FieldDescriptor) -> st.SearchStrategy[float]:
    odd = [float("nan"), float("inf"), float("-inf"), -0.0, 0.0, 1.0, -1.0, 0.5, 1e308, 5e-324, 3.4e38]
    return st.one_of(st.sampled_from(odd), st.floats(width=32 if field.type == FD.TYPE_FLOAT else 64))


def _enums(field: descriptor.FieldDescriptor) -> st.SearchStrategy[int]:
    assert field.enum_type is not None
    defined = [value.number for value in field.enum_type.values]
    return st.one_of(st.sampled_from(defined), st.sampled_from([99, -1, 2**31 - 1, -(2**31)]))


def _scalar(field: descriptor.FieldDescriptor, small: bool) -> st.SearchStrategy[Any]:
    if field.type == FD.TYPE_STRING:
        if field.name.endswith("page_token"):
            return _PAGE_TOKENS
        return _SMALL_STRINGS if small else _STRINGS
    if field.type == FD.TYPE_BYTES:
        return (
            st.binary(max_size=16) if small else st.one_of(st.binary(max_size=64), st.just(b"\x00" * 100_000))
        )
    if field.type == FD.TYPE_BOOL:
        return st.booleans()
    if field.type == FD.TYPE_ENUM:
        return _enums(field)
    if field.type in (FD.TYPE_DOUBLE, FD.TYPE_FLOAT):
        return _floats(field)
    return _integers(field)


def _timestamps() -> st.SearchStrategy[dict[str, int]]:
    seconds = st.one_of(
        st.sampled_from(
            [
                0,
                -1,
                1_772_445_600,  # 2026-03-02
                MIN_TIMESTAMP_SECONDS,
                MAX_TIMESTAMP_SECONDS,
                MIN_TIMESTAMP_SECONDS - 1,
                MAX_TIMESTAMP_SECONDS + 1,
                2**62,
                *_INT64,
            ]
        ),
        st.integers(*_INT64),
        st.integers(MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS),
    )
    nanos = st.one_of(
        st.sampled_from([0, -1, 999_999_999, 1_000_000_000, 2**31 - 1, -(2**31)]), st.integers(0, 999_999_999)
    )
    return st.fixed_dictionaries({"seconds": seconds, "nanos": nanos})


def _durations() -> st.SearchStrategy[dict[str, int]]:
    seconds = st.one_of(
        st.sampled_from([0, 1, -1, 60, 86_400, MAX_DURATION_SECONDS, MAX_DURATION_SECONDS + 1, *_INT64]),
        st.integers(*_INT64),
        st.integers(-(10**6), 10**8),
    )
    nanos = st.one_of(
        st.sampled_from([0, 1, -1, 999_999_999, -999_999_999, 1_000_000_000, 2**31 - 1, -(2**31)]),
        st.integers(-(2**31), 2**31 - 1),
    )
    return st.fixed_dictionaries({"seconds": seconds, "nanos": nanos})


def _field_names(root: descriptor.Descriptor) -> list[str]:
    """Every field name reachable from `root`, for FieldMask paths that name a field now and then."""
    names: set[str] = set()
    seen: set[str] = set()
    stack = [root]
    while stack:
        message = stack.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        for field in message.fields:
            names.add(field.name)
            if field.message_type is not None:
                stack.append(field.message_type)
    return sorted(names)


class _Drawer:
    """Draws one message of a request's tree; `names` are the request's field names (for FieldMasks)."""

    def __init__(self, draw: Draw, names: list[str]) -> None:
        self.draw = draw
        self.names = names

    def fill(self, target: Message, depth: int) -> None:
        """Set a random selection of `target`'s fields (none below _MAX_DEPTH)."""
        kind = target.DESCRIPTOR.full_name
        if kind in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
            strategy = _timestamps() if kind.endswith("Timestamp") else _durations()
            values = self.draw(strategy)
            target.seconds, target.nanos = values["seconds"], values["nanos"]  # type: ignore[attr-defined]
            return
        if kind == "google.protobuf.Struct":
            target.update(self.draw(_STRUCT_DICTS))  # type: ignore[attr-defined]
            return
        if kind == "google.protobuf.Value":
            holder = struct_pb2.Struct()
            holder.update({"value": self.draw(st.one_of(_JSON, _STRUCT_DICTS))})
            target.CopyFrom(holder.fields["value"])
            return
        if kind == "google.protobuf.FieldMask":
            paths = st.one_of(st.sampled_from(self.names), _SMALL_STRINGS, st.sampled_from(["*", "", "a.b"]))
            target.paths.extend(self.draw(st.lists(paths, max_size=4)))  # type: ignore[attr-defined]
            return
        if depth >= _MAX_DEPTH:
            return
        message = target.DESCRIPTOR
        for oneof in message.oneofs:  # proto3 `optional` fields too, each in a oneof of its own
            members = cast(list[descriptor.FieldDescriptor], list(oneof.fields))
            chosen = self.draw(st.one_of(st.none(), st.sampled_from(members)))
            if chosen is not None:
                self._set(target, chosen, depth, empty=self.draw(st.booleans()))
        for field in cast(list[descriptor.FieldDescriptor], list(message.fields)):
            if field.containing_oneof is not None:
                continue
            if self.draw(st.booleans()):
                self._set(target, field, depth, empty=False)

    def _set(self, target: Message, field: descriptor.FieldDescriptor, depth: int, *, empty: bool) -> None:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            self._set_map(target, field, depth)
        elif field.is_repeated:
            self._set_repeated(target, field, depth)
        elif field.message_type is not None:
            child = getattr(target, field.name)
            child.SetInParent()
            if not empty:
                self.fill(child, depth + 1)
        elif empty:
            setattr(target, field.name, field.default_value)
        else:
            setattr(target, field.name, self.draw(_scalar(field, small=False)))

    def _set_repeated(self, target: Message, field: descriptor.FieldDescriptor, depth: int) -> None:
        items = getattr(target, field.name)
        many = self.draw(st.integers(0, 9)) == 0
        if field.message_type is None:
            if many:
                items.extend([self.draw(_scalar(field, small=True))] * _MANY)
            else:
                items.extend(self.draw(st.lists(_scalar(field, small=False), max_size=3)))
            return
        if many:
            item = message_factory.GetMessageClass(field.message_type)()
            self.fill(item, _MAX_DEPTH)  # only the well-known types get values this deep
            for _ in range(_MANY):
                items.add().CopyFrom(item)
            return
        for _ in range(self.draw(st.integers(0, 3))):
            self.fill(items.add(), depth + 1)

    def _set_map(self, target: Message, field: descriptor.FieldDescriptor, depth: int) -> None:
        entries = getattr(target, field.name)
        entry = field.message_type
        assert entry is not None
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        for _ in range(self.draw(st.integers(0, 3))):
            key = self.draw(_scalar(key_field, small=False))
            if value_field.message_type is None:
                entries[key] = self.draw(_scalar(value_field, small=False))
            else:
                self.fill(entries[key], depth + 1)


@functools.cache
def requests(request_type: descriptor.Descriptor) -> st.SearchStrategy[Message]:
    """Random messages of `request_type`, any field set or not, each with the values described above."""
    names = _field_names(request_type)

    @st.composite
    def draw_request(draw: Draw) -> Message:
        request = message_factory.GetMessageClass(request_type)()
        _Drawer(draw, names).fill(request, 0)
        return request

    return draw_request()
