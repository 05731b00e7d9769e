"""Concurrent writers on both engines, at the domain level: replicas redriving the same dead letters at once
requeue each message exactly once (the letter and the outbox row change in one transaction), a letter whose
message is no longer DEAD stays and is not counted; replicas noting engagements of one person at once lose
none of them (the read-add-write of a score runs under the person's lock)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

from wayline.common.sql import Database
from wayline_orchestrator.connectors import Channel as ConnectorChannel
from wayline_orchestrator.connectors import Connector as ConnectorConfig
from wayline_orchestrator.connectors import (
    ConnectorStore,
    Kind,
    Message,
    Outcome,
    Recipient,
    Status,
    WebhookConfig,
)
from wayline_orchestrator.connectors.dead_letters import DeadLetters
from wayline_orchestrator.contacts import Contact, ContactLedger, ContactStore, Engagement
from wayline_orchestrator.flows.runtime import Message as OutboxMessage
from wayline_orchestrator.flows.runtime import RuntimeStore
from wayline_orchestrator.flows.runtime.outbox_store import OutboxState, OutboxStore

TENANT = "acme"
LETTERS, REPLICAS = 40, 4


def _together(work: Callable[[int], None], count: int = REPLICAS) -> None:
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        work(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def _dead_letters(database: Database) -> tuple[ConnectorStore, OutboxStore, list[str]]:
    runtime, connectors, outbox = RuntimeStore(database), ConnectorStore(database), OutboxStore(database)
    runtime.migrate()
    connectors.migrate()
    hook = ConnectorConfig("hook", Kind.WEBHOOK, webhook=WebhookConfig("https://x.example", "s" * 16))
    assert connectors.insert(TENANT, hook)
    keys = [f"k-{n:02d}" for n in range(LETTERS)]
    with runtime.transaction() as tx:
        for key in keys:
            message = OutboxMessage(
                key, "flow", 1, "p-1", 1, "send", "CHANNEL_PUSH", 1, connector="connectors/hook"
            )
            assert runtime.add_message(tx, TENANT, message)
    for key in keys:
        assert outbox.settle(TENANT, key, OutboxState.DEAD, 3, at=5, reason="exhausted")
        letter = Message(ConnectorChannel.PUSH, Recipient(person_id="p-1"), key)
        connectors.bury(TENANT, "hook", letter, Outcome(Status.TRANSIENT, 3, 503), "exhausted", 5)
    return connectors, outbox, keys


def test_concurrent_redrives_requeue_each_message_once(database: Database) -> None:
    connectors, outbox, keys = _dead_letters(database)
    # One message was delivered meanwhile (by an earlier redrive, say): its stale letter stays, uncounted.
    with database.transaction() as tx:
        tx.execute("UPDATE flow_outbox SET state = 'DELIVERED' WHERE idempotency_key = ?", (keys[0],))
    letters = DeadLetters(connectors, outbox)
    counts: list[int] = []
    lock = threading.Lock()

    def redrive(_: int) -> None:
        count = letters.redrive(TENANT, "hook", [], every=True)
        with lock:
            counts.append(count)

    _together(redrive)
    assert sum(counts) == LETTERS - 1
    assert [letter.message.idempotency_key for letter in connectors.dead_letters(TENANT, "hook")] == [keys[0]]
    for key in keys[1:]:
        settled = outbox.settled(TENANT, key)
        assert settled is not None
        assert (settled.state, settled.attempts, settled.next_time) == (OutboxState.PENDING, 0, 0)
    assert letters.redrive(TENANT, "hook", keys, every=False) == 0


def test_concurrent_engagements_of_one_person_are_all_counted(database: Database) -> None:
    store = ContactStore(database)
    store.migrate()
    ledger = ContactLedger(store, clock=lambda: 1_000)
    per_replica = 10
    for n in range(REPLICAS * per_replica):
        ledger.record(
            TENANT, Contact(f"c-{n}", "p-1", "CHANNEL_EMAIL", contact_time=500), enforce_policy=False
        )

    def engage(replica: int) -> None:
        for n in range(replica * per_replica, (replica + 1) * per_replica):
            engagement = Engagement("p-1", f"c-{n}", "opened", 1.0, 1_000, f"e-{n}")
            ledger.observe(TENANT, [], [], [engagement])

    _together(engage)
    with store.transaction() as tx:
        [score] = ledger.person(tx, TENANT, "p-1").engagement
    assert score.channel == "CHANNEL_EMAIL"
    assert math.isclose(score.score, REPLICAS * per_replica)
