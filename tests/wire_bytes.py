"""Protobuf wire bytes written by hand, for tests that send what no well-behaved serialiser would."""

from __future__ import annotations

__all__ = ["field", "varint"]


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    """One encoded field; `payload` is the value's bytes (a varint's own encoding for wire type 0)."""
    return varint(number << 3 | wire) + (varint(len(payload)) + payload if wire == 2 else payload)
