"""The Segment-compatible HTTP collector over real sockets: httpx → uvicorn → the collector → the real ingest
server → its spool → the real journey store, read back through the gateway's GetTimeline."""

from __future__ import annotations

import gzip
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from tests.certificates import CertificateAuthority
from tests.conftest import INTERNAL_TOKEN, TENANT, common_settings
from tests.gateway.segment_examples import batch_example, examples
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.suite import free_port
from wayline_gateway.http.app import gateway_http_app
from wayline_gateway.http.delivery import TRACK_BATCH, IngestSender
from wayline_gateway.http.segment import event_id_of
from wayline_gateway.http.server import HttpServer
from wayline_gateway.keys import ApiKey, ApiKeyAuthenticator, digest
from wayline_gateway.settings import GatewaySettings

WRITE_KEY = "wl_segment_write_key"
Auth = tuple[tuple[str, str], ...]


def authenticator() -> ApiKeyAuthenticator:
    key = ApiKey(TENANT, frozenset({"write"}), f"tenants/{TENANT}/apiKeys/segment")
    return ApiKeyAuthenticator({TRACK_BATCH: "write"}, memory_keys={digest(WRITE_KEY): key})


def serve(ingest_address: str, data_dir: Path, **kwargs: Any) -> tuple[HttpServer, IngestSender]:
    settings = GatewaySettings(**common_settings(data_dir))  # type: ignore[arg-type]
    sender = IngestSender.connect(
        ingest_address, internal_token=INTERNAL_TOKEN, timeout_seconds=5, max_message_bytes=16 << 20
    )
    server = HttpServer(gateway_http_app(authenticator(), sender, settings, **kwargs), "127.0.0.1", 0)
    server.start()
    return server, sender


@pytest.fixture(scope="module")
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture(scope="module")
def collector(
    ingest_server: Server, tmp_path_factory: pytest.TempPathFactory, registry: CollectorRegistry
) -> Iterator[httpx.Client]:
    meter = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)]).get_meter("tests")
    server, sender = serve(
        ingest_server.address, tmp_path_factory.mktemp("http"), meter=meter, registry=registry
    )
    with httpx.Client(base_url=server.address, auth=(WRITE_KEY, ""), timeout=30) as client:
        yield client
    server.stop(1)
    sender.close()


def stored(channel: grpc.Channel, auth: Auth, user_id: str, count: int) -> list[event_pb2.Event]:
    """The user's stored events, oldest first, once there are `count` (or after 20 s); ingest acknowledges
    before the journey store has the events, and an identifier is unknown until its first event lands."""
    request = journeys_pb.GetTimelineRequest(
        identifier=event_pb2.Identifier(type="user_id", value=user_id),
        order=journeys_pb.TIMELINE_ORDER_OLDEST_FIRST,
        page_size=100,
    )
    stub = journeys_grpc.JourneyServiceStub(channel)
    deadline = time.monotonic() + 20
    events: list[event_pb2.Event] = []
    while time.monotonic() < deadline:
        try:
            events = list(stub.GetTimeline(request, metadata=auth, timeout=10).events)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        if len(events) >= count:
            return events
        time.sleep(0.1)
    return events


def test_track_documented_example_arrives_in_the_journey_store_with_its_fields(
    collector: httpx.Client, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    body = examples(user_id)["track"] | {
        "messageId": "ajs-next-1700000000000-4f1c",
        "sentAt": "2012-12-02T00:30:13.984Z",
        "context": {"ip": "24.5.68.47", "traits": {"plan": "pro"}, "page": {"url": "https://shop.example/x"}},
        "integrations": {"All": True, "Mixpanel": False},
    }
    response = collector.post("/v1/track", json=body)
    assert (response.status_code, response.json()) == (200, {"success": True})

    [event] = stored(gateway_channel, auth, user_id, 1)
    assert event.event_id == event_id_of("ajs-next-1700000000000-4f1c")
    assert (event.type, event.name, event.channel) == (
        event_pb2.EVENT_TYPE_TRACK,
        "Item Purchased",
        event_pb2.CHANNEL_WEB,
    )
    assert dict(event.properties) == {"name": "Leap to Conclusions Mat", "revenue": 14.99}
    assert (event.revenue.currency_code, event.revenue.units, event.revenue.nanos) == ("USD", 14, 990_000_000)
    assert event.context.ip == "24.5.68.47"
    assert dict(event.context.traits) == {"plan": "pro"}
    assert dict(event.integrations) == {"All": True, "Mixpanel": False}
    assert event.original_timestamp.ToJsonString() == "2012-12-02T00:30:12.984Z"
    # Clock skew: sent one second after it happened, by the device's clock.
    skew = event.received_at.ToMilliseconds() - event.timestamp.ToMilliseconds()
    assert 900 <= skew <= 30_000


def test_every_documented_call_is_accepted_and_stored(
    collector: httpx.Client, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    for name, body in examples(user_id).items():
        response = collector.post(f"/v1/{name}", json=body)
        assert (name, response.status_code, response.json()) == (name, 200, {"success": True})

    events = {e.type: e for e in stored(gateway_channel, auth, user_id, 6)}
    assert set(events) == {
        event_pb2.EVENT_TYPE_IDENTIFY,
        event_pb2.EVENT_TYPE_TRACK,
        event_pb2.EVENT_TYPE_PAGE,
        event_pb2.EVENT_TYPE_SCREEN,
        event_pb2.EVENT_TYPE_GROUP,
        event_pb2.EVENT_TYPE_ALIAS,
    }
    assert events[event_pb2.EVENT_TYPE_IDENTIFY].properties["email"] == "peter@example.com"
    page = events[event_pb2.EVENT_TYPE_PAGE]
    assert (page.name, page.context.page.category, page.channel) == ("Tracking HTTP API", "Docs", 1)
    assert events[event_pb2.EVENT_TYPE_SCREEN].channel == event_pb2.CHANNEL_MOBILE_APP
    group = events[event_pb2.EVENT_TYPE_GROUP]
    assert (group.group_id, group.properties["employees"]) == ("8e9df332ac", 329)
    alias = events[event_pb2.EVENT_TYPE_ALIAS]
    assert [(i.type, i.value) for i in alias.identifiers] == [
        ("user_id", user_id),
        ("user_id", "39239-239239-239239-23923"),
    ]
    previous = alias.previous_identifier
    assert (previous.type, previous.value) == ("user_id", "39239-239239-239239-23923")


def test_a_gzip_batch_with_the_write_key_in_the_body_is_stored(
    collector: httpx.Client, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    other = f"user-{uuid.uuid4().hex[:12]}"
    body = batch_example(user_id, other) | {"writeKey": WRITE_KEY}
    response = httpx.post(
        collector.base_url.join("/v1/batch"),
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},  # as a browser sends it
    )
    assert (response.status_code, response.json()) == (200, {"success": True})

    mine = stored(gateway_channel, auth, user_id, 2)
    assert [e.type for e in mine] == [event_pb2.EVENT_TYPE_IDENTIFY, event_pb2.EVENT_TYPE_TRACK]
    # The batch-level context applies to every message of the batch.
    assert mine[1].context.device.name == "Apple iPhone 6"
    assert mine[1].context.device.type == event_pb2.DEVICE_TYPE_MOBILE
    assert [e.name for e in stored(gateway_channel, auth, other, 1)] == ["Song Played"]


def test_a_mixed_batch_keeps_the_good_events_and_reports_the_bad_ones(
    collector: httpx.Client, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    good = {"type": "track", "userId": user_id, "event": "Signed Up", "messageId": str(uuid.uuid4())}
    batch = [
        good,
        {"type": "track", "userId": user_id, "messageId": "no-name"},  # the collector's check
        good | {"messageId": str(uuid.uuid4()), "event": "Logged In"},
        good | {"messageId": "too-old", "timestamp": "1999-12-31T23:59:59Z"},  # ingest's check
        {"type": "shout", "userId": user_id},
        good | {"messageId": "huge", "properties": {"n": 10**400}},  # an int no double holds: the collector's
        good | {"messageId": "infinite", "properties": {"n": 0.5}},  # written 1e400 below: ingest's check
    ]
    body = json.dumps({"batch": batch}).replace('{"n": 0.5}', '{"n": 1e400}')
    response = collector.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["success"], answer["accepted"]) == (True, 2)
    assert [
        (r["index"], r.get("messageId"), [(e["field"], e["reason"]) for e in r["errors"]])
        for r in answer["rejected"]
    ] == [
        (1, "no-name", [("batch[1].event", "REQUIRED")]),
        (3, "too-old", [("batch[3].timestamp", "OUT_OF_RANGE")]),
        (4, None, [("batch[4].type", "INVALID")]),
        (5, "huge", [("batch[5].properties", "OUT_OF_RANGE")]),
        (6, "infinite", [("batch[6].properties.n", "OUT_OF_RANGE")]),
    ]
    assert sorted(e.name for e in stored(gateway_channel, auth, user_id, 2)) == ["Logged In", "Signed Up"]


def test_a_single_call_that_is_rejected_answers_400_with_its_errors(collector: httpx.Client) -> None:
    response = collector.post("/v1/track", json={"event": "Anonymous"})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "userId", "description": "a userId or an anonymousId is required", "reason": "REQUIRED"}
    ]


def test_a_retried_message_id_is_stored_once(
    collector: httpx.Client, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    body = {"userId": user_id, "event": "Order Completed", "messageId": "ajs-next-retry-1"}
    for _ in range(3):
        assert collector.post("/v1/track", json=body).status_code == 200
    collector.post("/v1/track", json={"userId": user_id, "event": "Marker", "messageId": str(uuid.uuid4())})
    events = stored(gateway_channel, auth, user_id, 2)
    time.sleep(0.5)  # room for a duplicate to show up, were there one
    events = stored(gateway_channel, auth, user_id, 2)
    assert sorted(e.name for e in events) == ["Marker", "Order Completed"]


def test_a_request_id_that_is_no_plain_token_is_replaced_and_the_event_kept(
    collector: httpx.Client, gateway_channel: grpc.Channel, auth: Auth, user_id: str
) -> None:
    # An HTTP header may carry Latin-1 bytes and run to kilobytes; gRPC metadata may not. Passed on to
    # ingest as it came, `été` failed the delivery (500): the event was refused over its request id.
    for number, request_id in enumerate([b"\xe9t\xe9", b"x" * 5000, b"a b"]):
        body = {"userId": user_id, "event": f"Tagged {number}", "messageId": str(uuid.uuid4())}
        response = collector.post("/v1/track", json=body, headers=[(b"x-request-id", request_id)])
        assert response.status_code == 200, response.text
    assert sorted(e.name for e in stored(gateway_channel, auth, user_id, 3)) == [
        "Tagged 0",
        "Tagged 1",
        "Tagged 2",
    ]


@pytest.mark.parametrize(
    ("auth_value", "body_key"),
    [(None, None), (("wrong-key", ""), None), (None, "wrong-key")],
    ids=["no-key", "bad-basic-user", "bad-body-key"],
)
def test_a_missing_or_unknown_write_key_is_401(
    collector: httpx.Client, auth_value: tuple[str, str] | None, body_key: str | None
) -> None:
    body: dict[str, Any] = {"userId": "u", "event": "E"}
    if body_key:
        body["writeKey"] = body_key
    response = httpx.post(collector.base_url.join("/v1/track"), json=body, auth=auth_value)
    assert response.status_code == 401
    assert response.json()["success"] is False


@pytest.mark.parametrize(
    ("path", "size"), [("/v1/track", 33 * 1024), ("/v1/batch", 501 * 1024)], ids=["call", "batch"]
)
def test_an_oversized_body_is_400(collector: httpx.Client, path: str, size: int) -> None:
    message = {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * size}}
    body = {"batch": [message]} if path == "/v1/batch" else message
    response = collector.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["reason"] == "TOO_LARGE"
    # The limit is on the JSON as written: compressing it does not get it in.
    packed = collector.post(
        path, content=gzip.compress(json.dumps(body).encode()), headers={"Content-Encoding": "gzip"}
    )
    assert (packed.status_code, packed.json()["reason"]) == (400, "TOO_LARGE")


@pytest.mark.parametrize(
    ("content", "encoding", "reason"),
    [
        (b"{not json", "", "MALFORMED_JSON"),
        (b"not gzip", "gzip", "BAD_ENCODING"),
        (b'{"a": NaN}', "", "MALFORMED_JSON"),
    ],
)
def test_a_body_that_is_not_json_or_not_gzip_is_400(
    collector: httpx.Client, content: bytes, encoding: str, reason: str
) -> None:
    response = collector.post("/v1/track", content=content, headers={"Content-Encoding": encoding})
    assert (response.status_code, response.json()["reason"]) == (400, reason)


def test_cors_preflight_lets_browsers_post(collector: httpx.Client) -> None:
    response = collector.options(
        "/v1/t",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_healthz_and_metrics(collector: httpx.Client) -> None:
    assert collector.get("/healthz").status_code == 200
    collector.post("/v1/identify", json={"anonymousId": "a-1", "traits": {"x": 1}})
    page = collector.get("/metrics")
    assert page.status_code == 200
    text = page.text
    assert 'http_route="/v1/identify"' in text
    assert 'http_response_status_code="200"' in text
    assert "wayline_collector_events" in text


def test_ingest_down_answers_503_with_retry_after_and_healthz_503(tmp_path: Path) -> None:
    server, sender = serve(f"127.0.0.1:{free_port()}", tmp_path)  # nothing listens there
    try:
        with httpx.Client(base_url=server.address, auth=(WRITE_KEY, ""), timeout=30) as client:
            response = client.post("/v1/track", json={"userId": "u", "event": "E"})
            assert response.status_code == 503
            assert int(response.headers["retry-after"]) >= 1
            assert client.get("/healthz").status_code == 503
    finally:
        server.stop(1)
        sender.close()


def test_the_collector_serves_https_with_the_public_certificate(
    ingest_server: Server, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path, "public-ca")
    pair = ca.issue("gateway")
    settings = GatewaySettings(**common_settings(tmp_path))  # type: ignore[arg-type]
    sender = IngestSender.connect(
        ingest_server.address, internal_token=INTERNAL_TOKEN, timeout_seconds=5, max_message_bytes=16 << 20
    )
    server = HttpServer(
        gateway_http_app(authenticator(), sender, settings), "127.0.0.1", 0, tls=(pair.cert, pair.key)
    )
    server.start()
    try:
        assert server.address.startswith("https://")
        with httpx.Client(
            base_url=server.address,
            auth=(WRITE_KEY, ""),
            verify=ssl.create_default_context(cafile=str(ca.cert)),
        ) as client:
            assert client.post("/v1/track", json={"userId": "u-tls", "event": "Secure"}).status_code == 200
        with pytest.raises(httpx.ConnectError), httpx.Client(base_url=server.address) as untrusting:
            untrusting.get("/healthz")  # the system's CAs do not know the test CA
        plain = server.address.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError), httpx.Client(base_url=plain) as cleartext:
            cleartext.get("/healthz")
    finally:
        server.stop(1)
        sender.close()
