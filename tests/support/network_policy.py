"""Decide whether Kubernetes NetworkPolicies allow a connection, without a cluster.

A small reading of the networking.k8s.io/v1 semantics, enough to check the policies in
deploy/kubernetes/ by what they do rather than by how they are spelled:

- A pod is isolated for a direction (Ingress or Egress) when some policy in its namespace
  selects it and lists that direction in policyTypes. policyTypes defaults to Ingress, plus
  Egress when the policy has a non-empty egress list (as the API server defaults it).
- An isolated pod allows a connection when any rule of any policy selecting it matches it;
  policies add up, none subtracts. A pod no policy isolates allows everything.
- A connection from a pod to a pod needs both the source's egress and the destination's
  ingress to allow it.
- A peer with podSelector alone means pods in the policy's namespace; namespaceSelector
  alone means every pod in the matching namespaces; both in one peer must both match.
  An ipBlock matches by address (pod or not), minus its `except` ranges.
- A missing or empty `to`/`from` matches every peer, a missing or empty `ports` every port;
  a port's protocol defaults to TCP, and endPort makes it a range.

Not modelled: named ports (none of the manifests use them), which raise ValueError instead
of answering wrongly; and traffic between a pod and its own node (kubelet probes, but also
anything listening on the node), which Kubernetes documents as always allowed whatever the
policies say.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Labels = Mapping[str, str]
Manifest = Mapping[str, Any]
Direction = Literal["Ingress", "Egress"]
Protocol = Literal["TCP", "UDP", "SCTP"]

# The API server labels every namespace with its own name (Kubernetes 1.22 and later).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Labels
    ip: str
    namespace_labels: Labels = field(default_factory=dict)

    def all_namespace_labels(self) -> dict[str, str]:
        return {**self.namespace_labels, NAMESPACE_NAME_LABEL: self.namespace}


@dataclass(frozen=True)
class External:
    """An address outside the pod network: the internet, a node, the API server, a VIP."""

    ip: str


Endpoint = Pod | External


def selector_matches(selector: Mapping[str, Any], labels: Labels) -> bool:
    """A LabelSelector: matchLabels and matchExpressions all hold; {} matches everything."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        holds = {
            "In": present and labels[key] in values,
            "NotIn": not (present and labels[key] in values),  # a missing key is "not in"
            "Exists": present,
            "DoesNotExist": not present,
        }
        if operator not in holds:
            raise ValueError(f"unknown label selector operator {operator!r}")
        if not holds[operator]:
            return False
    return True


def policy_namespace(policy: Manifest) -> str:
    try:
        return policy["metadata"]["namespace"]
    except KeyError:
        raise ValueError(
            f"NetworkPolicy {policy['metadata'].get('name')!r} has no metadata.namespace; "
            "the evaluator does not guess the namespace kubectl would apply it to"
        ) from None


def policy_types(policy: Manifest) -> list[str]:
    spec = policy["spec"]
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def isolating_policies(
    policies: Iterable[Manifest], pod: Pod, direction: Direction
) -> list[Manifest]:
    """The policies that select `pod` for `direction`: if any, only their rules allow."""
    return [
        policy
        for policy in policies
        if policy.get("kind") == "NetworkPolicy"
        and policy_namespace(policy) == pod.namespace
        and selector_matches(policy["spec"]["podSelector"], pod.labels)
        and direction in policy_types(policy)
    ]


def peer_matches(peer: Mapping[str, Any], namespace: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(endpoint.ip)
        block = peer["ipBlock"]
        if address not in ipaddress.ip_network(block["cidr"]):
            return False
        return not any(address in ipaddress.ip_network(cut) for cut in block.get("except", []))
    if not isinstance(endpoint, Pod):
        return False  # pod and namespace selectors only ever match pods
    namespace_selector = peer.get("namespaceSelector")
    if namespace_selector is None:
        in_namespace = endpoint.namespace == namespace
    else:
        in_namespace = selector_matches(namespace_selector, endpoint.all_namespace_labels())
    pod_selector = peer.get("podSelector")
    return in_namespace and (
        pod_selector is None or selector_matches(pod_selector, endpoint.labels)
    )


def port_matches(rule_port: Mapping[str, Any], port: int, protocol: Protocol) -> bool:
    if rule_port.get("protocol", "TCP") != protocol:
        return False
    first = rule_port.get("port")
    if first is None:
        return True
    if isinstance(first, str):
        raise ValueError(f"named port {first!r}: the evaluator only answers for numbers")
    return first <= port <= rule_port.get("endPort", first)


def rule_matches(
    rule: Mapping[str, Any],
    peers_key: Literal["to", "from"],
    namespace: str,
    peer: Endpoint,
    port: int,
    protocol: Protocol,
) -> bool:
    peers = rule.get(peers_key) or []
    ports = rule.get("ports") or []
    peer_ok = not peers or any(peer_matches(p, namespace, peer) for p in peers)
    port_ok = not ports or any(port_matches(p, port, protocol) for p in ports)
    return peer_ok and port_ok


# Where a direction's rules live in a policy spec, and what names the other end in them.
RULE_FIELDS: dict[Direction, tuple[str, Literal["to", "from"]]] = {
    "Egress": ("egress", "to"),
    "Ingress": ("ingress", "from"),
}


def pod_allows(
    policies: Sequence[Manifest],
    pod: Pod,
    direction: Direction,
    peer: Endpoint,
    port: int,
    protocol: Protocol,
) -> bool:
    """Whether the policies isolating `pod` for `direction` (if any) allow `peer` there."""
    rules_field, peers_field = RULE_FIELDS[direction]
    isolating = isolating_policies(policies, pod, direction)
    return not isolating or any(
        rule_matches(rule, peers_field, policy_namespace(policy), peer, port, protocol)
        for policy in isolating
        for rule in policy["spec"].get(rules_field) or []
    )


def egress_allowed(
    policies: Sequence[Manifest],
    source: Pod,
    destination: Endpoint,
    port: int,
    protocol: Protocol = "TCP",
) -> bool:
    """The source's side of a connection: may it send to `destination`?"""
    return pod_allows(policies, source, "Egress", destination, port, protocol)


def ingress_allowed(
    policies: Sequence[Manifest],
    source: Endpoint,
    destination: Pod,
    port: int,
    protocol: Protocol = "TCP",
) -> bool:
    """The destination's side of a connection: may `source` come in?"""
    return pod_allows(policies, destination, "Ingress", source, port, protocol)


def connection_allowed(
    policies: Sequence[Manifest],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: Protocol = "TCP",
) -> bool:
    """Whether `source` may open a connection to `destination` on `port`/`protocol`."""
    if isinstance(source, Pod) and not egress_allowed(
        policies, source, destination, port, protocol
    ):
        return False
    return not isinstance(destination, Pod) or ingress_allowed(
        policies, source, destination, port, protocol
    )
