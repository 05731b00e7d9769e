"""ListDeadLetters and RedriveDeadLetters over real gRPC, on SQLite and PostgreSQL, with a flow's messages
going to a real local HTTP receiver: a refused message is listed with its reason and answer, a redrive
delivers it once under its original key, pages are newest first, a letter for a connector created later can
be redriven through it, and requests are validated, scoped by tenant and refused for unknown connectors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.orchestrator.conftest import Auth, as_tenant
from tests.orchestrator.helpers import Stub
from tests.orchestrator.receivers import SECRET, HttpReceiver, Reply
from tests.orchestrator.runtime_calls import eventually, publish, send, track
from tests.rpc_errors import reason, violations
from wayline.event.v1 import event_pb2
from wayline.orchestrator.v1 import connector_pb2 as cpb
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb


@pytest.fixture(scope="module")
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def _hook(stub: Stub, auth: Auth, url: str, connector_id: str = "push-hook") -> None:
    hook = cpb.Connector(
        kind=cpb.CONNECTOR_KIND_WEBHOOK,
        webhook=cpb.WebhookConfig(url=url, signing_secret=SECRET),
        retry_policy=cpb.RetryPolicy(max_attempts=1),
    )
    stub.CreateConnector(pb.CreateConnectorRequest(connector=hook, connector_id=connector_id), metadata=auth)


def _flow(connector: str, channel: str = "CHANNEL_PUSH") -> dict[str, Any]:
    action = {
        "channel": channel,
        "purpose": "CONTACT_PURPOSE_TRANSACTIONAL",
        "action_id": "hello",
        "connector": {"connector": connector, "template_id": "welcome"},
    }
    return {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "hello",
        "steps": [{"id": "hello", "action": action}],
    }


def _sign_up(stub: Stub, auth: Auth) -> str:
    person = f"p-{uuid.uuid4().hex[:8]}"
    send(stub, auth, track(person, "Signed Up", time.time_ns() // 1000))
    return person


def _letters(stub: Stub, auth: Auth, connector: str = "connectors/push-hook") -> list[pb.DeadLetter]:
    request = pb.ListDeadLettersRequest(parent=connector, page_size=1000)
    return list(stub.ListDeadLetters(request, metadata=auth, timeout=10).dead_letters)


def _redrive(
    stub: Stub, auth: Auth, *keys: str, every: bool = False, parent: str = "connectors/push-hook"
) -> int:
    request = pb.RedriveDeadLettersRequest(parent=parent, idempotency_keys=keys, all=every)
    return stub.RedriveDeadLetters(request, metadata=auth, timeout=10).redriven_count


def _refusal(call: Any, request: object, auth: Auth) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=auth, timeout=10)
    return caught.value


def test_a_refused_message_is_listed_then_redriven_and_delivered_once(
    stub: Stub, tenant: Auth, http: HttpReceiver
) -> None:
    http.reset(Reply(400))
    _hook(stub, tenant, http.url)
    publish(stub, tenant, "welcome", _flow("connectors/push-hook"))
    person = _sign_up(stub, tenant)
    eventually(lambda: len(_letters(stub, tenant)) == 1)
    [letter] = _letters(stub, tenant)
    key = f"welcome/1/{person}/1/hello"
    assert (letter.idempotency_key, letter.person_id) == (key, person)
    assert (letter.flow, letter.flow_step_id, letter.channel) == (
        "flows/welcome",
        "hello",
        event_pb2.CHANNEL_PUSH,
    )
    assert (letter.reason, letter.response_code, letter.attempts) == ("permanent", 400, 1)
    assert "400" in letter.error_message
    assert abs(letter.dead_time.ToMicroseconds() - time.time_ns() // 1000) < 120_000_000

    assert _redrive(stub, tenant, key, "not-a-letter") == 1
    assert _letters(stub, tenant) == []
    eventually(lambda: len(http.received) == 2)
    time.sleep(1.5)  # further polls of the dispatcher send nothing more: it was DELIVERED
    assert [r.headers["Idempotency-Key"] for r in http.received] == [key, key]
    assert _redrive(stub, tenant, key) == 0  # no longer a dead letter


def test_dead_letters_page_newest_first_and_redrive_all(stub: Stub, tenant: Auth, http: HttpReceiver) -> None:
    http.reset(*[Reply(410)] * 5)
    _hook(stub, tenant, http.url)
    publish(stub, tenant, "welcome", _flow("connectors/push-hook"))
    for _ in range(5):
        _sign_up(stub, tenant)
    eventually(lambda: len(_letters(stub, tenant)) == 5)
    seen: list[pb.DeadLetter] = []
    token, pages = "", 0
    while True:
        request = pb.ListDeadLettersRequest(parent="connectors/push-hook", page_size=2, page_token=token)
        page = stub.ListDeadLetters(request, metadata=tenant, timeout=10)
        seen += page.dead_letters
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert len({letter.idempotency_key for letter in seen}) == 5
    order = [(letter.dead_time.ToMicroseconds(), letter.idempotency_key) for letter in seen]
    assert order == sorted(order, reverse=True)

    assert _redrive(stub, tenant, every=True) == 5
    assert _letters(stub, tenant) == []
    eventually(lambda: len(http.received) == 10)
    assert sorted(r.headers["Idempotency-Key"] for r in http.received[5:]) == sorted(
        letter.idempotency_key for letter in seen
    )


def test_a_letter_for_a_connector_created_later_is_redriven_through_it(
    stub: Stub, tenant: Auth, http: HttpReceiver
) -> None:
    http.reset()
    _hook(stub, tenant, http.url)
    publish(stub, tenant, "welcome", _flow("connectors/late-hook"))
    probe = _flow("connectors/push-hook")
    probe["trigger"]["event"]["event"]["event_name"] = "Probed"
    publish(stub, tenant, "probe", probe)
    person = _sign_up(stub, tenant)
    send(stub, tenant, track(person, "Probed", time.time_ns() // 1000))
    # The dispatcher takes messages in creation order: once the later probe arrives, the first message was
    # dispatched too, and died for its missing connector.
    eventually(lambda: len(http.received) == 1)
    missing = _refusal(stub.ListDeadLetters, pb.ListDeadLettersRequest(parent="connectors/late-hook"), tenant)
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    _hook(stub, tenant, http.url, "late-hook")
    [letter] = _letters(stub, tenant, "connectors/late-hook")
    assert letter.idempotency_key == f"welcome/1/{person}/1/hello"
    assert (letter.reason, letter.attempts, letter.response_code) == ("unknown_connector", 0, 0)
    assert _redrive(stub, tenant, every=True, parent="connectors/late-hook") == 1
    eventually(lambda: len(http.received) == 2)
    assert http.received[1].headers["Idempotency-Key"] == letter.idempotency_key


def test_an_email_without_an_address_dies_as_missing_address(stub: Stub, tenant: Auth) -> None:
    mailer = cpb.Connector(
        kind=cpb.CONNECTOR_KIND_SMTP,
        smtp=cpb.SmtpConfig(host="127.0.0.1", port=2525, from_address="news@shop.example"),
    )
    stub.CreateConnector(pb.CreateConnectorRequest(connector=mailer, connector_id="mail"), metadata=tenant)
    publish(stub, tenant, "welcome", _flow("connectors/mail", "CHANNEL_EMAIL"))
    _sign_up(stub, tenant)
    eventually(lambda: len(_letters(stub, tenant, "connectors/mail")) == 1)
    [letter] = _letters(stub, tenant, "connectors/mail")
    assert (letter.reason, letter.channel) == ("missing_address", event_pb2.CHANNEL_EMAIL)


def test_dead_letters_are_the_tenants_own(stub: Stub, tenant: Auth, http: HttpReceiver) -> None:
    http.reset(Reply(400))
    _hook(stub, tenant, http.url)
    publish(stub, tenant, "welcome", _flow("connectors/push-hook"))
    _sign_up(stub, tenant)
    eventually(lambda: len(_letters(stub, tenant)) == 1)
    other = as_tenant(f"o-{uuid.uuid4().hex[:8]}")
    _hook(stub, other, http.url)
    assert _letters(stub, other) == []
    assert _redrive(stub, other, every=True) == 0
    assert _redrive(stub, other, _letters(stub, tenant)[0].idempotency_key) == 0
    assert len(_letters(stub, tenant)) == 1


def test_unknown_connectors_are_not_found(stub: Stub, tenant: Auth) -> None:
    listing = _refusal(stub.ListDeadLetters, pb.ListDeadLettersRequest(parent="connectors/nope"), tenant)
    redrive = pb.RedriveDeadLettersRequest(parent="connectors/nope", all=True)
    redriving = _refusal(stub.RedriveDeadLetters, redrive, tenant)
    for error in (listing, redriving):
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert reason(error) == "CONNECTOR_NOT_FOUND"


def test_malformed_requests_are_refused_with_field_paths(
    stub: Stub, tenant: Auth, http: HttpReceiver
) -> None:
    _hook(stub, tenant, http.url)
    _hook(stub, tenant, http.url, "other-hook")
    cases: list[tuple[Any, object, str]] = [
        (stub.ListDeadLetters, pb.ListDeadLettersRequest(parent="hooks/x"), "parent"),
        (
            stub.ListDeadLetters,
            pb.ListDeadLettersRequest(parent="connectors/push-hook", page_size=-1),
            "page_size",
        ),
        (
            stub.ListDeadLetters,
            pb.ListDeadLettersRequest(parent="connectors/push-hook", page_token="not-a-token"),
            "page_token",
        ),
        (
            stub.RedriveDeadLetters,
            pb.RedriveDeadLettersRequest(parent="connectors/push-hook"),
            "idempotency_keys",
        ),
        (
            stub.RedriveDeadLetters,
            pb.RedriveDeadLettersRequest(parent="connectors/push-hook", idempotency_keys=["k"], all=True),
            "idempotency_keys",
        ),
        (
            stub.RedriveDeadLetters,
            pb.RedriveDeadLettersRequest(
                parent="connectors/push-hook", idempotency_keys=[f"k{i}" for i in range(1001)]
            ),
            "idempotency_keys",
        ),
        (
            stub.RedriveDeadLetters,
            pb.RedriveDeadLettersRequest(parent="connectors/push-hook", idempotency_keys=["k", ""]),
            "idempotency_keys[1]",
        ),
        (stub.RedriveDeadLetters, pb.RedriveDeadLettersRequest(parent="", all=True), "parent"),
    ]
    for call, request, field in cases:
        error = _refusal(call, request, tenant)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in violations(error), (field, violations(error))


def test_a_page_token_of_another_connector_is_refused(stub: Stub, tenant: Auth, http: HttpReceiver) -> None:
    http.reset(Reply(400), Reply(400))
    _hook(stub, tenant, http.url)
    _hook(stub, tenant, http.url, "other-hook")
    publish(stub, tenant, "welcome", _flow("connectors/push-hook"))
    _sign_up(stub, tenant)
    _sign_up(stub, tenant)
    eventually(lambda: len(_letters(stub, tenant)) == 2)
    request = pb.ListDeadLettersRequest(parent="connectors/push-hook", page_size=1)
    token = stub.ListDeadLetters(request, metadata=tenant, timeout=10).next_page_token
    assert token
    replayed = pb.ListDeadLettersRequest(parent="connectors/other-hook", page_token=token)
    error = _refusal(stub.ListDeadLetters, replayed, tenant)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason(error) == "INVALID_PAGE_TOKEN"
