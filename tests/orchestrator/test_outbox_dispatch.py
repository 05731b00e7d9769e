"""The outbox dispatcher on both engines against real local receivers (the connectors' HTTP server, aiosmtpd):
one attempt per claim, states by idempotency key, dead letters, disjoint claims, and a claim whose replica
died before recording being sent again with the same key."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from tests.orchestrator.receivers import SECRET, HttpReceiver, Reply, SmtpHandler, smtp_receiver
from tests.orchestrator.runtime_calls import FakeClock
from wayline.common.sql import Database
from wayline_orchestrator.connectors import (
    Connector,
    ConnectorStore,
    Deliverer,
    Kind,
    RetryPolicy,
    SmtpConfig,
    WebhookConfig,
)
from wayline_orchestrator.dispatch import OutboxDispatcher
from wayline_orchestrator.flows.runtime import Message, RuntimeStore
from wayline_orchestrator.flows.runtime.outbox_store import OutboxState, OutboxStore

TENANT = "acme"
LEASE_US = 60_000_000
FAST = RetryPolicy(max_attempts=3, initial_backoff=1.0, max_backoff=2.0)


@pytest.fixture(scope="module")
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpHandler, int]]:
    with smtp_receiver() as receiver:
        yield receiver


class Stores:
    def __init__(self, db: Database) -> None:
        self.runtime = RuntimeStore(db)
        self.runtime.migrate()
        self.connectors = ConnectorStore(db)
        self.connectors.migrate()
        self.outbox = OutboxStore(db)
        self.clock = FakeClock()
        self.deliverer = Deliverer(self.connectors)

    def dispatcher(self) -> OutboxDispatcher:
        return OutboxDispatcher(self.outbox, self.connectors, self.deliverer, LEASE_US, self.clock)

    def add(self, key: str, channel: str = "CHANNEL_PUSH", connector: str = "connectors/push-hook") -> None:
        message = Message(
            idempotency_key=key,
            flow_id="abandoned-cart",
            version=1,
            person_id="p-1",
            entry_number=1,
            step_id="push_reminder",
            channel=channel,
            create_time=self.clock(),
            connector=connector,
            template_id="cart-reminder-push",
            personalisation={"cart_value": "129", "email": "p1@shop.example"},
            action_id="discount_15",
            decision_id="d-42",
        )
        with self.runtime.transaction() as tx:
            assert self.runtime.add_message(tx, TENANT, message)


@pytest.fixture
def stores(database: Database, http: HttpReceiver) -> Stores:
    built = Stores(database)
    hook = Connector(
        "push-hook", Kind.WEBHOOK, webhook=WebhookConfig(http.url, SECRET), timeout=5.0, retry=FAST
    )
    assert built.connectors.insert(TENANT, hook)
    return built


def test_a_message_is_delivered_once_with_its_key_and_payload(stores: Stores, http: HttpReceiver) -> None:
    http.reset()
    stores.add("k-1")
    dispatcher = stores.dispatcher()
    assert dispatcher.dispatch_due(10) == 1
    delivered_at = stores.clock()
    assert dispatcher.dispatch_due(10) == 0  # DELIVERED is never claimed again
    stores.clock.advance(3600)
    assert dispatcher.dispatch_due(10) == 0
    [received] = http.received
    assert received.signed
    assert received.headers["Idempotency-Key"] == "k-1"
    document = json.loads(received.body)
    assert document["id"] == "k-1"
    assert document["type"] == "message.push"
    assert document["data"]["template_id"] == "cart-reminder-push"
    assert document["data"]["personalisation"]["cart_value"] == "129"
    # The action (a decided one) and its decision: what the receiver renders and reports feedback against.
    assert (document["data"]["action_id"], document["data"]["decision_id"]) == ("discount_15", "d-42")
    settled = stores.outbox.settled(TENANT, "k-1")
    assert settled is not None
    assert (settled.state, settled.attempts, settled.settle_time) == (
        OutboxState.DELIVERED,
        1,
        delivered_at,
    )


def test_a_503_waits_for_the_backoff_then_the_next_claim_delivers(stores: Stores, http: HttpReceiver) -> None:
    http.reset(Reply(503, {"Retry-After": "2"}))
    stores.add("k-2")
    dispatcher = stores.dispatcher()
    assert dispatcher.dispatch_due(10) == 1  # one attempt per claim: no blocking retry loop
    assert len(http.received) == 1
    settled = stores.outbox.settled(TENANT, "k-2")
    assert settled is not None
    assert (settled.state, settled.attempts) == (OutboxState.PENDING, 1)
    assert settled.next_time == stores.clock() + 2_000_000  # Retry-After honoured (under max_backoff)
    assert "HTTP 503" in settled.reason
    assert dispatcher.dispatch_due(10) == 0  # not due yet
    stores.clock.advance(2)
    assert dispatcher.dispatch_due(10) == 1
    assert [r.headers["Idempotency-Key"] for r in http.received] == ["k-2", "k-2"]
    assert [r.headers["Wayline-Attempt"] for r in http.received] == ["1", "2"]
    settled = stores.outbox.settled(TENANT, "k-2")
    assert settled is not None
    assert (settled.state, settled.attempts) == (OutboxState.DELIVERED, 2)


def test_a_400_dead_letters_at_once(stores: Stores, http: HttpReceiver) -> None:
    http.reset(Reply(400))
    stores.add("k-3")
    stores.dispatcher().dispatch_due(10)
    settled = stores.outbox.settled(TENANT, "k-3")
    assert settled is not None
    assert settled.state == OutboxState.DEAD
    assert settled.reason.startswith("permanent: HTTP 400")
    [letter] = stores.connectors.dead_letters(TENANT, "push-hook")
    assert (letter.message.idempotency_key, letter.reason, letter.attempts) == ("k-3", "permanent", 1)


def test_transient_failures_to_the_last_attempt_dead_letter_as_exhausted(
    stores: Stores, http: HttpReceiver
) -> None:
    http.reset(Reply(503), Reply(503), Reply(503))
    stores.add("k-4")
    dispatcher = stores.dispatcher()
    for _ in range(3):
        assert dispatcher.dispatch_due(10) == 1
        stores.clock.advance(2)
    assert dispatcher.dispatch_due(10) == 0
    settled = stores.outbox.settled(TENANT, "k-4")
    assert settled is not None
    assert (settled.state, settled.attempts) == (OutboxState.DEAD, 3)
    [letter] = stores.connectors.dead_letters(TENANT, "push-hook")
    assert (letter.reason, letter.attempts, letter.response_code) == ("exhausted", 3, 503)


def test_an_action_without_a_connector_is_unrouted_and_an_unknown_one_is_dead(
    stores: Stores, http: HttpReceiver
) -> None:
    http.reset()
    stores.add("k-5", connector="")
    stores.add("k-6", connector="connectors/nobody")
    stores.dispatcher().dispatch_due(10)
    assert http.received == []
    unrouted, dead = stores.outbox.settled(TENANT, "k-5"), stores.outbox.settled(TENANT, "k-6")
    assert unrouted is not None
    assert dead is not None
    assert (unrouted.state, unrouted.reason) == (OutboxState.UNROUTED, "the action names no connector")
    assert dead.state == OutboxState.DEAD
    assert dead.reason.startswith("unknown_connector")
    [letter] = stores.connectors.dead_letters(TENANT, "nobody")
    assert letter.message.idempotency_key == "k-6"


def test_concurrent_dispatchers_never_send_one_message_twice(stores: Stores, http: HttpReceiver) -> None:
    http.reset(*[Reply(200, delay=0.01) for _ in range(40)])
    keys = [f"k-c-{n}" for n in range(40)]
    for key in keys:
        stores.add(key)
    barrier = threading.Barrier(4)

    def drain() -> None:
        dispatcher = stores.dispatcher()
        barrier.wait()
        while dispatcher.dispatch_due(5):
            pass

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    sent = [r.headers["Idempotency-Key"] for r in http.received]
    assert sorted(sent) == sorted(keys)


def test_a_claim_whose_replica_died_is_sent_again_with_the_same_key_after_the_lease(
    stores: Stores, http: HttpReceiver
) -> None:
    """A replica that claimed (and perhaps sent) but died before recording: at least once, same key."""
    http.reset()
    stores.add("k-7")
    [claimed] = stores.outbox.claim(stores.clock(), 10, LEASE_US)  # the replica that dies
    dispatcher = stores.dispatcher()
    assert dispatcher.dispatch_due(10) == 0  # leased
    stores.clock.advance(LEASE_US / 1_000_000)
    assert dispatcher.dispatch_due(10) == 1
    assert [r.headers["Idempotency-Key"] for r in http.received] == [claimed.message.idempotency_key]
    # The dead replica's late record cannot undo the delivery.
    assert not stores.outbox.settle(TENANT, "k-7", OutboxState.PENDING, 1)


def test_an_email_goes_through_smtp_to_the_personalisation_address(
    stores: Stores, smtp: tuple[SmtpHandler, int]
) -> None:
    handler, port = smtp
    handler.reset()
    config = SmtpConfig(host="127.0.0.1", port=port, from_address="Wayline <news@shop.example>")
    assert stores.connectors.insert(
        TENANT, Connector("mail", Kind.SMTP, smtp=config, timeout=5.0, retry=FAST)
    )
    stores.add("k-8", channel="CHANNEL_EMAIL", connector="connectors/mail")
    stores.dispatcher().dispatch_due(10)
    settled = stores.outbox.settled(TENANT, "k-8")
    assert settled is not None
    assert settled.state == OutboxState.DELIVERED
    [(envelope, _)] = handler.mails
    assert envelope.rcpt_tos == ["p1@shop.example"]
