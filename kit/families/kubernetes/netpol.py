"""NetworkPolicy semantics over built objects, enough to ask "would this connection be allowed?"
the way a CNI that enforces policies answers it. All objects are one overlay, so one namespace.

Semantics from the Kubernetes docs, "Network Policies"
(https://kubernetes.io/docs/concepts/services-networking/network-policies/, kubernetes/website
content/en/docs/concepts/services-networking/network-policies.md): a pod is isolated in a
direction once any policy selecting it lists that direction in `policyTypes` (by default
`Ingress`, plus `Egress` when the policy has egress rules); an isolated pod's connections are the
union of what the selecting policies' rules allow; a rule matches when one of its peers (none:
any) and one of its ports (none: any) match; a peer with only `podSelector` means pods of the
policy's own namespace, with `namespaceSelector` pods of the matching namespaces. "For a
connection from a source pod to a destination pod to be allowed, both the egress policy on the
source pod and the ingress policy on the destination pod need to allow the connection."
Namespaces are known by their `kubernetes.io/metadata.name` label only (set by the API server
since 1.21)."""
from __future__ import annotations

from dataclasses import dataclass, field

NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a namespace ("" is the overlay's own), the pod's labels (None:
    pods kit cannot see, e.g. the ingress controller's), or `external` (outside the cluster)."""
    namespace: str = ""
    labels: dict | None = None
    external: bool = False


@dataclass(frozen=True)
class Port:
    """The destination pod's port: its number, its name (if any), the protocol."""
    number: int
    name: str = ""
    protocol: str = "TCP"


@dataclass
class Verdict:
    allowed: bool
    why: list[str] = field(default_factory=list)


def selects(selector: dict | None, labels: dict | None) -> bool:
    """A label selector (matchLabels and matchExpressions); the empty selector selects everything.
    Unknown labels (None) match only the empty selector."""
    selector = selector or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    if labels is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def policy_types(policy: dict) -> list[str]:
    spec = policy.get("spec", {})
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if spec.get("egress") else []))


def applying(objects: list[dict], labels: dict, direction: str) -> list[dict]:
    """The policies that isolate a pod with these labels in this direction (Ingress or Egress)."""
    return [p for p in objects if p.get("kind") == "NetworkPolicy"
            and direction in policy_types(p) and selects(p["spec"].get("podSelector"), labels)]


def _namespace_of(objects: list[dict]) -> str:
    return next((o["metadata"].get("namespace", "") for o in objects if o.get("kind") == "NetworkPolicy"), "")


def _peer_matches(peer: dict, other: Endpoint, own_ns: str) -> bool:
    if "ipBlock" in peer:
        return other.external
    if other.external:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {NAME_LABEL: other.namespace or own_ns}):
            return False
        return "podSelector" not in peer or selects(peer["podSelector"], other.labels)
    return other.namespace in ("", own_ns) and selects(peer.get("podSelector"), other.labels)


def _port_matches(entry: dict, port: Port) -> bool:
    if entry.get("protocol", "TCP") != port.protocol:
        return False
    want = entry.get("port")
    if want is None:
        return True
    if isinstance(want, str):
        return bool(port.name) and want == port.name
    return want <= port.number <= entry.get("endPort", want)


def side_allows(objects: list[dict], pod: dict, direction: str, other: Endpoint, port: Port) -> bool:
    """Does the pod with labels `pod` (in the overlay's namespace) allow this connection in this
    direction: Ingress from `other` to its `port`, or Egress to `other`'s `port`?"""
    policies = applying(objects, pod, direction)
    if not policies:
        return True                      # not isolated in this direction
    own_ns, key = _namespace_of(objects), "from" if direction == "Ingress" else "to"
    for policy in policies:
        for rule in policy["spec"].get(direction.lower()) or []:
            peers, ports = rule.get(key) or [], rule.get("ports") or []
            if (not peers or any(_peer_matches(p, other, own_ns) for p in peers)) and \
                    (not ports or any(_port_matches(e, port) for e in ports)):
                return True
    return False


def connection(objects: list[dict], source: Endpoint, dest: Endpoint, port: Port) -> Verdict:
    """Both ends of a connection, as the CNI would judge it. Ends outside the overlay's namespace
    (another namespace, outside the cluster) are taken as allowing it: their policies are not here."""
    why = []
    if source.labels is not None and not source.namespace and not source.external and \
            not side_allows(objects, source.labels, "Egress", dest, port):
        why.append("the source's egress policies do not allow it")
    if dest.labels is not None and not dest.namespace and not dest.external and \
            not side_allows(objects, dest.labels, "Ingress", source, port):
        why.append("the destination's ingress policies do not admit it")
    return Verdict(not why, why)
