"""Rules the kubelet, the eviction API and the HPA controller enforce on the built workloads
(see rulebook.py for the whole set): each a function (Spec, one overlay's objects) -> problems,
citing its source in its docstring."""
from __future__ import annotations

import math

from kit.core.k8s import WORKLOADS, _of, matches, name_of, pod_specs
from kit.model import Spec

RESTART_PROBES = ("livenessProbe", "startupProbe")


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
    scales it, or the KEDA ScaledObject's minReplicaCount and maxReplicaCount (the HPA KEDA creates
    from it is not in the manifests), else spec.replicas (default 1) for both."""
    hpa = hpa_of(objects, workload)
    if hpa:
        return hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    so = next((o for o in _of(objects, "ScaledObject")      # KEDA creates the HPA from it (CRD defaults 0 and 100)
               if ((o.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name_of(workload)
               and ((o.get("spec") or {}).get("scaleTargetRef") or {}).get("kind", "Deployment") == workload.get("kind")), None)
    if so:
        return so["spec"].get("minReplicaCount", 0), so["spec"].get("maxReplicaCount", 100)
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


def _cpu_default(objects: list[dict]) -> bool:
    """A LimitRange gives containers a CPU request at admission (defaultRequest, else default)."""
    return any(("cpu" in (item.get("defaultRequest") or {}) or "cpu" in (item.get("default") or {}))
               for lr in _of(objects, "LimitRange") for item in lr["spec"].get("limits", [])
               if item.get("type") == "Container")


def hpa_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """A workload an HPA scales sets no spec.replicas, and when the HPA scales on CPU every one of
    its containers requests CPU.

    Kubernetes, "Horizontal Pod Autoscaling", section "Migrating Deployments and StatefulSets to
    horizontal autoscaling"
    (https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/#migrating-deployments-and-statefulsets-to-horizontal-autoscaling,
    kubernetes/website content/en/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale.md
    @ f46d3425e3acf4464c02a032cbd504bf41eb8661): "When an HPA is enabled, it is recommended that the
    value of spec.replicas of the Deployment and / or StatefulSet be removed from their
    manifest(s). If this isn't done, any time a change to that object is applied, for example via
    kubectl apply -f deployment.yaml, this will instruct Kubernetes to scale the current number of
    Pods to the value of the spec.replicas key." The same page: "if some of the Pod's containers
    do not have the relevant resource request set, CPU utilization for the Pod will not be
    defined and the autoscaler will not take any action for that metric." A LimitRange default
    for CPU in the namespace fills a missing request at admission, so it counts."""
    problems = []
    for hpa in _of(objects, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        target = next((o for o in objects if o.get("kind") == ref.get("kind") and name_of(o) == ref.get("name")), None)
        if target is None:
            continue                         # kubernetes.consistency reports a missing target
        where = f"{ref['kind']}/{ref['name']}"
        if "replicas" in target["spec"]:
            problems.append(f"{where} sets spec.replicas {target['spec']['replicas']} beside "
                            f"HorizontalPodAutoscaler/{name_of(hpa)}: every kubectl apply resets the HPA's count")
        on_cpu = any((m.get("resource") or m.get("containerResource") or {}).get("name") == "cpu"
                     for m in hpa["spec"].get("metrics", []))
        if on_cpu and not _cpu_default(objects):
            for c in target["spec"]["template"]["spec"].get("containers", []):
                if "cpu" not in (c.get("resources", {}).get("requests") or {}):
                    problems.append(f"{where} container {c['name']} has no CPU request: the pod's CPU utilization "
                                    f"is undefined and HorizontalPodAutoscaler/{name_of(hpa)} never scales it")
    return problems


def pdb_selector_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """A PodDisruptionBudget's selector matches the pods of exactly one controller.

    The disruption controller computes the budget over every pod the selector matches, taking the
    expected count from the scale of each pod's controller: "The 'intended' number of pods is
    computed from the .spec.replicas of the workload resource that is managing those pods"
    (https://kubernetes.io/docs/tasks/run-application/configure-pdb/#identify-an-application-to-protect,
    kubernetes/kubernetes pkg/controller/disruption/disruption.go `getExpectedScale` sums the
    controllers' scale). A budget over the stable Deployment and its one-pod canary therefore
    expects stable+1 pods: while the canary is unready (a release being tried, an image that
    cannot be pulled) `maxUnavailable: 1` leaves `disruptionsAllowed` at 0 and every node drain
    blocks. Each controller gets its own budget, or none."""
    problems = []
    for pdb in _of(objects, "PodDisruptionBudget"):
        sel = pdb["spec"].get("selector", {}).get("matchLabels", {})
        targets = [w for w in objects if w.get("kind") in WORKLOADS
                   and matches(sel, w["spec"]["template"]["metadata"].get("labels", {}))]
        if len(targets) > 1:
            names = ", ".join(f"{w['kind']}/{name_of(w)}" for w in targets)
            problems.append(f"PodDisruptionBudget/{name_of(pdb)} selects the pods of {len(targets)} controllers ({names}): "
                            "their scales add up, and one unready pod of any of them blocks every drain")
    return problems


def keda_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """With scaling.mechanism keda, the overlay `kubectl apply -k` applies carries exactly one
    ScaledObject, in the overlay's namespace, scaling the app's Deployment, and no
    HorizontalPodAutoscaler.

    CI's deploy applies only the overlay, so a ScaledObject outside it is never applied and the
    Deployment runs one pod. KEDA, "Admission Webhooks", "Prevention Rules"
    (https://keda.sh/docs/latest/concepts/admission-webhooks/): the webhook blocks a ScaledObject
    whose "scaled workload (scaledobject.spec.scaleTargetRef) is already autoscaled by another other
    sources (other ScaledObject or HPA)", so a second ScaledObject or a plain HPA on the Deployment
    is refused; KEDA creates the HPA itself."""
    scaling = spec.options.get("scaling")
    if scaling is None or scaling.mechanism != "keda":
        return []
    from kit.families.scaling.render import overlay_scaledobject
    if not overlay_scaledobject(spec):
        return []                            # no request counter or mix: scaling.keda fails saying so
    namespaces = {(o.get("metadata") or {}).get("name") for o in _of(objects, "Namespace")}
    deployment = next((o for o in _of(objects, "Deployment") if name_of(o) == spec.name), None)
    namespace = ((deployment or {}).get("metadata") or {}).get("namespace") or next(iter(namespaces), None)
    problems = [f"HorizontalPodAutoscaler/{name_of(h)}: with KEDA no other HPA may scale the Deployment "
                "(KEDA's admission webhook refuses it)" for h in _of(objects, "HorizontalPodAutoscaler")]
    scaled = [so for so in _of(objects, "ScaledObject")
              if ((so.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == spec.name
              and ((so.get("spec") or {}).get("scaleTargetRef") or {}).get("kind", "Deployment") == "Deployment"]
    if len(scaled) != 1:
        problems.append(f"{len(scaled)} ScaledObject(s) scale Deployment/{spec.name} in this overlay, expected "
                        "exactly one: `kubectl apply -k` of the overlay is all CI's deploy applies")
    for so in scaled:
        ns = (so.get("metadata") or {}).get("namespace")
        if ns != namespace:
            problems.append(f"ScaledObject/{name_of(so)} is in namespace {ns}, the Deployment in {namespace}")
    return problems
