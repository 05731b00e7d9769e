"""One batch to IngestService.TrackBatch, retried until acknowledged or given up on.

Every attempt sends the very same events (the same `event_id`s), so a batch that was stored but whose
answer was lost is stored once however often it is resent; only `sent_at` changes, stamped per attempt so
ingest's clock-skew correction measures this send. Calls run as futures so `abort` (a client closing past
its timeout) can cancel one in flight instead of waiting out its deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc

from wayline.client.errors import DeliveryError
from wayline.client.retry import RETRYABLE, Backoff, error_reason, server_retry_delay, status_code
from wayline.client.stats import Counters
from wayline.common.timestamps import to_timestamp
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc

__all__ = ["Transport"]


class Transport:
    def __init__(
        self,
        channel: grpc.Channel,
        api_key: str,
        *,
        timeout: float,
        max_retries: int,
        backoff: Backoff,
        counters: Counters,
    ) -> None:
        self._stub = ingest_grpc.IngestServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff
        self._counters = counters
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: set[grpc.Future[ingest_pb.TrackBatchResponse]] = set()

    def abort(self) -> None:
        """Stop waiting and cancel the calls in flight; every delivery from now on fails CLIENT_CLOSED."""
        self._aborted.set()
        with self._lock:
            for future in self._in_flight:
                future.cancel()

    def deliver(
        self,
        events: Sequence[event_pb2.Event],
        *,
        backfill: bool = False,
        deadline: float | None = None,
        wait_out_pushback: bool = False,
    ) -> ingest_pb.TrackBatchResponse:
        """Send `events` until the server answers; DeliveryError when the batch is given up on.

        `deadline` (time.monotonic) bounds the whole delivery, retries included. Retries stop after
        `max_retries` failures; with `wait_out_pushback`, answers that are back-pressure (RESOURCE_EXHAUSTED
        with a RetryInfo: a full spool, a quota) do not count, because the server asked to wait, not
        failed: the background sender waits them out and its bounded queue sheds the load instead.
        """
        attempt = failures = 0
        while True:
            timeout = self._timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
            if self._aborted.is_set() or timeout <= 0:
                raise self._given_up(events, attempt, None, closed=self._aborted.is_set())
            stamp = to_timestamp(datetime.now(UTC))
            for event in events:
                event.sent_at.CopyFrom(stamp)
            self._counters.add(attempts=1, retries=1 if attempt else 0)
            attempt += 1
            try:
                response = self._call(ingest_pb.TrackBatchRequest(events=events, backfill=backfill), timeout)
            except grpc.RpcError as error:
                code = status_code(error)
                server_delay = server_retry_delay(error)
                pushback = code == grpc.StatusCode.RESOURCE_EXHAUSTED
                if pushback:
                    self._counters.add(pushed_back=1)
                if not (pushback and server_delay is not None and wait_out_pushback):
                    failures += 1
                if code not in RETRYABLE or failures > self._max_retries:
                    raise self._given_up(events, attempt, error) from error
                delay = self._backoff.delay(attempt - 1, server_delay)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise self._given_up(events, attempt, error) from error
                self._aborted.wait(delay)
                continue
            except grpc.FutureCancelledError:
                raise self._given_up(events, attempt, None, closed=True) from None
            self._counters.add(batches=1, accepted=response.accepted_count, rejected=len(response.rejections))
            return response

    def _call(self, request: ingest_pb.TrackBatchRequest, timeout: float) -> ingest_pb.TrackBatchResponse:
        try:
            future: grpc.Future[ingest_pb.TrackBatchResponse] = self._stub.TrackBatch.future(
                request, metadata=self._metadata, timeout=timeout
            )
        except ValueError:  # grpc refuses calls on a closed channel: the client was closed meanwhile
            raise grpc.FutureCancelledError() from None
        with self._lock:
            if self._aborted.is_set():
                future.cancel()
            self._in_flight.add(future)
        try:
            return future.result()
        finally:
            with self._lock:
                self._in_flight.discard(future)

    def _given_up(
        self,
        events: Sequence[event_pb2.Event],
        attempts: int,
        error: grpc.RpcError | None,
        *,
        closed: bool = False,
    ) -> DeliveryError:
        if error is None:
            return DeliveryError(
                "the client closed before the server acknowledged these events; they may or may not be stored"
                if closed
                else "the deadline passed before the server acknowledged these events",
                events=events,
                code=grpc.StatusCode.CANCELLED if closed else grpc.StatusCode.DEADLINE_EXCEEDED,
                reason="CLIENT_CLOSED" if closed else "DEADLINE_EXCEEDED",
                attempts=attempts,
            )
        code = status_code(error)
        details = getattr(error, "details", lambda: str(error))()
        retried = f" after {attempts} attempts" if code in RETRYABLE else ""
        return DeliveryError(
            f"TrackBatch failed with {code.name}{retried}: {details}",
            events=events,
            code=code,
            reason=error_reason(error),
            attempts=attempts,
        )
