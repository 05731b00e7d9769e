"""The one mapping from typed errors to gRPC statuses with google.rpc details."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from wayline.common.errors import (
    ERROR_DOMAIN,
    MAX_DETAIL_TEXT_BYTES,
    MAX_MESSAGE_HEADER_BYTES,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    status_details,
    to_status,
)


def decode(status: grpc.Status) -> status_pb2.Status:
    ((key, value),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    decoded = status_pb2.Status()
    decoded.ParseFromString(value)
    return decoded


M = TypeVar("M", bound=Message)


def unpack(details: list[any_pb2.Any], kind: type[M]) -> list[M]:
    found = []
    for detail in details:
        if detail.Is(kind.DESCRIPTOR):  # type: ignore[arg-type]
            message = kind()
            detail.Unpack(message)
            found.append(message)
    return found


def test_invalid_argument_carries_error_info_and_field_violations() -> None:
    error = InvalidArgument("bad event", [FieldViolation("event.channel", "set the channel", "REQUIRED")])
    status = to_status(error, "ingest")
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "bad event"
    decoded = decode(status)
    (info,) = unpack(list(decoded.details), error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "INVALID_ARGUMENT",
        ERROR_DOMAIN,
        {"service": "ingest"},
    )
    (bad,) = unpack(list(decoded.details), error_details_pb2.BadRequest)
    assert [(v.field, v.reason) for v in bad.field_violations] == [("event.channel", "REQUIRED")]


def test_unavailable_carries_retry_info() -> None:
    decoded = decode(to_status(Unavailable("down", retry_after=1.5), "ingest"))
    assert decoded.code == grpc.StatusCode.UNAVAILABLE.value[0]
    (retry,) = unpack(list(decoded.details), error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToNanoseconds() == 1_500_000_000


def test_resource_exhausted_carries_quota_failure_and_retry_info() -> None:
    error = ResourceExhausted("slow down", retry_after=2, quota_subject="tenant:acme events/s")
    decoded = decode(to_status(error, "gateway"))
    (failure,) = unpack(list(decoded.details), error_details_pb2.QuotaFailure)
    assert failure.violations[0].subject == "tenant:acme events/s"
    assert unpack(list(decoded.details), error_details_pb2.RetryInfo)


def test_custom_reason_and_metadata_reach_error_info() -> None:
    decoded = decode(
        to_status(NotFound("no such profile", reason="PROFILE_NOT_FOUND", metadata={"id": "p1"}), "identity")
    )
    (info,) = unpack(list(decoded.details), error_details_pb2.ErrorInfo)
    assert info.reason == "PROFILE_NOT_FOUND"
    assert dict(info.metadata) == {"service": "identity", "id": "p1"}


def test_many_long_field_violations_stay_within_what_grpc_lets_through_in_trailers() -> None:
    """gRPC refuses trailers past 8 KiB (at random up to its hard limit): the caller got RESOURCE_EXHAUSTED
    "Stream removed" instead of the violations. The first ones are kept, in order, and the message counts
    the rest."""
    violations = [FieldViolation(f"feature_names[{i}]", "unknown feature " + "x" * 500) for i in range(2000)]
    status = to_status(InvalidArgument("the features request is invalid", violations), "journeys")
    ((_, value),) = status.trailing_metadata
    assert isinstance(value, bytes)
    assert len(base64.b64encode(value)) + len(status.details.encode()) < 6 * 1024
    (bad,) = unpack(list(decode(status).details), error_details_pb2.BadRequest)
    kept = len(bad.field_violations)
    assert 0 < kept < 2000
    assert [v.field for v in bad.field_violations] == [f"feature_names[{i}]" for i in range(kept)]
    assert all(len(v.description) <= 300 for v in bad.field_violations)
    assert (
        status.details == f"the features request is invalid ({2000 - kept} more field violations not shown)"
    )


def test_a_refusal_within_the_budget_is_sent_whole() -> None:
    violations = [FieldViolation(f"checks[{i}].channel", "is required", "REQUIRED") for i in range(20)]
    status = to_status(InvalidArgument("bad checks", violations), "orchestrator")
    (bad,) = unpack(list(decode(status).details), error_details_pb2.BadRequest)
    assert len(bad.field_violations) == 20
    assert status.details == "bad checks"


def test_a_long_message_is_cut_to_what_its_percent_encoded_header_may_take() -> None:
    """gRPC sends the message percent-encoded (a byte outside printable ASCII takes 3): 5,000 "é" would be
    30,000 bytes of trailer. A plain message of 900 characters stays whole."""
    cut = to_status(NotFound("é" * 5000), "journeys").details
    assert cut.endswith("…")
    assert 0 < len(cut.encode()) * 3 <= MAX_MESSAGE_HEADER_BYTES
    plain = "x" * 900
    assert to_status(NotFound(plain), "journeys").details == plain


def test_the_worst_refusal_of_all_stays_within_the_trailer_limit() -> None:
    """A long message, violations past the BadRequest budget and long ErrorInfo metadata at once: the message
    travels twice (the header and the Status), so the budgets are held together, not one by one."""
    violations = [FieldViolation(f"steps[{i}].name", "unknown " + "ü" * 400) for i in range(500)]
    long_value = "v" * 5000
    metadata = {f"key{i}": long_value for i in range(4)}
    error = InvalidArgument("ü" * 5000, violations, metadata=metadata)
    status = to_status(error, "journeys")
    ((_, value),) = status.trailing_metadata
    assert isinstance(value, bytes)
    header = sum(3 * len(c.encode()) if c > "~" else 1 for c in status.details)  # percent-encoded
    assert header + len(base64.b64encode(value)) < 7_300


def test_error_info_and_other_details_naming_a_long_input_stay_within_the_trailer_limit() -> None:
    """ArchiveFlow of a 5,000-character flow id answered NOT_FOUND with the id in ErrorInfo's `flow`: 9.4 KB
    of trailers, which gRPC turned into RESOURCE_EXHAUSTED "Stream removed" at random, one hop in two. Each
    text of a detail is cut to MAX_DETAIL_TEXT_BYTES (multi-byte characters whole); short ones are kept."""
    long_id = "1" * 5000
    error = NotFound(f"flows/{long_id} not found", metadata={"flow": long_id, "kind": "flow", "ü": "é" * 900})
    status = to_status(error, "orchestrator")
    ((_, value),) = status.trailing_metadata
    assert isinstance(value, bytes)
    assert len(base64.b64encode(value)) + len(status.details.encode()) < 6 * 1024
    (info,) = unpack(list(decode(status).details), error_details_pb2.ErrorInfo)
    assert info.metadata["service"] == "orchestrator"
    assert info.metadata["kind"] == "flow"
    assert info.metadata["flow"] == "1" * (MAX_DETAIL_TEXT_BYTES - 3) + "…"
    assert info.metadata["ü"] == "é" * ((MAX_DETAIL_TEXT_BYTES - 3) // 2) + "…"
    quota = to_status(ResourceExhausted("slow down", quota_subject="tenant:" + "q" * 5000), "gateway")
    (failure,) = unpack(list(decode(quota).details), error_details_pb2.QuotaFailure)
    assert len(failure.violations[0].subject.encode()) <= MAX_DETAIL_TEXT_BYTES
    assert failure.violations[0].subject.startswith("tenant:qqq")


class _ReplacedStatus(grpc.RpcError):
    """What a client holds when gRPC replaced a status whose trailers it refused: the server's trailers with
    another code and message (grpc's own call object, not one of our services)."""

    def __init__(self, status: grpc.Status, code: grpc.StatusCode, details: str) -> None:
        self._status, self._code, self._details = status, code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return self._status.trailing_metadata


def test_details_of_a_status_grpc_replaced_are_none_not_a_value_error() -> None:
    # grpc_status raised ValueError ("Code in Status proto ... doesn't match status code"): the CLI's error
    # printer, which reads the details, died with a traceback instead of printing RESOURCE_EXHAUSTED.
    status = to_status(NotFound("gone", metadata={"flow": "f"}), "orchestrator")
    replaced = _ReplacedStatus(status, grpc.StatusCode.RESOURCE_EXHAUSTED, "Stream removed")
    assert status_details(replaced) == []
    kept = _ReplacedStatus(status, grpc.StatusCode.NOT_FOUND, status.details)
    (info,) = status_details(kept)
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.metadata["flow"] == "f"
