"""Rules other systems enforce on the built manifests: what the kubelet, the eviction API, the
HPA controller, cert-manager, the CNI and quota admission will do with them, which no schema and
no policy scanner checks. Each rule is a function (Spec, one overlay's objects) -> problems, with
the system's documentation or source cited in its docstring; checks.py reports each as its own
evidence record, `kubernetes.rule.<id>`, and tests/unit/test_k8s.py breaks each on purpose."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from kit.core.k8s import WORKLOADS, _of, matches, name_of, pod_specs
from kit.model import Spec

RESTART_PROBES = ("livenessProbe", "startupProbe")


@dataclass(frozen=True)
class Rule:
    id: str                                            # the evidence id is kubernetes.rule.<id>
    title: str
    source: str                                        # the other system's documentation
    check: Callable[[Spec, list[dict]], list[str]]


def liveness_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """A probe that restarts the container must not check the dependencies.

    The kubelet restarts a container whose liveness probe fails `failureThreshold` times, and
    kills one whose startup probe never passes; readiness only takes the pod out of the
    Service's endpoints. Kubernetes, "Configure Liveness, Readiness and Startup Probes"
    (https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/,
    kubernetes/website content/en/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes.md):
    "Liveness probes must be configured carefully to ensure that they truly indicate
    unrecoverable application failure, for example a deadlock." and "Incorrect implementation
    of liveness probes can lead to cascading failures."; readiness is the probe for an app that
    may "depend on external services after startup. In such cases, you don't want to kill the
    application, but you don't want to send it requests either."; and for startup, "set up a
    startup probe with the same command, HTTP or TCP check" as liveness.

    kit's health path reports the dependencies (the compose run proves it by stopping each one),
    so when the service has dependencies, a liveness or startup probe on the readiness probe's
    HTTP path turns a Postgres outage into a restart of every pod at once, and a node drain
    during it into a crash loop. Allowed only when the task declares that path dependency-free
    (`kubernetes.liveness: PATH`)."""
    if not spec.dependencies:
        return []
    declared = spec.option("kubernetes").liveness
    deps = ", ".join(d.name for d in spec.dependencies)
    problems = []
    for where, _meta, pod in pod_specs(objects):
        for c in pod.get("containers", []):
            ready = ((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
            for kind in RESTART_PROBES:
                path = ((c.get(kind) or {}).get("httpGet") or {}).get("path")
                if ready and path == ready and path != declared:
                    problems.append(f"{where} container {c['name']}: {kind} probes {path}, the readiness path, "
                                    f"which checks the dependencies ({deps}): their outage would restart every pod; "
                                    "probe tcp, or declare a dependency-free path in kubernetes.liveness")
    return problems


def hpa_of(objects: list[dict], workload: dict) -> dict | None:
    """The HorizontalPodAutoscaler that scales this workload, if any."""
    return next((h for h in _of(objects, "HorizontalPodAutoscaler")
                 if h["spec"]["scaleTargetRef"].get("kind") == workload.get("kind")
                 and h["spec"]["scaleTargetRef"].get("name") == name_of(workload)), None)


def replica_bounds(objects: list[dict], workload: dict) -> tuple[int, int]:
    """(lowest, highest) replica count: the HPA's minReplicas (default 1) and maxReplicas when one
    scales it, else spec.replicas (default 1) for both."""
    hpa = hpa_of(objects, workload)
    if hpa:
        return hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    return (workload["spec"].get("replicas", 1),) * 2


def scaled(value, total: int) -> int:
    """An int-or-percent budget value as a pod count; percentages round up, as Kubernetes does."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * total / 100)
    return int(value)


def pdb_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """No PodDisruptionBudget may forbid every eviction at the lowest replica count of what it selects.

    Kubernetes, "Specifying a Disruption Budget for your Application"
    (https://kubernetes.io/docs/tasks/run-application/configure-pdb/, kubernetes/website
    content/en/docs/tasks/run-application/configure-pdb.md): "If you set `maxUnavailable` to 0% or 0,
    or you set `minAvailable` to 100% or the number of replicas, you are requiring zero voluntary
    evictions. [...] If you try to drain a Node where an unevictable Pod is running, the drain
    never completes."; percentages: "Kubernetes rounds up to the nearest integer"; and "The use
    of `maxUnavailable` is recommended as it automatically responds to changes in the number of
    replicas". For a single-instance stateful application the page's first solution is "Do not
    use a PDB and tolerate occasional downtime", which is what kit does for in-cluster
    dependencies. The lowest count of an HPA's target is its minReplicas: the HPA may scale down
    to it, and a drain then has to evict from there."""
    problems = []
    for pdb in _of(objects, "PodDisruptionBudget"):
        sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
        targets = [w for w in objects if w.get("kind") in WORKLOADS
                   and matches(sel, w["spec"]["template"]["metadata"].get("labels", {}))]
        lowest = sum(replica_bounds(objects, w)[0] for w in targets)
        if not targets:
            continue                         # kubernetes.consistency reports a selector matching no pod
        budget = pdb["spec"]
        if "maxUnavailable" in budget:
            allowed = min(scaled(budget["maxUnavailable"], lowest), lowest)
            setting = f"maxUnavailable {budget['maxUnavailable']}"
        else:
            allowed = lowest - scaled(budget.get("minAvailable", 1), lowest)
            setting = f"minAvailable {budget.get('minAvailable', 1)}"
        if allowed < 1:
            names = ", ".join(f"{w['kind']}/{name_of(w)}" for w in targets)
            problems.append(f"PodDisruptionBudget/{name_of(pdb)}: {setting} with {lowest} replica(s) at the lowest "
                            f"({names}) allows no eviction: node drains and upgrades would never complete")
    return problems


RULES = (
    Rule("liveness", "probes that restart the container (liveness, startup) do not check the dependencies",
         "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/",
         liveness_rule),
    Rule("pdb", "no PodDisruptionBudget forbids every eviction at the lowest replica count of what it selects",
         "https://kubernetes.io/docs/tasks/run-application/configure-pdb/", pdb_rule),
)
