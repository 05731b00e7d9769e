"""What a platform team's admission policies check, over every deployable rendering (each overlay, and
production with every other component): containers run as non-root without privilege escalation, carry
readiness and liveness probes, requests and a memory limit, and pinned images; our pods are hardened and
outlast their drain; in production each service is reachable only by its callers.

The rules read pod specs in the rendered output: Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
CronJobs and Pods, ours and the engines' alike. Engines an operator runs from a custom resource (a database
cluster, a ClickHouseInstallation) have no pod spec here: their operator makes the pods, and the resource is
held to its CRD's schema instead (test_schemas.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.kustomize import Combination, combinations, render_combination
from tests.deploy.network import Peer, Target, reachable_ports
from wayline.common.registry import REGISTRY, SERVICES

Document = dict[str, Any]

# Where each workload kind keeps its pod template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}
DEPLOYABLE = [c for c in combinations() if c.on_overlay]


@pytest.fixture(scope="module", params=DEPLOYABLE, ids=lambda c: c.name)
def rendered(request: pytest.FixtureRequest) -> list[Document]:
    combination: Combination = request.param
    return render_combination(combination)


def pod_templates(docs: list[Document]) -> Iterator[tuple[str, Document]]:
    """("Kind/name", pod template with metadata and spec) for every workload."""
    for doc in docs:
        if doc["kind"] in POD_TEMPLATE_PATHS:
            template = doc
            for key in POD_TEMPLATE_PATHS[doc["kind"]]:
                template = template[key]
            yield f"{doc['kind']}/{doc['metadata']['name']}", template


def containers(docs: list[Document]) -> Iterator[tuple[str, Document, Document]]:
    """("Kind/name container", container, pod spec) for every container and init container."""
    for name, template in pod_templates(docs):
        spec = template["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{name} {container['name']}", container, spec


def is_ours(template: Document) -> bool:
    labels: dict[str, str] = template["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/part-of") == "wayline"


def test_every_deployable_rendering_has_our_workloads(rendered: list[Document]) -> None:
    ours = sorted(
        t["metadata"]["labels"]["app.kubernetes.io/name"] for _, t in pod_templates(rendered) if is_ours(t)
    )
    assert ours == sorted(REGISTRY)  # so that the rules below have something to judge


def test_every_container_runs_as_non_root(rendered: list[Document]) -> None:
    root = []
    for name, container, spec in containers(rendered):
        pod, own = spec.get("securityContext") or {}, container.get("securityContext") or {}
        user = own.get("runAsUser", pod.get("runAsUser"))
        non_root = own.get("runAsNonRoot", pod.get("runAsNonRoot"))
        if user == 0 or (user is None and non_root is not True):
            root.append(name)
    assert root == []


def test_no_container_can_gain_privileges(rendered: list[Document]) -> None:
    privileged = [
        name
        for name, container, _ in containers(rendered)
        if (container.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False
        or (container.get("securityContext") or {}).get("privileged") is True
    ]
    assert privileged == []


def test_every_container_has_readiness_and_liveness_probes(rendered: list[Document]) -> None:
    missing = []
    for name, template in pod_templates(rendered):
        spec = template["spec"]
        # Init containers run to completion before the pod starts and take no probes, sidecars (init
        # containers that keep running) do.
        running = [
            *spec["containers"],
            *(c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"),
        ]
        for container in running:
            missing += [
                f"{name} {container['name']} {p}"
                for p in ("readinessProbe", "livenessProbe")
                if p not in container
            ]
            if is_ours(template):  # ours answer grpc.health.v1, which means their dependencies are up
                missing += [
                    f"{name} {container['name']} {p} is not native gRPC"
                    for p in ("startupProbe", "readinessProbe", "livenessProbe")
                    if "grpc" not in container.get(p, {})
                ]
    assert missing == []


def test_every_container_requests_resources_and_has_a_memory_limit(rendered: list[Document]) -> None:
    unbounded = []
    for name, container, _ in containers(rendered):
        resources = container.get("resources") or {}
        if not resources.get("requests") or "memory" not in (resources.get("limits") or {}):
            unbounded.append(name)
    assert unbounded == []


def image_tag(image: str) -> str | None:
    """The tag of an image reference ("registry:5000/a/b:1.2" → "1.2"), "@digest" when it is pinned by
    digest, None when it has neither."""
    if "@" in image:
        return "@" + image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def test_image_tag_reads_references() -> None:
    assert image_tag("registry.example.com:5000/wayline/gateway") is None
    assert image_tag("registry.example.com:5000/wayline/gateway:0.1.0") == "0.1.0"
    assert image_tag("redis:7.2@sha256:abc") == "@sha256:abc"
    assert image_tag("nats") is None


def test_every_image_is_pinned(rendered: list[Document]) -> None:
    unpinned = [
        f"{name}: {container['image']}"
        for name, container, _ in containers(rendered)
        if image_tag(container["image"]) in (None, "latest")
    ]
    assert unpinned == []


def test_our_pods_are_hardened(rendered: list[Document]) -> None:
    soft = []
    for name, template in pod_templates(rendered):
        if not is_ours(template):
            continue
        spec = template["spec"]
        if spec.get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
            soft.append(f"{name}: seccomp")
        if spec.get("automountServiceAccountToken") is not False:
            soft.append(f"{name}: service account token")
        for container in spec["containers"]:
            security = container.get("securityContext") or {}
            if security.get("readOnlyRootFilesystem") is not True:
                soft.append(f"{name} {container['name']}: writable root")
            if security.get("capabilities", {}).get("drop") != ["ALL"]:
                soft.append(f"{name} {container['name']}: capabilities")
    assert soft == []


def pre_stop_pause(container: Document) -> float:
    """Seconds a `sleep N` preStop hook holds the pod before SIGTERM (0 without one)."""
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    match = re.fullmatch(r"sleep (\d+(?:\.\d+)?)", " ".join(command))
    return float(match.group(1)) if match else 0.0


def test_our_grace_period_outlasts_the_pause_and_the_drain(rendered: list[Document]) -> None:
    # Kubernetes counts terminationGracePeriodSeconds from the start of the preStop hook: the pause, then the
    # SIGTERM drain (in-flight calls get SHUTDOWN_GRACE_SECONDS) must both fit before SIGKILL.
    cut = []
    for name, template in pod_templates(rendered):
        if not is_ours(template):
            continue
        spec = template["spec"]
        (container,) = spec["containers"]
        grace = float(
            next(e["value"] for e in container["env"] if e["name"].endswith("_SHUTDOWN_GRACE_SECONDS"))
        )
        if not spec["terminationGracePeriodSeconds"] > pre_stop_pause(container) + grace:
            cut.append(name)
    assert cut == []


def callers(service: str) -> set[str]:
    """The services whose registry entry lists `service` among the peers they call."""
    return {s.name for s in SERVICES if service in s.peers}


@pytest.mark.parametrize(
    "combination", [c for c in DEPLOYABLE if c.root == "overlays/production"], ids=lambda c: c.name
)
def test_production_lets_each_service_be_reached_only_by_its_callers(combination: Combination) -> None:
    docs = render_combination(combination)
    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
    ours = {
        t["metadata"]["labels"]["app.kubernetes.io/name"]: t for _, t in pod_templates(docs) if is_ours(t)
    }
    (namespace,) = {
        doc["metadata"]["namespace"]
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet") and doc["metadata"]["name"] in REGISTRY
    }
    gateway = Target.of_pod(namespace, ours["gateway"])
    public = {gateway.ports["grpc"], gateway.ports["http"]}
    peers = {name: Peer(namespace, template["metadata"]["labels"]) for name, template in ours.items()}
    peers |= {
        "outside": Peer("elsewhere", ip="203.0.113.7"),
        "a neighbour pod": Peer(namespace, {"app.kubernetes.io/name": "something-else"}),
        "monitoring": Peer("monitoring", {"app.kubernetes.io/name": "prometheus"}),
    }
    wrong = []
    for name, template in ours.items():
        service, target = REGISTRY[name], Target.of_pod(namespace, template)
        for peer_name, peer in peers.items():
            if name == "gateway":
                expected = set(public)
            else:
                expected = {service.port} if peer_name in callers(name) else set()
            if peer_name == "monitoring":
                expected.add(service.metrics_port)
            if (got := reachable_ports(policies, target, peer)) != expected:
                wrong.append(f"{peer_name} → {name}: ports {sorted(got)}, expected {sorted(expected)}")
    assert wrong == []
