"""The NetworkPolicy evaluator (tests/support/network_policy.py) against the documented rules.

The manifest tests trust this evaluator to say what the policies in deploy/kubernetes/
allow; these cases pin each rule of the Kubernetes semantics it implements, on small
policies written for the purpose.
"""

from __future__ import annotations

from typing import Any

import pytest
from network_policy import (
    External,
    Pod,
    connection_allowed,
    egress_allowed,
    ingress_allowed,
    selector_matches,
)

WEB = Pod("shop", {"app": "web"}, "10.244.1.10", {"team": "shop"})
DB = Pod("shop", {"app": "db"}, "10.244.1.11", {"team": "shop"})
OTHER_DB = Pod("billing", {"app": "db"}, "10.244.2.11", {"team": "billing"})
INTERNET = External("203.0.113.7")


def policy(namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": spec,
    }


def only_to(peer: dict[str, Any], *ports: dict[str, Any]) -> dict[str, Any]:
    """A policy isolating web for egress and allowing it to `peer` on `ports`."""
    rule: dict[str, Any] = {"to": [peer]}
    if ports:
        rule["ports"] = list(ports)
    return policy(
        podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Egress"], egress=[rule]
    )


def test_without_policies_everything_is_allowed() -> None:
    assert connection_allowed([], WEB, DB, 5432)
    assert connection_allowed([], WEB, INTERNET, 443)


def test_a_policy_without_rules_denies_the_pods_it_selects_and_no_others() -> None:
    deny_all = [policy(policyTypes=["Ingress", "Egress"])]
    assert not connection_allowed(deny_all, WEB, DB, 5432)
    assert not connection_allowed(deny_all, WEB, INTERNET, 443)
    assert not connection_allowed(deny_all, OTHER_DB, WEB, 80)  # web's ingress is isolated
    # billing has no policy: its pods talk freely among themselves and to the internet.
    other = Pod("billing", {"app": "api"}, "10.244.2.12")
    assert connection_allowed(deny_all, OTHER_DB, other, 8080)
    assert connection_allowed(deny_all, OTHER_DB, INTERNET, 443)


def test_policy_types_default_to_ingress_plus_egress_only_with_egress_rules() -> None:
    ingress_only = policy(podSelector={"matchLabels": {"app": "web"}})
    assert not ingress_allowed([ingress_only], DB, WEB, 80)
    assert egress_allowed([ingress_only], WEB, INTERNET, 443)

    with_egress_rules = policy(egress=[{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}])
    assert egress_allowed([with_egress_rules], WEB, DB, 5432)
    assert not egress_allowed([with_egress_rules], WEB, INTERNET, 443)

    # An empty egress list is no egress section: the API server defaults to Ingress only.
    empty_egress = policy(egress=[])
    assert egress_allowed([empty_egress], WEB, INTERNET, 443)


def test_policies_add_up() -> None:
    to_db = only_to({"podSelector": {"matchLabels": {"app": "db"}}})
    to_internet = only_to({"ipBlock": {"cidr": "0.0.0.0/0"}}, {"port": 443})
    assert not egress_allowed([to_db], WEB, INTERNET, 443)
    assert egress_allowed([to_db, to_internet], WEB, INTERNET, 443)
    assert egress_allowed([to_db, to_internet], WEB, DB, 5432)


def test_a_pod_selector_alone_means_the_policys_namespace() -> None:
    to_db = [only_to({"podSelector": {"matchLabels": {"app": "db"}}})]
    assert egress_allowed(to_db, WEB, DB, 5432)
    assert not egress_allowed(to_db, WEB, OTHER_DB, 5432)


def test_a_namespace_selector_alone_means_every_pod_there() -> None:
    to_billing = [only_to({"namespaceSelector": {"matchLabels": {"team": "billing"}}})]
    assert egress_allowed(to_billing, WEB, OTHER_DB, 5432)
    assert not egress_allowed(to_billing, WEB, DB, 5432)
    # Every namespace carries its own name as a label.
    by_name = [
        only_to({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "billing"}}})
    ]
    assert egress_allowed(by_name, WEB, OTHER_DB, 5432)


def test_selectors_in_one_peer_must_both_match_and_separate_peers_either() -> None:
    billing = {"namespaceSelector": {"matchLabels": {"team": "billing"}}}
    api = {"podSelector": {"matchLabels": {"app": "api"}}}
    billing_api = Pod("billing", {"app": "api"}, "10.244.2.12", {"team": "billing"})
    shop_api = Pod("shop", {"app": "api"}, "10.244.1.12", {"team": "shop"})

    both_in_one_peer = [only_to({**billing, **api})]
    assert egress_allowed(both_in_one_peer, WEB, billing_api, 80)
    assert not egress_allowed(both_in_one_peer, WEB, OTHER_DB, 80)
    assert not egress_allowed(both_in_one_peer, WEB, shop_api, 80)

    rule = {"to": [billing, api]}
    either_peer = [
        policy(podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Egress"], egress=[rule])
    ]
    assert egress_allowed(either_peer, WEB, OTHER_DB, 80)
    assert egress_allowed(either_peer, WEB, shop_api, 80)
    assert not egress_allowed(either_peer, WEB, DB, 80)


def test_an_ip_block_matches_addresses_minus_its_exceptions() -> None:
    block = [only_to({"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}})]
    assert egress_allowed(block, WEB, INTERNET, 443)
    assert egress_allowed(block, WEB, DB, 443)  # pod addresses are addresses too
    assert not egress_allowed(block, WEB, External("169.254.169.254"), 80)
    assert not egress_allowed(block, WEB, External("2001:db8::1"), 443)  # IPv4 only


def test_selectors_never_match_addresses_outside_the_pod_network() -> None:
    anything_anywhere = [only_to({"namespaceSelector": {}})]
    assert egress_allowed(anything_anywhere, WEB, OTHER_DB, 443)
    assert not egress_allowed(anything_anywhere, WEB, INTERNET, 443)


@pytest.mark.parametrize(
    ("rule_port", "port", "protocol", "allowed"),
    [
        ({"port": 443}, 443, "TCP", True),  # protocol defaults to TCP
        ({"port": 443}, 443, "UDP", False),
        ({"port": 443}, 444, "TCP", False),
        ({"protocol": "UDP", "port": 53}, 53, "UDP", True),
        ({"protocol": "UDP", "port": 53}, 53, "TCP", False),
        ({"protocol": "UDP"}, 9999, "UDP", True),  # no port: every port of the protocol
        ({"port": 8000, "endPort": 8100}, 8050, "TCP", True),
        ({"port": 8000, "endPort": 8100}, 8101, "TCP", False),
    ],
)
def test_ports(rule_port: dict[str, Any], port: int, protocol: Any, allowed: bool) -> None:
    policies = [only_to({"ipBlock": {"cidr": "0.0.0.0/0"}}, rule_port)]
    assert egress_allowed(policies, WEB, INTERNET, port, protocol) is allowed


def test_named_ports_are_refused_rather_than_guessed() -> None:
    policies = [only_to({"ipBlock": {"cidr": "0.0.0.0/0"}}, {"port": "https"})]
    with pytest.raises(ValueError, match="named port"):
        egress_allowed(policies, WEB, INTERNET, 443, "TCP")


def test_a_connection_needs_egress_at_the_source_and_ingress_at_the_destination() -> None:
    web_may_reach_db = only_to({"podSelector": {"matchLabels": {"app": "db"}}})
    db_takes_nothing = policy(podSelector={"matchLabels": {"app": "db"}}, policyTypes=["Ingress"])
    assert connection_allowed([web_may_reach_db], WEB, DB, 5432)
    assert not connection_allowed([web_may_reach_db, db_takes_nothing], WEB, DB, 5432)
    assert not connection_allowed([db_takes_nothing], WEB, DB, 5432)


def test_ingress_rules_match_the_source() -> None:
    db_from_web = policy(
        podSelector={"matchLabels": {"app": "db"}},
        ingress=[
            {
                "from": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                "ports": [{"port": 5432}],
            }
        ],
    )
    assert connection_allowed([db_from_web], WEB, DB, 5432)
    assert not connection_allowed([db_from_web], WEB, DB, 22)
    assert not connection_allowed([db_from_web], OTHER_DB, DB, 5432)
    assert not connection_allowed([db_from_web], INTERNET, DB, 5432)


def test_a_policy_without_a_namespace_is_refused() -> None:
    unplaced = policy(policyTypes=["Egress"])
    del unplaced["metadata"]["namespace"]
    with pytest.raises(ValueError, match=r"metadata\.namespace"):
        egress_allowed([unplaced], WEB, INTERNET, 443, "TCP")


def expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    """A selector with one matchExpressions entry."""
    entry: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        entry["values"] = list(values)
    return {"matchExpressions": [entry]}


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, {}, True),
        ({}, {"app": "web"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "front"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        ({"matchLabels": {"app": "web"}}, {}, False),
        (expression("app", "In", "web", "db"), {"app": "db"}, True),
        (expression("app", "In", "web"), {}, False),
        (expression("app", "NotIn", "web"), {"app": "db"}, True),
        (expression("app", "NotIn", "web"), {}, True),  # a missing label is "not in"
        (expression("app", "NotIn", "web"), {"app": "web"}, False),
        (expression("app", "Exists"), {"app": ""}, True),
        (expression("app", "Exists"), {}, False),
        (expression("app", "DoesNotExist"), {}, True),
        (expression("app", "DoesNotExist"), {"app": "x"}, False),
        ({**expression("app", "Exists"), "matchLabels": {"tier": "front"}}, {"app": "web"}, False),
    ],
)
def test_label_selectors(selector: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(selector, labels) is matches


def test_an_unknown_selector_operator_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        selector_matches(expression("a", "Gt", "0"), {"a": "1"})
