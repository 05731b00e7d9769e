"""Delivery through connectors against real local receivers: a signing-checking HTTP server that fails on
cue, and an aiosmtpd SMTP server that refuses on cue. Dead letters are read back from each engine's store."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.orchestrator.receivers import SECRET, HttpReceiver, Reply, SmtpHandler, smtp_receiver
from wayline.common.sql import Database, open_database
from wayline_orchestrator.connectors import (
    Channel,
    Connector,
    ConnectorStore,
    Deliverer,
    Kind,
    Message,
    Recipient,
    RetryPolicy,
    SmtpConfig,
    Status,
    WebhookConfig,
)
from wayline_orchestrator.connectors.retry import backoff
from wayline_orchestrator.connectors.smtp import message_id
from wayline_orchestrator.connectors.validation import ID_PATTERN
from wayline_orchestrator.connectors.webhook import sign, verify
from wayline_orchestrator.flows.values import CONNECTOR

TENANT = "acme"
FAST = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.01)


@pytest.fixture(scope="module")
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpHandler, int]]:
    with smtp_receiver() as receiver:
        yield receiver


def make_store(db: Database) -> ConnectorStore:
    store = ConnectorStore(db)
    store.migrate()
    return store


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[ConnectorStore]:
    db = open_database(None, tmp_path / "orchestrator.db")
    yield make_store(db)
    db.close()


def webhook(url: str, retry: RetryPolicy = FAST, timeout: float = 5.0, secret: str = SECRET) -> Connector:
    return Connector("hooks", Kind.WEBHOOK, webhook=WebhookConfig(url, secret), timeout=timeout, retry=retry)


def mailer(port: int, retry: RetryPolicy = FAST) -> Connector:
    config = SmtpConfig(host="127.0.0.1", port=port, from_address="Wayline <news@shop.example>")
    return Connector("mail", Kind.SMTP, smtp=config, timeout=5.0, retry=retry)


def sms(key: str = "") -> Message:
    return Message(
        channel=Channel.SMS,
        recipient=Recipient(person_id="p-1", phone="+447700900123"),
        idempotency_key=key or str(uuid.uuid4()),
        body="Your basket misses you",
        template_id="basket-reminder",
        personalisation={"first_name": "Ada"},
    )


def email(key: str = "") -> Message:
    return Message(
        channel=Channel.EMAIL,
        recipient=Recipient(person_id="p-1", email="ada@example.com"),
        idempotency_key=key or str(uuid.uuid4()),
        subject="Spring offer",
        body="Hello Ada",
        template_id="spring",
        action_id="discount_15",
        decision_id="d-42",
    )


# The webhook.


def test_a_webhook_posts_the_documented_sms_payload_signed_with_the_idempotency_key(
    http: HttpReceiver, sqlite_store: ConnectorStore
) -> None:
    http.reset()
    message = sms("key-1")
    outcome = Deliverer(sqlite_store).deliver(TENANT, webhook(http.url), message)
    assert (outcome.status, outcome.attempts, outcome.response_code) == (Status.DELIVERED, 1, 200)
    [request] = http.received
    assert request.signed
    assert request.headers["Idempotency-Key"] == "key-1"
    assert request.headers["Content-Type"] == "application/json"
    document = json.loads(request.body)
    assert document.pop("created") == pytest.approx(time.time(), abs=5)
    assert document == {
        "id": "key-1",
        "type": "message.sms",
        "data": {
            "to": "+447700900123",
            "person_id": "p-1",
            "text": "Your basket misses you",
            "template_id": "basket-reminder",
            "personalisation": {"first_name": "Ada"},
        },
    }


def test_a_push_goes_to_the_device_token_with_a_title(
    http: HttpReceiver, sqlite_store: ConnectorStore
) -> None:
    http.reset()
    push = Message(
        channel=Channel.PUSH,
        recipient=Recipient(person_id="p-2", device_token="fcm:abc"),
        idempotency_key="key-2",
        subject="Back in stock",
        body="The blue one is back",
    )
    assert Deliverer(sqlite_store).deliver(TENANT, webhook(http.url), push).status is Status.DELIVERED
    data = json.loads(http.received[0].body)["data"]
    assert (json.loads(http.received[0].body)["type"], data) == (
        "message.push",
        {
            "device_token": "fcm:abc",
            "person_id": "p-2",
            "title": "Back in stock",
            "body": "The blue one is back",
        },
    )


def test_503s_are_retried_with_the_same_idempotency_key_until_accepted(
    http: HttpReceiver, sqlite_store: ConnectorStore
) -> None:
    http.reset(Reply(503), Reply(503))
    outcome = Deliverer(sqlite_store).deliver(TENANT, webhook(http.url), sms("key-3"))
    assert (outcome.status, outcome.attempts, outcome.dead_lettered) == (Status.DELIVERED, 3, False)
    assert [r.headers["Idempotency-Key"] for r in http.received] == ["key-3"] * 3
    assert [r.headers["Wayline-Attempt"] for r in http.received] == ["1", "2", "3"]
    assert all(r.signed for r in http.received)
    assert sqlite_store.dead_letters(TENANT, "hooks") == []


def test_a_429s_retry_after_is_honoured(http: HttpReceiver, sqlite_store: ConnectorStore) -> None:
    http.reset(Reply(429, {"Retry-After": "1"}))
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=5.0)
    outcome = Deliverer(sqlite_store).deliver(TENANT, webhook(http.url, policy), sms())
    assert (outcome.status, outcome.attempts) == (Status.DELIVERED, 2)
    assert http.received[1].at - http.received[0].at >= 0.95


def test_a_retry_after_of_no_number_is_the_policys_backoff(
    http: HttpReceiver, sqlite_store: ConnectorStore
) -> None:
    http.reset(Reply(429, {"Retry-After": "\u00b2"}))  # `str.isdigit`, but no number
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=5.0)
    outcome = Deliverer(sqlite_store).deliver(TENANT, webhook(http.url, policy), sms())
    assert (outcome.status, outcome.attempts) == (Status.DELIVERED, 2)
    assert http.received[1].at - http.received[0].at < 0.9


def test_a_400_is_permanent_and_dead_letters_at_once(http: HttpReceiver, database: Database) -> None:
    store = make_store(database)
    http.reset(Reply(400))
    message = sms("key-4")
    outcome = Deliverer(store).deliver(TENANT, webhook(http.url), message)
    assert (outcome.status, outcome.attempts, outcome.response_code) == (Status.PERMANENT, 1, 400)
    assert outcome.dead_lettered
    [letter] = store.dead_letters(TENANT, "hooks")
    assert (letter.message, letter.reason, letter.attempts) == (message, "permanent", 1)
    assert letter.response_code == 400
    assert "HTTP 400" in letter.error
    assert store.dead_letters("another-tenant", "hooks") == []


def test_attempts_exhausted_by_5xx_dead_letter_with_the_last_answer(
    http: HttpReceiver, database: Database
) -> None:
    store = make_store(database)
    http.reset(*[Reply(502)] * 4)
    outcome = Deliverer(store).deliver(TENANT, webhook(http.url), sms("key-5"))
    assert (outcome.status, outcome.attempts, outcome.dead_lettered) == (Status.TRANSIENT, 4, True)
    assert len(http.received) == 4
    [letter] = store.dead_letters(TENANT, "hooks")
    assert (letter.reason, letter.attempts, letter.response_code) == ("exhausted", 4, 502)


def test_an_answer_slower_than_the_timeout_is_retried_then_dead_lettered(
    http: HttpReceiver, sqlite_store: ConnectorStore
) -> None:
    http.reset(Reply(200, delay=1.0), Reply(200, delay=1.0))
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=0.01)
    started = time.monotonic()
    outcome = Deliverer(sqlite_store).deliver(TENANT, webhook(http.url, policy, timeout=0.2), sms())
    assert (outcome.status, outcome.attempts, outcome.response_code) == (Status.TRANSIENT, 2, 0)
    assert "no answer within 0.2 s" in outcome.error
    assert time.monotonic() - started < 1.5
    assert sqlite_store.dead_letters(TENANT, "hooks")[0].reason == "exhausted"


def test_a_wrong_secret_is_refused_by_the_receiver_for_good(
    http: HttpReceiver, sqlite_store: ConnectorStore
) -> None:
    http.reset()
    connector = webhook(http.url, secret="whsec_not-the-receivers-secret")
    outcome = Deliverer(sqlite_store).deliver(TENANT, connector, sms())
    assert (outcome.status, outcome.attempts, outcome.response_code) == (Status.PERMANENT, 1, 401)
    assert not http.received[0].signed


def test_an_unreachable_webhook_is_transient(sqlite_store: ConnectorStore) -> None:
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=0.01)
    outcome = Deliverer(sqlite_store).deliver(TENANT, webhook("http://127.0.0.1:9/none", policy), sms())
    assert (outcome.status, outcome.attempts) == (Status.TRANSIENT, 2)
    assert "ConnectError" in outcome.error


def test_receivers_refuse_a_tampered_body_and_a_replayed_signature() -> None:
    body, now = b'{"id":"k"}', int(time.time())
    header = sign(SECRET, now, body)
    assert verify(SECRET, header, body, now)
    assert not verify(SECRET, header, b'{"id":"other"}', now)
    assert not verify("whsec_other-secret-value", header, body, now)
    assert not verify(SECRET, header, body, now + 301)  # replayed after the tolerance
    assert not verify(SECRET, "v1=abc", body, now)
    assert not verify(SECRET, header.replace(f"t={now}", "t=\u00b2"), body, now)  # no number, not an error


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.5, max_backoff=4.0)
    rng = random.Random(7)
    for retry, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        waits = [backoff(policy, retry, rng) for _ in range(200)]
        assert 0.0 <= min(waits) < ceiling * 0.2  # spread over the whole range
        assert ceiling * 0.8 < max(waits) <= ceiling


# SMTP.


def test_smtp_delivers_with_a_message_id_derived_from_the_idempotency_key(
    smtp: tuple[SmtpHandler, int], sqlite_store: ConnectorStore
) -> None:
    handler, port = smtp
    handler.reset()
    deliverer = Deliverer(sqlite_store)
    for _ in range(2):  # a resend of the same message
        outcome = deliverer.deliver(TENANT, mailer(port), email("key-6"))
        assert (outcome.status, outcome.attempts, outcome.response_code) == (Status.DELIVERED, 1, 250)
    (first_envelope, first), (_, second) = handler.mails
    assert first_envelope.rcpt_tos == ["ada@example.com"]
    assert first_envelope.mail_from == "news@shop.example"
    assert first["Subject"] == "Spring offer"
    assert first["Message-ID"] == second["Message-ID"] == message_id("key-6", "news@shop.example")
    assert first["Message-ID"].endswith("@shop.example>")
    assert first["Wayline-Idempotency-Key"] == "key-6"
    assert (first["Wayline-Action-Id"], first["Wayline-Decision-Id"]) == ("discount_15", "d-42")
    assert str(first.get_payload()).strip() == "Hello Ada"


def test_smtp_4xx_is_retried_until_accepted(
    smtp: tuple[SmtpHandler, int], sqlite_store: ConnectorStore
) -> None:
    handler, port = smtp
    handler.reset("451 4.3.0 Try again later")
    outcome = Deliverer(sqlite_store).deliver(TENANT, mailer(port), email())
    assert (outcome.status, outcome.attempts) == (Status.DELIVERED, 2)
    assert (handler.attempts, len(handler.mails)) == (2, 1)


def test_smtp_5xx_is_permanent_and_dead_letters_at_once(
    smtp: tuple[SmtpHandler, int], database: Database
) -> None:
    handler, port = smtp
    handler.reset("451 4.3.0 Try again later", "550 5.1.1 Mailbox unavailable")
    store = make_store(database)
    message = email("key-7")
    outcome = Deliverer(store).deliver(TENANT, mailer(port), message)
    assert (outcome.status, outcome.attempts, outcome.response_code) == (Status.PERMANENT, 2, 550)
    assert handler.mails == []
    [letter] = store.dead_letters(TENANT, "mail")
    assert (letter.message, letter.reason, letter.response_code) == (message, "permanent", 550)
    assert "Mailbox unavailable" in letter.error


def test_smtp_4xx_to_the_last_attempt_dead_letters_as_exhausted(
    smtp: tuple[SmtpHandler, int], sqlite_store: ConnectorStore
) -> None:
    handler, port = smtp
    handler.reset(*["421 4.7.0 Busy"] * 4)
    outcome = Deliverer(sqlite_store).deliver(TENANT, mailer(port), email())
    assert (outcome.status, outcome.attempts, outcome.response_code) == (Status.TRANSIENT, 4, 421)
    assert sqlite_store.dead_letters(TENANT, "mail")[0].reason == "exhausted"


def test_starttls_against_a_server_without_it_is_permanent(
    smtp: tuple[SmtpHandler, int], sqlite_store: ConnectorStore
) -> None:
    handler, port = smtp
    handler.reset()
    plain = mailer(port)
    assert plain.smtp is not None
    connector = Connector(
        "mail", Kind.SMTP, smtp=SmtpConfig(**{**plain.smtp.__dict__, "starttls": True}), retry=FAST
    )
    outcome = Deliverer(sqlite_store).deliver(TENANT, connector, email())
    assert (outcome.status, outcome.attempts) == (Status.PERMANENT, 1)
    assert "STARTTLS" in outcome.error


def test_a_subject_with_a_line_break_is_refused_for_good_not_injected(
    smtp: tuple[SmtpHandler, int], sqlite_store: ConnectorStore
) -> None:
    handler, port = smtp
    handler.reset()
    injected = Message(
        channel=Channel.EMAIL,
        recipient=Recipient(email="ada@example.com"),
        idempotency_key="key-8",
        subject="Hello\r\nBcc: everyone@example.com",
    )
    outcome = Deliverer(sqlite_store).deliver(TENANT, mailer(port), injected)
    assert (outcome.status, outcome.attempts, outcome.dead_lettered) == (Status.PERMANENT, 1, True)
    assert (handler.attempts, handler.mails) == (0, [])


def test_erasing_a_person_deletes_their_dead_letters_only(http: HttpReceiver, database: Database) -> None:
    store = make_store(database)
    http.reset(Reply(400), Reply(400), Reply(400))
    deliverer, connector = Deliverer(store), webhook(http.url)
    mine, theirs = sms("mine"), Message(Channel.SMS, Recipient(person_id="p-9", phone="+15550100"), "theirs")
    for message in (mine, theirs):
        assert deliverer.deliver(TENANT, connector, message).dead_lettered
    assert deliverer.deliver("another-tenant", connector, sms("elsewhere")).dead_lettered
    assert store.forget_person(TENANT, "p-1") == 1
    assert [letter.message for letter in store.dead_letters(TENANT, "hooks")] == [theirs]
    assert len(store.dead_letters("another-tenant", "hooks")) == 1


IDS = ["sms-relay", "1st-relay", "abc", "a" * 63, "ab", "a" * 64, "-ab", "ab-", "A-b", "a_b"]


@pytest.mark.parametrize("connector_id", IDS)
def test_connector_ids_are_exactly_what_flows_may_reference(connector_id: str) -> None:
    """A flow's action step names `connectors/{id}`: every id a connector can have, and no other."""
    assert bool(ID_PATTERN.match(connector_id)) == bool(CONNECTOR.fullmatch(f"connectors/{connector_id}"))
