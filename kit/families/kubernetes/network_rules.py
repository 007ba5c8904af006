"""The rules a CNI that enforces NetworkPolicies applies to the built manifests, with cert-manager's
HTTP-01 solver among the pods: judged with netpol.py (see rulebook.py for the whole set)."""
from __future__ import annotations

from kit.core.k8s import _of, name_of, pod_specs
from kit.families.kubernetes.netpol import Endpoint, Port, connection
from kit.model import Spec

# cert-manager's HTTP-01 solver pod, as cert-manager/cert-manager builds it (pkg/issuer/acme/http/pod.go)
CERT_MANAGER_ANNOTATIONS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")
SOLVER_LABELS = {"acme.cert-manager.io/http01-solver": "true"}
SOLVER_POD = {**SOLVER_LABELS, "acme.cert-manager.io/http-domain": "HASH", "acme.cert-manager.io/http-token": "HASH"}
SOLVER_PORT = Port(8089, "http")
# its resources: the controller's defaults (internal/apis/config/controller/v1alpha1/defaults.go:95-98)
SOLVER_RESOURCES = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}


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


DNS = Endpoint("kube-system", {"k8s-app": "kube-dns"})       # CoreDNS / kube-dns, as the clusters label it
DNS_PORTS = (Port(53, "dns", "UDP"), Port(53, "dns-tcp", "TCP"))


def _port(pod: dict, ref) -> Port | None:
    """A port of the pod's containers, by name or number."""
    for c in pod.get("containers", []):
        for entry in c.get("ports", []):
            if ref in (entry.get("name"), entry.get("containerPort"), str(entry.get("containerPort"))):
                return Port(entry["containerPort"], entry.get("name", ""), entry.get("protocol", "TCP"))
    return Port(ref) if isinstance(ref, int) else None


def _settings(objects: list[dict], pod: dict) -> dict[str, str]:
    maps = {name_of(o): o.get("data") or {} for o in _of(objects, "ConfigMap")}
    out: dict[str, str] = {}
    for c in pod.get("containers", []):
        for src in c.get("envFrom", []):
            out.update(maps.get((src.get("configMapRef") or {}).get("name"), {}))
    return out


def _otlp(endpoint: str) -> tuple[Endpoint, Port] | None:
    """http://NAME.NAMESPACE.svc[.cluster.local]:PORT -> the collector's namespace and port."""
    from urllib.parse import urlsplit
    url = urlsplit(endpoint)
    labels = (url.hostname or "").split(".")
    if len(labels) < 3 or labels[2] != "svc":
        return None
    return Endpoint(labels[1]), Port(url.port or (443 if url.scheme == "https" else 80))


def network_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """Every connection the manifests imply is allowed by the namespace's NetworkPolicies: each pod
    resolves names (UDP and TCP 53 to kube-dns), the ingress controller reaches the pods behind
    every Ingress backend, the app's pods (those reading its ConfigMap) reach each in-cluster
    dependency's pods on the Service's target port and each managed one on its port, and the
    OpenTelemetry collector named by OTEL_EXPORTER_OTLP_ENDPOINT; the scraper's namespace reaches
    the `prometheus.io/port` of annotated pods.

    Kubernetes, "Network Policies" (https://kubernetes.io/docs/concepts/services-networking/network-policies/,
    kubernetes/website content/en/docs/concepts/services-networking/network-policies.md): once a
    policy selects a pod for a direction, "that pod will reject any connections that are not
    allowed by any NetworkPolicy", and "For a connection from a source pod to a destination pod
    to be allowed, both the egress policy on the source pod and the ingress policy on the
    destination pod need to allow the connection." A default deny therefore cuts DNS too, and a
    Service's port is not what a policy sees: it sees the pod's port after the Service's
    translation (the targetPort), so that is the port judged here. The collector's pods are
    outside this namespace: only this side's egress is judged, on the URL's port."""
    k, problems = spec.option("kubernetes"), []
    pods = [(where, meta.get("labels", {}), meta.get("annotations", {}), pod)
            for where, meta, pod in pod_specs(objects)]

    def check(src: Endpoint, dst: Endpoint, port: Port, what: str) -> None:
        verdict = connection(objects, src, dst, port)
        if not verdict.allowed:
            problems.append(f"{what} on {port.protocol} {port.number}: {' and '.join(verdict.why)}")

    for where, labels, _ann, _pod in pods:
        for port in DNS_PORTS:
            check(Endpoint(labels=labels), DNS, port, f"{where} cannot resolve names (kube-dns)")
    services = {name_of(s): s for s in _of(objects, "Service")}

    def backends(service: dict):
        sel = service["spec"].get("selector") or {}
        for where, labels, _ann, pod in pods:
            if sel and all(labels.get(key) == value for key, value in sel.items()):
                for entry in service["spec"].get("ports", []):
                    port = _port(pod, entry.get("targetPort", entry.get("port")))
                    if port:
                        yield where, labels, port
    for ing in _of(objects, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                for where, labels, port in backends(services.get(path["backend"]["service"]["name"], {"spec": {}})):
                    check(Endpoint(k.controller_namespace), Endpoint(labels=labels), port,
                          f"the ingress controller ({k.controller_namespace}) cannot reach {where} for Ingress/{name_of(ing)}")
    managed = dict(k.managed)
    for where, labels, notes, pod in pods:
        settings = _settings(objects, pod)
        if any(c.get("envFrom") for c in pod.get("containers", [])):     # the app's pods: they read its settings
            for dep in spec.dependencies:
                if dep.name in managed:
                    check(Endpoint(labels=labels), Endpoint(external=True), Port(dep.port),
                          f"{where} cannot reach the managed {dep.name} ({managed[dep.name]})")
                    continue
                for target, dep_labels, port in backends(services.get(dep.name, {"spec": {}})):
                    check(Endpoint(labels=labels), Endpoint(labels=dep_labels), port, f"{where} cannot reach {target}")
            collector = _otlp(settings.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
            if collector:
                check(Endpoint(labels=labels), collector[0], collector[1],
                      f"{where} cannot export telemetry to {settings['OTEL_EXPORTER_OTLP_ENDPOINT']}")
        if notes.get("prometheus.io/scrape") == "true":
            port = _port(pod, int(notes.get("prometheus.io/port", 0)) or "http")
            if port:
                check(Endpoint(k.monitoring_namespace), Endpoint(labels=labels), port,
                      f"the metrics scraper ({k.monitoring_namespace}) cannot reach {where}")
    return problems
