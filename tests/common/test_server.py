"""The kit's server bootstrap: health transitions, reflection, readiness gating, graceful drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.conftest import INTERNAL_TOKEN, common_settings
from wayline.common.server import Server, ServiceDefinition
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_identity.settings import IdentitySettings

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
INTERNAL = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", "acme"))


class SlowIdentity(identity_grpc.IdentityServiceServicer):
    """GetProfile waits until released, so a test can hold a call in flight."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def GetProfile(self, request: object, context: grpc.ServicerContext) -> identity_pb.GetProfileResponse:
        self.entered.set()
        self.release.wait(10)
        return identity_pb.GetProfileResponse()


def definition(servicer: identity_grpc.IdentityServiceServicer, ready: threading.Event) -> ServiceDefinition:
    def register(server: grpc.Server) -> list[str]:
        identity_grpc.add_IdentityServiceServicer_to_server(servicer, server)
        return ["wayline.identity.v1.IdentityService"]

    def start() -> None:
        if not ready.is_set():
            raise ConnectionError("store not reachable yet")

    return ServiceDefinition(name="identity", register=register, start=start)


@pytest.fixture
def dependency_ready() -> threading.Event:
    return threading.Event()


@pytest.fixture
def slow() -> SlowIdentity:
    return SlowIdentity()  # type: ignore[abstract]  # the other RPCs stay UNIMPLEMENTED


@pytest.fixture
def server(tmp_path: Path, slow: SlowIdentity, dependency_ready: threading.Event) -> Iterator[Server]:
    settings = IdentitySettings(**common_settings(tmp_path))  # type: ignore[arg-type]
    server = Server(definition(slow, dependency_ready), settings)
    server.start()
    yield server
    slow.release.set()
    server.stop(0)


def health_status(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status)


def test_health_is_not_serving_until_dependencies_are_ready(
    server: Server, dependency_ready: threading.Event
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        assert health_status(channel) == NOT_SERVING
        assert health_status(channel, "wayline.identity.v1.IdentityService") == NOT_SERVING
        dependency_ready.set()
        assert server.wait_ready(10)
        assert health_status(channel) == SERVING
        assert health_status(channel, "wayline.identity.v1.IdentityService") == SERVING


def test_calls_before_ready_are_unavailable(server: Server) -> None:
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as caught:
        identity_grpc.IdentityServiceStub(channel).GetProfile(
            identity_pb.GetProfileRequest(), metadata=INTERNAL, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "starting" in (caught.value.details() or "")


def test_stop_reports_not_serving_then_lets_in_flight_calls_finish(
    server: Server, slow: SlowIdentity, dependency_ready: threading.Event
) -> None:
    dependency_ready.set()
    assert server.wait_ready(10)
    with grpc.insecure_channel(server.address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
        assert next(watch).status == SERVING
        future = identity_grpc.IdentityServiceStub(channel).GetProfile.future(
            identity_pb.GetProfileRequest(), metadata=INTERNAL, timeout=10
        )
        assert slow.entered.wait(5)
        stopper = threading.Thread(target=server.stop, args=(5.0,))
        stopper.start()
        assert next(watch).status == NOT_SERVING
        # The watch is a call in flight too: left open, stop would wait out its whole grace for it.
        watch.cancel()
        time.sleep(0.2)
        assert stopper.is_alive(), "stop must wait for the in-flight call"
        slow.release.set()
        assert isinstance(future.result(timeout=5), identity_pb.GetProfileResponse)
        stopper.join(5)
        assert not stopper.is_alive()


def test_reflection_lists_the_service_health_and_reflection(server: Server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert services == {
        "wayline.identity.v1.IdentityService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


def test_unimplemented_rpc_answers_unimplemented_with_its_name(
    server: Server, dependency_ready: threading.Event
) -> None:
    dependency_ready.set()
    assert server.wait_ready(10)
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as caught:
        identity_grpc.IdentityServiceStub(channel).ListProfiles(
            identity_pb.ListProfilesRequest(), metadata=INTERNAL, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "IdentityService/ListProfiles" in (caught.value.details() or "")


def test_a_taken_port_fails_loudly(server: Server, tmp_path: Path, slow: SlowIdentity) -> None:
    settings = IdentitySettings(**{**common_settings(tmp_path), "port": server.port})  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        Server(definition(slow, threading.Event()), settings)
