"""The gateway's own HTTP collector port, as a Segment SDK meets it: stored keys, scopes and the events quota
apply to HTTP exactly as to gRPC."""

from __future__ import annotations

import time
import uuid
from typing import cast

import grpc
import httpx

from tests.conftest import API_KEY
from wayline.api.v1 import annotations_pb2
from wayline.common.server import Server
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2, quota_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_gateway.settings import GatewaySettings

OPERATOR = (("authorization", f"Bearer {API_KEY}"),)


def _collector(gateway: Server, write_key: str) -> httpx.Client:
    port = cast(GatewaySettings, gateway.settings).http_port
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=(write_key, ""), timeout=30)


def _key(channel: grpc.Channel, *scopes: annotations_pb2.Scope.ValueType) -> admin_pb.CreateApiKeyResponse:
    admin = admin_grpc.AdminServiceStub(channel)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"http-{uuid.uuid4().hex[:6]}"), metadata=OPERATOR, timeout=10
    ).tenant
    return admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=list(scopes))),
        metadata=OPERATOR,
        timeout=10,
    )


def _track(user: str, event: str) -> dict[str, object]:
    return {"type": "track", "userId": user, "event": event, "messageId": f"ajs-next-{uuid.uuid4().hex}"}


def test_a_stored_write_key_sends_a_batch_that_lands_in_its_tenant(
    gateway_server: Server, gateway_channel: grpc.Channel
) -> None:
    created = _key(gateway_channel, annotations_pb2.SCOPE_WRITE, annotations_pb2.SCOPE_READ)
    user = f"http-user-{uuid.uuid4().hex[:8]}"
    with _collector(gateway_server, created.secret) as http:
        answer = http.post(
            "/v1/batch", json={"batch": [_track(user, "Signed Up"), _track(user, "Order Completed")]}
        )
    assert answer.status_code == 200, answer.text
    own = (("authorization", f"Bearer {created.secret}"),)
    ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user))
    deadline = time.monotonic() + 20
    while True:
        try:
            person = identity_grpc.IdentityServiceStub(gateway_channel).GetProfile(
                identity_pb.GetProfileRequest(person=ref), metadata=own, timeout=10
            )
            timeline = journeys_grpc.JourneyServiceStub(gateway_channel).GetTimeline(
                journeys_pb.GetTimelineRequest(person_id=person.profile.person_id), metadata=own, timeout=10
            )
            if len(timeline.events) == 2:
                break
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        assert time.monotonic() < deadline, "the collector's events never reached the key's tenant"
        time.sleep(0.1)
    assert sorted(e.name for e in timeline.events) == ["Order Completed", "Signed Up"]


def test_scopes_and_the_events_quota_apply_to_http(
    gateway_server: Server, gateway_channel: grpc.Channel
) -> None:
    reader = _key(gateway_channel, annotations_pb2.SCOPE_READ)
    with _collector(gateway_server, reader.secret) as http:
        assert http.post("/v1/track", json=_track("u", "Viewed")).status_code == 403
    writer = _key(gateway_channel, annotations_pb2.SCOPE_WRITE)
    admin_grpc.AdminServiceStub(gateway_channel).UpdateQuota(
        admin_pb.UpdateQuotaRequest(
            quota=quota_pb2.Quota(
                name=f"{writer.api_key.name}/quota",
                limits=quota_pb2.QuotaLimits(events_per_second=0.5, events_burst=3),
            )
        ),
        metadata=OPERATOR,
        timeout=10,
    )
    with _collector(gateway_server, writer.secret) as http:
        assert http.post("/v1/batch", json={"batch": [_track("u", "A") for _ in range(3)]}).status_code == 200
        refused = http.post("/v1/track", json=_track("u", "B"))
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) >= 1
    with _collector(gateway_server, "wl_live_unknown") as http:
        assert http.post("/v1/track", json=_track("u", "C")).status_code == 401
