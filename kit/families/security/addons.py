"""Pods the cluster's add-ons create in the app's own namespaces, which the admission policies
there must admit. cert-manager's HTTP-01 solver: with the ClusterIssuer kit writes (HTTP-01 through
the IngressClass, templates/iac/common/chart-cluster-issuer.yaml.j2), cert-manager creates one solver
Pod per challenge in the Certificate's namespace, i.e. the overlay's namespace, from the image
`quay.io/jetstack/cert-manager-acmesolver:<its own version>` (cert-manager v1.17.2,
internal/apis/config/controller/v1alpha1/defaults.go `defaultACMEHTTP01SolverImage`; the chart passes
`--acme-http01-solver-image` with the chart's appVersion, deploy/charts/cert-manager/templates/
deployment.yaml). A registry allowlist without that exact image denies the solver and no
certificate is ever issued. The Pod below is the one cert-manager builds (pkg/issuer/acme/http/pod.go
`buildDefaultPod` at v1.17.2, with the controller's default resources)."""
from __future__ import annotations

from kit.model import Spec

SOLVER_REPOSITORY = "quay.io/jetstack/cert-manager-acmesolver"


def cert_manager_version() -> str:
    from kit.families.iac.addons import CHARTS
    return CHARTS["cert-manager"]["version"]


def solver_image() -> str:
    return f"{SOLVER_REPOSITORY}:{cert_manager_version()}"


def uses_http01(spec: Spec) -> bool:
    """The Ingress names a ClusterIssuer (kit's is HTTP-01), so solver Pods run in the app's namespaces."""
    return bool(spec.option("kubernetes").cluster_issuer)


def images(spec: Spec) -> list[str]:
    """The exact add-on images the registry rule admits in the app's namespaces."""
    return [solver_image()] if uses_http01(spec) else []


def solver_pod(namespace: str, image: str | None = None) -> dict:
    """cert-manager's HTTP-01 solver Pod, as v1.17.2 builds it (the fields admission reads)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "cm-acme-http-solver-", "name": "cm-acme-http-solver-x", "namespace": namespace,
                         "labels": {"acme.cert-manager.io/http01-solver": "true"},
                         "annotations": {"sidecar.istio.io/inject": "false",
                                         "cluster-autoscaler.kubernetes.io/safe-to-evict": "true"}},
            "spec": {"automountServiceAccountToken": False, "nodeSelector": {"kubernetes.io/os": "linux"},
                     "restartPolicy": "OnFailure", "enableServiceLinks": False,
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{
                         "name": "acmesolver", "image": image or solver_image(), "imagePullPolicy": "IfNotPresent",
                         "args": ["--listen-port=8089", "--domain=example.org", "--token=TOKEN", "--key=KEY"],
                         "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                                       "limits": {"cpu": "100m", "memory": "64Mi"}},
                         "ports": [{"name": "http", "containerPort": 8089}],
                         "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                             "capabilities": {"drop": ["ALL"]}}}]}}
