"""The server interceptor's exception mapping: a handler's failure becomes a status, but an exception that
stops the process (KeyboardInterrupt, SystemExit) is neither swallowed nor reported as INTERNAL."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider

from tests.conftest import INTERNAL_TOKEN, common_settings, gateway_settings, start_server
from wayline.client.retry import error_reason, server_retry_delay
from wayline.common.auth import InternalCallerAuthenticator
from wayline.common.interceptors import CallInterceptor
from wayline.common.server import Server, ServiceDefinition
from wayline.common.telemetry import RpcMetrics
from wayline.identity.v1 import identity_service_pb2 as identity_pb
from wayline.identity.v1 import identity_service_pb2_grpc as identity_grpc
from wayline_gateway.service import gateway_service
from wayline_identity.settings import IdentitySettings

INTERNAL = (("x-wayline-internal-token", INTERNAL_TOKEN), ("x-wayline-tenant", "acme"))
GET_PROFILE = "/wayline.identity.v1.IdentityService/GetProfile"


class Raising(identity_grpc.IdentityServiceServicer):
    """GetProfile raises whatever the test puts in `exception`, and counts its calls."""

    def __init__(self) -> None:
        self.exception: BaseException = RuntimeError("boom")
        self.calls = 0

    def GetProfile(self, request: object, context: grpc.ServicerContext) -> identity_pb.GetProfileResponse:
        self.calls += 1
        raise self.exception


@pytest.fixture
def raising() -> Raising:
    return Raising()  # type: ignore[abstract]  # the other RPCs stay UNIMPLEMENTED


@pytest.fixture
def server(tmp_path: Path, raising: Raising) -> Iterator[Server]:
    def register(server: grpc.Server) -> list[str]:
        identity_grpc.add_IdentityServiceServicer_to_server(raising, server)
        return ["wayline.identity.v1.IdentityService"]

    settings = IdentitySettings(**common_settings(tmp_path))  # type: ignore[arg-type]
    server = start_server(ServiceDefinition(name="identity", register=register), settings)
    yield server
    server.stop(0)


def get_profile(server: Server, timeout: float) -> grpc.RpcError:
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as caught:
        identity_grpc.IdentityServiceStub(channel).GetProfile(
            identity_pb.GetProfileRequest(), metadata=INTERNAL, timeout=timeout
        )
    return caught.value


def test_an_unexpected_exception_is_internal_with_a_request_id(server: Server) -> None:
    error = get_profile(server, timeout=5)
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "request id" in (error.details() or "")
    assert "boom" not in (error.details() or "")


@pytest.mark.parametrize(
    ("offered", "kept"),
    [("req-7f3a.2:b_c", True), ("x" * 129, False), ("spaces are not ok", False), ("-leading-dash", False)],
)
def test_a_callers_request_id_is_kept_only_when_it_is_a_plain_token(
    server: Server, offered: str, kept: bool
) -> None:
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as caught:
        identity_grpc.IdentityServiceStub(channel).GetProfile(
            identity_pb.GetProfileRequest(), metadata=(*INTERNAL, ("x-request-id", offered)), timeout=5
        )
    quoted = (caught.value.details() or "").split("request id ")[1].split(" ")[0]
    assert (quoted == offered) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", quoted)


@pytest.mark.parametrize("exception", [KeyboardInterrupt(), SystemExit(1)], ids=lambda e: type(e).__name__)
def test_an_exception_that_stops_the_process_cancels_the_call_at_once_and_is_not_internal(
    server: Server, raising: Raising, exception: BaseException
) -> None:
    """The exception is not turned into an answer (gRPC's pool gets it); the call is cancelled rather than
    left open until the caller's deadline, and the server goes on serving other calls."""
    raising.exception = exception
    started = time.monotonic()
    error = get_profile(server, timeout=10)
    assert error.code() == grpc.StatusCode.CANCELLED
    assert time.monotonic() - started < 5
    raising.exception = RuntimeError("boom")
    assert get_profile(server, timeout=5).code() == grpc.StatusCode.INTERNAL
    assert raising.calls == 2


class FakeContext:
    """What the interceptor uses of a servicer context, recording whether it cancelled or answered."""

    def __init__(self) -> None:
        self.cancelled = False
        self.answered: grpc.Status | None = None

    def code(self) -> grpc.StatusCode | None:
        return None

    def time_remaining(self) -> float | None:
        return None

    def cancel(self) -> None:
        self.cancelled = True

    def abort_with_status(self, status: grpc.Status) -> None:
        self.answered = status
        raise RuntimeError("aborted")  # what gRPC's own abort does: raise to end the handler


@dataclass(frozen=True)
class CallDetails:
    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


def test_the_interceptor_re_raises_keyboard_interrupt_instead_of_answering() -> None:
    ready = threading.Event()
    ready.set()
    interceptor = CallInterceptor(
        "identity",
        InternalCallerAuthenticator(INTERNAL_TOKEN),
        ready,
        RpcMetrics.create(MeterProvider().get_meter("test")),
        trace.NoOpTracer(),
    )

    def interrupted(request: object, context: grpc.ServicerContext) -> object:
        raise KeyboardInterrupt

    handler = interceptor.intercept_service(
        lambda _: grpc.unary_unary_rpc_method_handler(interrupted),
        cast(
            grpc.HandlerCallDetails, CallDetails("/wayline.identity.v1.IdentityService/GetProfile", INTERNAL)
        ),
    )
    assert handler is not None
    assert handler.unary_unary is not None
    context = FakeContext()
    with pytest.raises(KeyboardInterrupt):
        handler.unary_unary(None, cast(grpc.ServicerContext, context))
    assert context.cancelled
    assert context.answered is None


def test_a_backend_cancelling_as_its_process_stops_is_unavailable_through_the_gateway(
    tmp_path: Path, server: Server, raising: Raising
) -> None:
    """The gateway's caller did not cancel: a call the backend cancelled (its process stopping, or gRPC
    cancelling the calls that arrive as a server shuts down, grpc/grpc#41785) reaches them as UNAVAILABLE
    with a retry delay, which every client retries, never as CANCELLED, which no client retries."""
    raising.exception = SystemExit(0)
    settings = gateway_settings(tmp_path / "gateway", {"identity": server.address}, "wl_key", "acme")
    gateway = start_server(gateway_service(settings), settings)
    try:
        with grpc.insecure_channel(gateway.address) as channel, pytest.raises(grpc.RpcError) as caught:
            identity_grpc.IdentityServiceStub(channel).GetProfile(
                identity_pb.GetProfileRequest(), metadata=(("authorization", "Bearer wl_key"),), timeout=10
            )
    finally:
        gateway.stop(0)
    assert raising.calls >= 1  # the backend took the call and cancelled it
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server_retry_delay(caught.value) is not None
    assert error_reason(caught.value) == "BACKEND_UNAVAILABLE"
