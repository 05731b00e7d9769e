"""The JetStream sink: ingest replicas publish their spooled events to one NATS JetStream stream, from which
shared durable consumers (`nats_relay.JetStreamRelay`) deliver them to the services.

Why JetStream: it is an existing, replicated, disk-backed log, so a deployment that outgrows one machine gets
fan-out to many consumers, replay and cross-replica sharing of work without Wayline writing its own.

- Each event is published to `<prefix>.<tenant token>` with the header
  `Nats-Msg-Id: <tenant token>:<event_id>`: the spool delivers at least once, and JetStream drops a message
  whose id it has seen within the stream's duplicate window, so a batch republished after a crash or a lost
  PubAck is stored once.
- A batch is published pipelined (every message sent, then every PubAck awaited); any failure or timeout is a
  `TransientDeliveryError`, so the forwarder retries the same batch, which the dedup makes harmless.
- nats-py is asyncio and the forwarder is a thread: each object runs one event loop in a daemon thread of its
  own and the sync callers submit coroutines to it (`LoopThread`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext, api

from wayline.event.v1 import event_pb2
from wayline_ingest.sinks.base import DeliveryFailure, PermanentDeliveryError, TransientDeliveryError

__all__ = [
    "JetStreamPublisher",
    "LoopThread",
    "NatsConnection",
    "StreamSpec",
    "subject_token",
    "tenant_of_token",
    "transient",
]

log = structlog.get_logger("wayline.ingest.jetstream")
T = TypeVar("T")

_KEPT = re.compile(r"[A-Za-z0-9-]")
_ESCAPE = re.compile(r"_([0-9A-F]{2})")


def subject_token(tenant: str) -> str:
    """`tenant` as one subject token: letters, digits and `-` kept, every other UTF-8 byte as `_XX` (so `.`,
    `*`, `>` and spaces cannot split or widen a subject); the empty tenant is `_`. Reversible."""
    if not tenant:
        return "_"
    return "".join(
        char if _KEPT.fullmatch(char) else "".join(f"_{byte:02X}" for byte in char.encode())
        for char in tenant
    )


def tenant_of_token(token: str) -> str:
    """The tenant that `subject_token` encoded as `token`."""
    if token == "_":  # noqa: S105 - a subject token, not a secret
        return ""
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(token):
        raw += token[position : match.start()].encode()
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += token[position:].encode()
    return raw.decode()


@dataclass(frozen=True)
class StreamSpec:
    """The stream both modes' objects create when it is missing (an existing stream is left as an operator
    tuned it). Limits retention keeps events for every consumer (present and future) until `max_age`; when
    `max_bytes` is reached new publishes are refused (discard new), which backs up into the spools instead
    of silently dropping events nobody has delivered yet."""

    name: str = "WAYLINE_EVENTS"
    subject_prefix: str = "wayline.events"
    max_age_seconds: float = 7 * 24 * 3600.0
    max_bytes: int = 8 * 2**30
    duplicate_window_seconds: float = 600.0
    replicas: int = 1

    def subject(self, tenant: str) -> str:
        return f"{self.subject_prefix}.{subject_token(tenant)}"

    def tenant(self, subject: str) -> str:
        return tenant_of_token(subject[len(self.subject_prefix) + 1 :])

    def config(self) -> api.StreamConfig:
        return api.StreamConfig(
            name=self.name,
            subjects=[f"{self.subject_prefix}.>"],
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.NEW,
            storage=api.StorageType.FILE,
            max_age=self.max_age_seconds,
            max_bytes=self.max_bytes,
            duplicate_window=self.duplicate_window_seconds,
            num_replicas=self.replicas,
        )


def transient(error: BaseException, reason: str = "JETSTREAM_UNAVAILABLE") -> TransientDeliveryError:
    return TransientDeliveryError(
        DeliveryFailure(code="UNAVAILABLE", reason=reason, message=f"{type(error).__name__}: {error}")
    )


class LoopThread:
    """One asyncio event loop in a daemon thread, for sync callers of nats-py."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the loop and wait for it; a timeout cancels it and raises TimeoutError."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self.loop.close()


class NatsConnection:
    """A connection made on first use, again after it closed, and the stream ensured on each (only ever
    touched from one loop)."""

    def __init__(self, url: str, stream: StreamSpec, name: str, connect_timeout: float = 2.0) -> None:
        self._url = url
        self._stream = stream
        self._name = name
        self._connect_timeout = connect_timeout
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._lock: asyncio.Lock | None = None

    async def jetstream(self) -> JetStreamContext:
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._client is None or self._client.is_closed or self._js is None:
                self._client, self._js = await self._connect()
            return self._js

    async def _connect(self) -> tuple[Client, JetStreamContext]:
        async def on_error(error: Exception) -> None:
            log.warning("jetstream.connection_error", connection=self._name, error=str(error))

        # Once connected, the client reconnects by itself for as long as it takes; the first connection is
        # bounded, so that a server that is down is a transient error the caller retries.
        client = Client()
        try:
            await asyncio.wait_for(
                client.connect(
                    self._url,
                    name=f"wayline-ingest-{self._name}",
                    connect_timeout=max(1, int(self._connect_timeout)),
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    error_cb=on_error,
                ),
                self._connect_timeout,
            )
        except BaseException:
            await client.close()
            raise
        js = client.jetstream()
        try:
            await self._ensure_stream(js)
        except BaseException:
            await client.close()
            raise
        return client, js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        """Create the stream when it is missing. Replicas (and the publisher and relay of one replica) start
        together: when two create it at once, the server can refuse the second with "subjects overlap with
        an existing stream" (nats-io/nats.go#949; about one start in a hundred against nats-server 2.9),
        so a refused creation is checked against the stream that now exists before it counts as a failure."""
        try:
            await js.stream_info(self._stream.name)
            return
        except nats.js.errors.NotFoundError:
            pass
        try:
            await js.add_stream(self._stream.config())
        except nats.js.errors.APIError as refused:
            try:
                await js.stream_info(self._stream.name)
            except nats.js.errors.NotFoundError:
                raise refused from None
            log.info("jetstream.stream_created_concurrently", stream=self._stream.name)
            return
        log.info("jetstream.stream_created", stream=self._stream.name)

    async def flush(self) -> None:
        """Wait until the server has everything sent so far (acks are fire-and-forget publishes)."""
        if self._client is not None and not self._client.is_closed:
            await self._client.flush()

    async def close(self) -> None:
        """Flush what was sent (acks, naks) and close. Not `drain`: it waits for the pull subscriptions'
        leftover status messages to be consumed, which nobody will do."""
        client, self._client, self._js = self._client, None, None
        if client is None or client.is_closed:
            return
        try:
            await client.flush(timeout=5)
        except Exception as error:  # noqa: BLE001 - closing anyway: unacked messages are redelivered after ack_wait
            log.warning("jetstream.flush_failed", connection=self._name, error=str(error))
        await client.close()


def _event_id(event: bytes) -> str:
    event_id = event_pb2.Event.FromString(event).event_id
    return event_id or hashlib.sha256(event).hexdigest()


class JetStreamPublisher:
    """The `Sink` the spool's forwarder delivers to in JetStream mode: every event stored once in the stream
    within its duplicate window, or a TransientDeliveryError."""

    def __init__(
        self,
        nats_url: str,
        stream: StreamSpec | None = None,
        *,
        ack_timeout: float = 10.0,
        connect_timeout: float = 2.0,
    ) -> None:
        self.name = "jetstream"
        self.stream = stream or StreamSpec()
        self._ack_timeout = ack_timeout
        self._connect_timeout = connect_timeout
        self._loop = LoopThread("jetstream-publish")
        self._connection = NatsConnection(nats_url, self.stream, "publish", connect_timeout)

    def deliver(self, tenant: str, events: Sequence[bytes]) -> None:
        try:
            duplicates = self._loop.run(
                self._publish(tenant, events), self._ack_timeout + self._connect_timeout + 5.0
            )
        except nats.errors.MaxPayloadError as error:
            raise PermanentDeliveryError(
                DeliveryFailure(code="INVALID_ARGUMENT", reason="EVENT_TOO_LARGE", message=str(error))
            ) from error
        except Exception as error:
            raise transient(error) from error
        if duplicates:
            log.info("jetstream.duplicates_dropped", tenant=tenant, count=duplicates, events=len(events))

    async def _publish(self, tenant: str, events: Sequence[bytes]) -> int:
        """Publish every event, then await every PubAck; the number JetStream reported as duplicates."""
        js = await self._connection.jetstream()
        subject = self.stream.subject(tenant)
        token = subject_token(tenant)
        pending: list[asyncio.Future[api.PubAck]] = []
        try:
            async with asyncio.timeout(self._ack_timeout):
                for event in events:
                    headers = {api.Header.MSG_ID.value: f"{token}:{_event_id(event)}"}
                    pending.append(
                        await js.publish_async(subject, event, stream=self.stream.name, headers=headers)
                    )
                acks = await asyncio.gather(*pending)
        finally:
            for future in pending:
                future.cancel()  # frees nats-py's pending slot of each ack not received
        return sum(1 for ack in acks if ack.duplicate)

    def close(self) -> None:
        try:
            self._loop.run(self._connection.close(), 10.0)
        except Exception as error:  # noqa: BLE001 - closing anyway
            log.warning("jetstream.close_failed", error=str(error))
        self._loop.close()
