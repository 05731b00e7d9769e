"""What one spool record holds: one tenant's accepted events from one call, already serialised.

A record is one call's events, not one event: appending and checksumming per call keeps the spool's cost
per event tiny. Format (little-endian):

    u8 version (1) | u8 flags (bit 0: backfill; bit 1: some event selects sinks) | u16 sink mask
    | u16 tenant length | u16 trace length | tenant (UTF-8)
    | trace (the W3C traceparent of the accepting call, ASCII)
    then, per event: u32 length | serialised wayline.event.v1.Event

The trace context lets the forwarder's delivery span join the trace of the call that accepted the events,
so one trace runs from the caller to every sink even though delivery happens later.

The sink mask is 0 for "every sink"; a replayed dead letter is appended with only its sink's bit set, so
the other sinks, which already took the event, skip it. The "selects" flag says that some event of the record
carries an `integrations` with entries, which the forwarder then reads to skip the sinks it deselects
(destinations.py); records without it cost the forwarder nothing more. Records written before the flag
existed read as not selecting.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ALL_SINKS", "SpoolBatch", "decode", "encode"]

_HEAD = struct.Struct("<BBHHH")
_LENGTH = struct.Struct("<I")
_VERSION = 1
_BACKFILL = 1
_SELECTS = 2
ALL_SINKS = 0


@dataclass(frozen=True)
class SpoolBatch:
    tenant: str
    events: Sequence[bytes]
    backfill: bool = False
    sink_mask: int = ALL_SINKS
    traceparent: str = ""
    selects: bool = False  # some event's `integrations` has entries

    def for_sink(self, bit: int) -> bool:
        return self.sink_mask == ALL_SINKS or bool(self.sink_mask & bit)


def encode(batch: SpoolBatch) -> bytes:
    tenant = batch.tenant.encode()
    trace = batch.traceparent.encode()
    flags = (_BACKFILL if batch.backfill else 0) | (_SELECTS if batch.selects else 0)
    parts = [_HEAD.pack(_VERSION, flags, batch.sink_mask, len(tenant), len(trace)), tenant, trace]
    for event in batch.events:
        parts.append(_LENGTH.pack(len(event)))
        parts.append(event)
    return b"".join(parts)


def decode(payload: bytes) -> SpoolBatch:
    version, flags, mask, tenant_length, trace_length = _HEAD.unpack_from(payload, 0)
    if version != _VERSION:
        raise ValueError(f"unknown spool record version {version}")
    offset = _HEAD.size
    tenant = payload[offset : offset + tenant_length].decode()
    offset += tenant_length
    trace = payload[offset : offset + trace_length].decode()
    offset += trace_length
    events = []
    end = len(payload)
    while offset < end:
        (length,) = _LENGTH.unpack_from(payload, offset)
        offset += _LENGTH.size
        events.append(payload[offset : offset + length])
        offset += length
    return SpoolBatch(tenant, events, bool(flags & _BACKFILL), mask, trace, bool(flags & _SELECTS))
