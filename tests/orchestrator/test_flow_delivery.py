"""The flow → outbox → webhook path end to end, on both engines: a published flow's action reaches a real
local HTTP receiver through the tenant's webhook connector, once, carrying the step key as Idempotency-Key;
an action without a connector stays UNROUTED."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.orchestrator.helpers import Auth, Stub
from tests.orchestrator.receivers import SECRET, HttpReceiver
from tests.orchestrator.runtime_calls import eventually, publish, send, track
from wayline.orchestrator.v1 import connector_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2 as pb


@pytest.fixture(scope="module")
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def _flow(connector: str) -> dict[str, Any]:
    action: dict[str, Any] = {
        "channel": "CHANNEL_PUSH",
        "purpose": "CONTACT_PURPOSE_TRANSACTIONAL",
        "action_id": "hello",
    }
    if connector:
        action["connector"] = {
            "connector": connector,
            "template_id": "welcome-push",
            "personalisation": [{"name": "plan", "source": "trigger.properties.plan"}],
        }
    return {
        "trigger": {"event": {"event": {"event_name": "Signed Up"}}},
        "entry_step_id": "hello",
        "steps": [{"id": "hello", "action": action}],
    }


def test_a_flows_action_is_delivered_once_through_its_webhook_connector(
    stub: Stub, tenant: Auth, http: HttpReceiver
) -> None:
    http.reset()
    hook = connector_pb2.Connector(
        kind=connector_pb2.CONNECTOR_KIND_WEBHOOK,
        webhook=connector_pb2.WebhookConfig(url=http.url, signing_secret=SECRET),
    )
    stub.CreateConnector(pb.CreateConnectorRequest(connector=hook, connector_id="push-hook"), metadata=tenant)
    publish(stub, tenant, "welcome", _flow("connectors/push-hook"))
    person = f"p-{uuid.uuid4().hex[:8]}"
    send(stub, tenant, track(person, "Signed Up", time.time_ns() // 1000, plan="pro"))
    eventually(lambda: len(http.received) >= 1)
    time.sleep(1.5)  # another poll of the dispatcher sends nothing more
    [received] = http.received
    assert received.signed
    assert received.headers["Idempotency-Key"] == f"welcome/1/{person}/1/hello"
    document = json.loads(received.body)
    assert document["type"] == "message.push"
    assert document["data"]["person_id"] == person
    assert document["data"]["template_id"] == "welcome-push"
    assert document["data"]["personalisation"] == {"plan": "pro"}


def test_an_action_without_a_connector_is_not_sent(stub: Stub, tenant: Auth, http: HttpReceiver) -> None:
    http.reset()
    publish(stub, tenant, "unrouted", _flow(""))
    send(stub, tenant, track(f"p-{uuid.uuid4().hex[:8]}", "Signed Up", time.time_ns() // 1000))
    time.sleep(1.5)
    assert http.received == []
