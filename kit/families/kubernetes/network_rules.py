"""The rules a CNI that enforces NetworkPolicies applies to the built manifests, with cert-manager's
HTTP-01 solver among the pods: judged with netpol.py. Part of cluster_rules.RULES."""
from __future__ import annotations

from kit.core.k8s import _of, name_of
from kit.families.kubernetes.netpol import Endpoint, Port, connection
from kit.model import Spec

# cert-manager's HTTP-01 solver pod, as cert-manager/cert-manager builds it (pkg/issuer/acme/http/pod.go)
CERT_MANAGER_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")
SOLVER_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
SOLVER_POD = {**SOLVER_LABELS, "acme.cert-manager.io/http-domain": "HASH", "acme.cert-manager.io/http-token": "HASH"}
SOLVER_PORT = Port(8089, "http")


def issuing_ingresses(objects: list[dict]) -> list[dict]:
    """The Ingresses that ask cert-manager (ingress-shim) for their TLS certificate."""
    return [i for i in _of(objects, "Ingress")
            if set(CERT_MANAGER_ANNOTATIONS) & set(i["metadata"].get("annotations") or {})]


def acme_solver_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """When an Ingress asks cert-manager for its certificate, NetworkPolicies admit the HTTP-01
    solver pod from the ingress controller's namespace on TCP 8089.

    cert-manager/cert-manager @ 2d0d7f7f74241a9cbf79f0e2a7bb247238ee09fd: the solver pod is created
    in the Challenge's namespace (pkg/issuer/acme/http/pod.go:207-209, `GenerateName:
    "cm-acme-http-solver-", Namespace: ch.Namespace`), which for an annotated Ingress is the app's;
    it carries `acme.cert-manager.io/http01-solver: "true"` (pkg/apis/acme/v1/types.go:58-60,
    SolverIdentificationLabelKey) and listens on 8089, port name http
    (pkg/issuer/acme/http/http.go:48-49 `acmeSolverListenPort = 8089`; pod.go:240-260).
    cert-manager docs, "HTTP01" (https://cert-manager.io/docs/configuration/acme/http01/,
    cert-manager/website content/docs/configuration/acme/http01/README.md), "Network Policy
    Considerations": "If your cluster enforces default-deny NetworkPolicy rules, make sure that the
    temporary resources created for HTTP01 challenges can still receive traffic. [...] allow your
    chosen Ingress controller or Gateway implementation to reach the temporary acmesolver Pod".
    Without it the challenge times out and the certificate is never issued nor renewed. Only
    this namespace's policies are judged (the controller's own egress is its operator's)."""
    issuing = issuing_ingresses(objects)
    if not issuing:
        return []
    controller = spec.option("kubernetes").controller_namespace
    verdict = connection(objects, Endpoint(namespace=controller), Endpoint(labels=SOLVER_POD), SOLVER_PORT)
    if verdict.allowed:
        return []
    names = ", ".join(f"Ingress/{name_of(i)}" for i in issuing)
    return [f"{names} asks cert-manager for a certificate, but no NetworkPolicy admits its HTTP-01 solver pod "
            f"(acme.cert-manager.io/http01-solver=true, TCP 8089) from the ingress controller's namespace "
            f"{controller}: the challenge would time out and the certificate never be issued"]
