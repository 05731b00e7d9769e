"""The gateway's authorization over real gRPC: every public RPC by {no key, each scope, a revoked key, a
suspended tenant}, and no tenant reading another's data. Keys are made through AdminService by the operator
(the bootstrap key's tenant), as an operator would. Every test runs through both data planes: the Python
gateway itself, and nginx in front of it (ADR 105), which callers must not be able to tell apart."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from google.rpc import error_details_pb2

from tests.events import make_event
from wayline.api.v1 import annotations_pb2
from wayline.common.errors import status_details
from wayline.common.registry import PUBLIC_SCOPE, method_scopes
from wayline.event.v1 import event_pb2
from wayline.gateway.v1 import api_key_pb2, quota_pb2, tenant_pb2
from wayline.gateway.v1 import gateway_service_pb2 as admin_pb
from wayline.gateway.v1 import gateway_service_pb2_grpc as admin_grpc
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline.ingest.v1 import ingest_service_pb2 as ingest_pb
from wayline.ingest.v1 import ingest_service_pb2_grpc as ingest_grpc
from wayline.journeys.v1 import analytics_pb2, condition_pb2, funnel_pb2, segment_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline.journeys.v1 import journeys_service_pb2_grpc as journeys_grpc
from wayline_gateway.routes import build_routes
from wayline_gateway.service import ADMIN_SERVICE, BACKEND_SERVICES
from wayline_gateway.settings import GatewaySettings

Auth = tuple[tuple[str, str], ...]
SCOPE_VALUES = {
    "read": annotations_pb2.SCOPE_READ,
    "write": annotations_pb2.SCOPE_WRITE,
    "admin": annotations_pb2.SCOPE_ADMIN,
}


def bearer(secret: str) -> Auth:
    return (("authorization", f"Bearer {secret}"),)


@dataclass(frozen=True)
class Method:
    path: str
    scope: str
    client_streaming: bool
    server_streaming: bool


def public_methods() -> list[Method]:
    routes = build_routes(BACKEND_SERVICES)
    methods = [Method(p, r.scope, r.client_streaming, r.server_streaming) for p, r in routes.items()]
    admin_scopes = method_scopes([ADMIN_SERVICE])
    methods += [Method(p, s, False, False) for p, s in admin_scopes.items()]
    return sorted(methods, key=lambda m: m.path)


def call(channel: grpc.Channel, method: Method, metadata: Auth) -> grpc.RpcError | None:
    """Call `method` with an empty request; the error it answers, None when it succeeds."""
    raw = {"request_serializer": None, "response_deserializer": None}
    try:
        if method.client_streaming and method.server_streaming:
            list(channel.stream_stream(method.path, **raw)(iter([b""]), metadata=metadata, timeout=10))
        elif method.client_streaming:
            channel.stream_unary(method.path, **raw)(iter([b""]), metadata=metadata, timeout=10)
        elif method.server_streaming:
            list(channel.unary_stream(method.path, **raw)(b"", metadata=metadata, timeout=10))
        else:
            channel.unary_unary(method.path, **raw)(b"", metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        return error
    return None


def reason(error: grpc.RpcError | None) -> str:
    if error is None:
        return ""
    infos = [d for d in status_details(error) if isinstance(d, error_details_pb2.ErrorInfo)]
    return infos[0].reason if infos else ""


def code(error: grpc.RpcError | None) -> grpc.StatusCode:
    return grpc.StatusCode.OK if error is None else error.code()


@dataclass(frozen=True)
class Plane:
    """Where callers reach the gateway, and its settings."""

    address: str
    settings: GatewaySettings


@pytest.fixture(scope="module", params=["python", "nginx"])
def plane(request: pytest.FixtureRequest) -> Plane:
    if request.param == "python":
        server = request.getfixturevalue("gateway_server")
        return Plane(server.address, cast(GatewaySettings, server.settings))
    edge = request.getfixturevalue("edge_gateway")
    return Plane(edge.address, edge.settings)


@pytest.fixture
def gateway_channel(plane: Plane) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(plane.address) as channel:
        yield channel


@dataclass(frozen=True)
class Tenants:
    """Two tenants with a key per scope, a revoked key, and a suspended tenant's key."""

    scoped: dict[str, str]  # scope → secret of tenant A
    other_tenant: str  # a read+write+admin key of tenant B
    revoked: str
    suspended: str
    tenant_a: str
    tenant_b: str
    key_a: str  # the name of one of tenant A's keys


@pytest.fixture(scope="module")
def tenants(plane: Plane) -> Tenants:
    from tests.conftest import API_KEY

    operator = bearer(API_KEY)
    with grpc.insecure_channel(plane.address) as channel:
        admin = admin_grpc.AdminServiceStub(channel)
        tag = uuid.uuid4().hex[:6]

        def tenant(name: str) -> str:
            created = admin.CreateTenant(
                admin_pb.CreateTenantRequest(
                    tenant_id=f"{name}-{tag}", tenant=tenant_pb2.Tenant(display_name=name)
                ),
                metadata=operator,
                timeout=10,
            )
            return created.tenant.name

        def key(parent: str, *scopes: str) -> tuple[str, str]:
            created = admin.CreateApiKey(
                admin_pb.CreateApiKeyRequest(
                    parent=parent,
                    api_key=api_key_pb2.ApiKey(
                        display_name="matrix", scopes=[SCOPE_VALUES[s] for s in scopes]
                    ),
                ),
                metadata=operator,
                timeout=10,
            )
            return created.api_key.name, created.secret

        a, b, s = tenant("matrix-a"), tenant("matrix-b"), tenant("matrix-s")
        scoped = {scope: key(a, scope)[1] for scope in ("read", "write", "admin")}
        revoked_name, revoked = key(a, "read", "write", "admin")
        admin.RevokeApiKey(admin_pb.RevokeApiKeyRequest(name=revoked_name), metadata=operator, timeout=10)
        _, suspended = key(s, "read", "write", "admin")
        admin.UpdateTenant(
            admin_pb.UpdateTenantRequest(
                tenant=tenant_pb2.Tenant(name=s, state=tenant_pb2.TENANT_STATE_SUSPENDED),
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
            ),
            metadata=operator,
            timeout=10,
        )
        return Tenants(scoped, key(b, "read", "write", "admin")[1], revoked, suspended, a, b, revoked_name)


def test_the_matrix_covers_client_streams_such_as_the_model_upload() -> None:
    """The route table comes from the contract, client-streaming RPCs included: a model upload needs admin."""
    upload = "/wayline.decision.v1.DecisionService/UploadModelVersion"
    assert Method(upload, "admin", client_streaming=True, server_streaming=False) in public_methods()


@pytest.mark.parametrize("method", public_methods(), ids=lambda m: m.path.rsplit(".", 1)[-1])
def test_every_public_rpc_answers_each_caller_with_the_right_code(
    gateway_channel: grpc.Channel, tenants: Tenants, method: Method
) -> None:
    if method.scope == PUBLIC_SCOPE:
        # Probes that reveal nothing (V2 ServerLive/ServerReady): every caller is answered, keyless or not.
        keys = [(), bearer(tenants.revoked), bearer("wl_live_not-a-key"), bearer(tenants.suspended)]
        keys += [bearer(secret) for secret in tenants.scoped.values()]
        assert [code(call(gateway_channel, method, key)) for key in keys] == [grpc.StatusCode.OK] * len(keys)
        return
    missing = call(gateway_channel, method, ())
    assert (code(missing), reason(missing)) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_MISSING")
    revoked = call(gateway_channel, method, bearer(tenants.revoked))
    assert (code(revoked), reason(revoked)) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED")
    unknown = call(gateway_channel, method, bearer("wl_live_not-a-key"))
    assert (code(unknown), reason(unknown)) == (grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID")
    suspended = call(gateway_channel, method, bearer(tenants.suspended))
    assert (code(suspended), reason(suspended)) == (grpc.StatusCode.PERMISSION_DENIED, "TENANT_SUSPENDED")
    for scope, secret in tenants.scoped.items():
        answered = call(gateway_channel, method, bearer(secret))
        if scope == method.scope:
            # Let through: whatever the service answers an empty request, never an authorization refusal.
            assert code(answered) != grpc.StatusCode.UNAUTHENTICATED, method.path
            assert reason(answered) not in {"SCOPE_MISSING", "TENANT_SUSPENDED"}, method.path
        else:
            assert (code(answered), reason(answered)) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")


def admin_requests(tenants: Tenants) -> dict[str, tuple[bytes, str]]:
    """AdminService method → a request naming tenant A's resources, and the refusal tenant B's admin key
    must get: OTHER_TENANT for a tenant's own business, OPERATOR_ONLY for the operator's."""
    a, key = tenants.tenant_a, tenants.key_a
    other, operator = "OTHER_TENANT", "OPERATOR_ONLY"
    requests = {
        "CreateTenant": (admin_pb.CreateTenantRequest(tenant_id="by-tenant-b"), operator),
        "GetTenant": (admin_pb.GetTenantRequest(name=a), other),
        "ListTenants": (admin_pb.ListTenantsRequest(), operator),
        "UpdateTenant": (
            admin_pb.UpdateTenantRequest(
                tenant=tenant_pb2.Tenant(name=a, display_name="taken"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            operator,
        ),
        "DeleteTenant": (admin_pb.DeleteTenantRequest(name=a), operator),
        "CreateApiKey": (
            admin_pb.CreateApiKeyRequest(
                parent=a, api_key=api_key_pb2.ApiKey(scopes=[annotations_pb2.SCOPE_ADMIN])
            ),
            other,
        ),
        "ListApiKeys": (admin_pb.ListApiKeysRequest(parent=a), other),
        "RevokeApiKey": (admin_pb.RevokeApiKeyRequest(name=key), other),
        "RotateApiKey": (admin_pb.RotateApiKeyRequest(name=key), other),
        "GetQuota": (admin_pb.GetQuotaRequest(name=f"{a}/quota"), other),
        "UpdateQuota": (
            admin_pb.UpdateQuotaRequest(
                quota=quota_pb2.Quota(name=f"{key}/quota", limits=quota_pb2.QuotaLimits(requests_burst=1))
            ),
            other,
        ),
    }
    return {name: (request.SerializeToString(), reason) for name, (request, reason) in requests.items()}


def test_another_tenants_admin_key_reaches_nothing_of_this_tenant(
    gateway_channel: grpc.Channel, tenants: Tenants
) -> None:
    requests = admin_requests(tenants)
    assert set(requests) == {m.name for m in ADMIN_SERVICE.methods}  # every AdminService RPC
    raw = {"request_serializer": None, "response_deserializer": None}
    for name, (request, expected) in requests.items():
        method = f"/{ADMIN_SERVICE.full_name}/{name}"
        with pytest.raises(grpc.RpcError) as refused:
            gateway_channel.unary_unary(method, **raw)(
                request, metadata=bearer(tenants.other_tenant), timeout=10
            )
        assert (refused.value.code(), reason(refused.value)) == (
            grpc.StatusCode.PERMISSION_DENIED,
            expected,
        ), name


def test_callers_cannot_pose_as_another_tenant_or_as_a_service(
    gateway_channel: grpc.Channel, tenants: Tenants
) -> None:
    """Tenant metadata and the internal token sent by a caller are not passed on: the event lands in the key's
    tenant, and another tenant's timeline never shows it."""
    ingest = ingest_grpc.IngestServiceStub(gateway_channel)
    journeys = journeys_grpc.JourneyServiceStub(gateway_channel)
    identity = identity_grpc.IdentityServiceStub(gateway_channel)
    tag = uuid.uuid4().hex[:8]
    user = f"isolated-{tag}"
    forged = (
        *bearer(tenants.other_tenant),
        ("x-wayline-tenant", tenants.tenant_a.removeprefix("tenants/")),
        ("x-wayline-internal-token", "guess"),
        ("x-wayline-principal", "tenants/x/apiKeys/root"),
    )
    event = make_event(user, name=f"Secret {tag}")
    ingest.Track(ingest_pb.TrackRequest(event=event), metadata=forged, timeout=10)
    ref = event_pb2.PersonRef(identifier=event_pb2.Identifier(type="user_id", value=user))

    def timeline(secret: str) -> list[str]:
        try:
            person = identity.GetProfile(
                identity_pb.GetProfileRequest(person=ref), metadata=bearer(secret), timeout=10
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return []
        response = journeys.GetTimeline(
            journeys_pb.GetTimelineRequest(person_id=person.profile.person_id, page_size=10),
            metadata=bearer(secret),
            timeout=10,
        )
        return [e.event_id for e in response.events]

    deadline = time.monotonic() + 20
    while timeline(tenants.other_tenant) != [event.event_id]:
        assert time.monotonic() < deadline, "the event never reached the key's own tenant"
        time.sleep(0.1)
    reader_a = tenants.scoped["read"]
    assert timeline(reader_a) == []  # tenant A's profile store and timeline know nothing of it

    def funnel(secret: str) -> list[int]:
        request = journeys_pb.QueryFunnelRequest(
            order=funnel_pb2.FUNNEL_ORDER_ORDERED,
            conversion_window=duration_pb2.Duration(seconds=86_400),
            steps=[
                funnel_pb2.FunnelStep(event=analytics_pb2.EventMatcher(event_name=name))
                for name in (f"Secret {tag}", f"Never {tag}")
            ],
        )
        response = journeys.QueryFunnel(request, metadata=bearer(secret), timeout=30)
        return [s.count for s in response.series[0].steps] if response.series else [0, 0]

    assert funnel(tenants.other_tenant) == [1, 0]
    assert funnel(reader_a) == [0, 0]

    segment = journeys.CreateSegment(
        journeys_pb.CreateSegmentRequest(
            segment_id=f"secret-{tag}",
            segment=segment_pb2.Segment(
                display_name="Secret",
                condition=condition_pb2.PersonCondition(
                    event_count=condition_pb2.EventCountCondition(
                        event=analytics_pb2.EventMatcher(event_name=f"Secret {tag}"),
                        comparison=condition_pb2.COMPARISON_OPERATOR_GREATER_THAN_OR_EQUAL,
                        count=1,
                    )
                ),
            ),
        ),
        metadata=bearer(tenants.other_tenant),
        timeout=10,
    ).segment
    listed = journeys.ListSegments(journeys_pb.ListSegmentsRequest(), metadata=bearer(reader_a), timeout=10)
    assert segment.name not in [s.name for s in listed.segments]
    with pytest.raises(grpc.RpcError) as hidden:
        journeys.GetSegment(
            journeys_pb.GetSegmentRequest(name=segment.name), metadata=bearer(reader_a), timeout=10
        )
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND


def test_quota_refusals_carry_the_quota_and_a_retry_delay(
    plane: Plane, gateway_channel: grpc.Channel
) -> None:
    from tests.conftest import API_KEY

    operator = bearer(API_KEY)
    admin = admin_grpc.AdminServiceStub(gateway_channel)
    tenant, created = _tenant_and_key(
        gateway_channel, "quota", quota_of_key=quota_pb2.QuotaLimits(events_per_second=1.0, events_burst=3)
    )
    ingest = ingest_grpc.IngestServiceStub(gateway_channel)
    events = [make_event(f"q-{n}") for n in range(3)]
    ingest.TrackBatch(ingest_pb.TrackBatchRequest(events=events), metadata=bearer(created.secret), timeout=10)
    with pytest.raises(grpc.RpcError) as refused:
        ingest.Track(
            ingest_pb.TrackRequest(event=make_event("q-4")), metadata=bearer(created.secret), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = status_details(refused.value)
    failures = [d for d in details if isinstance(d, error_details_pb2.QuotaFailure)]
    retries = [d for d in details if isinstance(d, error_details_pb2.RetryInfo)]
    assert failures[0].violations[0].subject == f"{created.api_key.name}/quota"
    assert 0 < retries[0].retry_delay.ToTimedelta().total_seconds() <= 1.0
    quota = admin.GetQuota(
        admin_pb.GetQuotaRequest(name=f"{tenant.name}/quota"), metadata=operator, timeout=10
    )
    assert quota.quota.effective_limits.events_per_second == plane.settings.quota_events_per_second

    # AdminService's own calls count against the caller's request quota too.
    admin_key = admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(
            parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=[annotations_pb2.SCOPE_ADMIN])
        ),
        metadata=operator,
        timeout=10,
    )
    admin.UpdateQuota(
        admin_pb.UpdateQuotaRequest(
            quota=quota_pb2.Quota(
                name=f"{admin_key.api_key.name}/quota",
                limits=quota_pb2.QuotaLimits(requests_per_second=0.01, requests_burst=2),
            )
        ),
        metadata=operator,
        timeout=10,
    )
    own = bearer(admin_key.secret)
    for _ in range(2):
        admin.GetTenant(admin_pb.GetTenantRequest(name=tenant.name), metadata=own, timeout=10)
    with pytest.raises(grpc.RpcError) as over:
        admin.GetTenant(admin_pb.GetTenantRequest(name=tenant.name), metadata=own, timeout=10)
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _tenant_and_key(
    channel: grpc.Channel,
    prefix: str,
    *,
    quota_of_key: quota_pb2.QuotaLimits | None = None,
    quota_of_tenant: quota_pb2.QuotaLimits | None = None,
) -> tuple[tenant_pb2.Tenant, admin_pb.CreateApiKeyResponse]:
    """A new tenant with a write key, made by the operator, and the limits given set on either."""
    from tests.conftest import API_KEY

    operator = bearer(API_KEY)
    admin = admin_grpc.AdminServiceStub(channel)
    tenant = admin.CreateTenant(
        admin_pb.CreateTenantRequest(tenant_id=f"{prefix}-{uuid.uuid4().hex[:6]}"),
        metadata=operator,
        timeout=10,
    ).tenant
    created = admin.CreateApiKey(
        admin_pb.CreateApiKeyRequest(
            parent=tenant.name, api_key=api_key_pb2.ApiKey(scopes=[annotations_pb2.SCOPE_WRITE])
        ),
        metadata=operator,
        timeout=10,
    )
    for name, limits in (
        (f"{created.api_key.name}/quota", quota_of_key),
        (f"{tenant.name}/quota", quota_of_tenant),
    ):
        if limits is not None:
            admin.UpdateQuota(
                admin_pb.UpdateQuotaRequest(quota=quota_pb2.Quota(name=name, limits=limits)),
                metadata=operator,
                timeout=10,
            )
    return tenant, created


def _key_with_events_quota(channel: grpc.Channel, per_second: float, burst: int) -> str:
    """A write key of a new tenant whose events quota is `per_second`, burst `burst`."""
    limits = quota_pb2.QuotaLimits(events_per_second=per_second, events_burst=burst)
    return _tenant_and_key(channel, "stream", quota_of_tenant=limits)[1].secret


def _batches(count: int, size: int) -> list[ingest_pb.StreamEventsRequest]:
    return [
        ingest_pb.StreamEventsRequest(sequence=n, events=[make_event(f"s-{n}-{i}") for i in range(size)])
        for n in range(1, count + 1)
    ]


def test_a_stream_is_paced_to_its_events_quota(gateway_channel: grpc.Channel) -> None:
    secret = _key_with_events_quota(gateway_channel, per_second=10.0, burst=5)
    started = time.monotonic()
    responses = list(
        ingest_grpc.IngestServiceStub(gateway_channel).StreamEvents(
            iter(_batches(2, 5)), metadata=bearer(secret), timeout=30
        )
    )
    assert [r.accepted_count for r in responses if r.sequence] == [5, 5]
    assert time.monotonic() - started >= 0.4  # the second batch waited for its 5 events at 10 a second


def test_a_stream_past_what_pacing_can_wait_for_is_refused_with_the_quota(
    gateway_channel: grpc.Channel,
) -> None:
    secret = _key_with_events_quota(gateway_channel, per_second=0.001, burst=5)
    acked: list[int] = []

    def consume() -> None:
        responses = ingest_grpc.IngestServiceStub(gateway_channel).StreamEvents(
            iter(_batches(2, 5)), metadata=bearer(secret), timeout=30
        )
        acked.extend(r.sequence for r in responses if r.sequence)

    with pytest.raises(grpc.RpcError) as refused:
        consume()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    failures = [d for d in status_details(refused.value) if isinstance(d, error_details_pb2.QuotaFailure)]
    assert failures[0].violations[0].subject.endswith("/quota")
    assert acked in (
        [],
        [1],
    )  # the first batch went through (its ack may race the refusal); the second did not
