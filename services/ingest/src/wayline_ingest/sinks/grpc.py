"""Sinks that are Wayline services taking `repeated Event events = 1` (journeys' WriteEvents, decision's
and orchestrator's ObserveEvents).

The request is assembled from the spooled bytes without parsing them: a repeated message field is just
each element's tag, length and bytes, so the sink sends exactly what was spooled.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import grpc
from google.rpc import error_details_pb2

from wayline.common.context import TENANT_HEADER
from wayline.common.errors import call_status
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_ingest import _wire
from wayline_ingest.sinks.base import DeliveryFailure, PermanentDeliveryError, TransientDeliveryError

__all__ = ["EventsSink", "classify"]

# Worth retrying forever: the sink is down, busy, or misconfigured in a way an operator fixes (auth).
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}
_EVENT_INDEX = re.compile(r"^events\[(\d+)\]")


# Every sink's RPC takes `repeated Event events = 1` (service.py's _SINK_METHODS).
_EVENTS = journeys_pb.WriteEventsRequest.DESCRIPTOR.fields_by_name["events"].number


def events_request(events: Sequence[bytes]) -> bytes:
    """The serialised `{repeated Event events = 1}` message holding `events` (framed in C: a Python loop
    over the events cost each sink a few microseconds an event)."""
    return _wire.join(list(events), _EVENTS)


def classify(error: grpc.RpcError) -> TransientDeliveryError | PermanentDeliveryError:
    code = error.code()
    failure = DeliveryFailure(code=code.name, message=error.details() or "")
    status = call_status(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            failure = DeliveryFailure(
                failure.code, info.reason, failure.message, failure.field, failure.index
            )
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            if bad.field_violations:
                path = bad.field_violations[0].field
                match = _EVENT_INDEX.match(path)
                index = int(match.group(1)) if match else None
                failure = DeliveryFailure(failure.code, failure.reason, failure.message, path, index)
    if code in _TRANSIENT:
        return TransientDeliveryError(failure)
    return PermanentDeliveryError(failure)


class EventsSink:
    def __init__(self, name: str, channel: grpc.Channel, method: str, timeout: float = 30.0) -> None:
        self.name = name
        self._channel = channel
        self._call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        self._timeout = timeout

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        try:
            self._call(events_request(events), metadata=((TENANT_HEADER, tenant),), timeout=self._timeout)
        except grpc.RpcError as error:
            raise classify(error) from error

    def close(self) -> None:
        self._channel.close()
