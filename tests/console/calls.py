"""The two ways a console test calls the suite with an API key, besides the browser: gRPC through the gateway
(`Rpc`: what the RPC returns, the number a page must show) and the gateway's HTTP JSON bridge (`Bridge`: what
the console itself receives). Both take a service's full name and a method name, so a test names the same
RPC the page calls, and both can answer proto3 JSON (`wayline.common.json_messages`), so a page's numbers are
compared with the RPC's in one form."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

# The services' generated modules register their descriptors in the default pool, where `_method` finds them.
from wayline.common.json_messages import message_from_json, message_to_json
from wayline.decision.v1 import decision_service_pb2  # noqa: F401
from wayline.gateway.v1 import gateway_service_pb2  # noqa: F401
from wayline.identity.v1 import identity_service_pb2  # noqa: F401
from wayline.ingest.v1 import ingest_service_pb2  # noqa: F401
from wayline.journeys.v1 import journeys_service_pb2  # noqa: F401
from wayline.orchestrator.v1 import orchestrator_service_pb2  # noqa: F401

__all__ = [
    "ADMIN",
    "DECISION",
    "IDENTITY",
    "INGEST",
    "JOURNEYS",
    "ORCHESTRATOR",
    "Bridge",
    "BridgeError",
    "Request",
    "Rpc",
]

# The public services' full names, as the bridge's paths and the console's `call(service, ...)` spell them.
JOURNEYS = "wayline.journeys.v1.JourneyService"
IDENTITY = "wayline.identity.v1.IdentityService"
DECISION = "wayline.decision.v1.DecisionService"
ORCHESTRATOR = "wayline.orchestrator.v1.OrchestratorService"
INGEST = "wayline.ingest.v1.IngestService"
ADMIN = "wayline.gateway.v1.AdminService"

# A request as a message, or as its proto3 JSON (either field name form).
Request = Message | Mapping[str, Any]

_TIMEOUT_SECONDS = 30.0


def _method(service: str, method: str) -> tuple[type[Message], type[Message], bool]:
    """The request and response classes of `service`'s `method`, and whether it streams its answer."""
    found = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(method)
    request = message_factory.GetMessageClass(found.input_type)
    response = message_factory.GetMessageClass(found.output_type)
    return request, response, found.server_streaming


def _message(request_class: type[Message], request: Request | None) -> Message:
    if isinstance(request, Message):
        return request
    return message_from_json(dict(request or {}), request_class())


@dataclass(frozen=True)
class Rpc:
    """Calls through the gateway's gRPC port with one API key, as any API client would."""

    channel: grpc.Channel
    key: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.key}"),)

    def call(self, service: str, method: str, request: Request | None = None) -> Message:
        """The response message of a unary RPC (grpc.RpcError when it fails)."""
        request_class, response_class, streaming = _method(service, method)
        if streaming:
            raise ValueError(f"{service}/{method} streams its answer: use `stream`")
        invoke = self.channel.unary_unary(
            f"/{service}/{method}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response: Message = invoke(
            _message(request_class, request), metadata=self.metadata, timeout=_TIMEOUT_SECONDS
        )
        return response

    def json(self, service: str, method: str, request: Request | None = None) -> dict[str, Any]:
        """The response of a unary RPC as the proto3 JSON the bridge prints (so as the console reads it)."""
        return message_to_json(self.call(service, method, request))

    def stream(self, service: str, method: str, request: Request | None = None) -> Iterator[Message]:
        """The messages of a server-streaming RPC (ExportEvents and the like)."""
        request_class, response_class, streaming = _method(service, method)
        if not streaming:
            raise ValueError(f"{service}/{method} is unary: use `call`")
        invoke = self.channel.unary_stream(
            f"/{service}/{method}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        yield from invoke(_message(request_class, request), metadata=self.metadata, timeout=_TIMEOUT_SECONDS)


@dataclass
class BridgeError(Exception):
    """A non-200 answer of the bridge: the HTTP status and Connect's error JSON."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.code}: {self.message}"


@dataclass(frozen=True)
class Bridge:
    """Calls the gateway's HTTP JSON bridge (`POST /<package.Service>/<Method>`, Connect's unary JSON form)
    with one API key, exactly as the console's `call` does; `key=""` sends no Authorization header."""

    base_url: str
    key: str

    def post(
        self,
        service: str,
        method: str,
        request: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The raw HTTP answer, for tests of statuses and headers (`headers` are sent besides the content
        type and the key, e.g. `{"Cache-Control": "max-stale=600"}` to accept a kept answer, ADR 58)."""
        sent = {"Content-Type": "application/json"} | dict(headers or {})
        if self.key:
            sent["Authorization"] = f"Bearer {self.key}"
        return httpx.post(
            f"{self.base_url}/{service}/{method}",
            json=dict(request or {}),
            headers=sent,
            timeout=_TIMEOUT_SECONDS,
        )

    def call(
        self,
        service: str,
        method: str,
        request: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The response as proto3 JSON; BridgeError for any other status than 200."""
        answer = self.post(service, method, request, headers)
        if answer.status_code != 200:
            try:
                error = answer.json()
            except ValueError:
                error = {"code": "unknown", "message": answer.text}
            raise BridgeError(
                answer.status_code, error.get("code", ""), error.get("message", ""), error.get("details", [])
            )
        body: dict[str, Any] = answer.json()
        return body
