"""Protocol buffer messages as the JSON that HTTP callers, the console and `wayline report` read.

One printer for all of them, so a number on a console page and the same number in a mailed report come from
the same bytes. The mapping is proto3's canonical JSON (what Connect, grpc-gateway and `buf curl` speak):
lowerCamelCase field names, enum values by name, 64-bit integers as strings, timestamps as RFC 3339. Unlike
the canonical default, fields left at their zero value are printed too: a page that shows "0 converted"
must not have to guess whether a missing key means zero or "not sent".
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["message_from_json", "message_to_json"]


def message_to_json(message: Message) -> dict[str, Any]:
    """`message` as a JSON-ready dict: canonical proto3 JSON with zero values printed."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def message_from_json(value: Any, message: Message) -> Message:
    """Fill `message` from proto3 JSON (either field name form); unknown fields are refused with
    `json_format.ParseError`, so a misspelt field is an error and not silently ignored. Every value a
    caller can send is refused with a ParseError: json_format lets Python's own errors through for some
    (`1e999`, infinity once parsed, for an enum or an integer field raises OverflowError; a `null` message
    TypeError)."""
    try:
        return json_format.ParseDict(value, message, ignore_unknown_fields=False)
    except json_format.ParseError:
        raise
    except (TypeError, ValueError, OverflowError) as error:
        raise json_format.ParseError(f"{type(error).__name__}: {error}") from error
