"""Delivering a message through a connector: attempts with retries (`retry.with_retries`), and a dead
letter in the store when the message cannot be delivered, with the reason (`permanent` when the receiver
refused it, `exhausted` when every attempt failed transiently)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import httpx

from wayline_orchestrator.connectors.model import (
    Attempt,
    Channel,
    Connector,
    Kind,
    Message,
    Outcome,
    Recipient,
    RetryPolicy,
    Status,
)
from wayline_orchestrator.connectors.retry import with_retries
from wayline_orchestrator.connectors.smtp import email_message, smtp_attempt
from wayline_orchestrator.connectors.store import NO_ORIGIN, ConnectorStore, Origin
from wayline_orchestrator.connectors.webhook import TEST_TYPE, encode, payload, webhook_attempt

__all__ = ["Deliverer", "test_message"]


def test_message(connector: Connector, recipient: str, key: str) -> Message:
    """The message TestConnector sends."""
    if connector.kind is Kind.SMTP:
        to, channel = Recipient(email=recipient), Channel.EMAIL
    else:
        to, channel = Recipient(person_id=recipient), Channel.WEBHOOK
    return Message(
        channel=channel,
        recipient=to,
        idempotency_key=key,
        subject="Wayline connector test",
        body=f"A test message from Wayline through the connector `{connector.connector_id}`.",
    )


class Deliverer:
    def __init__(
        self,
        store: ConnectorStore,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._client = client or httpx.Client(follow_redirects=False)
        self._sleep = sleep

    def close(self) -> None:
        self._client.close()

    def deliver(self, tenant: str, connector: Connector, message: Message) -> Outcome:
        """Deliver `message` under the connector's retry policy; a message that cannot be delivered ends in
        the connector's dead letters."""
        outcome = with_retries(self._attempts(connector, message), connector.retry, self._sleep)
        if outcome.status is Status.DELIVERED:
            return outcome
        reason = "permanent" if outcome.status is Status.PERMANENT else "exhausted"
        self._store.bury(tenant, connector.connector_id, message, outcome, reason, int(time.time() * 1e6))
        return replace(outcome, dead_lettered=True)

    def attempt(self, connector: Connector, message: Message, number: int) -> Attempt:
        """One attempt (number `number`, from 1), no retry and no dead letter: the outbox dispatcher's."""
        return self._attempts(connector, message)(number)

    def bury(  # noqa: PLR0917 - one letter's parts
        self,
        tenant: str,
        connector_id: str,
        message: Message,
        outcome: Outcome,
        reason: str,
        origin: Origin = NO_ORIGIN,
    ) -> None:
        self._store.bury(tenant, connector_id, message, outcome, reason, int(time.time() * 1e6), origin)

    def test(self, connector: Connector, message: Message) -> Outcome:
        """One attempt, no retry and no dead letter."""
        return with_retries(self._attempts(connector, message, test=True), RetryPolicy(max_attempts=1))

    def _attempts(
        self, connector: Connector, message: Message, *, test: bool = False
    ) -> Callable[[int], Attempt]:
        if connector.kind is Kind.SMTP:
            assert connector.smtp is not None
            smtp = connector.smtp
            try:
                mail = email_message(smtp, message)
            except ValueError as error:  # a header with a line break: no attempt could send it
                refused = Attempt(Status.PERMANENT, error=f"the message cannot be sent as email: {error}")
                return lambda _: refused
            return lambda _: smtp_attempt(smtp, mail, connector.timeout)
        assert connector.webhook is not None
        webhook = connector.webhook
        body = encode(payload(message, int(time.time()), TEST_TYPE if test else ""))
        return lambda n: webhook_attempt(
            self._client, webhook, body, key=message.idempotency_key, timeout=connector.timeout, number=n
        )
