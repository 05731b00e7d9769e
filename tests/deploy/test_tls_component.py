"""components/tls, rendered on top of the dev overlay as an operator would add it: every variable is a
setting, every TLS file lies in a mounted Secret, probes reach the plaintext health port, internal services
require client certificates and the public gateway does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.kustomize import Combination, render_combination
from tests.deploy.test_manifests import OTEL_SDK_VARIABLES, PLANNED, SETTINGS, env_names, workloads


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render_combination(Combination("overlays/dev", ("tls",)))


def config(docs: list[dict[str, Any]]) -> dict[str, str]:
    (config_map,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("wayline-config")
    ]
    return dict(config_map["data"])


def environment(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: the shared ConfigMap, then its own env on top."""
    return config(docs) | {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_every_variable_the_component_sets_is_a_setting(rendered: list[dict[str, Any]]) -> None:
    for name, workload in workloads(rendered):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        known = env_names(SETTINGS[name]) | OTEL_SDK_VARIABLES | set(PLANNED)
        unknown = [v for v in environment(rendered, container) if v.startswith("WAYLINE_") and v not in known]
        assert unknown == [], name


def test_every_tls_file_is_in_a_secret_the_pod_mounts_and_its_user_can_read(
    rendered: list[dict[str, Any]],
) -> None:
    for name, workload in workloads(rendered):
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        mounts = {
            m["mountPath"]: secrets[m["name"]] for m in container["volumeMounts"] if m["name"] in secrets
        }
        files = {k: v for k, v in environment(rendered, container).items() if k.startswith("WAYLINE_TLS_")}
        assert files, name
        for variable, path in files.items():
            secret = mounts.get(str(Path(path).parent))
            assert secret is not None, f"{name}: {variable}={path} is not in a mounted Secret"
            assert secret["defaultMode"] & 0o040, f"{name}: {variable} unreadable by the pod's group"
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"], name


def test_probes_use_the_plaintext_health_port(rendered: list[dict[str, Any]]) -> None:
    health_port = int(config(rendered)["WAYLINE_HEALTH_PORT"])
    for name, workload in workloads(rendered):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        assert health_port in [p["containerPort"] for p in container["ports"]], name
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health_port, f"{name} {probe}"


def test_internal_services_require_client_certificates_and_the_gateway_does_not(
    rendered: list[dict[str, Any]],
) -> None:
    for name, workload in workloads(rendered):
        (container,) = workload["spec"]["template"]["spec"]["containers"]
        env = environment(rendered, container)
        assert "WAYLINE_TLS_CERT_FILE" in env, name
        assert ("WAYLINE_TLS_CLIENT_CA_FILE" in env) == (name != "gateway"), name
        assert env["WAYLINE_TLS_CERT_FILE"].startswith(
            "/etc/wayline/public-tls/" if name == "gateway" else "/etc/wayline/tls/"
        ), name
