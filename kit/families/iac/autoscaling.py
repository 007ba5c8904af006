"""iac.rule.node_autoscaling: a node pool whose maximum exceeds its minimum has something that
moves it between the two. Bounds alone scale nothing.

- EKS: a managed node group is an EC2 Auto Scaling group whose size only changes when something
  calls SetDesiredCapacity. The Kubernetes Cluster Autoscaler does, and on AWS it needs three
  things (kubernetes/autoscaler cluster-autoscaler/cloudprovider/aws/README.md,
  https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md):
  the autoscaler itself (here the `cluster-autoscaler` Helm chart, "Auto-Discovery Setup": it
  finds groups by the tags `k8s.io/cluster-autoscaler/enabled` and `k8s.io/cluster-autoscaler/<cluster
  name>`, which the chart's `autoDiscovery.clusterName` names); the group carrying those tags;
  and IAM permissions for its service account ("IAM Policy": Describe* on every group, and
  `autoscaling:SetDesiredCapacity` / `autoscaling:TerminateInstanceInAutoScalingGroup` restricted
  by a tag condition, "to restrict the target resources ... using tag based conditionals"; it
  recommends IAM roles for service accounts). Without any of them the group stays at its
  desired size forever and pending pods never get a node.
- GKE: the node pool autoscales only with an `autoscaling` block (google_container_node_pool
  `autoscaling { min_node_count max_node_count }`, hashicorp/terraform-provider-google
  website/docs/r/container_node_pool.html.markdown; "GKE's cluster autoscaler automatically
  resizes the number of nodes in a given node pool",
  https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-autoscaler). The
  terraform-google-modules kubernetes-engine module writes that block from `node_pools[*]`
  min_count/max_count unless the pool sets `autoscaling = false` (its default is true,
  modules/*/cluster.tf `lookup(each.value, "autoscaling", true)`).
- AKS: the pool autoscales only with `enable_auto_scaling` (azurerm 3.x; `auto_scaling_enabled` in
  4.x) true and min_count/max_count set (hashicorp/terraform-provider-azurerm
  website/docs/r/kubernetes_cluster.html.markdown; https://learn.microsoft.com/azure/aks/cluster-autoscaler);
  Azure/aks exposes them as `enable_auto_scaling`, `agents_min_count`, `agents_max_count`.

The bounds are often expressions (var.node_min_size, max(...)): kit treats a pool as able to grow
when both bounds are numbers and max > min, or when they are different expressions."""
from __future__ import annotations

import re

from kit.families.iac.terraform import Inventory, unquote

DISCOVERY_TAGS = ("k8s.io/cluster-autoscaler/enabled", "k8s.io/cluster-autoscaler/")
TAG_CONDITION = re.compile(r"Condition\s*=\s*\{[^}]*ResourceTag/(k8s\.io/cluster-autoscaler/|kubernetes\.io/cluster/)")
SCALE_ACTIONS = ("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup")
SOURCES = {
    "aws": "https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/cloudprovider/aws/README.md",
    "gcp": "https://cloud.google.com/kubernetes-engine/docs/concepts/cluster-autoscaler",
    "azure": "https://learn.microsoft.com/azure/aks/cluster-autoscaler",
}
SOURCE = "; ".join(f"{cloud}: {url}" for cloud, url in SOURCES.items())


def _number(value):
    value = unquote(value)
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\$\{(\d+)\}|(\d+)", str(value).strip())
    return int(match[1] or match[2]) if match else None


def may_grow(low, high) -> bool:
    """Whether a pool's bounds leave room to scale (different expressions count as room)."""
    lo, hi = _number(low), _number(high)
    if lo is not None and hi is not None:
        return hi > lo
    return high is not None and str(unquote(high)) != str(unquote(low))


def _modules(inv: Inventory, needle: str) -> list[dict]:
    return [b for b in inv.blocks if b["kind"] == "module" and needle in b["source"]]


def _releases(inv: Inventory, folder: str, chart: str) -> list[dict]:
    return [b for b in inv.blocks if b["type"] == "helm_release" and b["folder"] == folder
            and unquote(b["body"].get("chart", "")).rsplit("/", 1)[-1] == chart]


def _sets(release: dict) -> dict[str, str]:
    return {unquote(s.get("name", "")).replace("\\\\", "\\"): str(unquote(s.get("value", "")))
            for s in release["body"].get("set") or []}


def _eks(inv: Inventory, eks: dict) -> list[str]:
    folder, problems = eks["folder"], []
    groups = eks["body"].get("eks_managed_node_groups") or {}
    growing = {name: g for name, g in groups.items() if isinstance(g, dict) and may_grow(g.get("min_size"), g.get("max_size"))}
    if not growing:
        return []
    where = f"{folder}: module {eks['name']}"
    releases = _releases(inv, folder, "cluster-autoscaler")
    if not releases:
        return [f"{where}: node group(s) {', '.join(growing)} have max_size above min_size but no "
                "cluster-autoscaler helm_release scales them (EKS never resizes a node group by itself)"]
    sets = _sets(releases[0])
    if "module.eks.cluster_name" not in sets.get("autoDiscovery.clusterName", "").replace(eks["name"], "eks"):
        problems.append(f"{where}: helm_release.{releases[0]['name']} does not set autoDiscovery.clusterName to the "
                        "cluster's name, so it discovers no node group")
    for name, group in growing.items():
        tags = {unquote(k): unquote(v) for k, v in (group.get("tags") or {}).items()} if isinstance(group.get("tags"), dict) else {}
        if tags.get(DISCOVERY_TAGS[0]) != "true" or not any(k.startswith(DISCOVERY_TAGS[1]) and k != DISCOVERY_TAGS[0]
                                                            for k in tags):
            problems.append(f"{where}: node group {name} lacks the auto-discovery tags {DISCOVERY_TAGS[0]} = \"true\" "
                            f"and {DISCOVERY_TAGS[1]}<cluster> = \"owned\"")
    sa = sets.get("rbac.serviceAccount.name", "cluster-autoscaler")
    role = sets.get("rbac.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn", "")
    match = re.search(r"module\.(\w+)\.iam_role_arn", role)
    irsa = next((m for m in inv.blocks if match and m["kind"] == "module" and m["name"] == match[1]
                 and m["folder"] == folder), None)
    if irsa is None:
        return problems + [f"{where}: the cluster-autoscaler's service account has no IRSA role "
                           "(rbac.serviceAccount.annotations.eks.amazonaws.com/role-arn)"]
    if f"kube-system:{sa}" not in str(irsa["body"].get("oidc_providers")):
        problems.append(f"{where}: module {irsa['name']} does not trust the service account kube-system:{sa}")
    policies = re.findall(r"aws_iam_policy\.(\w+)\.arn", str(irsa["body"].get("role_policy_arns")))
    texts = [str(b["body"].get("policy", "")) for b in inv.blocks
             if b["type"] == "aws_iam_policy" and b["name"] in policies and b["folder"] == folder]
    if irsa["body"].get("attach_cluster_autoscaler_policy") is True:
        # the iam module's own policy: scaling conditioned on autoscaling:ResourceTag/kubernetes.io/cluster/<name>
        texts.append(" ".join(SCALE_ACTIONS) + " Condition = {autoscaling:ResourceTag/kubernetes.io/cluster/")
    if not any(all(a in t for a in SCALE_ACTIONS) for t in texts):
        problems.append(f"{where}: the cluster-autoscaler's role may not call {' / '.join(SCALE_ACTIONS)}")
    elif not any(TAG_CONDITION.search(t) for t in texts):
        problems.append(f"{where}: the cluster-autoscaler's scaling actions are not restricted by the node "
                        "groups' tag (aws:ResourceTag/k8s.io/cluster-autoscaler/...): it could resize any group")
    return problems


def _gke(gke: dict) -> list[str]:
    problems = []
    for pool in gke["body"].get("node_pools") or []:
        name = unquote(pool.get("name", "?"))
        if may_grow(pool.get("min_count"), pool.get("max_count")) and pool.get("autoscaling", True) is False:
            problems.append(f"{gke['folder']}: module {gke['name']} node pool {name} has max_count above min_count "
                            "but autoscaling = false: GKE keeps it at its initial size")
    return problems


def _aks(aks: dict) -> list[str]:
    body = aks["body"]
    enabled = body.get("enable_auto_scaling", body.get("auto_scaling_enabled"))
    if may_grow(body.get("agents_min_count"), body.get("agents_max_count")) and enabled is not True:
        return [f"{aks['folder']}: module {aks['name']} has agents_max_count above agents_min_count but "
                "enable_auto_scaling is not true: AKS keeps the pool at agents_count"]
    return []


def _resources(inv: Inventory) -> list[str]:
    """Node pools written as plain provider resources rather than through the modules."""
    problems = []
    for b in inv.blocks:
        body, where = b["body"], f"{b['folder']}: {b['type']}.{b['name']}"
        if b["type"] == "google_container_node_pool" and not body.get("autoscaling"):
            if body.get("node_count") is None and body.get("initial_node_count") is None:
                continue
            problems.append(f"{where} has no autoscaling block: GKE never resizes it")
        if b["type"] == "azurerm_kubernetes_cluster_node_pool":
            enabled = body.get("enable_auto_scaling", body.get("auto_scaling_enabled"))
            if may_grow(body.get("min_count"), body.get("max_count")) and enabled is not True:
                problems.append(f"{where} has max_count above min_count but autoscaling off")
    return problems


def node_autoscaling(inv: Inventory) -> list[str]:
    problems = []
    for eks in _modules(inv, "terraform-aws-modules/eks"):
        problems += _eks(inv, eks)
    for gke in _modules(inv, "terraform-google-modules/kubernetes-engine"):
        problems += _gke(gke)
    for aks in _modules(inv, "Azure/aks"):
        problems += _aks(aks)
    return problems + _resources(inv)

