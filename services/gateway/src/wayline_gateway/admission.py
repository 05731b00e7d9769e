"""Quotas on the pass-through: what a routed call costs (one request, and the events it carries) and the
gate it must pass. Kept apart from the kit's interceptor and from routing so that each is testable alone.

Events are counted on the request's wire bytes, without parsing the events: the top-level occurrences of the
request's `wayline.event.v1.Event` field (a TrackBatch of 500 costs 500, a Track 1). A stream pays per message
and is paced to its quota (up to `stream_wait` seconds a message) rather than cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from wayline.common.auth import Caller
from wayline.common.context import current_call
from wayline.common.errors import ResourceExhausted, Unauthenticated
from wayline.common.registry import PUBLIC_SCOPE
from wayline_gateway.quotas import QuotaGate
from wayline_gateway.routes import Route

__all__ = ["Admission", "PacedRequests", "count_field"]


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


# Protobuf's wire types that a walk over a message's tags steps over (groups end the walk).
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


@cache
def _counting_message(field_number: int) -> type[Message]:
    """A message with one field, `repeated bytes` at `field_number`: protobuf's C parser reads a request as
    it, skipping every other field and keeping each event as unparsed bytes (6 µs for a batch of 500,
    where walking the wire in Python takes 215 µs)."""
    name = f"Count{field_number}"
    file = descriptor_pb2.FileDescriptorProto(name=f"wayline_gateway/{name}.proto", package="wayline_gateway")
    file.message_type.add(name=name).field.add(
        name="counted",
        number=field_number,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"wayline_gateway.{name}"))


def count_field(data: bytes, field_number: int) -> int:
    """How many times top-level field `field_number` occurs length-delimited (as a message field does) in a
    serialised message. An occurrence of another wire type is not counted: the service's parser keeps it as
    an unknown field, not an event. Malformed bytes count what could be read (as the nginx data plane's
    `count_field` does): the backend refuses the message itself, with the field's path."""
    try:
        return len(_counting_message(field_number).FromString(data).counted)  # type: ignore[attr-defined]
    except DecodeError:
        return _walk_count(data, field_number)


def _walk_count(data: bytes, field_number: int) -> int:
    count = position = 0
    end = len(data)
    try:
        while position < end:
            tag, position = _varint(data, position)
            wire_type = tag & 7
            if wire_type == _VARINT:
                _, position = _varint(data, position)
            elif wire_type == _LENGTH_DELIMITED:
                length, position = _varint(data, position)
                count += tag >> 3 == field_number
                position += length
            elif wire_type == _FIXED64:
                position += 8
            elif wire_type == _FIXED32:
                position += 4
            else:  # groups and invalid wire types: the backend answers
                break
    except IndexError:
        pass
    return count


def _subject() -> tuple[str, str]:
    call = current_call()
    if call is None or not call.tenant:
        raise Unauthenticated("no authenticated tenant for this call")
    return call.tenant, _key_id(call.principal)


def _key_id(principal: str) -> str:
    """`tenants/{t}/apiKeys/{id}` → id; '' for a caller without a key name."""
    return principal.rpartition("/apiKeys/")[2]


class Admission:
    def __init__(self, gate: QuotaGate, stream_wait: float) -> None:
        self._gate = gate
        self._stream_wait = stream_wait

    @contextmanager
    def unary(self, route: Route, request: bytes) -> Iterator[None]:
        """Admit a call with one request message for the duration of the block. A public method (a probe
        that reveals nothing) has no tenant to charge and passes free."""
        if route.scope == PUBLIC_SCOPE:
            yield
            return
        tenant, key = _subject()
        events = count_field(request, route.event_field) if route.event_field else 0
        with self._gate.admit(tenant, key, events):
            yield

    def request(self, caller: Caller) -> None:
        """Charge one call of `caller` (AdminService's calls, which the pass-through does not see)."""
        self._gate.charge_request(caller.tenant, _key_id(caller.principal))

    def events(self, caller: Caller, events: int) -> AbstractContextManager[None]:
        """Admit a call that carries `events` events for a caller authenticated outside gRPC (the HTTP
        collector)."""
        return self._gate.admit(caller.tenant, _key_id(caller.principal), events)

    @contextmanager
    def streaming(self, route: Route, requests: Iterator[bytes]) -> Iterator[PacedRequests]:
        """Admit a client-streaming call for the duration of the block; its messages, which pay their
        events as they are read, are what the block forwards."""
        tenant, key = _subject()
        with self._gate.admit(tenant, key):
            yield PacedRequests(self._gate, tenant, key, route.event_field, requests, self._stream_wait)


class PacedRequests:
    """A stream's messages, each charged its events before it goes on. gRPC reads it on a thread of its own,
    where a raised error only cancels the call: the refusal is kept in `refusal` for the handler to answer."""

    def __init__(  # noqa: PLR0917 - one call site, which names them
        self, gate: QuotaGate, tenant: str, key: str, field: int, requests: Iterator[bytes], wait: float
    ) -> None:
        self._gate = gate
        self._tenant = tenant
        self._key = key
        self._field = field
        self._requests = requests
        self._wait = wait
        self.refusal: ResourceExhausted | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        message = next(self._requests)
        if self._field:
            try:
                self._gate.charge_events(
                    self._tenant, self._key, count_field(message, self._field), max_wait=self._wait
                )
            except ResourceExhausted as refused:
                self.refusal = refused
                raise
        return message
