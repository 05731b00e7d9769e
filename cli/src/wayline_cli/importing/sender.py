"""Sends one batch through the gateway as history (`backfill`), retrying what a retry can fix.

UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are retried with exponential backoff and jitter, or
after the server's own RetryInfo delay when it sends one (a full spool or a quota knows best when to come
back). Every retry resends the same events with the same ids, so a batch that was stored before its answer
was lost is stored once. A batch the server refuses whole (too many events or bytes for its limits) is split
in halves rather than failing the import.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

import grpc
from google.rpc import error_details_pb2

from wayline.common.errors import status_details
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline_cli.importing.errors import ImportStopped

__all__ = ["RETRYABLE", "BatchSender"]

RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)
_CALLER_ERRORS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)

OnRetry = Callable[[grpc.StatusCode, float, int], None]


class BatchSender:
    def __init__(
        self,
        channel: grpc.Channel,
        api_key: str,
        *,
        timeout: float = 60.0,
        max_attempts: int = 8,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
        on_retry: OnRetry | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._stub = ingest_grpc.IngestServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._on_retry = on_retry
        self._sleep = sleep

    def send(self, events: Sequence[event_pb2.Event]) -> ingest_pb.TrackBatchResponse:
        """The server's answer for `events`; rejection indexes are positions in `events`."""
        try:
            return self._send_with_retries(events)
        except grpc.RpcError as error:
            refused_whole = error.code() == grpc.StatusCode.INVALID_ARGUMENT and _batch_refused(error)
            if not refused_whole or len(events) < 2:
                raise _stopped(error) from None
        half = len(events) // 2
        first, second = self.send(events[:half]), self.send(events[half:])
        merged = ingest_pb.TrackBatchResponse()
        merged.MergeFrom(first)
        merged.accepted_count += second.accepted_count
        merged.accepted_event_ids.extend(second.accepted_event_ids)
        for rejection in second.rejections:
            merged.rejections.add().CopyFrom(rejection)
            merged.rejections[-1].index += half
        return merged

    def _send_with_retries(self, events: Sequence[event_pb2.Event]) -> ingest_pb.TrackBatchResponse:
        request = ingest_pb.TrackBatchRequest(events=events, backfill=True)
        for attempt in range(1, self._max_attempts + 1):
            try:
                response: ingest_pb.TrackBatchResponse = self._stub.TrackBatch(
                    request, metadata=self._metadata, timeout=self._timeout
                )
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE or attempt == self._max_attempts:
                    raise
                delay = _retry_delay(error)
                if delay is None:
                    backoff = min(self._max_delay, self._first_delay * 2 ** (attempt - 1))
                    delay = random.uniform(backoff / 2, backoff)  # noqa: S311 (jitter, not secrets)
                if self._on_retry is not None:
                    self._on_retry(error.code(), delay, attempt)
                self._sleep(delay)
            else:
                return response
        raise AssertionError("unreachable: the last attempt returns or raises")


def _retry_delay(error: grpc.RpcError) -> float | None:
    for detail in status_details(error):
        if isinstance(detail, error_details_pb2.RetryInfo) and detail.HasField("retry_delay"):
            return float(detail.retry_delay.ToTimedelta().total_seconds())
    return None


def _batch_refused(error: grpc.RpcError) -> bool:
    """True when the violations are about the batch as a whole (field `events`), not about one event."""
    return any(
        violation.field == "events"
        for detail in status_details(error)
        if isinstance(detail, error_details_pb2.BadRequest)
        for violation in detail.field_violations
    )


def _stopped(error: grpc.RpcError) -> ImportStopped:
    code = error.code()
    usage = code in _CALLER_ERRORS or code == grpc.StatusCode.INVALID_ARGUMENT
    return ImportStopped(f"{code.name}: {error.details()}", code=code.name, usage=usage)
