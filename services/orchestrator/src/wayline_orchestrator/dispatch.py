"""The outbox dispatcher: flows' messages delivered through the tenant's connectors, one attempt per claim.

A loop (the timer loop's, with its own settings) claims PENDING rows of `flow_outbox` with a lease, resolves
the action's connector reference (`connectors/<id>`) to the tenant's connector, renders the message into the
connector's payload and makes ONE attempt; the outcome is recorded by idempotency key:

- delivered → DELIVERED with the time: never claimed again, by this replica after a restart or by another;
- transient (429, 5xx, timeout, network) → PENDING, next attempt after the connector's backoff (full jitter,
  or the receiver's Retry-After, capped by `max_backoff`), attempts counted; the last attempt → DEAD;
- permanent (any other refusal), an unknown connector or an address the channel needs missing → DEAD, and
  the message is kept in the connector's dead letters with the reason, as the contract's DeadLetter lists
  them: `permanent`, `exhausted` (the last attempt failed transiently), `unknown_connector`,
  `missing_address`;
- no connector reference on the action → UNROUTED (kept, with the reason, for an external poller).

A replica dying between the attempt and the record leaves the row to be claimed again once the lease ends:
delivery is at least once, every attempt with the same `Idempotency-Key`, on which receivers deduplicate."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from wayline.common.timestamps import now_us
from wayline_orchestrator.connectors.delivery import Deliverer
from wayline_orchestrator.connectors.model import (
    Channel,
    Connector,
    Kind,
    Message,
    Outcome,
    Recipient,
    Status,
)
from wayline_orchestrator.connectors.retry import next_wait
from wayline_orchestrator.connectors.store import ConnectorStore, Origin
from wayline_orchestrator.flows.runtime.model import Message as OutboxMessage
from wayline_orchestrator.flows.runtime.outbox_store import Claimed, OutboxState, OutboxStore

__all__ = ["OutboxDispatcher", "render"]

log = structlog.get_logger("wayline.orchestrator")


def render(message: OutboxMessage) -> Message:
    """The connector's message for an outbox message: channel, recipient (the person; the `email`, `phone`
    or `device_token` personalisation value when there is one), template id and personalisation values;
    `subject` and `body` from the personalisation values of those names; the action (a decided one, with
    the decision's id), so a receiver renders what the decision chose."""
    values = message.personalisation
    channel = Channel(message.channel.removeprefix("CHANNEL_").lower())
    return Message(
        channel=channel,
        recipient=Recipient(
            person_id=message.person_id,
            email=values.get("email", ""),
            phone=values.get("phone", ""),
            device_token=values.get("device_token", ""),
        ),
        idempotency_key=message.idempotency_key,
        subject=values.get("subject", ""),
        body=values.get("body", ""),
        template_id=message.template_id,
        personalisation=dict(values),
        action_id=message.action_id,
        decision_id=message.decision_id,
    )


class OutboxDispatcher:
    def __init__(
        self,
        outbox: OutboxStore,
        connectors: ConnectorStore,
        deliverer: Deliverer,
        lease_us: int,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._outbox = outbox
        self._connectors = connectors
        self._deliverer = deliverer
        self._lease_us = lease_us
        self._clock = clock

    def dispatch_due(self, limit: int) -> int:
        """Claim up to `limit` due messages and make one attempt for each; how many were claimed."""
        claimed = self._outbox.claim(self._clock(), limit, self._lease_us)
        for item in claimed:
            try:
                self._dispatch(item)
            except Exception:  # one message's failure never stops the batch; its lease retries it
                log.exception("flows.dispatch_failed", key=item.message.idempotency_key)
        return len(claimed)

    def _dead(self, item: Claimed, attempts: int, reason: str, connector_id: str, outcome: Outcome) -> None:
        key = item.message.idempotency_key
        try:
            letter = render(item.message)
        except ValueError:
            letter = Message(Channel.WEBHOOK, Recipient(person_id=item.message.person_id), key)
        sent_by = Origin(item.message.flow_id, item.message.step_id, item.message.channel)
        self._deliverer.bury(item.tenant, connector_id, letter, outcome, reason, sent_by)
        detail = f"{reason}: {outcome.error}" if outcome.error else reason
        self._outbox.settle(item.tenant, key, OutboxState.DEAD, attempts, at=self._clock(), reason=detail)

    def _dispatch(self, item: Claimed) -> None:
        message, key = item.message, item.message.idempotency_key
        if not message.connector:
            reason = "the action names no connector"
            self._outbox.settle(
                item.tenant, key, OutboxState.UNROUTED, item.attempts, at=self._clock(), reason=reason
            )
            return
        connector_id = message.connector.removeprefix("connectors/")
        connector = self._connectors.get(item.tenant, connector_id)
        if connector is None:
            refused = Outcome(Status.PERMANENT, item.attempts, error=f"no connector `{connector_id}`")
            self._dead(item, item.attempts, "unknown_connector", connector_id, refused)
            return
        try:
            letter = render(message)
        except ValueError:
            refused = Outcome(Status.PERMANENT, item.attempts, error=f"unknown channel {message.channel}")
            self._dead(item, item.attempts, "permanent", connector_id, refused)
            return
        if connector.kind is Kind.SMTP and not letter.recipient.email:
            refused = Outcome(Status.PERMANENT, item.attempts, error="no `email` personalisation value")
            self._dead(item, item.attempts, "missing_address", connector_id, refused)
            return
        self._attempt(item, connector, letter)

    def _attempt(self, item: Claimed, connector: Connector, letter: Message) -> None:
        number = item.attempts + 1
        result = self._deliverer.attempt(connector, letter, number)
        outcome = Outcome(result.status, number, result.response_code, result.error)
        key = letter.idempotency_key
        if result.status is Status.DELIVERED:
            self._outbox.settle(item.tenant, key, OutboxState.DELIVERED, number, at=self._clock())
            return
        if result.status is Status.PERMANENT:
            self._dead(item, number, "permanent", connector.connector_id, outcome)
            return
        if number >= connector.retry.max_attempts:
            self._dead(item, number, "exhausted", connector.connector_id, outcome)
            return
        wait = next_wait(connector.retry, number, result.retry_after)
        next_time = self._clock() + round(wait * 1_000_000)
        reason = result.error
        self._outbox.settle(item.tenant, key, OutboxState.PENDING, number, next_time=next_time, reason=reason)
