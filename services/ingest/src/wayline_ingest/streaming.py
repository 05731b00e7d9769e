"""StreamEvents: numbered batches in, one acknowledgement per batch out, with a credit window.

A reader thread takes batches off the stream, checks them and starts their spool writes without waiting,
so checking batch n+1 overlaps the fsync of batch n; the response side waits for each write in order and
acknowledges it. The client may have at most `window` batches beyond the last acknowledged one
(`max_sequence`), so a fast client can hold at most `window` batches of memory here. While the spool is
over 90 % of its quota the window stops growing: the client slows down instead of failing.

When the process begins to shut down (`draining`), a stream takes no more batches: it acknowledges those it
took and ends with UNAVAILABLE (reason SHUTTING_DOWN), so that the client sends the rest on a new stream to
another replica, or to this one once it is back, and the process stops within moments instead of holding
its whole shutdown grace for a stream the client keeps open (ADR 49).

A stream the gateway's data plane passed here without reading it carries its caller's event quotas
(`StreamPacing`, ADR 106): each batch pays its events before it is checked, waiting for them up to the stated
time; past it the stream ends with RESOURCE_EXHAUSTED naming the quota, after the batches before are
acknowledged, as the gateway's own pacing does.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import grpc

from wayline.common.errors import (
    FieldViolation,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
    WaylineError,
)
from wayline.common.quotas import EventPacer, EventPacing
from wayline.ingest.v1 import ingest_service_pb2 as pb
from wayline_ingest.batches import BatchLimits, batch_path, rejections, warnings
from wayline_ingest.pipeline import Checked, Pipeline
from wayline_ingest.wire import read_stream_request

__all__ = ["EventStream", "StreamPacing"]

_PRESSURE = 0.9
_END = object()
_SHUTTING_DOWN = "SHUTTING_DOWN"


def _shutting_down() -> Unavailable:
    return Unavailable(
        "ingest is shutting down; send the batches not acknowledged yet again on a new stream",
        reason=_SHUTTING_DOWN,
        retry_after=1.0,
    )


@dataclass(frozen=True)
class StreamPacing:
    """A stream's event quotas (its header, read) and the process's pacer that keeps their buckets."""

    pacer: EventPacer
    pacing: EventPacing

    def charge(self, events: int) -> None:
        self.pacer.charge(self.pacing, events)


@dataclass(frozen=True)
class _Accepted:
    sequence: int
    checked: Checked
    written: Future[int] | None


class EventStream:
    def __init__(
        self,
        tenant: str,
        pipeline: Pipeline,
        limits: BatchLimits,
        window: int,
        context: grpc.ServicerContext,
        *,
        draining: threading.Event | None = None,
        pacing: StreamPacing | None = None,
    ) -> None:
        self._tenant = tenant
        self._pacing = pacing
        self._pipeline = pipeline
        self._limits = limits
        self._window = window
        self._context = context
        self._draining = draining or threading.Event()
        self._granted = window  # the highest sequence the client may send
        self._lock = threading.Lock()
        self._pending: queue.Queue[object] = queue.Queue(maxsize=window + 1)

    def run(self, requests: Iterator[bytes]) -> Iterator[pb.StreamEventsResponse]:
        if self._draining.is_set():
            raise _shutting_down()
        reader = threading.Thread(target=self._read, args=(requests,), name="stream-reader", daemon=True)
        reader.start()
        yield pb.StreamEventsResponse(sequence=0, max_sequence=self._granted)
        while True:
            try:
                item = self._pending.get(timeout=0.5)
            except queue.Empty:
                if not self._context.is_active():  # the call ended (the client or its connection went
                    return  # away) and the reader stopped: no thread may wait here for ever
                if self._draining.is_set():  # every batch handed over is acknowledged; one still being
                    raise _shutting_down() from None  # checked is not, and comes again (stored once)
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, _Accepted)
            sequence, checked, written = item.sequence, item.checked, item.written
            outcome = self._pipeline.complete(checked, written)
            yield pb.StreamEventsResponse(
                sequence=sequence,
                accepted_count=len(outcome.accepted_ids),
                accepted_event_ids=outcome.accepted_ids,
                rejections=rejections(outcome.rejections),
                warnings=warnings(outcome.warnings),
                max_sequence=self._grant(sequence),
            )

    def _grant(self, acknowledged: int) -> int:
        with self._lock:
            if self._pipeline.spool.fill_ratio < _PRESSURE:
                self._granted = max(self._granted, acknowledged + self._window)
            return self._granted

    def _read(self, requests: Iterator[bytes]) -> None:
        expected = 1
        try:
            for request in requests:
                if self._draining.is_set():  # the batches before this one are acknowledged first
                    self._hand_over(_shutting_down())
                    return
                if not self._hand_over(self._accept(request, expected)):
                    return
                expected += 1
            self._hand_over(_END)
        except WaylineError as error:
            self._hand_over(error)
        except grpc.RpcError:  # the client went away: nothing to answer
            self._hand_over(_END)
        except Exception as error:  # noqa: BLE001 - handed to the response side, which reports it
            self._hand_over(error)

    def _hand_over(self, item: object) -> bool:
        """Queue `item` for the response side; False once the call has ended, so that the reader of a
        stream nobody answers any more does not wait forever on a full queue."""
        while self._context.is_active():
            try:
                self._pending.put(item, timeout=0.5)
            except queue.Full:
                continue
            return True
        return False

    def _accept(self, data: bytes, expected: int) -> _Accepted:
        request = read_stream_request(data)
        if request.sequence != expected:
            raise InvalidArgument(
                f"batch {request.sequence} arrived where batch {expected} was due; number them 1, 2, 3, ...",
                [FieldViolation("sequence", f"expected {expected}", "SEQUENCE_OUT_OF_ORDER")],
                reason="SEQUENCE_OUT_OF_ORDER",
            )
        with self._lock:
            granted = self._granted
        if request.sequence > granted:
            raise ResourceExhausted(
                f"batch {request.sequence} was sent beyond the window (max_sequence {granted}); wait for "
                "acknowledgements before sending more",
                reason="STREAM_WINDOW_EXCEEDED",
            )
        self._limits.check(len(request.events), request.size)
        if self._pacing is not None:
            self._pacing.charge(len(request.events))
        checked = self._pipeline.check_wire(self._tenant, request.events, batch_path, request.backfill)
        return _Accepted(request.sequence, checked, self._submit(checked))

    def _submit(self, checked: Checked) -> Future[int] | None:
        """Start the write; while the spool is full, wait for room instead of failing the stream."""
        while True:
            try:
                return self._pipeline.submit(checked)
            except ResourceExhausted:
                if not self._context.is_active():
                    raise Unavailable("the stream ended while waiting for room in the spool") from None
                time.sleep(0.2)
