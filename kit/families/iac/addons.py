"""The cluster add-ons the Kubernetes manifests assume, as the platform module installs them:
pinned Helm charts (shared with the kind end-to-end workflow, which installs the same versions)
and the names the manifests use (IngressClass, its controller's namespace, the ClusterIssuer,
the ClusterSecretStore), read from the one Spec so Terraform and k8s/ cannot drift."""
from __future__ import annotations

from kit.model import Spec

# chart -> where it comes from, pinned to an exact version
CHARTS: dict[str, dict[str, str]] = {
    "ingress-nginx": {"repository": "https://kubernetes.github.io/ingress-nginx", "chart": "ingress-nginx",
                      "version": "4.12.1"},
    "cert-manager": {"repository": "https://charts.jetstack.io", "chart": "cert-manager", "version": "v1.17.2"},
    # >= 0.16.2: the manifests' ExternalSecret uses external-secrets.io/v1 (k8s/base/secrets.yaml)
    "external-secrets": {"repository": "https://charts.external-secrets.io", "chart": "external-secrets",
                         "version": "0.17.0"},
}
# The Cluster Autoscaler (EKS only: GKE and AKS scale their node pools themselves). Its release
# must match the cluster's Kubernetes minor ("We recommend using Cluster Autoscaler with the
# Kubernetes control plane (previously referred to as master) version for which it was meant",
# kubernetes/autoscaler cluster-autoscaler/README.md, "Releases"): chart version per minor, with
# the appVersion that chart ships, from the chart repository's index
# (https://kubernetes.github.io/autoscaler/index.yaml).
CLUSTER_AUTOSCALER_REPOSITORY = "https://kubernetes.github.io/autoscaler"
CLUSTER_AUTOSCALER_CHARTS: dict[str, dict[str, str]] = {
    "1.32": {"version": "9.46.6", "app_version": "1.32.0"},
    "1.33": {"version": "9.51.0", "app_version": "1.33.0"},
    "1.34": {"version": "9.53.0", "app_version": "1.34.2"},
    "1.35": {"version": "9.56.0", "app_version": "1.35.0"},
}
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"


def cluster_autoscaler(kubernetes_version: str) -> dict[str, str]:
    """The pinned cluster-autoscaler chart for a Kubernetes minor ({} when kit pins none: the
    options refuse such a version for a task's EKS cluster, so only the default Terraform of a task
    without a cloud section lacks it, and iac.rule.node_autoscaling fails on it)."""
    pinned = CLUSTER_AUTOSCALER_CHARTS.get(kubernetes_version)
    return {"repository": CLUSTER_AUTOSCALER_REPOSITORY, "chart": "cluster-autoscaler", **pinned} if pinned else {}


HELM_PROVIDER = {"exact": "2.17.0", "range": ">= 2.17.0, < 3.0.0"}
CLUSTER_MODULE = {"aws": "eks", "gcp": "gke", "azure": "aks"}
ESO_NAMESPACE = ESO_SERVICE_ACCOUNT = "external-secrets"


def kube(spec: Spec):
    """The kubernetes task section (its defaults when the family is absent)."""
    return spec.options.get("kubernetes")


def app_namespace(spec: Spec, environment: str) -> str:
    k8s = kube(spec)
    return f"{getattr(k8s, 'namespace', spec.name)}-{environment}"


def context(spec: Spec) -> dict:
    k8s, cloud = kube(spec), spec.option("cloud").provider
    version = spec.option("cloud").kubernetes_version
    return {"cluster_autoscaler": cluster_autoscaler(version) if cloud == "aws" else {},
            "cluster_autoscaler_sa": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT, "name": spec.name, "cloud": cloud, "cluster_module": CLUSTER_MODULE[cloud], "charts": CHARTS,
            "ingress_class": getattr(k8s, "ingress_class", "nginx"),
            "ingress_namespace": getattr(k8s, "controller_namespace", "ingress-nginx"),
            "cluster_issuer": getattr(k8s, "cluster_issuer", ""),
            "external_secrets": getattr(k8s, "secrets", "external") == "external",
            "secret_store": getattr(k8s, "secret_store", "platform-secrets")}
