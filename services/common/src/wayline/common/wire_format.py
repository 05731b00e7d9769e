"""Protobuf's wire format, the little of it the suite writes by hand: where a message is assembled from
bytes already serialised (a request framed around events spooled or built once), building it as a message
would copy every part first."""

from __future__ import annotations

__all__ = ["varint"]

_ONE_BYTE = [bytes((value,)) for value in range(0x80)]  # most lengths and tags: no bytearray to build


def varint(value: int) -> bytes:
    """`value` (not negative) as a base-128 varint: seven bits a byte, least significant first."""
    if value < 0x80:
        return _ONE_BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
