"""`Client`: send events to Wayline from a backend without waiting on the network.

Calls queue the event and return; one background thread sends TrackBatch calls through the gateway when
`max_batch_events` are waiting or `flush_interval` has passed, retries what the server may still accept
with the same event ids, and hands what it gives up on to `on_error`. The queue is bounded: when the
server pushes back (RESOURCE_EXHAUSTED) or cannot be reached, the sender pauses, the queue fills and
`track` blocks or drops rather than letting memory grow. `flush`, `close`, the context manager and an
atexit hook make sure queued events leave before the process does. `send` is the inline path.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal, Self

import grpc

from wayline.client.batching import MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_BYTES, check_event_size
from wayline.client.calls import TrackingCalls
from wayline.client.convert import ChannelLike, channel_value, event_id
from wayline.client.errors import ClientClosed, DeliveryError, QueueFull
from wayline.client.events import LIBRARY_NAME, LIBRARY_VERSION
from wayline.client.queue import Entry, EventQueue
from wayline.client.retry import Backoff
from wayline.client.sending import send_inline
from wayline.client.stats import ClientStats, Counters
from wayline.client.transport import Transport
from wayline.event.v1 import event_pb2
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb

__all__ = ["Client", "OnError"]

OnError = Callable[[DeliveryError], None]
log = logging.getLogger("wayline.client")


def _log_error(error: DeliveryError) -> None:
    log.warning("wayline: %d event(s) not delivered: %s (%s)", len(error.events), error.message, error.reason)


class Client(TrackingCalls):
    """A thread-safe, batching Wayline client; see docs/client.md."""

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        secure: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
        channel: ChannelLike | None = None,
        max_batch_events: int = 500,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_event_bytes: int = MAX_EVENT_BYTES,
        flush_interval: float = 0.5,
        max_queue_events: int = 10_000,
        on_full: Literal["block", "drop"] = "block",
        block_timeout: float | None = 10.0,
        max_retries: int = 10,
        backoff: Backoff | None = None,
        timeout: float = 10.0,
        shutdown_timeout: float | None = 30.0,
        on_error: OnError | None = None,
    ) -> None:
        """Connect to the gateway at `target` (`host:port`) with `api_key` (needs the write scope).

        TLS is on by default (`secure=False` for a local plaintext gateway; `credentials` for your own
        roots or mTLS). `channel` is the default channel of calls that name none. `on_full` chooses what
        `track` does when `max_queue_events` are waiting: "block" for up to `block_timeout` seconds then
        raise QueueFull, or "drop" the event at once and report it. `timeout` bounds each call,
        `max_retries` the resends of one batch, `shutdown_timeout` how long close() and exit wait.
        """
        if not target:
            raise ValueError("target must be the gateway's host:port")
        if not api_key:
            raise ValueError("api_key is required (the gateway refuses calls without one)")
        if not 1 <= max_batch_events <= MAX_BATCH_EVENTS:
            raise ValueError(f"max_batch_events must lie in 1..{MAX_BATCH_EVENTS} (the server's limit)")
        if max_queue_events < 1 or flush_interval <= 0 or timeout <= 0 or max_retries < 0:
            raise ValueError(
                "max_queue_events, flush_interval and timeout must be positive, max_retries >= 0"
            )
        if on_full not in ("block", "drop"):
            raise ValueError('on_full must be "block" or "drop"')
        self.channel = None if channel is None else channel_value(channel)  # a typo fails here, not later
        self._on_full = on_full
        self._block_timeout = block_timeout
        self._max_batch_events = max_batch_events
        self._max_batch_bytes = max_batch_bytes
        self._max_event_bytes = max_event_bytes
        self._shutdown_timeout = shutdown_timeout
        self._on_error = on_error or _log_error
        self._counters = Counters()
        self._grpc_channel = _channel(target, secure=secure, credentials=credentials)
        self._transport = Transport(
            self._grpc_channel,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff or Backoff(),
            counters=self._counters,
        )
        self._queue = EventQueue(
            max_events=max_queue_events,
            max_batch_events=max_batch_events,
            max_batch_bytes=max_batch_bytes,
            flush_interval=flush_interval,
        )
        self._closed = False
        self._close_lock = threading.Lock()
        self._sender = threading.Thread(target=self._send_queued, name="wayline-client-sender", daemon=True)
        self._sender.start()
        atexit.register(self._at_exit)

    def enqueue(self, event: event_pb2.Event) -> str:
        """Queue an event you built (with `track_event` and its siblings, or by hand); returns its
        event_id. A copy is queued, given an event_id and a timestamp when it has none."""
        return self._queue_built(_completed(event))

    def _queue_built(self, event: event_pb2.Event) -> str:
        if self._closed:
            raise ClientClosed("the client is closed")
        size = check_event_size(event, self._max_event_bytes)
        block = self._on_full == "block"
        if self._queue.put(event, size, block=block, timeout=self._block_timeout):
            self._counters.add(enqueued=1)
            return event.event_id
        self._counters.add(dropped=1)
        if block:
            raise QueueFull(
                f"the queue held {self._queue.pending} events for {self._block_timeout}s: the server is "
                "pushing back or cannot be reached"
            )
        self._report(
            DeliveryError(
                "the queue was full, so the event was dropped",
                events=[event],
                code=grpc.StatusCode.RESOURCE_EXHAUSTED,
                reason="QUEUE_FULL",
            )
        )
        return event.event_id

    def send(
        self, events: Sequence[event_pb2.Event], timeout: float | None = None, *, backfill: bool = False
    ) -> ingest_pb.TrackBatchResponse:
        """Send `events` now, on this thread, with the same retries; the server's answer when it comes.

        Copies are sent, given an event_id and a timestamp where they have none. More
        events than fit one call go in several, answered as one response with indices into `events`.
        `timeout` bounds the whole call, retries included. Raises DeliveryError when given up on.
        """
        if self._closed:
            raise ClientClosed("the client is closed")
        prepared = [_completed(event) for event in events]
        sizes = [check_event_size(event, self._max_event_bytes) for event in prepared]
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            return send_inline(
                self._transport,
                prepared,
                sizes,
                max_events=self._max_batch_events,
                max_bytes=self._max_batch_bytes,
                backfill=backfill,
                deadline=deadline,
            )
        except DeliveryError as error:
            self._counters.add(failed=len(error.events))
            raise

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued before this call now and wait until each event is acknowledged or given
        up on (reported to on_error). False when `timeout` seconds passed first."""
        return self._queue.flush(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the sender and close the channel. Waits up to `timeout` (the client's
        `shutdown_timeout` when None); what is still unacknowledged then goes to on_error as CLIENT_CLOSED.
        True when everything queued was finished in time. Closing twice is harmless."""
        with self._close_lock:
            if self._closed:
                return True
            self._closed = True
        atexit.unregister(self._at_exit)
        self._queue.close()
        if threading.current_thread() is self._sender:  # close() from on_error: the sender can't wait on
            return False  # itself; it sends the rest once the callback returns, then closes the channel
        finished = self._queue.flush(self._shutdown_timeout if timeout is None else timeout)
        if not finished:
            self._transport.abort()
        self._sender.join()
        return finished

    def stats(self) -> ClientStats:
        """The client's counters: calls made, events acknowledged, rejected, given up on, dropped."""
        return self._counters.snapshot(queued=self._queue.pending)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _at_exit(self) -> None:
        self.close()

    def _send_queued(self) -> None:
        while (batch := self._queue.take()) is not None:
            try:
                self._deliver(batch)
            finally:
                self._queue.done(batch)
        self._grpc_channel.close()  # take() returns None only once the client is closed and drained

    def _deliver(self, batch: list[Entry]) -> None:
        events = [entry.event for entry in batch]
        try:
            response = self._transport.deliver(events, wait_out_pushback=True)
        except DeliveryError as error:
            self._counters.add(failed=len(events))
            self._report(error)
            return
        except Exception as error:  # the sender thread must outlive any one batch
            log.exception("wayline: sending a batch failed unexpectedly")
            self._counters.add(failed=len(events))
            self._report(
                DeliveryError(str(error), events=events, code=grpc.StatusCode.UNKNOWN, reason="CLIENT_ERROR")
            )
            return
        for rejection in response.rejections:
            self._report(
                DeliveryError(
                    "the server rejected the event; see the field violations",
                    events=[events[rejection.index]],
                    code=grpc.StatusCode.INVALID_ARGUMENT,
                    reason="EVENT_REJECTED",
                    violations=rejection.violations,
                    attempts=1,
                )
            )

    def _report(self, error: DeliveryError) -> None:
        try:
            self._on_error(error)
        except Exception:  # a failing callback must not stop delivery
            log.exception("wayline: the on_error callback raised")


def _completed(event: event_pb2.Event) -> event_pb2.Event:
    """A copy of `event` with the id every retry must carry and the time of this call if it has none."""
    copy = event_pb2.Event()
    copy.CopyFrom(event)
    copy.event_id = event_id(event.event_id or None)
    if not copy.HasField("timestamp"):
        copy.timestamp.GetCurrentTime()
    return copy


def _channel(target: str, *, secure: bool, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
    options = [
        ("grpc.primary_user_agent", f"{LIBRARY_NAME}/{LIBRARY_VERSION}"),
        # Come back quickly after a gateway restart; our own backoff paces the retries.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        ("grpc.keepalive_time_ms", 30_000),
    ]
    if credentials is not None or secure:
        return grpc.secure_channel(target, credentials or grpc.ssl_channel_credentials(), options=options)
    return grpc.insecure_channel(target, options=options)
