"""Who may open a connection to which port of a pod under a set of NetworkPolicies, evaluated as the
Kubernetes API defines it (networking.k8s.io/v1), so that the policy tests assert what traffic gets through
rather than how the YAML happens to be written.

A pod is isolated for ingress once any policy with policyType Ingress selects it; then a connection is
allowed when some rule of some selecting policy admits the peer (podSelector: same namespace as the policy;
namespaceSelector: the peer's namespace labels; both: both; ipBlock: the peer's address) on that port (a
number, a container port's name, or every port). Only TCP is modelled; kubelet probes are outside the rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Peer", "Target", "reachable_ports", "selects"]

Document = dict[str, Any]


@dataclass(frozen=True)
class Peer:
    """The side that connects: a pod in a namespace (an outside client is a pod of no cluster namespace)."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = "10.244.0.10"

    @property
    def namespace_labels(self) -> dict[str, str]:
        # Kubernetes labels every namespace with its name.
        return {"kubernetes.io/metadata.name": self.namespace}


@dataclass(frozen=True)
class Target:
    """The side that listens: a pod's namespace, labels and container ports (name → number)."""

    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int]

    @classmethod
    def of_pod(cls, namespace: str, template: Document) -> Target:
        ports = {
            port.get("name") or str(port["containerPort"]): int(port["containerPort"])
            for container in template["spec"]["containers"]
            for port in container.get("ports", [])
            if port.get("protocol", "TCP") == "TCP"
        }
        return cls(namespace, dict(template["metadata"].get("labels", {})), ports)


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector's verdict; an empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        verdict = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not verdict:
            return False
    return True


def _admits(sources: list[Document] | None, policy_namespace: str, peer: Peer) -> bool:
    if not sources:  # `from` absent or empty: every source
        return True
    for source in sources:
        if "ipBlock" in source:
            block = source["ipBlock"]
            address = ipaddress.ip_address(peer.ip)
            if address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
            ):
                return True
            continue
        if "namespaceSelector" in source:
            namespace_ok = selects(source["namespaceSelector"], peer.namespace_labels)
        else:
            namespace_ok = peer.namespace == policy_namespace
        if namespace_ok and selects(source.get("podSelector"), peer.labels):
            return True
    return False


def _ports(rule_ports: list[Document] | None, target: Target) -> set[int]:
    listening = set(target.ports.values())
    if not rule_ports:  # `ports` absent or empty: every port
        return listening
    found: set[int] = set()
    for entry in rule_ports:
        if entry.get("protocol", "TCP") != "TCP":
            continue
        port: int | str | None = entry.get("port")
        if port is None:
            found |= listening
        elif isinstance(port, str):
            found |= {target.ports[port]} if port in target.ports else set()
        else:
            found |= set(range(port, int(entry.get("endPort", port)) + 1))
    return found


def reachable_ports(policies: Iterable[Document], target: Target, peer: Peer) -> set[int]:
    """The target's listening ports that `peer` may connect to."""
    isolating = [
        policy
        for policy in policies
        if policy["kind"] == "NetworkPolicy"
        and policy["metadata"].get("namespace", "default") == target.namespace
        and "Ingress" in policy["spec"].get("policyTypes", ["Ingress"])
        and selects(policy["spec"].get("podSelector"), target.labels)
    ]
    if not isolating:
        return set(target.ports.values())
    allowed: set[int] = set()
    for policy in isolating:
        namespace = policy["metadata"].get("namespace", "default")
        for rule in policy["spec"].get("ingress") or []:
            if _admits(rule.get("from"), namespace, peer):
                allowed |= _ports(rule.get("ports"), target)
    return allowed & set(target.ports.values())
