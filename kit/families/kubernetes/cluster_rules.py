"""Rules other systems enforce on the built manifests: what the kubelet, the eviction API, the
HPA controller, cert-manager, the CNI and quota admission will do with them, which no schema and
no policy scanner checks. Each rule is a function (Spec, one overlay's objects) -> problems, with
the system's documentation or source cited in its docstring; checks.py reports each as its own
evidence record, `kubernetes.rule.<id>`, and tests/unit/test_k8s.py breaks each on purpose."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kit.core.k8s import pod_specs
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


RULES = (
    Rule("liveness", "probes that restart the container (liveness, startup) do not check the dependencies",
         "https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/",
         liveness_rule),
)
