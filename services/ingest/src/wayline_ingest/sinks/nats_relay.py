"""The JetStream relay: from the shared stream to the services, through one durable pull consumer per
downstream sink (`ingest-<sink name>`).

Every ingest replica runs the relay, and the replicas share each durable consumer: JetStream hands each
message to one fetcher at a time, so each downstream gets every event about once across replicas, and the
work spreads over them. A message is acked only after the `Deliverer` took it (delivered or parked as a dead
letter); when the relay stops first, the messages it holds are nak'd so another replica (or the next start)
takes them at once. A replica that dies holding messages loses nothing: JetStream redelivers them after
`ack_wait`, which the relay keeps extending (`+WPI`) while a slow or down sink is being retried, so that a
long outage does not turn into redeliveries to the other replicas.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from wayline_ingest.delivery import Backoff, DeadLetterPark, Deliverer, DeliveryPolicy, start_per_sink
from wayline_ingest.destinations import SELECTABLE_SINKS, deselected
from wayline_ingest.sinks.base import Sink
from wayline_ingest.sinks.nats import JetStreamPublisher, LoopThread, NatsConnection, StreamSpec

__all__ = ["JetStreamRelay", "RelayLimits", "jetstream_mode"]

log = structlog.get_logger("wayline.ingest.jetstream")

PullSubscription = JetStreamContext.PullSubscription


@dataclass(frozen=True)
class RelayLimits:
    """How much each replica fetches and holds. `max_ack_pending` bounds the messages out unacked across all
    replicas of one consumer (set it to `batch` for a strict order at the cost of one replica at a time);
    `ack_wait` is how long a dead replica's messages wait before redelivery."""

    batch: int = 256
    max_ack_pending: int = 1024
    ack_wait_seconds: float = 60.0
    fetch_timeout_seconds: float = 1.0
    max_write_bytes: int = 4 * 2**20


class JetStreamRelay:
    def __init__(
        self,
        nats_url: str,
        sinks: Sequence[Sink],
        *,
        policy: DeliveryPolicy,
        dead_letters: DeadLetterPark | None,
        stream: StreamSpec | None = None,
        limits: RelayLimits | None = None,
    ) -> None:
        self.stream = stream or StreamSpec()
        self._limits = limits or RelayLimits()
        self._stop = threading.Event()
        self._deliverers = [Deliverer(sink, policy, dead_letters, self._stop) for sink in sinks]
        self._loop = LoopThread("jetstream-relay")
        self._connection = NatsConnection(nats_url, self.stream, "relay")
        self._subscriptions: dict[str, PullSubscription] = {}
        self._threads: list[threading.Thread] = []

    @staticmethod
    def durable_name(sink: str) -> str:
        return f"ingest-{sink}"

    def start(self) -> None:
        self._threads = start_per_sink(self._deliverers, self._run, "relay")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop fetching, nak what is held but undelivered, send the acks, close; within about `timeout`."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        try:
            self._loop.run(self._shutdown(), timeout)
        except Exception as error:  # noqa: BLE001 - unacked messages are redelivered after ack_wait: nothing is lost
            log.warning("relay.shutdown_failed", error=str(error))
        self._loop.close()
        for deliverer in self._deliverers:
            deliverer.sink.close()

    def breaker_states(self) -> dict[str, str]:
        return {d.sink.name: d.breaker.state for d in self._deliverers}

    def _run(self, deliverer: Deliverer) -> None:
        name = deliverer.sink.name
        backoff = Backoff(0.1, 5.0)
        fetch_timeout = self._limits.fetch_timeout_seconds
        while not self._stop.is_set():
            try:
                messages = self._loop.run(self._fetch(name), fetch_timeout + 10.0)
            except Exception as error:  # noqa: BLE001 - NATS down or restarting: try again, nothing was taken
                self._subscriptions.pop(name, None)
                delay = backoff.next_delay()
                log.warning("relay.fetch_failed", sink=name, error=str(error), retry_in_s=round(delay, 3))
                self._stop.wait(delay)
                continue
            backoff.reset()
            if messages:
                self._relay(deliverer, messages)

    async def _fetch(self, sink: str) -> list[Msg]:
        subscription = self._subscriptions.get(sink)
        if subscription is None:
            subscription = await self._subscribe(sink)
            self._subscriptions[sink] = subscription
        try:
            return await subscription.fetch(self._limits.batch, self._limits.fetch_timeout_seconds)
        except nats.errors.TimeoutError:
            return []

    async def _subscribe(self, sink: str) -> PullSubscription:
        js = await self._connection.jetstream()
        config = api.ConsumerConfig(
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=self._limits.ack_wait_seconds,
            max_ack_pending=self._limits.max_ack_pending,
            max_deliver=-1,
        )
        return await js.pull_subscribe(
            f"{self.stream.subject_prefix}.>",
            durable=self.durable_name(sink),
            stream=self.stream.name,
            config=config,
        )

    def _relay(self, deliverer: Deliverer, messages: list[Msg]) -> None:
        """Deliver runs of one tenant in order, acking each run once taken; on stop, nak the rest."""
        keep_alive = asyncio.run_coroutine_threadsafe(self._keep_alive(messages), self._loop.loop)
        try:
            runs = self._runs(messages)
            sink = deliverer.sink.name
            selectable = sink in SELECTABLE_SINKS
            for index, (tenant, run) in enumerate(runs):
                # What each event's `integrations` turns off is read from its own bytes here: a message is
                # one event, with no record around it to say whether any selects (destinations.py).
                events = [m.data for m in run if not selectable or sink not in deselected(m.data)]
                if self._stop.is_set() or (events and not deliverer.deliver(tenant, events)):
                    rest = [m for _, later in runs[index:] for m in later]
                    self._settle(rest, ack=False)
                    return
                self._settle(run, ack=True)
        finally:
            keep_alive.cancel()

    def _runs(self, messages: list[Msg]) -> list[tuple[str, list[Msg]]]:
        runs: list[tuple[str, list[Msg]]] = []
        size = 0
        for message in messages:
            tenant = self.stream.tenant(message.subject)
            if runs and runs[-1][0] == tenant and size < self._limits.max_write_bytes:
                runs[-1][1].append(message)
                size += len(message.data)
            else:
                runs.append((tenant, [message]))
                size = len(message.data)
        return runs

    def _settle(self, messages: list[Msg], *, ack: bool) -> None:
        try:
            self._loop.run(self._send_acks(messages, ack), 10.0)
        except Exception as error:  # noqa: BLE001 - the messages come back after ack_wait: delivered twice at worst
            log.warning("relay.ack_failed", count=len(messages), ack=ack, error=str(error))

    async def _send_acks(self, messages: list[Msg], ack: bool) -> None:
        for message in messages:
            await (message.ack() if ack else message.nak())
        await self._connection.flush()

    async def _keep_alive(self, messages: list[Msg]) -> None:
        """Tell JetStream, every third of ack_wait, that held messages are still being worked on."""
        while True:
            await asyncio.sleep(self._limits.ack_wait_seconds / 3)
            for message in messages:
                if not message.is_acked:
                    await message.in_progress()

    async def _shutdown(self) -> None:
        for subscription in self._subscriptions.values():
            # A pull that was answered after its fetch timed out leaves messages in the queue: hand them back.
            queue = subscription._sub._pending_queue if subscription._sub is not None else None
            while queue is not None and not queue.empty():
                message = queue.get_nowait()
                if message.reply and not JetStreamContext.is_status_msg(message):
                    await message.nak()
        self._subscriptions.clear()
        await self._connection.close()


def jetstream_mode(
    nats_url: str,
    stream: StreamSpec | str,
    downstream_sinks: Sequence[Sink],
    policy: DeliveryPolicy,
    dead_letters: DeadLetterPark | None,
    *,
    limits: RelayLimits | None = None,
) -> tuple[JetStreamPublisher, JetStreamRelay]:
    """The publisher (the spool forwarder's only sink) and the relay (start/stop it with the forwarder) of
    JetStream mode."""
    spec = StreamSpec(name=stream) if isinstance(stream, str) else stream
    publisher = JetStreamPublisher(nats_url, spec)
    relay = JetStreamRelay(
        nats_url, downstream_sinks, policy=policy, dead_letters=dead_letters, stream=spec, limits=limits
    )
    return publisher, relay
