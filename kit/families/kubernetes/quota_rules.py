"""The rule quota admission enforces on the built manifests (see rulebook.py)."""
from __future__ import annotations

from kit.core.k8s import _of, name_of, pod_specs
from kit.families.kubernetes.cluster_rules import replica_bounds, scaled
from kit.families.kubernetes.network_rules import SOLVER_RESOURCES, issuing_ingresses
from kit.model import Spec
from kit.resources import parse_cpu, parse_memory

QUOTA_KEYS = {"requests.cpu": ("requests", "cpu"), "cpu": ("requests", "cpu"), "limits.cpu": ("limits", "cpu"),
              "requests.memory": ("requests", "memory"), "memory": ("requests", "memory"),
              "limits.memory": ("limits", "memory")}


def _amount(resource: str, value) -> int:
    """Millicores or bytes."""
    return round(parse_cpu(value) * 1000) if resource == "cpu" else parse_memory(value)


def _pod_needs(pod: dict, defaults: dict, counted: set) -> tuple[dict, list[str]]:
    """What one pod counts against a quota, with the API's defaulting (a missing request is the
    limit) and the LimitRange's defaults; and the resources a quota counts that a container
    still lacks."""
    need, missing = dict.fromkeys(QUOTA_KEYS.values(), 0), []
    for c in pod.get("containers", []):
        res = c.get("resources") or {}
        for kind, resource in need:
            value = (res.get(kind) or {}).get(resource)
            if value is None and kind == "requests":
                value = (res.get("limits") or {}).get(resource) or defaults["requests"].get(resource)
            value = value if value is not None else defaults["limits"].get(resource)
            if value is None:
                missing += [f"container {c['name']} has no {kind}.{resource}"] if (kind, resource) in counted else []
            else:
                need[(kind, resource)] += _amount(resource, value)
    return need, missing


def _surge(workload: dict, replicas: int) -> int:
    strategy = workload["spec"].get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    return scaled((strategy.get("rollingUpdate") or {}).get("maxSurge", "25%"), replicas)


def quota_rule(spec: Spec, objects: list[dict]) -> list[str]:
    """Each ResourceQuota admits the namespace's worst case, and every container states what it counts.

    The worst case: every Deployment at its HPA's maxReplicas (else its replicas) plus its rolling
    update's surge (a settings change rolls them all at once), every StatefulSet's replicas, one
    run of each CronJob (its parallelism), and cert-manager's HTTP-01 solver pod per TLS host of
    an Ingress that asks cert-manager for its certificate (the controller's default resources,
    cert-manager/cert-manager internal/apis/config/controller/v1alpha1/defaults.go:95-98).
    Kubernetes, "Resource Quotas" (https://kubernetes.io/docs/concepts/policy/resource-quotas/,
    kubernetes/website content/en/docs/concepts/policy/resource-quotas.md): "If creating or updating
    a resource violates a quota constraint, the request will fail with HTTP status code 403
    FORBIDDEN" and "If quota is enabled in a namespace for compute resources like cpu and memory,
    users must specify requests or limits for those values; otherwise, the quota system may reject
    pod creation. Hint: Use the LimitRanger admission controller to force defaults". Kubernetes,
    "Deployments" (https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#max-surge):
    maxSurge "is calculated from the percentage by rounding up. The default value is 25%." A quota
    that is short refuses the HPA's pods at peak, a rollout's surge pod, or the solver pod, and the
    certificate is not renewed."""
    quotas = [q for q in _of(objects, "ResourceQuota") if not q["spec"].get("scopes") and not q["spec"].get("scopeSelector")]
    if not quotas:
        return []
    defaults = {"requests": {}, "limits": {}}
    for lr in _of(objects, "LimitRange"):
        for item in lr["spec"].get("limits", []):
            if item.get("type") == "Container":
                defaults["limits"].update(item.get("default") or {})
                defaults["requests"].update(item.get("defaultRequest") or item.get("default") or {})
    total, parts, problems = {"pods": 0, "persistentvolumeclaims": len(_of(objects, "PersistentVolumeClaim"))}, [], []
    total.update(dict.fromkeys(QUOTA_KEYS.values(), 0))
    runs = []
    for where, _meta, pod in pod_specs(objects):
        kind, name = where.split("/", 1)
        obj = next(o for o in objects if o.get("kind") == kind and name_of(o) == name)
        if kind == "Deployment":
            high = replica_bounds(objects, obj)[1]
            count, text = high + _surge(obj, high), f"{high}+{_surge(obj, high)}"
        elif kind == "StatefulSet":
            count = text = obj["spec"].get("replicas", 1)
            total["persistentvolumeclaims"] += count * len(obj["spec"].get("volumeClaimTemplates", []))
        else:
            count = text = obj["spec"]["jobTemplate"]["spec"].get("parallelism", 1)
        runs.append((where, count, text, pod))
    hosts = {h for i in issuing_ingresses(objects) for tls in i["spec"].get("tls", []) for h in tls.get("hosts", [])}
    if hosts:
        runs.append(("cert-manager's HTTP-01 solver", len(hosts), len(hosts),
                     {"containers": [{"name": "acmesolver", "resources": SOLVER_RESOURCES}]}))
    counted = {QUOTA_KEYS[key] for q in quotas for key in q["spec"].get("hard", {}) if key in QUOTA_KEYS}
    for where, count, text, pod in runs:
        need, missing = _pod_needs(pod, defaults, counted)
        problems += [f"{where} {m}, and no LimitRange gives a default: quota admission refuses the pod" for m in missing]
        total["pods"] += count
        for key, value in need.items():
            total[key] += count * value
        parts.append(f"{where} {text}")
    for quota in quotas:
        short = []
        for key, hard in quota["spec"].get("hard", {}).items():
            want = QUOTA_KEYS.get(key, key)
            if want not in total:
                continue
            limit = _amount(want[1], hard) if isinstance(want, tuple) else int(hard)
            if total[want] > limit:
                shown = (f"{total[want]}m" if want[1] == "cpu" else f"{total[want] / 2**20:g}Mi") \
                    if isinstance(want, tuple) else total[want]
                short.append(f"{key} {hard} < {shown}")
        if short:
            problems.append(f"ResourceQuota/{name_of(quota)} is below the worst case ({'; '.join(short)}) of "
                            f"{', '.join(parts)}: quota admission would refuse pods at peak")
    return problems
