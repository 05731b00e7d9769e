"""Typed errors and their one mapping to gRPC status codes with `google.rpc` details.

Domain code raises these; the server interceptor turns them into a status with an `ErrorInfo` (AIP-193) and,
where they apply, `BadRequest` field violations, `RetryInfo` and `QuotaFailure`. Any other exception becomes
INTERNAL with a generic message: the details go to the log, never to the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, cast

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "ERROR_DOMAIN",
    "Aborted",
    "AlreadyExists",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "WaylineError",
    "call_status",
    "status_details",
    "to_rpc_status",
    "to_status",
]

ERROR_DOMAIN = "wayline.dev"
# gRPC refuses a call's trailers past 8 KiB (its soft limit, at random up to the hard one): a refusal with
# many long field violations reached the caller as RESOURCE_EXHAUSTED "Stream removed", its violations lost.
# The details travel base64-encoded (4/3 of their size), the message percent-encoded (a byte outside
# printable ASCII takes 3), and the message goes twice (the header and the Status inside the details): the
# budgets below keep the worst of all together (a long message, a full BadRequest and ErrorInfo's metadata
# each at its cut) near 7 KB, under the limit with room for the other trailers.
MAX_MESSAGE_HEADER_BYTES = 1_000
MAX_BAD_REQUEST_BYTES = 2_500
MAX_DESCRIPTION_CHARS = 300
# Every text of the other details (ErrorInfo's metadata, quota and precondition violations), in UTF-8 bytes:
# they often name what the caller sent, a 5,000-character flow id in ErrorInfo's `flow` put the trailers past
# the limit (and the status code a caller saw became RESOURCE_EXHAUSTED, at random).
MAX_DETAIL_TEXT_BYTES = 200


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: a path such as `events[3].identifiers[0].value`, what is wrong, a machine code."""

    field: str
    description: str
    reason: str = "INVALID"


class WaylineError(Exception):
    """Base of every error a caller may see; subclasses fix the status code and default reason."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})

    def details(self) -> list[any_pb2.Any]:
        """The `google.rpc` detail messages beyond ErrorInfo; subclasses add theirs."""
        return []


class InvalidArgument(WaylineError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    def __init__(self, message: str, violations: Sequence[FieldViolation] = (), **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.violations = list(violations)

    def details(self) -> list[any_pb2.Any]:
        if not self.violations:
            return []
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in self.violations
            ]
        )
        return [_pack(bad_request)]


class NotFound(WaylineError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(WaylineError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(WaylineError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(WaylineError):
    """A concurrency conflict (a stale etag, a lost race): read again and retry the whole operation."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class Unauthenticated(WaylineError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(WaylineError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class DeadlineExceeded(WaylineError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(WaylineError):
    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "NOT_IMPLEMENTED_YET"


class _Retryable(WaylineError):
    """An error the caller may retry after `retry_after` seconds (sent as RetryInfo)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after

    def details(self) -> list[any_pb2.Any]:
        if self.retry_after is None:
            return []
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(self.retry_after * 1e9))
        return [_pack(error_details_pb2.RetryInfo(retry_delay=delay))]


class Unavailable(_Retryable):
    """A backend this service needs is down or starting: retryable."""

    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "BACKEND_UNAVAILABLE"


class ResourceExhausted(_Retryable):
    """A quota or a size limit was hit; `quota_subject` names what ran out (sent as QuotaFailure)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "QUOTA_EXCEEDED"

    def __init__(self, message: str, *, quota_subject: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.quota_subject = quota_subject

    def details(self) -> list[any_pb2.Any]:
        found = super().details()
        if self.quota_subject:
            failure = error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=self.quota_subject, description=self.message
                    )
                ]
            )
            found.append(_pack(failure))
        return found


_DETAIL_TYPES: dict[str, type[Message]] = {
    kind.DESCRIPTOR.full_name: kind
    for kind in (
        error_details_pb2.ErrorInfo,
        error_details_pb2.BadRequest,
        error_details_pb2.RetryInfo,
        error_details_pb2.QuotaFailure,
        error_details_pb2.PreconditionFailure,
    )
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_rpc_status(error: WaylineError, service: str) -> status_pb2.Status:
    """The `google.rpc.Status` that represents `error` to a caller: code, message, ErrorInfo first, then the
    error's own details. gRPC callers get it in the trailers (`to_status`), HTTP callers as JSON. Field
    violations past `MAX_BAD_REQUEST_BYTES` are left out, and the message says how many; a long message is
    cut."""
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata={"service": service, **error.metadata}
    )
    details, left_out = [], 0
    for detail in error.details():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bounded, left_out = _bounded_bad_request(detail)
            details.append(bounded)
        else:
            details.append(_bounded_texts(detail))
    message = _within_header_bytes(error.message, MAX_MESSAGE_HEADER_BYTES)
    if left_out:
        message += f" ({left_out} more field violations not shown)"
    _shorten_texts(info)
    return status_pb2.Status(code=error.code.value[0], message=message, details=[_pack(info), *details])


def _bounded_texts(packed: any_pb2.Any) -> any_pb2.Any:
    """`packed` with each text cut to MAX_DETAIL_TEXT_BYTES (a type this process does not read: as it is)."""
    kind = _DETAIL_TYPES.get(packed.TypeName())
    if kind is None:
        return packed
    detail = kind()
    packed.Unpack(detail)
    _shorten_texts(detail)
    return _pack(detail)


def _shorten_texts(message: Message) -> None:
    """Shorten, in place, every string field of `message` and of the messages it holds (map values too)."""
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                value[:] = [_within_bytes(text, MAX_DETAIL_TEXT_BYTES) for text in value]
            else:
                setattr(message, field.name, _within_bytes(value, MAX_DETAIL_TEXT_BYTES))
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            entry_value = field.message_type.fields_by_name["value"]
            if entry_value.type == FieldDescriptor.TYPE_STRING:
                for key in list(value):
                    value[key] = _within_bytes(value[key], MAX_DETAIL_TEXT_BYTES)
        elif field.message_type is not None:
            for item in value if field.is_repeated else [value]:
                _shorten_texts(item)


def _within_bytes(text: str, budget: int) -> str:
    """`text`, cut (with "…") where its UTF-8 form passes `budget` bytes."""
    if len(text.encode()) <= budget:
        return text
    cut = text.encode()[: budget - 3].decode(errors="ignore")  # a character split by the cut is dropped
    return cut + "…"


def _bounded_bad_request(packed: any_pb2.Any) -> tuple[any_pb2.Any, int]:
    """`packed` BadRequest with each description shortened and only the violations that fit the budget, in
    order; and how many were left out."""
    bad_request = error_details_pb2.BadRequest()
    packed.Unpack(bad_request)
    if bad_request.ByteSize() <= MAX_BAD_REQUEST_BYTES:
        return packed, 0
    kept = error_details_pb2.BadRequest()
    for violation in bad_request.field_violations:
        shortened = error_details_pb2.BadRequest.FieldViolation(
            field=_shortened(violation.field, MAX_DESCRIPTION_CHARS),
            description=_shortened(violation.description, MAX_DESCRIPTION_CHARS),
            reason=violation.reason,
        )
        kept.field_violations.append(shortened)
        if kept.ByteSize() > MAX_BAD_REQUEST_BYTES:
            del kept.field_violations[-1]
            break
    return _pack(kept), len(bad_request.field_violations) - len(kept.field_violations)


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _within_header_bytes(message: str, budget: int) -> str:
    """`message`, cut where its percent-encoded form (gRPC's `grpc-message` header) passes `budget` bytes."""
    used = 0
    for index, character in enumerate(message):
        encoded = len(character.encode())
        used += encoded if " " <= character <= "~" and character != "%" else 3 * encoded
        if used > budget - 9:  # room for the "…" that marks the cut (3 bytes, percent-encoded)
            return message[:index] + "…"
    return message


def to_status(error: WaylineError, service: str) -> grpc.Status:
    """The gRPC status (with details in the trailers) that represents `error` to a caller."""
    return rpc_status.to_status(to_rpc_status(error, service))


def call_status(error: grpc.RpcError) -> status_pb2.Status | None:
    """The `google.rpc.Status` a failed call carries; None without one, or when the call's code or message is
    not the one it describes: gRPC replaced the status (trailers over its limit, a broken stream), and the
    details belong to an answer the caller never got (grpc_status raises ValueError for it)."""
    try:
        return cast(status_pb2.Status | None, rpc_status.from_call(error))  # type: ignore[arg-type]
    except ValueError:
        return None


def status_details(error: grpc.RpcError) -> list[object]:
    """Decode the `google.rpc` detail messages a failed call carries (for clients and tests)."""
    status = call_status(error)
    if status is None:
        return []
    decoded: list[object] = []
    for detail in status.details:
        kind = _DETAIL_TYPES.get(detail.TypeName())
        if kind is not None:
            message = kind()
            detail.Unpack(message)
            decoded.append(message)
    return decoded
