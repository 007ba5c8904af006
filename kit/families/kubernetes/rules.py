"""Cross-object rules for built Kubernetes manifests: what no schema checks. Each rule returns
plain sentences; tests/unit/test_k8s.py breaks every one on purpose."""
from __future__ import annotations

import re

from kit.core.k8s import WORKLOADS, _of, container_port, matches, name_of, pod_specs
from kit.families.container.dockerfile import dockerfile_facts
from kit.families.kubernetes.network_rules import SOLVER_POD
from kit.model import Spec


def selector_rules(objects: list[dict]) -> list[str]:
    pods = [(where, meta.get("labels", {})) for where, meta, _ in pod_specs(objects)]
    problems = []
    for obj in objects:
        kind, where = obj.get("kind"), f"{obj.get('kind')}/{name_of(obj)}"
        if kind in WORKLOADS and not matches(obj["spec"]["selector"].get("matchLabels", {}),
                                              obj["spec"]["template"]["metadata"].get("labels", {})):
            problems.append(f"{where}: its selector does not match its own pod labels")
        sel = {}
        if kind == "Service" and obj["spec"].get("type") != "ExternalName":
            sel = obj["spec"].get("selector", {}) or {"(none)": "(none)"}
        elif kind == "PodDisruptionBudget":
            sel = obj["spec"].get("selector", {}).get("matchLabels", {}) or {"(none)": "(none)"}
        elif kind == "NetworkPolicy":
            sel = obj["spec"].get("podSelector", {}).get("matchLabels", {})
        if sel and matches(sel, SOLVER_POD):
            continue          # cert-manager's solver pod: created at issuance time, not by these manifests
        if sel and not any(matches(sel, labels) for _, labels in pods):
            problems.append(f"{where}: selects {sel}, which no pod carries")
        if kind == "HorizontalPodAutoscaler":
            ref = obj["spec"]["scaleTargetRef"]
            if not any(o.get("kind") == ref.get("kind") and name_of(o) == ref.get("name") for o in objects):
                problems.append(f"{where}: scales {ref.get('kind')}/{ref.get('name')}, which does not exist")
    return problems


def _probe_port(probe: dict):
    handler = probe.get("httpGet") or probe.get("tcpSocket") or {}
    return handler.get("port")


def port_rules(spec: Spec, objects: list[dict], dockerfile: str, probe_source: str = "") -> list[str]:
    problems = []
    facts = dockerfile_facts(dockerfile)
    app = next((o for o in _of(objects, "Deployment") if name_of(o) == spec.name), None)
    if app is None:
        return [f"no Deployment named {spec.name}"]
    container = next((c for c in app["spec"]["template"]["spec"]["containers"] if c["name"] == spec.name), None)
    if container is None:
        return [f"Deployment/{spec.name} has no container named {spec.name}"]
    if not container.get("image", "").startswith(spec.image + ":") and \
            not container.get("image", "").startswith(spec.image + "@"):
        problems.append(f"the container image {container.get('image')!r} is not {spec.image} (service.image)")
    http = container_port(container, "http")
    if http not in facts.expose:
        problems.append(f"containerPort http={http} is not the Dockerfile's EXPOSE {list(facts.expose)}")
    health = " ".join(facts.healthcheck)
    if probe_source:
        health += " " + " ".join(re.findall(r'health(?:URL|Addr)\s*=\s*("[^"]*")', probe_source))
    chosen = spec.option("kubernetes").liveness
    restart = chosen or ("tcp" if spec.dependencies else "")   # what liveness and startup check
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if not probe:
            problems.append(f"the container has no {kind}")
            continue
        if container_port(container, _probe_port(probe)) != http:
            problems.append(f"{kind} probes port {_probe_port(probe)!r}, not the served port {http}")
        path = (probe.get("httpGet") or {}).get("path")
        own = restart if kind != "readinessProbe" else ""
        if own:       # the task chose the liveness check, or tcp as the service has dependencies
            if path != (None if own == "tcp" else own):
                problems.append(f"{kind} probes {path!r}, not " + (f"kubernetes.liveness {own!r}" if chosen else
                                "tcp (the health path reports the dependencies)"))
            continue
        if spec.health_path and path != spec.health_path:
            problems.append(f"{kind} probes {path!r}, not the health path {spec.health_path}")
        if path and path not in health:
            problems.append(f"{kind} path {path} differs from the Dockerfile HEALTHCHECK ({health[:80]})")
    services = {name_of(s): s for s in _of(objects, "Service")}
    svc = services.get(spec.name)
    if svc is None:
        problems.append(f"no Service named {spec.name}")
    else:
        for entry in svc["spec"].get("ports", []):
            if container_port(container, entry.get("targetPort")) is None:
                problems.append(f"Service/{spec.name} port {entry.get('name')} targets "
                                f"{entry.get('targetPort')!r}, which the container does not expose")
    for ing in _of(objects, "Ingress"):
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                target = services.get(backend["name"])
                port = backend.get("port", {})
                if target is None:
                    problems.append(f"Ingress/{name_of(ing)} routes to Service/{backend['name']}, which does not exist")
                elif not any(port.get("name") == p.get("name") or port.get("number") == p.get("port")
                             for p in target["spec"].get("ports", [])):
                    problems.append(f"Ingress/{name_of(ing)} routes to port {port} that Service/{backend['name']} lacks")
    return problems


def reference_rules(objects: list[dict]) -> list[str]:
    configmaps = {name_of(o) for o in _of(objects, "ConfigMap")}
    secrets = {name_of(o) for o in _of(objects, "Secret")}
    secrets |= {o["spec"].get("target", {}).get("name") or name_of(o) for o in _of(objects, "ExternalSecret")}
    # cert-manager writes each Certificate's spec.secretName (cert-manager.io/docs/usage/certificate/)
    secrets |= {o["spec"].get("secretName") for o in _of(objects, "Certificate")
                if str(o.get("apiVersion", "")).startswith("cert-manager.io/")}
    accounts = {name_of(o) for o in _of(objects, "ServiceAccount")} | {"default"}
    problems = []
    for where, _meta, pod in pod_specs(objects):
        if pod.get("serviceAccountName", "default") not in accounts:
            problems.append(f"{where}: service account {pod['serviceAccountName']} does not exist")
        for vol in pod.get("volumes", []):
            name = (vol.get("secret") or {}).get("secretName")
            if name and name not in secrets:
                problems.append(f"{where}: mounts Secret {name}, which nothing creates")
        for container in pod.get("containers", []):
            for src in container.get("envFrom", []):
                name = (src.get("configMapRef") or {}).get("name")
                if name and name not in configmaps:
                    problems.append(f"{where}: reads ConfigMap {name}, which does not exist")
    return problems


def restricted_rules(objects: list[dict]) -> list[str]:
    """The restricted Pod Security Standard, field by field."""
    problems = []
    for where, _meta, pod in pod_specs(objects):
        psc = pod.get("securityContext", {})
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if pod.get(flag):
                problems.append(f"{where}: {flag} is set")
        if any("hostPath" in v for v in pod.get("volumes", [])):
            problems.append(f"{where}: mounts a hostPath volume")
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            csc, who = c.get("securityContext", {}), f"{where} container {c['name']}"
            if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                problems.append(f"{who}: runAsNonRoot is not true")
            uid = csc.get("runAsUser", psc.get("runAsUser"))
            if not isinstance(uid, int) or uid == 0:
                problems.append(f"{who}: runAsUser must be a numeric non-root id, got {uid!r}")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{who}: allowPrivilegeEscalation is not false")
            if csc.get("privileged"):
                problems.append(f"{who}: runs privileged")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{who}: the root filesystem is writable")
            if "ALL" not in (csc.get("capabilities") or {}).get("drop", []):
                problems.append(f"{who}: does not drop ALL capabilities")
            if set((csc.get("capabilities") or {}).get("add", [])) - {"NET_BIND_SERVICE"}:
                problems.append(f"{who}: adds capabilities beyond NET_BIND_SERVICE")
            seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{who}: seccomp profile is {seccomp!r}, not RuntimeDefault")
    return problems


def label_rules(objects: list[dict]) -> list[str]:
    return [f"{o.get('kind')}/{name_of(o)}: lacks the app.kubernetes.io/name label"
            for o in objects if "app.kubernetes.io/name" not in (o.get("metadata", {}).get("labels") or {})]


def consistency_problems(spec: Spec, objects: list[dict], dockerfile: str, probe_source: str = "") -> list[str]:
    """probe_source: the source of the image's static health probe where it is not in the Dockerfile
    (a Go image's docker/kit-init/main.go, whose URL is compiled in)."""
    return (selector_rules(objects) + port_rules(spec, objects, dockerfile, probe_source) + reference_rules(objects)
            + restricted_rules(objects) + label_rules(objects))


def key_settings(obj: dict) -> str:
    """One line of what matters about an object, for the notebook's table."""
    kind, spec = obj.get("kind"), obj.get("spec", {})
    if kind in WORKLOADS:
        c = spec["template"]["spec"]["containers"][0]
        lim = c.get("resources", {}).get("limits", {})
        return f"replicas {spec.get('replicas', 'from the HPA')}, image {c.get('image')}, limits {lim.get('cpu')}/{lim.get('memory')}"
    if kind == "HorizontalPodAutoscaler":
        return f"{spec['minReplicas']}-{spec['maxReplicas']} replicas"
    if kind == "PodDisruptionBudget":
        return " ".join(f"{key} {spec[key]}" for key in ("minAvailable", "maxUnavailable") if key in spec)
    if kind == "Ingress":
        return ", ".join(r.get("host", "") for r in spec.get("rules", []))
    if kind == "Service":
        return spec.get("externalName") or ", ".join(f"{p.get('port')}->{p.get('targetPort')}" for p in spec.get("ports", []))
    if kind == "NetworkPolicy":
        return ", ".join(spec.get("policyTypes", []))
    if kind == "CronJob":
        return spec.get("schedule", "")
    if kind == "ResourceQuota":
        return ", ".join(f"{k}={v}" for k, v in list(spec.get("hard", {}).items())[:3])
    return re.sub(r"\s+", " ", str(obj.get("data", ""))[:60]) if kind == "ConfigMap" else ""
