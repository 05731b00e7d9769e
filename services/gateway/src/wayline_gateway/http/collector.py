"""The collector's core, free of HTTP framework and gRPC: a request's body and write key in, a Segment-style
reply out (status, JSON body, headers).

Answers follow Segment's HTTP Tracking API: 200 `{"success": true}` when the events are taken; 400 for a body
too large, not JSON or not gzip; 401 for a missing or unknown write key. Beyond Segment (which answers 200
and drops bad events out of sight), a rejected event is reported, never silently lost:

- a single call whose event is rejected answers 400 with its `errors` (field, description, reason);
- a batch answers 200 when at least one event was accepted, listing the others under `rejected` (index,
  messageId, errors); the accepted ones are durable. When none was accepted it answers 400 with the list.

Ingest's retryable trouble becomes 503 (unavailable) or 429 (over capacity) with Retry-After: every SDK
retries those, and a retry is safe since every event keeps its id (see segment.py).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import structlog

from wayline.common.auth import Authenticator, Caller
from wayline.common.errors import FieldViolation, PermissionDenied, ResourceExhausted, Unauthenticated
from wayline.ingest.v1 import ingest_service_pb2
from wayline_gateway.http.body import BodyError, decode, parse_json
from wayline_gateway.http.delivery import (
    TRACK_BATCH,
    BatchRefused,
    BatchSender,
    DeliveryError,
    DeliveryFailed,
)
from wayline_gateway.http.segment import InvalidMessage, Mapped, to_event

__all__ = ["Collector", "Limits", "Reply"]

log = structlog.get_logger("wayline.gateway.http")
_EVENT_PATH = re.compile(r"^events\[(\d+)\]\.?(.*)$")
# Batch-level keys that apply to each message that lacks them (analytics-node sends `sentAt` per batch).
_BATCH_DEFAULTS = ("context", "integrations", "sentAt")
Admit = Callable[[Caller, int], AbstractContextManager[object]]


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int  # one call, and Segment's limit per event
    max_batch_bytes: int  # one /v1/batch body
    ingest_batch_events: int  # events per TrackBatch call to ingest


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0


def _failure(status: int, message: str, **extra: Any) -> Reply:
    return Reply(status, {"success": False, "message": message, **extra})


def _errors(violations: Sequence[FieldViolation]) -> list[dict[str, str]]:
    return [{"field": v.field, "description": v.description, "reason": v.reason} for v in violations]


def basic_user(authorization: str) -> str | None:
    """The user of an HTTP Basic `Authorization` header (Segment's write key); None when there is none."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


class Collector:
    """Authenticates, maps and delivers one request's messages. Thread-safe; one per process."""

    def __init__(
        self,
        authenticator: Authenticator,
        sender: BatchSender,
        limits: Limits,
        admit: Admit = lambda _caller, _events: nullcontext(),
    ) -> None:
        """`admit(caller, events)` holds the request's place in the caller's quotas (the gateway's
        `Admission.events`), raising ResourceExhausted when it is over one."""
        self._authenticator = authenticator
        self._sender = sender
        self.limits = limits
        self._admit = admit

    def handle(
        self, kind: str | None, raw: bytes, encoding: str, authorization: str, request_id: str
    ) -> Reply:
        """`kind` is the endpoint's call type (`track`, ...), None for /v1/batch."""
        limit = self.limits.max_batch_bytes if kind is None else self.limits.max_message_bytes
        key = basic_user(authorization)
        try:
            caller = self._authenticate(key) if key else None
            body = parse_json(decode(raw, encoding, limit))
            if caller is None:
                written = body.get("writeKey") if isinstance(body, dict) else None
                if not isinstance(written, str) or not written:
                    raise Unauthenticated("no write key: send it as the HTTP Basic user, or as `writeKey`")
                caller = self._authenticate(written)
        except BodyError as error:
            return _failure(400, error.message, reason=error.reason)
        except Unauthenticated as error:
            return _failure(401, error.message)
        except PermissionDenied as error:
            return _failure(403, error.message)
        except ResourceExhausted as error:
            return self._retry_later(429, error.message, error.retry_after)
        messages = self._messages(kind, body)
        if isinstance(messages, Reply):
            return messages
        return self._deliver(kind, caller, request_id, messages)

    def _authenticate(self, key: str) -> Caller:
        return self._authenticator.authenticate(TRACK_BATCH, {"authorization": f"Bearer {key}"})

    def _messages(self, kind: str | None, body: Any) -> list[tuple[Any, str]] | Reply:
        """(message, its path) of each message of the body."""
        if kind is not None:
            return [(body, "")]
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, list) or not batch:
            return _failure(400, "a batch body is an object whose `batch` lists at least one message")
        defaults = {k: body[k] for k in _BATCH_DEFAULTS if isinstance(body.get(k), dict | str)}
        if not defaults:
            return [(message, f"batch[{i}]") for i, message in enumerate(batch)]
        return [(_with_defaults(message, defaults), f"batch[{i}]") for i, message in enumerate(batch)]

    def _deliver(
        self, kind: str | None, caller: Caller, request_id: str, messages: list[tuple[Any, str]]
    ) -> Reply:
        rejected: dict[int, dict[str, Any]] = {}
        mapped: list[tuple[int, Mapped]] = []
        for index, (message, path) in enumerate(messages):
            try:
                mapped.append((index, to_event(message, kind, path)))
            except InvalidMessage as error:
                rejected[index] = _rejection(index, message, error.violations)
        try:
            with self._admit(caller, len(mapped)):
                accepted = self._send(caller, request_id, messages, mapped, rejected)
        except ResourceExhausted as error:
            return self._retry_later(429, error.message, error.retry_after)
        except BatchRefused as error:
            return _failure(
                400, f"ingest refused the batch: {error.message}", errors=_errors(error.violations)
            )
        except DeliveryFailed as error:
            log.error("collector.delivery_failed", error=error.message, request_id=request_id)
            return _failure(500, "the event could not be delivered; see the gateway's log")
        except DeliveryError as error:
            return self._retry_later(error.status, error.message, error.retry_after)
        return _answer(kind, accepted, [rejected[i] for i in sorted(rejected)])

    def _send(
        self,
        caller: Caller,
        request_id: str,
        messages: list[tuple[Any, str]],
        mapped: list[tuple[int, Mapped]],
        rejected: dict[int, dict[str, Any]],
    ) -> int:
        """Deliver the mapped events in TrackBatch-sized chunks; ingest's rejections go into `rejected`.
        How many events ingest accepted."""
        accepted = 0
        for chunk in _chunks(mapped, self.limits.ingest_batch_events):
            request = ingest_service_pb2.TrackBatchRequest(events=[m.event for _, m in chunk])
            response = self._sender.send(caller, request_id, request)
            accepted += response.accepted_count
            for rejection in response.rejections:
                index, event = chunk[rejection.index]
                violations = [
                    _translated(event, v.field, v.description, v.reason) for v in rejection.violations
                ]
                rejected[index] = _rejection(index, messages[index][0], violations)
        return accepted

    @staticmethod
    def _retry_later(status: int, message: str, retry_after: float | None) -> Reply:
        reply = _failure(status, message)
        reply.headers["Retry-After"] = str(max(1, math.ceil(retry_after or 1)))
        return reply


def _answer(kind: str | None, accepted: int, rejected: list[dict[str, Any]]) -> Reply:
    if not rejected:
        return Reply(200, {"success": True}, accepted=accepted)
    if kind is not None:
        return Reply(
            400,
            {"success": False, "message": "the event was rejected", "errors": rejected[0]["errors"]},
            rejected=1,
        )
    if not accepted:
        body = {"success": False, "message": "no event of the batch was accepted", "rejected": rejected}
        return Reply(400, body, rejected=len(rejected))
    body = {"success": True, "accepted": accepted, "rejected": rejected}
    return Reply(200, body, accepted=accepted, rejected=len(rejected))


def _with_defaults(message: Any, defaults: dict[str, Any]) -> Any:
    if not isinstance(message, dict):
        return message
    merged = dict(message)
    for key, value in defaults.items():
        own = message.get(key)
        if own is None:
            merged[key] = value
        elif isinstance(own, dict) and isinstance(value, dict):
            merged[key] = {**value, **own}  # the message's own keys win
    return merged


def _rejection(index: int, message: Any, violations: Sequence[FieldViolation]) -> dict[str, Any]:
    message_id = message.get("messageId") if isinstance(message, dict) else None
    entry: dict[str, Any] = {"index": index, "errors": _errors(violations)}
    if isinstance(message_id, str | int) and not isinstance(message_id, bool):
        entry["messageId"] = message_id
    return entry


def _translated(event: Mapped, field_path: str, description: str, reason: str) -> FieldViolation:
    """An ingest violation (`events[3].identifiers[0].value`) in the sender's names (`batch[7].userId`)."""
    match = _EVENT_PATH.match(field_path)
    return FieldViolation(event.segment_path(match.group(2) if match else field_path), description, reason)


# Serialised bytes per TrackBatch call: below ingest's default batch limit (500 KB), since the protobuf
# form of a 500 KB JSON batch can come close to it (Struct keys and wrappers).
_CHUNK_BYTES = 400 * 1024


def _chunks(items: list[tuple[int, Mapped]], size: int) -> Iterator[list[tuple[int, Mapped]]]:
    """Runs of at most `size` events and about _CHUNK_BYTES bytes (one event over it goes alone)."""
    chunk: list[tuple[int, Mapped]] = []
    total = 0
    for item in items:
        weight = item[1].event.ByteSize() + 4  # the field's tag and length
        if chunk and (len(chunk) >= size or total + weight > _CHUNK_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(item)
        total += weight
    if chunk:
        yield chunk
