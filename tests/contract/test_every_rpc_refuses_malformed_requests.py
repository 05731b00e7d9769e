"""Every RPC of every service answers a request the caller got wrong with a code the caller can act on, in
time: an empty request and random ones drawn from the request's descriptor (random_requests.py), sent over
real sockets to each service with the internal metadata of a fresh tenant, and to every routed RPC through a
gateway with a fresh tenant's key. The methods come from the registry's descriptors, so a new RPC or service
is covered without a line here (a service without a server below fails the test instead of being skipped).

Allowed: OK (a random request may be valid), the caller's errors (INVALID_ARGUMENT with a BadRequest naming
at least one field, NOT_FOUND, FAILED_PRECONDITION, ALREADY_EXISTS, OUT_OF_RANGE, PERMISSION_DENIED,
UNAUTHENTICATED, RESOURCE_EXHAUSTED) and ABORTED, the kit's answer to a stale etag (read again and retry).
Never INTERNAL, UNKNOWN (an exception escaping a servicer), UNAVAILABLE (every peer is up here) or
DEADLINE_EXCEEDED.

Client-streaming methods are covered elsewhere: IngestService.StreamEvents's malformed batches by
tests/contract/test_ingest_streams_and_plans.py (test_a_malformed_event_is_refused_alone_and_a_malformed_
request_whole, test_a_batch_out_of_sequence_ends_the_stream_with_invalid_argument, test_an_oversized_batch_
is_refused_whole_with_its_path) and DecisionService.UploadModelVersion's malformed streams by
tests/decision/test_upload_model_version.py (test_each_malformed_stream_is_refused and the tests after it).
The orchestrator runs on SQLite only here: tests/orchestrator/test_bad_input.py holds PostgreSQL to the same
refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import descriptor, message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, given, settings

from tests.conftest import API_KEY, INTERNAL_TOKEN, TENANT, gateway_settings, start_server
from tests.contract.random_requests import requests
from tests.decision.lifecycle_calls import EVERY_SCOPE, tenant_key
from tests.orchestrator.conftest import start_orchestrator_with_every_peer
from wayline.common.context import INTERNAL_TOKEN_HEADER, TENANT_HEADER
from wayline.common.errors import call_status, status_details
from wayline.common.registry import SERVICES, required_scope
from wayline.common.server import Server
from wayline.common.settings import ServiceSettings
from wayline.event.v1 import event_pb2
from wayline.journeys.v1 import journeys_service_pb2 as journeys_pb
from wayline_gateway.service import gateway_service

Metadata = tuple[tuple[str, str], ...]

TIMEOUT = 10.0
ALLOWED = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
OPERATOR: Metadata = (("authorization", f"Bearer {API_KEY}"),)
# A server-streaming answer is read this far: enough to meet an error raised while streaming.
STREAM_ITEMS = 200


@dataclass(frozen=True)
class Rpc:
    service: str  # the registry's name of the service that serves it
    method: descriptor.MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    def __str__(self) -> str:
        return f"{self.method.containing_service.name}.{self.method.name}"


def _rpcs() -> list[Rpc]:
    """Every method of every service but the client-streaming ones (see the module's docstring)."""
    return [
        Rpc(service.name, method)
        for service in SERVICES
        for contract in service.contracts
        for method in contract.methods
        if not method.client_streaming
    ]


DIRECT = _rpcs()
ROUTED = [rpc for rpc in DIRECT if rpc.service != "gateway" and required_scope(rpc.method) != "internal"]


@pytest.fixture(scope="module")
def orchestrator(
    identity_server: Server,
    journeys_server: Server,
    decision_server: Server,
    ingest_server: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    server = start_orchestrator_with_every_peer(
        tmp_path_factory.mktemp("orchestrator"),
        identity=identity_server,
        journeys=journeys_server,
        decision=decision_server,
        ingest=ingest_server,
    )
    yield server
    server.stop(0)


@pytest.fixture(scope="module")
def servers(
    identity_server: Server,
    journeys_server: Server,
    ingest_server: Server,
    decision_server: Server,
    orchestrator: Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Server]]:
    """Each service of the registry by name; the gateway one of this module's own, routing to all of the
    others, so that the AdminService's random creates, rotations and deletes touch no other test's
    tenants."""
    backends = {
        "identity": identity_server,
        "journeys": journeys_server,
        "ingest": ingest_server,
        "decision": decision_server,
        "orchestrator": orchestrator,
    }
    settings_ = gateway_settings(
        tmp_path_factory.mktemp("gateway"),
        {name: server.address for name, server in backends.items()},
        API_KEY,
        TENANT,
    )
    gateway = start_server(gateway_service(settings_), settings_)
    yield {**backends, "gateway": gateway}
    gateway.stop(0)


@pytest.fixture(scope="module")
def channels(servers: dict[str, Server]) -> Iterator[dict[str, grpc.Channel]]:
    opened = {name: grpc.insecure_channel(server.address) for name, server in servers.items()}
    yield opened
    for channel in opened.values():
        channel.close()


def _internal(tenant: str) -> Metadata:
    return ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN), (TENANT_HEADER, tenant))


def _fresh_key(gateway: grpc.Channel) -> Metadata:
    """The key of a new tenant of the module's gateway, with every scope a key can hold."""
    return tenant_key(gateway, EVERY_SCOPE, "fuzz")


def _call(channel: grpc.Channel, rpc: Rpc, request: Message, metadata: Metadata) -> grpc.RpcError | None:
    """The error `rpc` answers `request` with, None for OK."""
    payload = request.SerializeToString()
    try:
        if rpc.method.server_streaming:
            stream = channel.unary_stream(rpc.path, None, None)(payload, metadata=metadata, timeout=TIMEOUT)
            for count, _ in enumerate(stream):
                if count >= STREAM_ITEMS:
                    stream.cancel()  # type: ignore[no-untyped-call]  # grpc-stubs leave it untyped
                    break
        else:
            channel.unary_unary(rpc.path, None, None)(payload, metadata=metadata, timeout=TIMEOUT)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.CANCELLED:  # the cancel above: the stream was read far enough
            return None
        return error
    return None


def _check(channel: grpc.Channel, rpc: Rpc, request: Message, metadata: Metadata) -> grpc.StatusCode:
    """The code `rpc` answers `request` with, after checking it is one the module allows."""
    error = _call(channel, rpc, request, metadata)
    if error is None:
        return grpc.StatusCode.OK
    code, message = error.code(), error.details()
    shown = f"{rpc} answered {code.name}: {message!r} to {_describe(request)}"
    assert code in ALLOWED, shown
    assert message, shown
    # Our service's answer, not one gRPC put in its place: trailers past gRPC's limit (a refusal echoing a
    # 100 KB name) reached the caller as RESOURCE_EXHAUSTED "Stream removed", its details dropped. gRPC's own
    # refusal of a request past the server's message limit is the one answer no service gives.
    too_large = request.ByteSize() > _SERVER_MESSAGE_LIMIT
    if not (too_large and code == grpc.StatusCode.RESOURCE_EXHAUSTED):
        assert call_status(error) is not None, f"{shown}: gRPC's status, not the service's"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        violations = [
            v
            for d in status_details(error)
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        ]
        assert violations, f"{shown} without a BadRequest field violation"
    return code


_SERVER_MESSAGE_LIMIT = ServiceSettings.model_fields["max_message_bytes"].default  # the test servers' own


def _describe(request: Message) -> str:
    text = " ".join(str(request).split())  # not text_format's one line, which copies each map entry anew
    return text if len(text) < 1000 else text[:1000] + f"… ({request.ByteSize()} bytes)"


def _random_requests(channel: grpc.Channel, rpc: Rpc, metadata: Metadata, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(request=requests(rpc.method.input_type))
    def check(request: Message) -> None:
        _check(channel, rpc, request, metadata)

    check()


def _examples(share: int) -> int:
    """A share of the loaded profile's examples (100 in CI: 25 per method direct, 8 through the gateway)."""
    return max(1, settings().max_examples // share)


@pytest.mark.parametrize("rpc", DIRECT, ids=str)
def test_every_rpc_answers_an_empty_request_with_a_callers_error(
    rpc: Rpc, channels: dict[str, grpc.Channel]
) -> None:
    metadata = OPERATOR if rpc.service == "gateway" else _internal(f"t-{uuid.uuid4().hex[:8]}")
    _check(channels[rpc.service], rpc, message_factory.GetMessageClass(rpc.method.input_type)(), metadata)


@pytest.mark.parametrize("rpc", DIRECT, ids=str)
def test_every_rpc_answers_random_requests_with_a_callers_error(
    rpc: Rpc, channels: dict[str, grpc.Channel]
) -> None:
    metadata = OPERATOR if rpc.service == "gateway" else _internal(f"t-{uuid.uuid4().hex[:8]}")
    _random_requests(channels[rpc.service], rpc, metadata, _examples(4))


@pytest.mark.parametrize("rpc", ROUTED, ids=str)
def test_every_routed_rpc_answers_random_requests_through_the_gateway_with_a_callers_error(
    rpc: Rpc, channels: dict[str, grpc.Channel]
) -> None:
    """The empty request first, answered as the service answers it directly: the call reached the service
    (the key's scopes and the tenant's quota let it through), so the random ones test the service too."""
    gateway = channels["gateway"]
    metadata = _fresh_key(gateway)
    empty = message_factory.GetMessageClass(rpc.method.input_type)()
    direct = _check(channels[rpc.service], rpc, empty, _internal(f"t-{uuid.uuid4().hex[:8]}"))
    assert _check(gateway, rpc, empty, metadata) == direct
    _random_requests(gateway, rpc, metadata, _examples(12))


def test_a_refusal_with_many_long_violations_reaches_the_caller_through_the_gateway(
    channels: dict[str, grpc.Channel],
) -> None:
    """Its trailers used to pass gRPC's metadata limit (8 KiB soft, 16 KiB hard): the caller got
    RESOURCE_EXHAUSTED "Stream removed" instead of the field violations (the kit now bounds them)."""
    gateway = channels["gateway"]
    request = journeys_pb.GetProfileFeaturesRequest(
        person=event_pb2.PersonRef(identifier=event_pb2.Identifier()),
        feature_names=[f"{n}-" + "\u00e9" * 400 for n in range(100)],
    )
    with pytest.raises(grpc.RpcError) as raised:
        gateway.unary_unary("/wayline.journeys.v1.JourneyService/GetProfileFeatures", None, None)(
            request.SerializeToString(), metadata=_fresh_key(gateway), timeout=10
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert "more field violations not shown" in (raised.value.details() or "")
    (bad,) = [d for d in status_details(raised.value) if isinstance(d, error_details_pb2.BadRequest)]
    assert bad.field_violations
