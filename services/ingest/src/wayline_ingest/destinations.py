"""Which of the suite's sinks an event asks for: Segment's `integrations` (ADR 109).

A sender may name the destinations an event is for: `{"All": false, "orchestrator": true}` sends it to the
flows alone, `{"decision": false}` everywhere but the online features. As in Segment, a sink's own key
decides for it (`true`, or an object of options, turns it on; `false` off), else the `All` key, else it is
on; keys are case-sensitive, and values of other kinds select nothing. Only the sinks that act on events can
be turned off (`SELECTABLE_SINKS`): the journey store keeps every accepted event whatever its
`integrations` says, as Segment keeps every event it accepts, since it is the record analytics, erasure and
the decision traces read, and the event keeps its `integrations` there as sent.

The intake marks each spool record holding an event whose `integrations` has entries (the C fast path
notes it while it walks the event); the forwarder reads the selections of those records' events only, so
other traffic pays nothing for this.
"""

from __future__ import annotations

from google.protobuf import struct_pb2

from wayline.event.v1 import event_pb2
from wayline_ingest import _wire

__all__ = ["SELECTABLE_SINKS", "deselected", "excluded_sinks"]

SELECTABLE_SINKS = ("decision", "orchestrator")
_INTEGRATIONS = event_pb2.Event.DESCRIPTOR.fields_by_name["integrations"].number
_ONLY_INTEGRATIONS = {_INTEGRATIONS: _INTEGRATIONS}
_NONE: frozenset[str] = frozenset()


def excluded_sinks(integrations: struct_pb2.Struct) -> frozenset[str]:
    """The selectable sinks `integrations` turns off."""
    fields = integrations.fields
    if not fields:
        return _NONE
    default = _enabled(fields["All"], True) if "All" in fields else True
    return frozenset(
        sink
        for sink in SELECTABLE_SINKS
        if not (_enabled(fields[sink], default) if sink in fields else default)
    )


def deselected(event: bytes) -> frozenset[str]:
    """`excluded_sinks` of a serialised event's `integrations` (read without parsing the rest of it)."""
    only = _wire.project(event, _ONLY_INTEGRATIONS)
    if not only:
        return _NONE
    return excluded_sinks(event_pb2.Event.FromString(only).integrations)


def _enabled(value: struct_pb2.Value, default: bool) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":  # the destination's options: Segment turns it on
        return True
    return default
