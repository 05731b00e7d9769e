"""The suite's services in one place: name, packages, ports, contracts, who calls whom, and the scope each
RPC needs.

Everything that used to repeat a service's name or port reads this instead: each service's settings take their
default ports and peer addresses from it, the gateway routes every routed service's public RPCs, `wayline up`
starts the services in its order, and the deploy and contract tests check the manifests, the tables in the
READMEs and the protos against it. Adding a service is one entry in SERVICES (plus its package and protos).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType, ModuleType

from google.protobuf import descriptor

from wayline.api.v1 import annotations_pb2
from wayline.decision.v1 import decision_service_pb2
from wayline.gateway.v1 import gateway_service_pb2
from wayline.identity.v1 import identity_service_pb2
from wayline.inference.v2 import grpc_service_pb2
from wayline.ingest.v1 import ingest_service_pb2
from wayline.journeys.v1 import journeys_service_pb2
from wayline.orchestrator.v1 import orchestrator_service_pb2

__all__ = [
    "PUBLIC_SCOPE",
    "REGISTRY",
    "SCOPE_NAMES",
    "SERVICES",
    "ServiceInfo",
    "backend_contracts",
    "method_scopes",
    "public_methods",
    "required_scope",
    "scope_map",
    "stop_waves",
]


@dataclass(frozen=True)
class ServiceInfo:
    """One service of the suite."""

    name: str  # "ingest": its settings prefix, Kubernetes name, and the `<name>_address` setting of callers
    package: str  # "wayline_ingest": the Python package, run as `python -m wayline_ingest`
    proto_package: str  # "wayline.ingest.v1": where its contracts live
    port: int  # default gRPC port
    metrics_port: int  # default Prometheus port
    contracts: tuple[descriptor.ServiceDescriptor, ...]  # the gRPC services it serves (health aside)
    peers: tuple[str, ...] = ()  # the services it calls, each reached through its `<peer>_address` setting
    routed: bool = True  # the gateway routes its public RPCs; False only for the gateway itself
    # Peers it still writes to while it stops, what it holds only in memory until they acknowledge it:
    # `wayline up` stops it, and waits for it, before them.
    flushes_into: tuple[str, ...] = ()

    @property
    def env_prefix(self) -> str:
        return f"WAYLINE_{self.name.upper()}_"

    @property
    def default_address(self) -> str:
        """Where callers on the same machine find it by default."""
        return f"127.0.0.1:{self.port}"


def _contracts(*modules: ModuleType) -> tuple[descriptor.ServiceDescriptor, ...]:
    """Every gRPC service declared in the generated `_pb2` modules."""
    return tuple(service for module in modules for service in module.DESCRIPTOR.services_by_name.values())


_BACKENDS = (
    ServiceInfo(
        name="journeys",
        package="wayline_journeys",
        proto_package="wayline.journeys.v1",
        port=50063,
        metrics_port=9463,
        contracts=_contracts(journeys_service_pb2),
        peers=("identity",),
    ),
    ServiceInfo(
        name="identity",
        package="wayline_identity",
        proto_package="wayline.identity.v1",
        port=50062,
        metrics_port=9462,
        contracts=_contracts(identity_service_pb2),
        peers=("journeys", "ingest"),
    ),
    ServiceInfo(
        name="decision",
        package="wayline_decision",
        proto_package="wayline.decision.v1",
        port=50064,
        metrics_port=9464,
        # The Open Inference Protocol V2 (proto package `inference`, so that KServe and Triton clients call
        # it unchanged) is served beside DecisionService.
        contracts=_contracts(decision_service_pb2, grpc_service_pb2),
        # Traces and feedback are events written through ingest for the persons identity knows; journeys
        # serves them back; the orchestrator keeps the contact ledger.
        peers=("journeys", "orchestrator", "identity", "ingest"),
        # Its trace sink writes the decisions still waiting through ingest, naming each person's
        # identifier from identity.
        flushes_into=("ingest", "identity"),
    ),
    ServiceInfo(
        name="orchestrator",
        package="wayline_orchestrator",
        proto_package="wayline.orchestrator.v1",
        port=50065,
        metrics_port=9465,
        contracts=_contracts(orchestrator_service_pb2),
        # Flows read persons and segments from journeys and decisions from decision, and follow identity's
        # override feed; the contacts and suppressions reach the timeline through ingest.
        peers=("journeys", "decision", "identity", "ingest"),
    ),
    ServiceInfo(
        name="ingest",
        package="wayline_ingest",
        proto_package="wayline.ingest.v1",
        port=50061,
        metrics_port=9461,
        contracts=_contracts(ingest_service_pb2),
        peers=("journeys", "identity", "decision", "orchestrator"),
    ),
)

# Start order: what others call comes first (`wayline up` starts them in this order; it stops them together,
# but each after the services that flush into it: `stop_waves`).
SERVICES: tuple[ServiceInfo, ...] = (
    *_BACKENDS,
    ServiceInfo(
        name="gateway",
        package="wayline_gateway",
        proto_package="wayline.gateway.v1",
        port=50051,
        metrics_port=9460,
        contracts=_contracts(gateway_service_pb2),
        peers=tuple(service.name for service in _BACKENDS),
        routed=False,
    ),
)
REGISTRY: Mapping[str, ServiceInfo] = MappingProxyType({service.name: service for service in SERVICES})


def stop_waves(services: Iterable[ServiceInfo] = SERVICES) -> list[list[str]]:
    """The order to stop `services` in: waves of names, each stopped together once the waves before it have
    exited; a service comes after every one that flushes into it (`flushes_into`), so what it flushes is
    not refused by a peer already gone. Within a wave the reverse of the start order."""
    left = list(reversed(tuple(services)))
    waves: list[list[str]] = []
    while left:
        names = {service.name for service in left}
        flushed_into = {peer for service in left for peer in service.flushes_into if peer in names}
        wave = [service for service in left if service.name not in flushed_into] or left  # a cycle: together
        waves.append([service.name for service in wave])
        left = [service for service in left if service not in wave]
    return waves


def backend_contracts() -> dict[str, tuple[descriptor.ServiceDescriptor, ...]]:
    """Service name → its contracts, for every service the gateway routes to."""
    return {service.name: service.contracts for service in SERVICES if service.routed}


SCOPE_NAMES: Mapping[int, str] = MappingProxyType(
    {
        annotations_pb2.SCOPE_READ: "read",
        annotations_pb2.SCOPE_WRITE: "write",
        annotations_pb2.SCOPE_ADMIN: "admin",
        annotations_pb2.SCOPE_INTERNAL: "internal",
        annotations_pb2.SCOPE_PUBLIC: "public",
    }
)
PUBLIC_SCOPE = "public"  # no key, no tenant, answered before the service is ready: methods revealing nothing


def required_scope(method: descriptor.MethodDescriptor) -> str:
    """The scope a caller needs for `method`, from its `(wayline.api.v1.required_scope)` option."""
    value = method.GetOptions().Extensions[annotations_pb2.required_scope]
    if value not in SCOPE_NAMES:
        raise ValueError(f"{method.full_name} declares no (wayline.api.v1.required_scope)")
    return SCOPE_NAMES[value]


def method_scopes(services: Iterable[descriptor.ServiceDescriptor]) -> dict[str, str]:
    """Full method path → required scope, for every method of `services`."""
    return {
        f"/{service.full_name}/{method.name}": required_scope(method)
        for service in services
        for method in service.methods
    }


@cache
def scope_map() -> Mapping[str, str]:
    """Full method path ("/wayline.ingest.v1.IngestService/Track") → required scope, for every RPC of the
    suite. A function rather than a constant, so that a method without a scope fails whoever asks for the
    map (the gateway at start, the tests) instead of every import of the registry."""
    return MappingProxyType(method_scopes(s for service in SERVICES for s in service.contracts))


@cache
def public_methods() -> frozenset[str]:
    """Full method paths of every SCOPE_PUBLIC method of the suite: callable without a key."""
    return frozenset(path for path, scope in scope_map().items() if scope == PUBLIC_SCOPE)
