"""The NetworkPolicy evaluator the policy tests rely on answers as Kubernetes does, on small policies whose
verdicts the API documentation states."""

from __future__ import annotations

from typing import Any

from tests.deploy.network import Peer, Target, reachable_ports, selects

Document = dict[str, Any]
API = Target("shop", {"app": "api"}, {"grpc": 50051, "metrics": 9090})


def policy(spec: Document, namespace: str = "shop") -> Document:
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_a_pod_no_policy_selects_is_open() -> None:
    other = policy({"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]})
    assert reachable_ports([other], API, Peer("anywhere")) == {50051, 9090}


def test_a_policy_in_another_namespace_does_not_isolate() -> None:
    deny = policy({"podSelector": {}, "policyTypes": ["Ingress"]}, namespace="elsewhere")
    assert reachable_ports([deny], API, Peer("anywhere")) == {50051, 9090}


def test_an_egress_only_policy_does_not_isolate_ingress() -> None:
    egress = policy({"podSelector": {}, "policyTypes": ["Egress"]})
    assert reachable_ports([egress], API, Peer("anywhere")) == {50051, 9090}


def test_a_selected_pod_without_rules_is_closed() -> None:
    deny = policy({"podSelector": {}})  # policyTypes defaults to Ingress
    assert reachable_ports([deny], API, Peer("shop", {"app": "web"})) == set()


def test_a_pod_selector_admits_pods_of_the_policys_namespace_only() -> None:
    allow = policy(
        {"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]}
    )
    assert reachable_ports([allow], API, Peer("shop", {"app": "web"})) == {50051, 9090}
    assert reachable_ports([allow], API, Peer("other", {"app": "web"})) == set()
    assert reachable_ports([allow], API, Peer("shop", {"app": "batch"})) == set()


def test_namespace_and_pod_selectors_in_one_peer_must_both_match() -> None:
    both = policy(
        {
            "podSelector": {},
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
                            },
                            "podSelector": {"matchLabels": {"app": "prometheus"}},
                        }
                    ],
                    "ports": [{"port": "metrics"}],  # a named port: the target container's
                }
            ],
        }
    )
    assert reachable_ports([both], API, Peer("monitoring", {"app": "prometheus"})) == {9090}
    assert reachable_ports([both], API, Peer("monitoring", {"app": "grafana"})) == set()
    assert reachable_ports([both], API, Peer("shop", {"app": "prometheus"})) == set()


def test_allowed_ports_are_the_union_over_policies_and_rules() -> None:
    grpc = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 50051, "protocol": "TCP"}]}]})
    udp = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 9090, "protocol": "UDP"}]}]})
    ranged = policy({"podSelector": {}, "ingress": [{"ports": [{"port": 9000, "endPort": 9100}]}]})
    assert reachable_ports([grpc, udp], API, Peer("x")) == {50051}
    assert reachable_ports([grpc, ranged], API, Peer("x")) == {50051, 9090}


def test_an_ip_block_admits_addresses_in_its_range_outside_its_exceptions() -> None:
    block = policy(
        {
            "podSelector": {},
            "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}],
        }
    )
    assert reachable_ports([block], API, Peer("x", ip="203.0.113.7")) == {50051, 9090}
    assert reachable_ports([block], API, Peer("x", ip="10.1.2.3")) == set()


def test_selector_expressions() -> None:
    labels = {"app": "api", "tier": "backend"}
    assert selects({}, labels)
    assert selects({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "web"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]}, labels)
    assert selects({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, labels)
    assert not selects({"matchLabels": {"app": "api", "tier": "frontend"}}, labels)
