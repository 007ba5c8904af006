"""Platform prerequisites, across families: every cluster add-on the k8s/ manifests depend on is
installed by the Terraform of the chosen cloud, or listed in one place, k8s/README.md's
"Prerequisites in the cluster". Nothing generated may depend on an undeclared one, and what
Terraform installs must carry the names the manifests use.

What each manifest needs, and what the other system does without it:
- a NetworkPolicy needs a CNI that enforces it. The EKS VPC CNI does not by default: it needs
  `enableNetworkPolicy: "true"` (https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html;
  aws/amazon-vpc-cni-k8s charts/aws-vpc-cni/values.yaml: `enableNetworkPolicy: "false"`). GKE enforces
  it with Dataplane V2, `datapath_provider = "ADVANCED_DATAPATH"`
  (https://cloud.google.com/kubernetes-engine/docs/concepts/dataplane-v2) or the network policy
  add-on; AKS with `network_policy` = azure, calico or cilium (hashicorp/terraform-provider-azurerm
  website/docs/r/kubernetes_cluster.html.markdown);
- a resource-metric HorizontalPodAutoscaler needs the metrics API, "usually provided by an add-on
  named Metrics Server, which needs to be launched separately" (kubernetes/website
  content/en/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale.md); EKS does not deploy it
  (https://docs.aws.amazon.com/eks/latest/userguide/metrics-server.html, community add-on
  `metrics-server`); GKE's Horizontal Pod Autoscaling add-on, on by default, provides it
  (terraform-provider-google container_cluster: "It ensures that a Heapster pod is running");
- an ExternalSecret needs the External Secrets Operator, a cloud identity for it, and the
  ClusterSecretStore it names (external-secrets.io);
- an Ingress needs a controller serving its IngressClass, in a namespace the NetworkPolicies admit;
- the `cert-manager.io/cluster-issuer` annotation needs cert-manager and that ClusterIssuer;
- ServiceMonitor and PrometheusRule need the prometheus-operator CRDs (monitoring.coreos.com)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from kit.families.iac.terraform import Inventory, inventory, unquote

README = "k8s/README.md"
CHARTS_DIR = "terraform/modules/platform/charts/"


@dataclass
class Need:
    key: str                  # networkpolicy, metrics-server, external-secrets, ingress, cert-manager, prometheus-operator
    what: str                 # said in the record
    names: dict = field(default_factory=dict)    # the names the manifests use
    where: str = ""           # the manifest that needs it


def k8s_objects(files: dict[str, str]) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(p for p in files if p.startswith("k8s/") and p.endswith((".yaml", ".yml"))):
        try:
            docs = list(yaml.safe_load_all(files[path]))
        except yaml.YAMLError:
            continue
        out += [(path, d) for d in docs if isinstance(d, dict) and d.get("kind") and d.get("kind") != "Kustomization"]
    return out


def needs(files: dict[str, str]) -> list[Need]:
    """The add-ons the manifests depend on, with the names they use."""
    found: dict[str, Need] = {}
    admitted = set()
    for path, obj in k8s_objects(files):
        kind, meta, spec = obj["kind"], obj.get("metadata") or {}, obj.get("spec") or {}
        if kind == "NetworkPolicy":
            found.setdefault("networkpolicy", Need("networkpolicy", "a CNI enforcing NetworkPolicy", where=path))
            for rule in spec.get("ingress") or []:
                for peer in rule.get("from") or []:
                    ns = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                    admitted.update([ns] if ns else [])
        elif kind == "HorizontalPodAutoscaler" and any(m.get("type") == "Resource" for m in spec.get("metrics") or []):
            found.setdefault("metrics-server", Need("metrics-server", "metrics-server (the HPA's metrics API)", where=path))
        elif kind == "ExternalSecret":
            ref = spec.get("secretStoreRef") or {}
            found["external-secrets"] = Need("external-secrets", "the External Secrets Operator and its store",
                                             {"store": ref.get("name", ""), "store_kind": ref.get("kind", "SecretStore")}, path)
        elif kind == "Ingress":
            need = found.setdefault("ingress", Need("ingress", "an ingress controller", {"class": ""}, path))
            need.names["class"] = spec.get("ingressClassName") or need.names["class"]
            issuer = (meta.get("annotations") or {}).get("cert-manager.io/cluster-issuer")
            if issuer:
                found["cert-manager"] = Need("cert-manager", "cert-manager and its ClusterIssuer", {"issuer": issuer}, path)
        elif str(obj.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
            found.setdefault("prometheus-operator", Need("prometheus-operator", "the prometheus-operator CRDs", where=path))
    if "ingress" in found:
        found["ingress"].names["admitted"] = sorted(admitted)
    return list(found.values())


def _releases(inv: Inventory) -> dict[str, dict]:
    """helm_release by chart name: its namespace and its `set` values."""
    out = {}
    for b in inv.blocks:
        if b["type"] == "helm_release":
            chart = unquote(b["body"].get("chart", ""))
            sets = {unquote(s.get("name", "")).replace("\\\\", "\\"): unquote(s.get("value", ""))
                    for s in b["body"].get("set", [])}
            out[chart.rsplit("/", 1)[-1]] = {"namespace": unquote(b["body"].get("namespace", "")), "set": sets,
                                             "name": b["name"]}
    return out


def _chart_objects(files: dict[str, str]) -> set[tuple[str, str]]:
    """(kind, name) of the cluster objects the platform's local charts create."""
    found = set()
    for path, text in files.items():
        if path.startswith(CHARTS_DIR) and "/templates/" in path:
            found.update(re.findall(r"(?m)^kind:\s*(\w+)\s*\nmetadata:\s*\n\s+name:\s*([\w.-]+)\s*$", text))
    return found


def _module_input(inv: Inventory, module: str, key: str):
    for b in inv.blocks:
        if b["kind"] == "module" and b["name"] == module and key in b["body"]:
            return b["body"][key]
    return None


def _addon(inv: Inventory, name: str):
    addons = _module_input(inv, "eks", "cluster_addons") or {}
    if isinstance(addons, dict) and name in addons:
        return addons[name] or {}
    for b in inv.blocks:
        if b["type"] == "aws_eks_addon" and unquote(b["body"].get("addon_name", "")) == name:
            return b["body"]
    return None


def installed(need: Need, cloud: str, inv: Inventory, files: dict[str, str]) -> tuple[bool, list[str]]:
    """(Terraform installs it, contradictions between what it installs and what the manifests name)."""
    releases, objects = _releases(inv), _chart_objects(files)
    if need.key == "networkpolicy":
        if cloud == "aws":
            cni = _addon(inv, "vpc-cni")
            return bool(cni and re.search(r"enableNetworkPolicy\s*=\s*\\?\"?true", str(cni.get("configuration_values")))), []
        if cloud == "gcp":
            dp = unquote(_module_input(inv, "gke", "datapath_provider") or "")
            return dp == "ADVANCED_DATAPATH" or _module_input(inv, "gke", "network_policy") is True, []
        return unquote(_module_input(inv, "aks", "network_policy") or "") in ("azure", "calico", "cilium"), []
    if need.key == "metrics-server":
        if "metrics-server" in releases:
            return True, []
        if cloud == "aws":
            return _addon(inv, "metrics-server") is not None, []
        if cloud == "gcp":
            return _module_input(inv, "gke", "horizontal_pod_autoscaling") is True, []
        return False, []
    if need.key == "external-secrets":
        rel = releases.get("external-secrets")
        if not rel:
            return False, []
        problems = []
        if (need.names["store_kind"], need.names["store"]) not in objects:
            problems.append(f"the operator is installed but no {need.names['store_kind']} "
                            f"{need.names['store']!r} (the ExternalSecret's store) is created with it")
        sa = f"{rel['namespace']}:{rel['set'].get('serviceAccount.name', 'external-secrets')}"
        identity = {"aws": sa, "gcp": "[{}/{}]".format(*sa.split(":")), "azure": f"system:serviceaccount:{sa}"}[cloud]
        if identity not in str([b["body"] for b in inv.blocks]):
            problems.append(f"the operator's service account {sa} has no cloud identity ({identity} is bound nowhere)")
        return True, problems
    if need.key == "ingress":
        rel = releases.get("ingress-nginx")
        if not rel:
            return False, []
        problems = []
        served = rel["set"].get("controller.ingressClassResource.name", "nginx")
        if need.names["class"] and served != need.names["class"]:
            problems.append(f"the controller serves IngressClass {served!r}, the Ingress names {need.names['class']!r}")
        admitted = need.names.get("admitted") or []
        if admitted and rel["namespace"] not in admitted:
            problems.append(f"the controller runs in {rel['namespace']!r}, which no NetworkPolicy admits "
                            f"(they admit {', '.join(admitted)})")
        return True, problems
    if need.key == "cert-manager":
        if "cert-manager" not in releases:
            return False, []
        ok = ("ClusterIssuer", need.names["issuer"]) in objects
        return True, [] if ok else [f"cert-manager is installed but no ClusterIssuer {need.names['issuer']!r} is created"]
    if need.key == "prometheus-operator":
        return "kube-prometheus-stack" in releases or "prometheus-operator" in releases, []
    return False, []


DECLARED = {
    "networkpolicy": lambda text, n: "NetworkPolicy" in text and bool(re.search(r"CNI|enforc", text)),
    "metrics-server": lambda text, n: "metrics-server" in text,
    "external-secrets": lambda text, n: "External Secrets Operator" in text and n["store"] in text,
    "ingress": lambda text, n: "ingress controller" in text.lower() and f"`{n['class']}`" in text,
    "cert-manager": lambda text, n: "cert-manager" in text and n["issuer"] in text,
    "prometheus-operator": lambda text, n: "prometheus-operator" in text or "monitoring.coreos.com" in text,
}


def declared_prerequisites(files: dict[str, str]) -> str:
    """The 'Prerequisites in the cluster' section of k8s/README.md ('' when there is none)."""
    text = files.get(README, "")
    match = re.search(r"(?ms)^## Prerequisites[^\n]*\n(.*?)(?=^## |\Z)", text)
    return match.group(1) if match else ""


def check(files: dict[str, str], cloud: str) -> tuple[list[str], dict]:
    inv, listed = inventory(files), declared_prerequisites(files)
    problems, by_terraform, by_readme = [], [], []
    for need in needs(files):
        ok, contradictions = installed(need, cloud, inv, files)
        problems += [f"{need.what} ({need.where}): {c}" for c in contradictions]
        if ok:
            by_terraform.append(need.key)
        elif DECLARED[need.key](listed, need.names):
            by_readme.append(need.key)
        else:
            names = ", ".join(f"{k} {v}" for k, v in need.names.items() if v and k != "admitted")
            problems.append(f"{need.where} needs {need.what}{f' ({names})' if names else ''}: the {cloud} Terraform "
                            f"does not install it and {README} does not list it as a prerequisite")
    return problems, {"terraform": by_terraform, "readme": by_readme}
