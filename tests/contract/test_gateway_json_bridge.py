"""The gateway's JSON bridge (Connect's unary JSON form) on its real HTTP port, in front of real services:
the same answers as gRPC, the same keys, scopes and tenants, and Connect's error bodies with the
`google.rpc` details a caller acts on."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2

from tests.conftest import API_KEY, start_server
from tests.events import make_event
from wayline.api.v1 import annotations_pb2
from wayline.common.json_messages import message_to_json
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_cli.suite import free_port
from wayline_gateway.service import gateway_service
from wayline_gateway.settings import GatewaySettings

OPERATOR = (("authorization", f"Bearer {API_KEY}"),)
GET_PROFILE = "/wayline.identity.v1.IdentityService/GetProfile"
GET_TIMELINE = "/wayline.journeys.v1.JourneyService/GetTimeline"


class Tenant:
    """A fresh tenant with one key per scope set asked for."""

    def __init__(self, channel: grpc.Channel) -> None:
        admin = admin_grpc.AdminServiceStub(channel)
        self.name = admin.CreateTenant(
            admin_pb.CreateTenantRequest(tenant_id=f"bridge-{uuid.uuid4().hex[:6]}"),
            metadata=OPERATOR,
            timeout=10,
        ).tenant.name
        self._admin = admin

    def key(self, *scopes: annotations_pb2.Scope.ValueType) -> str:
        created = self._admin.CreateApiKey(
            admin_pb.CreateApiKeyRequest(parent=self.name, api_key=api_key_pb2.ApiKey(scopes=list(scopes))),
            metadata=OPERATOR,
            timeout=10,
        )
        return created.secret


def _http(gateway: Server) -> httpx.Client:
    port = cast(GatewaySettings, gateway.settings).http_port
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)


def _post(http: httpx.Client, path: str, body: Any, key: str | None, **headers: str) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return http.post(path, json=body, headers=headers)


def _details(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    return {detail["type"]: detail for detail in answer.json()["details"]}


def _reason(answer: httpx.Response) -> str:
    info = error_details_pb2.ErrorInfo()
    raw = _details(answer)["google.rpc.ErrorInfo"]["value"]
    info.ParseFromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    return str(info.reason)


@pytest.fixture(scope="module")
def tracked(gateway_server: Server) -> tuple[Tenant, str, str]:
    """A tenant with one person's two events stored: (tenant, read key, user id)."""
    with grpc.insecure_channel(gateway_server.address) as channel:
        tenant = Tenant(channel)
        write = (("authorization", f"Bearer {tenant.key(annotations_pb2.SCOPE_WRITE)}"),)
        read_key = tenant.key(annotations_pb2.SCOPE_READ)
        user = f"bridge-user-{uuid.uuid4().hex[:8]}"
        ref = event_pb2.Identifier(type="user_id", value=user)
        events = [make_event(user, name=name) for name in ("Signed Up", "Order Completed")]
        sent = ingest_grpc.IngestServiceStub(channel).TrackBatch(
            ingest_pb.TrackBatchRequest(events=events), metadata=write, timeout=10
        )
        assert sent.accepted_count == 2, sent
        read = (("authorization", f"Bearer {read_key}"),)
        person = event_pb2.PersonRef(identifier=ref)
        deadline = time.monotonic() + 20
        while True:
            try:
                profile = identity_grpc.IdentityServiceStub(channel).GetProfile(
                    identity_pb.GetProfileRequest(person=person), metadata=read, timeout=10
                )
                timeline = journeys_grpc.JourneyServiceStub(channel).GetTimeline(
                    journeys_pb.GetTimelineRequest(person_id=profile.profile.person_id),
                    metadata=read,
                    timeout=10,
                )
                if len(timeline.events) == 2:
                    return tenant, read_key, user
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            assert time.monotonic() < deadline, "the tracked events never reached the store"
            time.sleep(0.1)


def test_a_read_answers_what_grpc_answers_as_proto3_json(
    gateway_server: Server, gateway_channel: grpc.Channel, tracked: tuple[Tenant, str, str]
) -> None:
    _, read_key, user = tracked
    request = {"person": {"identifier": {"type": "user_id", "value": user}}}
    with _http(gateway_server) as http:
        profile = _post(http, GET_PROFILE, request, read_key)
        assert profile.status_code == 200, profile.text
        person_id = profile.json()["profile"]["personId"]
        timeline = _post(http, GET_TIMELINE, {"personId": person_id}, read_key)
    assert timeline.status_code == 200, timeline.text
    assert timeline.headers["cache-control"] == "no-store"
    direct = journeys_grpc.JourneyServiceStub(gateway_channel).GetTimeline(
        journeys_pb.GetTimelineRequest(person_id=person_id),
        metadata=(("authorization", f"Bearer {read_key}"),),
        timeout=10,
    )
    assert timeline.json() == message_to_json(direct)
    assert sorted(e["name"] for e in timeline.json()["events"]) == ["Order Completed", "Signed Up"]


def test_the_bridge_is_for_the_gateways_own_origin(
    gateway_server: Server, tracked: tuple[Tenant, str, str]
) -> None:
    """The console calls the bridge from the gateway's origin; a page of another origin gets no CORS header
    (its preflight is refused, and no answer is shared), so a browser there cannot use the bridge even
    with a key it holds, while the same call from the console's origin (or any non-browser client) answers."""
    _, read_key, user = tracked
    request = {"person": {"identifier": {"type": "user_id", "value": user}}}
    with _http(gateway_server) as http:
        preflight = http.options(
            GET_PROFILE,
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        foreign = _post(http, GET_PROFILE, request, read_key, Origin="https://evil.example")
        own = _post(http, GET_PROFILE, request, read_key)
    assert preflight.status_code != 200
    for answer in (preflight, foreign):
        assert not any(name.startswith("access-control-") for name in answer.headers), answer.headers
    assert own.status_code == 200, own.text
    assert own.headers["x-content-type-options"] == "nosniff"


def test_keys_and_scopes_apply_as_over_grpc(
    gateway_server: Server, gateway_channel: grpc.Channel, tracked: tuple[Tenant, str, str]
) -> None:
    _tenant, read_key, _user = tracked
    track = {"event": {"eventId": str(uuid.uuid4()), "type": "EVENT_TYPE_TRACK", "name": "X"}}
    with _http(gateway_server) as http:
        missing = _post(http, GET_PROFILE, {}, None)
        unknown = _post(http, GET_PROFILE, {}, "wl_not_a_key")
        read_only = _post(http, "/wayline.ingest.v1.IngestService/Track", track, read_key)
    assert (missing.status_code, missing.json()["code"], _reason(missing)) == (
        401,
        "unauthenticated",
        "API_KEY_MISSING",
    )
    assert (unknown.status_code, _reason(unknown)) == (401, "API_KEY_INVALID")
    assert (read_only.status_code, read_only.json()["code"], _reason(read_only)) == (
        403,
        "permission_denied",
        "SCOPE_MISSING",
    )
    assert "debug" in _details(read_only)["google.rpc.ErrorInfo"]


def test_another_tenants_key_sees_nothing(
    gateway_server: Server, gateway_channel: grpc.Channel, tracked: tuple[Tenant, str, str]
) -> None:
    _, _, user = tracked
    stranger = Tenant(gateway_channel).key(annotations_pb2.SCOPE_READ)
    with _http(gateway_server) as http:
        answer = _post(
            http, GET_PROFILE, {"person": {"identifier": {"type": "user_id", "value": user}}}, stranger
        )
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")


def test_headers_with_digits_no_number_is_made_of_are_read_as_absent(
    gateway_server: Server, tracked: tuple[Tenant, str, str]
) -> None:
    """A superscript two (`²`, a byte HTTP's Latin-1 header values can carry) passes `str.isdigit` but no
    number is made of it: the deadline and the accepted age it stands for are the defaults, not a 500."""
    _, read_key, user = tracked
    request = {"person": {"identifier": {"type": "user_id", "value": user}}}
    with _http(gateway_server) as http:
        for name, value in (("Connect-Timeout-Ms", "\u00b2"), ("Cache-Control", "max-stale=\u00b2")):
            answer = http.post(
                GET_PROFILE,
                json=request,
                headers={
                    b"Authorization": f"Bearer {read_key}".encode(),
                    name.encode(): value.encode("latin-1"),
                },
            )
            assert answer.status_code == 200, (name, answer.text)


def test_bad_requests_get_an_error_a_caller_can_act_on(
    gateway_server: Server, tracked: tuple[Tenant, str, str]
) -> None:
    _, read_key, _ = tracked
    with _http(gateway_server) as http:
        not_json = http.post(
            GET_TIMELINE,
            content=b"{not json",
            headers={"Authorization": f"Bearer {read_key}", "Content-Type": "application/json"},
        )
        misspelt = _post(http, GET_TIMELINE, {"persnId": "p"}, read_key)
        wrong_type = http.post(
            GET_TIMELINE, content=b"\x0a\x01p", headers={"Content-Type": "application/proto"}
        )
        unknown = _post(http, "/wayline.journeys.v1.JourneyService/NoSuchMethod", {}, read_key)
        streaming = _post(http, "/wayline.ingest.v1.IngestService/StreamEvents", {}, read_key)
        invalid = _post(http, GET_TIMELINE, {}, read_key)  # journeys' own validation: no person
        nested = http.post(
            GET_TIMELINE,
            content=b"[" * 100_000,
            headers={"Authorization": f"Bearer {read_key}", "Content-Type": "application/json"},
        )
        # JSON, but no request: not an object, or a number no field holds (`1e999` is infinity once read).
        not_objects = [
            http.post(
                path,
                content=body,
                headers={"Authorization": f"Bearer {read_key}", "Content-Type": "application/json"},
            )
            for path, body in (
                (GET_TIMELINE, b"null"),
                (GET_TIMELINE, b"[1]"),
                (GET_TIMELINE, b'"p"'),
                (GET_TIMELINE, b'{"pageSize": 1e999}'),
                ("/wayline.journeys.v1.JourneyService/QueryTrends", b'{"period": 1e999}'),
            )
        ]
    assert (not_json.status_code, not_json.json()["code"], _reason(not_json)) == (
        400,
        "invalid_argument",
        "INVALID_ARGUMENT",
    )
    assert (nested.status_code, _reason(nested)) == (400, "INVALID_ARGUMENT")
    refused = [(a.status_code, _reason(a)) for a in not_objects]
    assert refused == [(400, "INVALID_ARGUMENT")] * len(not_objects)
    assert "persnId" in misspelt.json()["message"]
    assert misspelt.status_code == 400
    assert wrong_type.status_code == 415
    assert (unknown.status_code, _reason(unknown)) == (501, "UNKNOWN_METHOD")
    assert (streaming.status_code, _reason(streaming)) == (501, "STREAMING_OVER_HTTP")
    assert invalid.status_code == 400
    violations = _details(invalid)["google.rpc.BadRequest"]["debug"]["fieldViolations"]
    assert violations
    assert all(v["field"] for v in violations)


def _timeline(http: httpx.Client, person_id: str, key: str, **headers: str) -> httpx.Response:
    answer = _post(http, GET_TIMELINE, {"personId": person_id}, key, **headers)
    assert answer.status_code == 200, answer.text
    return answer


def _track_one_more(channel: grpc.Channel, tenant: Tenant, user: str, name: str) -> None:
    write = (("authorization", f"Bearer {tenant.key(annotations_pb2.SCOPE_WRITE)}"),)
    sent = ingest_grpc.IngestServiceStub(channel).TrackBatch(
        ingest_pb.TrackBatchRequest(events=[make_event(user, name=name)]), metadata=write, timeout=10
    )
    assert sent.accepted_count == 1


def _wait_for_events(channel: grpc.Channel, person_id: str, key: str, count: int) -> None:
    deadline = time.monotonic() + 20
    read = (("authorization", f"Bearer {key}"),)
    stub = journeys_grpc.JourneyServiceStub(channel)
    while (
        len(stub.GetTimeline(journeys_pb.GetTimelineRequest(person_id=person_id), metadata=read).events)
        < count
    ):
        assert time.monotonic() < deadline, "the new event never reached the store"
        time.sleep(0.1)


def test_a_caller_that_accepts_an_old_answer_gets_it_at_once_and_others_get_new_ones(
    gateway_server: Server, gateway_channel: grpc.Channel
) -> None:
    tenant = Tenant(gateway_channel)
    key = tenant.key(annotations_pb2.SCOPE_READ)
    user = f"cache-user-{uuid.uuid4().hex[:8]}"
    _track_one_more(gateway_channel, tenant, user, "Signed Up")
    with _http(gateway_server) as http:
        deadline = time.monotonic() + 20
        while (
            found := _post(
                http, GET_PROFILE, {"person": {"identifier": {"type": "user_id", "value": user}}}, key
            )
        ).status_code != 200:
            assert time.monotonic() < deadline, found.text
            time.sleep(0.1)
        person_id = found.json()["profile"]["personId"]
        _wait_for_events(gateway_channel, person_id, key, 1)
        first = _timeline(http, person_id, key, **{"Cache-Control": "max-stale=600"})
        assert first.headers["age"] == "0"
        _track_one_more(gateway_channel, tenant, user, "Order Completed")
        _wait_for_events(gateway_channel, person_id, key, 2)
        kept = _timeline(http, person_id, key, **{"Cache-Control": "max-stale=600"})
        assert kept.json() == first.json()  # the answer the caller accepted, not a new one
        assert "age" in kept.headers
        assert len(_timeline(http, person_id, key).json()["events"]) == 2  # no max-stale: a new answer
        # ... which the next caller that accepts an old answer gets too.
        assert (
            len(_timeline(http, person_id, key, **{"Cache-Control": "max-stale=600"}).json()["events"]) == 2
        )
        # Another tenant's key never reads this tenant's kept answer.
        stranger = Tenant(gateway_channel).key(annotations_pb2.SCOPE_READ)
        refused = _post(
            http, GET_TIMELINE, {"personId": person_id}, stranger, **{"Cache-Control": "max-stale=600"}
        )
        assert refused.status_code != 200 or refused.json()["events"] == []


def test_an_old_answer_served_is_refreshed_in_the_background(gateway_server: Server, tmp_path: Path) -> None:
    base = cast(GatewaySettings, gateway_server.settings)
    settings = base.model_copy(
        update={"data_dir": tmp_path, "port": 0, "http_port": free_port(), "answer_refresh_seconds": 0.01}
    )
    server = start_server(gateway_service(settings), settings)
    # A gateway of its own keys (its own store): its tenant and keys are made through it.
    channel = grpc.insecure_channel(server.address)
    try:
        tenant = Tenant(channel)
        key = tenant.key(annotations_pb2.SCOPE_READ)
        user = f"refresh-user-{uuid.uuid4().hex[:8]}"
        _track_one_more(channel, tenant, user, "Signed Up")
        ref = {"person": {"identifier": {"type": "user_id", "value": user}}}
        with _http(server) as http:
            deadline = time.monotonic() + 20
            while (found := _post(http, GET_PROFILE, ref, key)).status_code != 200:
                assert time.monotonic() < deadline, found.text
                time.sleep(0.1)
            person_id = found.json()["profile"]["personId"]
            _wait_for_events(channel, person_id, key, 1)
            stale = {"Cache-Control": "max-stale=600"}
            assert len(_timeline(http, person_id, key, **stale).json()["events"]) == 1
            _track_one_more(channel, tenant, user, "Order Completed")
            _wait_for_events(channel, person_id, key, 2)
            # Every call accepts the old answer; the refresh each one starts brings the new event.
            deadline = time.monotonic() + 20
            while len(_timeline(http, person_id, key, **stale).json()["events"]) < 2:
                assert time.monotonic() < deadline, "the kept answer was never refreshed"
                time.sleep(0.05)
    finally:
        channel.close()
        server.stop(0)
