"""Gateway: routes come from the contracts, keys grant exactly their scopes, deadlines are bounded."""

from __future__ import annotations

from typing import Any, cast

import grpc
import pytest
from google.protobuf import descriptor

from wayline.common.errors import PermissionDenied, Unauthenticated
from wayline.common.registry import method_scopes
from wayline_gateway.admission import Admission
from wayline_gateway.keys import ApiKey, ApiKeyAuthenticator, digest
from wayline_gateway.model import Limits
from wayline_gateway.proxy import PassThroughHandler
from wayline_gateway.quotas import QuotaGate
from wayline_gateway.routes import build_routes
from wayline_gateway.service import ADMIN_SERVICE, BACKEND_SERVICES

TRACK = "/wayline.ingest.v1.IngestService/Track"
TIMELINE = "/wayline.journeys.v1.JourneyService/GetTimeline"


def every_method() -> list[descriptor.MethodDescriptor]:
    services = [s for group in BACKEND_SERVICES.values() for s in group] + [ADMIN_SERVICE]
    return [m for s in services for m in s.methods]


def test_every_rpc_of_every_service_declares_a_scope() -> None:
    scopes = method_scopes([m.containing_service for m in every_method()])
    assert len(scopes) == len(every_method())
    assert set(scopes.values()) <= {"read", "write", "admin", "internal", "public"}
    # Only the V2 probes, which reveal nothing, are callable without a key.
    assert {path for path, scope in scopes.items() if scope == "public"} == {
        "/inference.GRPCInferenceService/ServerLive",
        "/inference.GRPCInferenceService/ServerReady",
    }


def test_internal_rpcs_are_not_routed_and_public_ones_are() -> None:
    routes = build_routes(BACKEND_SERVICES)
    assert "/wayline.journeys.v1.JourneyService/WriteEvents" not in routes
    assert "/wayline.identity.v1.IdentityService/ResolveIdentities" not in routes
    assert routes[TRACK].backend == "ingest"
    assert routes[TRACK].scope == "write"
    assert routes[TIMELINE].scope == "read"
    assert routes["/inference.GRPCInferenceService/ModelInfer"].backend == "decision"
    stream = routes["/wayline.ingest.v1.IngestService/StreamEvents"]
    assert (stream.client_streaming, stream.server_streaming) == (True, True)


@pytest.fixture
def authenticator() -> ApiKeyAuthenticator:
    routes = build_routes(BACKEND_SERVICES)
    keys = {digest("wl_reader"): ApiKey("acme", frozenset({"read"}))}
    return ApiKeyAuthenticator({path: route.scope for path, route in routes.items()}, memory_keys=keys)


def test_a_read_key_reads_but_cannot_write(authenticator: ApiKeyAuthenticator) -> None:
    caller = authenticator.authenticate(TIMELINE, {"authorization": "Bearer wl_reader"})
    assert caller.tenant == "acme"
    with pytest.raises(PermissionDenied) as denied:
        authenticator.authenticate(TRACK, {"authorization": "Bearer wl_reader"})
    assert denied.value.reason == "SCOPE_MISSING"
    assert denied.value.metadata == {"required_scope": "write"}


def test_the_key_may_come_as_x_api_key(authenticator: ApiKeyAuthenticator) -> None:
    assert authenticator.authenticate(TIMELINE, {"x-api-key": "wl_reader"}).tenant == "acme"


@pytest.mark.parametrize("metadata", [{}, {"authorization": "Basic wl_reader"}, {"authorization": "Bearer "}])
def test_malformed_credentials_are_unauthenticated(
    authenticator: ApiKeyAuthenticator, metadata: dict[str, str]
) -> None:
    with pytest.raises(Unauthenticated):
        authenticator.authenticate(TIMELINE, metadata)


class Remaining:
    """What the gateway reads of a call's context: the caller's remaining deadline."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    def time_remaining(self) -> float | None:
        return self.seconds


@pytest.mark.parametrize(
    ("caller_deadline", "forwarded"),
    [(None, 10.0), (1e9, 10.0), (3.0, 3.0), (600.0, 60.0)],
    ids=["none", "grpc-infinite", "within-limits", "over-the-maximum"],
)
def test_deadlines_get_a_default_and_a_maximum(caller_deadline: float | None, forwarded: float) -> None:
    admission = Admission(QuotaGate(Limits(1.0, 1, 1.0, 1, 1)), stream_wait=0.0)
    handler = PassThroughHandler({}, {}, default_deadline=10.0, max_deadline=60.0, admission=admission)
    context = cast(grpc.ServicerContext, cast(Any, Remaining(caller_deadline)))
    assert handler._timeout(context) == forwarded
