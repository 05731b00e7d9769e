"""The Kubernetes manifests, rendered by kustomize as an operator would apply them, agree with the code:
every WAYLINE_* variable is a setting the service reads, every port is the registry's, probes and ports
match. (What admission policies check, hardening and network policies among it: test_policies.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.kustomize import OVERLAYS, render
from tools.service_settings import settings_classes
from wayline.common.registry import REGISTRY
from wayline.common.settings import ServiceSettings

SETTINGS = settings_classes()

# Read by the OpenTelemetry SDK itself (resource detection), not by our settings.
OTEL_SDK_VARIABLES = {"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"}
# Set by the manifests ahead of the issue that makes the service read them. Each entry leaves this list in
# the change that adds the setting (a test below fails while both exist), so the list stays true.
PLANNED: dict[str, str] = {}


def env_names(settings: type[ServiceSettings]) -> set[str]:
    """Every environment variable `settings` reads."""
    return {name for names in settings.environment_variables().values() for name in names}


def workloads(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The suite's own workloads (the engines the production components run beside them are not)."""
    for doc in docs:
        if (
            doc["kind"] in ("Deployment", "StatefulSet")
            and doc["metadata"]["labels"].get("app.kubernetes.io/part-of") == "wayline"
        ):
            yield doc["metadata"]["name"], doc


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def config_map_keys(docs: list[dict[str, Any]]) -> set[str]:
    return {key for doc in docs if doc["kind"] == "ConfigMap" for key in doc.get("data", {})}


def config_map_values(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The shared settings every container reads (ConfigMap wayline-config)."""
    (config,) = [
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("wayline-config")
    ]
    return dict(config["data"])


def test_every_service_is_deployed_once(rendered: list[dict[str, Any]]) -> None:
    assert sorted(name for name, _ in workloads(rendered)) == sorted(REGISTRY)


def test_every_port_is_the_registrys(rendered: list[dict[str, Any]]) -> None:
    for name, workload in workloads(rendered):
        service = REGISTRY[name]
        pod = workload["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert (ports["grpc"], ports["metrics"]) == (service.port, service.metrics_port), name
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(service.metrics_port), name
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env[f"{service.env_prefix}PORT"] == str(service.port), name
        assert env[f"{service.env_prefix}METRICS_PORT"] == str(service.metrics_port), name
        assert env["OTEL_SERVICE_NAME"] == f"wayline-{name}", name  # the name the kit gives its telemetry
    for doc in rendered:
        if (
            doc["kind"] == "Service"
            and doc["metadata"]["labels"].get("app.kubernetes.io/part-of") == "wayline"
        ):
            grpc_port = next(p["port"] for p in doc["spec"]["ports"] if p["name"] == "grpc")
            assert grpc_port == REGISTRY[doc["metadata"]["name"]].port, doc["metadata"]["name"]


def test_peer_addresses_are_the_registrys_peers(rendered: list[dict[str, Any]]) -> None:
    for name, workload in workloads(rendered):
        service = REGISTRY[name]
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        for variable in container.get("env", []):
            if not variable["name"].endswith("_ADDRESS"):
                continue
            peer = variable["name"].removeprefix(service.env_prefix).removesuffix("_ADDRESS").lower()
            assert peer in service.peers, f"{name}: {variable['name']}"
            assert variable["value"] == f"{peer}:{REGISTRY[peer].port}", f"{name}: {variable['name']}"


def test_no_container_names_a_variable_twice(rendered: list[dict[str, Any]]) -> None:
    # Kubernetes keeps the last of two entries and a strategic-merge patch of one drops both,
    # so a repeated name is an overlay waiting to lose a setting.
    repeated = []
    for doc in rendered:
        template = doc.get("spec", {}).get("template", {})
        for container in template.get("spec", {}).get("containers", []):
            names = [variable["name"] for variable in container.get("env", [])]
            repeated += [
                f"{doc['metadata']['name']}/{container['name']}: {n}"
                for n in sorted(set(names))
                if names.count(n) > 1
            ]
    assert repeated == []


def test_every_wayline_variable_is_a_setting_the_service_reads(rendered: list[dict[str, Any]]) -> None:
    unknown = []
    for name, workload in workloads(rendered):
        known = env_names(SETTINGS[name]) | OTEL_SDK_VARIABLES | set(PLANNED)
        for container in workload["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            if container.get("envFrom"):
                names |= config_map_keys(rendered)
            unknown += [
                f"{name}: {n}"
                for n in sorted(names)
                if n.startswith(("WAYLINE_", "OTEL_")) and n not in known
            ]
    assert unknown == []


def test_planned_variables_are_not_settings_yet() -> None:
    read = set().union(*(env_names(settings) for settings in SETTINGS.values()))
    assert sorted(read & set(PLANNED)) == []


def test_probes_are_native_grpc_on_the_port_the_service_listens_on(rendered: list[dict[str, Any]]) -> None:
    for name, workload in workloads(rendered):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        port = int(env[f"WAYLINE_{name.upper()}_PORT"])
        assert {"name": "grpc", "containerPort": port} in [
            {k: p[k] for k in ("name", "containerPort")} for p in container["ports"]
        ], name
        # With TLS (components/tls) the kubelet, which cannot speak it, probes a plaintext health-only port.
        health_port = config_map_values(rendered).get("WAYLINE_HEALTH_PORT")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == int(health_port or port), f"{name} {probe}"


def test_peer_addresses_name_services_that_exist(rendered: list[dict[str, Any]]) -> None:
    services = {
        (doc["metadata"]["name"], port["port"])
        for doc in rendered
        if doc["kind"] == "Service"
        for port in doc["spec"]["ports"]
    }
    for name, workload in workloads(rendered):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        for variable in container.get("env", []):
            if variable["name"].endswith("_ADDRESS"):
                host, port = variable["value"].rsplit(":", 1)
                assert (host.split(".")[0], int(port)) in services, f"{name}: {variable['value']}"


def test_production_generates_no_secrets() -> None:
    assert [doc["metadata"]["name"] for doc in render("production") if doc["kind"] == "Secret"] == []
