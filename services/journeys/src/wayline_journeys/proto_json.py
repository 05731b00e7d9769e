"""Struct and plain messages ⇄ the JSON text journeys stores, exactly as json_format writes and reads it, but
several times faster.

Every stored event keeps its `properties` (a Struct) and `context` as JSON text. json_format walks messages
through generic, descriptor-driven Python (about 15 µs for a Struct of three keys), which made it the largest
cost of WriteEvents and of GetTimeline. These functions walk the messages directly, with the per-type work
(JSON names, enum names, which converter a field needs) looked up once per message type.

Same output, not merely equivalent JSON: the stored text feeds raw-JSON breakdowns, so `to_json` returns
json_format.MessageToJson(message, indent=None) byte for byte (key order, separators, float repr, ASCII
escapes), and `merge_json` builds the message json_format.Parse builds. What they do not cover (map fields,
Any, proto2 extensions, JSON other than what `to_json` writes) is handed to json_format itself, whole.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = ["JsonMemo", "merge_json", "to_json"]

_STRUCT = "google.protobuf.Struct"
_float_text = float.__repr__  # what json.dumps writes for a float
_text = encode_basestring_ascii  # what json.dumps writes for a str (ensure_ascii, as MessageToJson)


def to_json(message: Message) -> str:
    """json_format.MessageToJson(message, indent=None), several times faster."""
    if message.DESCRIPTOR.full_name == _STRUCT:
        return _struct_text(message)  # type: ignore[arg-type]  # a Struct, by its descriptor
    return _message_text(message)


class JsonMemo:
    """`to_json`, remembered by the message's wire bytes: events repeat their contexts (a device, an app,
    a page) and often their properties, and serialising a message costs a fifth of writing its JSON. The
    same bytes parse to the same message, so the text is the one `to_json` would write. Thread-safe (one
    dict under the GIL); bounded by emptying it when full, which costs one miss per entry."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._texts: dict[bytes, str] = {}

    def __call__(self, message: Message) -> str:
        key = message.SerializeToString()
        text = self._texts.get(key)
        if text is None:
            text = to_json(message)
            if len(self._texts) >= self._size:
                self._texts.clear()
            self._texts[key] = text
        return text


# ---- message → JSON text: each function writes what json.dumps writes for json_format's object -------------


def _value_text(value: struct_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return _text(value.string_value)
    if kind == "number_value":
        return _number_text(value.number_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "struct_value":
        return _struct_text(value.struct_value)
    if kind == "list_value":
        return "[" + ", ".join([_value_text(item) for item in value.list_value.values]) + "]"
    return "null"  # null_value, or no kind at all (json_format writes null for both)


def _number_text(number: float) -> str:
    if math.isfinite(number):
        return _float_text(number)
    # json_format refuses these: JSON has no NaN or infinity, and a string would read back as text.
    raise ValueError(f"Fail to serialize {number} for Value.number_value")


def _struct_text(struct: struct_pb2.Struct) -> str:
    fields = struct.fields  # json_format's order: the map's own
    return "{" + ", ".join([_text(key) + ": " + _value_text(fields[key]) for key in fields]) + "}"


# A message type's plan: per field, `"jsonName": ` and the function that writes a value; None when
# json_format must write the message.
_Plan = dict[FieldDescriptor, tuple[str, Callable[[Any], str]]] | None
_write_plans: dict[Any, _Plan] = {}  # by Descriptor (the stubs know two Descriptor classes)


def _message_text(message: Message) -> str:
    descriptor = message.DESCRIPTOR
    try:
        plan = _write_plans[descriptor]
    except KeyError:
        plan = _write_plans[descriptor] = _write_plan(descriptor)
    if plan is None:
        return _json_format_text(message)
    parts = []
    for field, value in message.ListFields():
        step = plan.get(field)
        if step is None:  # an extension: json_format names and writes those
            return _json_format_text(message)
        parts.append(step[0] + step[1](value))
    return "{" + ", ".join(parts) + "}"


def _json_format_text(message: Message) -> str:
    return json.dumps(json_format.MessageToDict(message))  # MessageToJson(indent=None) in two steps


def _write_plan(descriptor: Any) -> _Plan:
    if descriptor.full_name.startswith("google.protobuf."):
        return None  # well-known types have JSON forms of their own
    plan: dict[FieldDescriptor, tuple[str, Callable[[Any], str]]] = {}
    for field in descriptor.fields:
        write = _field_writer(field)
        if write is None:
            return None
        if field.is_repeated:
            write = _each(write)
        plan[field] = (_text(field.json_name) + ": ", write)
    return plan


def _each(write: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda values: "[" + ", ".join([write(v) for v in values]) + "]"


def _field_writer(field: FieldDescriptor) -> Callable[[Any], str] | None:
    """How json_format writes one value of `field` (its _FieldToJsonObject, then json.dumps); None for
    what is left to json_format."""
    kind, message, enum = field.cpp_type, field.message_type, field.enum_type
    if message is not None:
        if message.GetOptions().map_entry:
            return None
        if message.full_name == _STRUCT:
            return _struct_text
        if message.full_name.startswith("google.protobuf."):
            return _json_format_text  # well-known types have JSON forms of their own
        return _message_text
    if enum is not None:
        if enum.is_closed or enum.full_name == "google.protobuf.NullValue":
            return None
        if any(v.has_options for v in enum.values):  # may carry a custom JSON name
            return None
        names = {v.number: _text(v.name) for v in enum.values}
        return lambda number: names.get(number) or str(number)  # an unknown number is written as one
    if kind == FieldDescriptor.CPPTYPE_STRING:
        return _base64 if field.type == FieldDescriptor.TYPE_BYTES else _text
    if kind == FieldDescriptor.CPPTYPE_BOOL:
        return lambda value: "true" if value else "false"
    if kind in (FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64):
        return lambda value: '"' + str(value) + '"'  # quoted, as json_format writes 64-bit integers
    if kind in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32):
        return str
    if kind == FieldDescriptor.CPPTYPE_DOUBLE:
        return _double_text
    return None  # float: json_format rounds it to the shortest repr that survives float32


def _base64(value: bytes) -> str:
    return _text(base64.b64encode(value).decode("utf-8"))


def _double_text(value: float) -> str:
    if math.isfinite(value):
        return _float_text(value)
    return '"NaN"' if math.isnan(value) else '"-Infinity"' if value < 0 else '"Infinity"'


# ---- JSON text → message -----------------------------------------------------------------------------------


class _Unsupported(Exception):
    """JSON the fast path does not read; json_format reads the whole text instead."""


_decode = json.JSONDecoder().raw_decode


def merge_json(text: str, parent: Message, field: str, *, ignore_unknown_fields: bool = False) -> None:
    """What json_format.Parse(text, getattr(parent, field), ignore_unknown_fields) does to `parent`, several
    times faster for the JSON that `to_json` writes. On anything else the field is cleared and json_format
    parses the text, so the outcome, errors included, is json_format's. (json_format also refuses nesting
    past 100 messages; no stored event comes near: protobuf's own decoder refuses an event nested that
    deep, so WriteEvents never receives one.)"""
    try:
        value, end = _decode(text)  # json.loads without its two whitespace regexes: to_json writes none
        if end != len(text):
            raise _Unsupported
        target = getattr(parent, field)
        if target.DESCRIPTOR.full_name == _STRUCT:
            if type(value) is not dict:
                raise _Unsupported
            target.Clear()  # json_format does this too: it marks the Struct present even when empty
            _merge_struct(value, target)
        else:
            _merge_message(value, target, ignore_unknown_fields)
    except Exception:  # noqa: BLE001 - whatever the fast path cannot take, json_format decides on
        parent.ClearField(field)
        json_format.Parse(text, getattr(parent, field), ignore_unknown_fields=ignore_unknown_fields)


def _merge_value(value: Any, target: struct_pb2.Value) -> None:
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is float or kind is int:
        target.number_value = value
    elif kind is bool:
        target.bool_value = value
    elif value is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif kind is dict:
        struct = target.struct_value
        struct.Clear()
        _merge_struct(value, struct)
    elif kind is list:
        values = target.list_value
        values.ClearField("values")
        for item in value:
            _merge_value(item, values.values.add())
    else:
        raise _Unsupported


def _merge_struct(value: dict[str, Any], target: struct_pb2.Struct) -> None:
    fields = target.fields
    for key, item in value.items():
        _merge_value(item, fields[key])


# A message type's fields by JSON name, each with its setter. json_format also takes proto names (and rejects
# a field named both ways); those keys are left to it.
_Setter = Callable[[Message, Any, bool], None]
_read_plans: dict[Any, dict[str, _Setter] | None] = {}


def _merge_message(value: Any, target: Message, ignore_unknown_fields: bool) -> None:
    descriptor = target.DESCRIPTOR
    try:
        plan = _read_plans[descriptor]
    except KeyError:
        plan = _read_plans[descriptor] = _read_plan(descriptor)
    if plan is None or type(value) is not dict:
        raise _Unsupported
    for key, item in value.items():
        setter = plan.get(key)
        if setter is None:
            if not ignore_unknown_fields:
                raise _Unsupported  # json_format raises the ParseError that names the field
            continue
        setter(target, item, ignore_unknown_fields)


def _read_plan(descriptor: Any) -> dict[str, _Setter] | None:
    if descriptor.full_name.startswith("google.protobuf."):
        return None  # well-known types have JSON forms of their own
    if any(len(oneof.fields) > 1 for oneof in descriptor.oneofs):
        return None  # a real oneof, where json_format rejects a second member (proto3 optional has one)
    plan: dict[str, _Setter] = {}
    for field in descriptor.fields:
        setter = _field_reader(field)
        if setter is None:
            return None
        plan[field.name] = _left_to_json_format  # a key `to_json` never writes (when it is not the JSON name)
        plan[field.json_name] = setter
    return plan


def _left_to_json_format(message: Message, value: Any, ignore: bool) -> None:
    raise _Unsupported


def _field_reader(field: FieldDescriptor) -> _Setter | None:
    """A setter for the values `_field_writer` writes; _Unsupported for any other form of value."""
    if field.is_repeated:
        return None
    name, kind, message_type, enum = field.name, field.cpp_type, field.message_type, field.enum_type
    if message_type is not None:
        struct = message_type.full_name == _STRUCT
        if message_type.full_name.startswith("google.protobuf.") and not struct:
            return None

        def set_message(message: Message, value: Any, ignore: bool) -> None:
            if type(value) is not dict:
                raise _Unsupported  # null clears the field in json_format; other forms are errors
            child = getattr(message, name)
            child.SetInParent()
            if struct:
                child.Clear()
                _merge_struct(value, child)
            else:
                _merge_message(value, child, ignore)

        return set_message
    if enum is not None:
        if enum.is_closed or any(v.has_options for v in enum.values):
            return None
        numbers = {v.name: v.number for v in enum.values}
        return lambda message, value, _: setattr(message, name, numbers[value])  # else KeyError: fallback
    expected: tuple[type, ...]
    if kind == FieldDescriptor.CPPTYPE_STRING and field.type == FieldDescriptor.TYPE_STRING:
        expected = (str,)
    elif kind == FieldDescriptor.CPPTYPE_BOOL:
        expected = (bool,)
    elif kind in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32):
        expected = (int,)
    elif kind == FieldDescriptor.CPPTYPE_DOUBLE:
        expected = (float, int)
    else:
        return None

    def set_scalar(message: Message, value: Any, _: bool) -> None:
        if type(value) not in expected:
            raise _Unsupported
        setattr(message, name, value)

    return set_scalar
