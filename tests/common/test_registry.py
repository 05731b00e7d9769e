"""The registry is the one source of the services' names, packages, ports and contracts: what the settings,
the protos and the code say about a service is what the registry says."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from tools.service_settings import settings_class
from wayline.common.registry import REGISTRY, SERVICES, ServiceInfo, scope_map, stop_waves

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_settings_default_to_the_registrys_name_prefix_and_ports(service: ServiceInfo) -> None:
    settings = settings_class(service)
    fields = settings.model_fields
    assert settings.service_name == service.name
    assert settings.model_config.get("env_prefix") == service.env_prefix
    assert (fields["port"].default, fields["metrics_port"].default) == (service.port, service.metrics_port)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_peer_addresses_are_peers_and_default_to_their_registry_address(service: ServiceInfo) -> None:
    addresses = {
        name.removesuffix("_address"): field.default
        for name, field in settings_class(service).model_fields.items()
        if name.endswith("_address")
    }
    assert set(addresses) <= set(service.peers)
    assert addresses == {peer: REGISTRY[peer].default_address for peer in addresses}


def test_the_gateway_has_an_address_for_every_service_it_routes_to() -> None:
    gateway = settings_class(REGISTRY["gateway"])()
    routed = [service.name for service in SERVICES if service.routed]
    assert {name: gateway.peer_address(name) for name in routed} == {
        name: REGISTRY[name].default_address for name in routed
    }


def test_names_and_ports_are_unique_and_peers_are_services() -> None:
    ports = [port for service in SERVICES for port in (service.port, service.metrics_port)]
    assert len(set(ports)) == len(ports)
    assert len(REGISTRY) == len(SERVICES)
    assert {peer for service in SERVICES for peer in service.peers} <= set(REGISTRY)
    assert [service.name for service in SERVICES if not service.routed] == ["gateway"]


def test_a_service_stops_before_the_peers_it_flushes_into() -> None:
    waves = stop_waves()
    assert sorted(name for wave in waves for name in wave) == sorted(REGISTRY)
    wave_of = {name: n for n, wave in enumerate(waves) for name in wave}
    for service in SERVICES:
        assert set(service.flushes_into) <= set(service.peers), service.name
        for peer in service.flushes_into:
            assert wave_of[service.name] < wave_of[peer], (service.name, peer)
    assert waves[0][0] == "gateway"  # within a wave, the reverse of the start order: callers first


def test_services_that_flush_into_each_other_stop_together() -> None:
    def service(name: str, *flushes_into: str) -> ServiceInfo:
        return ServiceInfo(name, name, name, 1, 2, (), peers=flushes_into, flushes_into=flushes_into)

    assert stop_waves([service("a", "b"), service("b", "a"), service("c")]) == [["c"], ["b", "a"]]
    assert stop_waves([service("a"), service("b", "a"), service("c", "b")]) == [["c"], ["b"], ["a"]]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_the_package_runs_as_a_module(service: ServiceInfo) -> None:
    """`wayline up` runs `python -m <package>`."""
    assert importlib.util.find_spec(f"{service.package}.__main__") is not None


def proto_packages_with_services() -> set[str]:
    packages = set()
    for path in PROTOS.rglob("*.proto"):
        text = path.read_text()
        package = re.search(r"^package ([\w.]+);", text, re.MULTILINE)
        if package and re.search(r"^service \w+", text, re.MULTILINE):
            packages.add(package.group(1))
    return packages


def test_every_proto_service_belongs_to_a_registered_service() -> None:
    served = {contract.file.package for service in SERVICES for contract in service.contracts}
    assert served == proto_packages_with_services()
    for service in SERVICES:
        assert service.proto_package == service.contracts[0].file.package, service.name
        assert (PROTOS / Path(*service.proto_package.split("."))).is_dir(), service.name


def test_the_scope_map_covers_every_rpc_of_every_service() -> None:
    methods = [
        f"/{contract.full_name}/{method.name}"
        for service in SERVICES
        for contract in service.contracts
        for method in contract.methods
    ]
    assert sorted(scope_map()) == sorted(methods)
    assert scope_map()["/wayline.ingest.v1.IngestService/Track"] == "write"
    assert scope_map()["/wayline.journeys.v1.JourneyService/WriteEvents"] == "internal"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_no_code_writes_a_port_of_the_registry_again(service: ServiceInfo) -> None:
    """The registry is the only Python that states a default port (Kubernetes YAML and the README tables
    stay text and are checked in tests/deploy)."""
    registry = ROOT / "services" / "common" / "src" / "wayline" / "common" / "registry.py"
    sources = [
        path
        for folder in ("services", "cli", "ml", "tools", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if path != registry and ".venv" not in path.parts
    ]
    literal = re.compile(rf"\b({service.port}|{service.metrics_port})\b")
    assert [str(p.relative_to(ROOT)) for p in sources if literal.search(p.read_text())] == []
