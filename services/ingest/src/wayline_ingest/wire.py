"""Batches as they came off the wire: the envelope read without parsing the events, and the C fast path
(`_wire.c`) that checks and stamps each event from its bytes (ADR 13).

TrackBatch and StreamEvents are served with a deserializer that keeps the request's bytes (`read_batch`),
so an event the fast path vouches for is never turned into a Python message: its bytes are checked, the
stamps are appended to them and they go to the spool as they are. The fast path answers None for anything
it cannot vouch for; the pipeline then parses that event and runs the Python checks, which explain every
refusal with its field path. The C code learns the schema and every field number from the generated
descriptors here, so the contract stays their one source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import descriptor
from google.protobuf.message import Message

from wayline.common.errors import InvalidArgument
from wayline.common.wire_format import varint
from wayline.event.v1 import event_pb2
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_ingest import _wire

__all__ = [
    "Resolutions",
    "WireBatch",
    "apply_resolution",
    "check_events",
    "has_identifiers",
    "needs_enrichment",
    "person_overrides_request",
    "read_resolutions",
    "read_stream_request",
    "read_track_batch",
    "resolution_request",
    "well_formed",
    "with_backfill",
]

_KIND_VARINT, _KIND_FIXED64, _KIND_FIXED32, _KIND_STRING, _KIND_BYTES, _KIND_MESSAGE, _KIND_FINITE_DOUBLE = (
    range(1, 8)
)
# A JSON number (google.protobuf.Value's number_value): the fast path leaves NaN and Infinity to the Python
# checks, which refuse them (JSON cannot hold them).
_JSON_NUMBER = ("google.protobuf.Value", "number_value")
_FD = descriptor.FieldDescriptor
_KINDS = {
    **dict.fromkeys(
        (
            _FD.TYPE_INT32,
            _FD.TYPE_INT64,
            _FD.TYPE_UINT32,
            _FD.TYPE_UINT64,
            _FD.TYPE_SINT32,
            _FD.TYPE_SINT64,
            _FD.TYPE_BOOL,
            _FD.TYPE_ENUM,
        ),
        _KIND_VARINT,
    ),
    **dict.fromkeys((_FD.TYPE_FIXED64, _FD.TYPE_SFIXED64, _FD.TYPE_DOUBLE), _KIND_FIXED64),
    **dict.fromkeys((_FD.TYPE_FIXED32, _FD.TYPE_SFIXED32, _FD.TYPE_FLOAT), _KIND_FIXED32),
    _FD.TYPE_STRING: _KIND_STRING,
    _FD.TYPE_BYTES: _KIND_BYTES,
    _FD.TYPE_MESSAGE: _KIND_MESSAGE,
}


def _schema(root: descriptor.Descriptor) -> list[list[tuple[int, int, bool, int]]]:
    """Every message reachable from `root` (root first) as sorted (number, kind, repeated, message index)."""
    order: list[descriptor.Descriptor] = [root]
    index = {root.full_name: 0}
    specs: list[list[tuple[int, int, bool, int]]] = []
    position = 0
    while position < len(order):
        fields = []
        for field in sorted(order[position].fields, key=lambda f: f.number):
            nested = -1
            if field.type == _FD.TYPE_MESSAGE:
                nested_type = field.message_type
                assert nested_type is not None  # a message field always has its type
                name = nested_type.full_name
                if name not in index:
                    index[name] = len(order)
                    order.append(nested_type)
                nested = index[name]
            repeated = field.is_repeated
            json_number = (order[position].full_name, field.name) == _JSON_NUMBER
            kind = _KIND_FINITE_DOUBLE if json_number else _KINDS[field.type]
            fields.append((field.number, kind, repeated, nested))
        specs.append(fields)
        position += 1
    return specs


def _numbers() -> dict[str, int]:
    event = event_pb2.Event.DESCRIPTOR.fields_by_name
    named = {
        name: event[name].number
        for name in (
            "event_id", "type", "name", "channel", "timestamp", "sent_at", "received_at", "identifiers",
            "person_id", "revenue", "group_id", "plan_violations", "sentiment_score", "original_timestamp",
            "integrations",
        )
    }  # fmt: skip
    identifier = event_pb2.Identifier.DESCRIPTOR.fields_by_name
    timestamp_type = event["timestamp"].message_type
    assert timestamp_type is not None
    timestamp = timestamp_type.fields_by_name
    named |= {
        "identifier.type": identifier["type"].number,
        "identifier.value": identifier["value"].number,
        "timestamp.seconds": timestamp["seconds"].number,
        "timestamp.nanos": timestamp["nanos"].number,
        "EVENT_TYPE_TRACK": event_pb2.EVENT_TYPE_TRACK,
        "EVENT_TYPE_GROUP": event_pb2.EVENT_TYPE_GROUP,
        "EVENT_TYPE_LAST": _last_of(event_pb2.EventType.DESCRIPTOR),
        "CHANNEL_LAST": _last_of(event_pb2.Channel.DESCRIPTOR),
    }
    return named


def _last_of(enum: descriptor.EnumDescriptor) -> int:
    """The enum's largest value. The C checks take 1 to it as the known values (an unknown one goes to the
    Python checks, which refuse it), so the values must run 0, 1, 2, … without a gap."""
    values = sorted(v.number for v in enum.values)
    if values != list(range(len(values))):
        raise RuntimeError(f"{enum.full_name}'s values are not 0, 1, 2, …; _wire.c's enum check assumes so")
    return values[-1]


_wire.configure(_schema(event_pb2.Event.DESCRIPTOR), _numbers())


@dataclass(frozen=True)
class WireBatch:
    """A TrackBatch or StreamEvents request with its events left as bytes. `size` is the request's size
    on the wire, the figure the batch byte limit applies to."""

    events: list[bytes]
    backfill: bool
    sequence: int
    size: int


def _reader(message: type[Message]) -> Callable[[bytes], WireBatch]:
    fields = message.DESCRIPTOR.fields_by_name
    events_field, backfill_field = fields["events"].number, fields["backfill"].number
    sequence_field = fields["sequence"].number if "sequence" in fields else 0
    name = message.DESCRIPTOR.full_name

    def read(data: bytes) -> WireBatch:
        try:
            scalars, events = _wire.split(data, events_field)
        except ValueError:
            raise InvalidArgument(
                f"the request is not a well-formed {name}: its protobuf bytes could not be decoded",
                reason="MALFORMED_REQUEST",
            ) from None
        return WireBatch(
            events, bool(scalars.get(backfill_field, 0)), scalars.get(sequence_field, 0), len(data)
        )

    return read


read_track_batch = _reader(pb.TrackBatchRequest)
read_stream_request = _reader(pb.StreamEventsRequest)


def check_events(
    events: list[bytes], received_nanos: int, floor_seconds: int, future_skew_nanos: int, max_event_bytes: int
) -> list[tuple[str, bytes, bool] | None]:
    """Per event: (event_id, the bytes with ingest's stamps, whether its `integrations` has entries) when the
    fast path vouches for it, else None."""
    return _wire.check_events(events, received_nanos, floor_seconds, future_skew_nanos, max_event_bytes)


def well_formed(event: bytes) -> bool:
    """True when `event` is an Event the fast path can read whole (well-formed, every field known)."""
    return _wire.well_formed(event)


# The identity sink's field surgery: requests projected from events, answers written into them.

_EVENT = event_pb2.Event.DESCRIPTOR.fields_by_name
_INPUT = identity_pb.IdentityResolutionInput.DESCRIPTOR.fields_by_name
_RESOLUTION = identity_pb.IdentityResolution.DESCRIPTOR.fields_by_name
_RESPONSE = identity_pb.ResolveIdentitiesResponse.DESCRIPTOR.fields_by_name
# Event field -> IdentityResolutionInput field, by name where they match.
_INPUT_FROM_EVENT = {
    _EVENT["event_id"].number: _INPUT["event_id"].number,
    _EVENT["timestamp"].number: _INPUT["timestamp"].number,
    _EVENT["type"].number: _INPUT["event_type"].number,
    _EVENT["identifiers"].number: _INPUT["identifiers"].number,
}
_INPUTS = identity_pb.ResolveIdentitiesRequest.DESCRIPTOR.fields_by_name["inputs"].number
_OVERRIDES = journeys_pb.ApplyPersonOverridesRequest.DESCRIPTOR.fields_by_name["person_overrides"].number
_IDENTIFIERS = _EVENT["identifiers"].number
_BACKFILL = _EVENT["backfill"].number
_ENRICHED_BY = (
    (_EVENT["context"].number, event_pb2.EventContext.DESCRIPTOR.fields_by_name["user_agent"].number),
    (_EVENT["text"].number,),
)
_wire.configure_resolution(
    {
        "resolution.person_id": _RESOLUTION["person_id"].number,
        "resolution.identifiers": _RESOLUTION["identifiers"].number,
        "resolution.ignored_identifiers": _RESOLUTION["ignored_identifiers"].number,
        "ignored.identifier": identity_pb.IgnoredIdentifier.DESCRIPTOR.fields_by_name["identifier"].number,
        "event.person_id": _EVENT["person_id"].number,
        "event.identifiers": _IDENTIFIERS,
    }
)


@dataclass(frozen=True)
class Resolutions:
    """A ResolveIdentitiesResponse's resolutions and person overrides, each still serialised."""

    resolutions: list[bytes]
    person_overrides: list[bytes]


def has_identifiers(event: bytes) -> bool:
    return bool(_wire.split(event, _IDENTIFIERS)[1])


def resolution_request(events: list[bytes]) -> bytes:
    """A serialised ResolveIdentitiesRequest with one input per event, in order."""
    return _wire.join([_wire.project(event, _INPUT_FROM_EVENT) for event in events], _INPUTS)


def read_resolutions(response: bytes) -> Resolutions:
    return Resolutions(
        _wire.split(response, _RESPONSE["resolutions"].number)[1],
        _wire.split(response, _RESPONSE["person_overrides"].number)[1],
    )


def apply_resolution(event: bytes, resolution: bytes) -> bytes:
    """The event with the resolution's person id, then its normalised identifiers, then the ignored ones."""
    return _wire.apply_resolution(event, resolution)


def person_overrides_request(overrides: list[bytes]) -> bytes:
    """A serialised ApplyPersonOverridesRequest carrying `overrides`."""
    return _wire.join(overrides, _OVERRIDES)


def needs_enrichment(event: bytes) -> bool:
    """True when the event has a user agent or a text, what enrichment reads; other events pass untouched."""
    return any(_wire.nonempty(event, path) for path in _ENRICHED_BY)


# `Event.backfill` as wire bytes (a varint field). Appending a field to a message's bytes sets it, whatever
# came before (protobuf's last-one-wins for scalars), so ingest overwrites a caller's value without parsing.
_BACKFILL_MARKS = (varint(_BACKFILL << 3) + b"\x00", varint(_BACKFILL << 3) + b"\x01")


def with_backfill(event: bytes, backfill: bool) -> bytes:
    """The event's bytes with `backfill` set to the batch's flag."""
    return event + _BACKFILL_MARKS[backfill]
