"""What generation takes from the task's `scaling:` section, purely: the request-rate metric and the
per-pod target of the `hpa-rps` and `keda` mechanisms, and, with `scaling.measured` committed in the
task, the prod figures derived from it (replica bounds, requests, HPA target, node pool). The task's
own numbers win over the derived ones (the sizing record warns with both figures); the same run's
measurement is never read here: generation runs before verification (docs/families/scaling.md)."""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from kit.families.scaling import sizing
from kit.families.scaling.options import Scaling
from kit.families.scaling.options import parse as parse_scaling

if TYPE_CHECKING:
    from kit.model import Service
    from kit.task import TaskDoc

RATE_WINDOW = "2m"      # the rate() window of the adapter rule and the KEDA query (4 scrapes at 30 s)


def rps_metric(counter: str) -> str:
    """The custom metric's name in the API: the counter without `_total`, plus `_per_second`
    (prometheus-adapter docs/config.md, "Naming": `matches: "^(.*)_total$"`, `as: "${1}_per_second"`)."""
    return (counter[:-len("_total")] if counter.endswith("_total") else counter) + "_per_second"


def target_rps(scaling: Scaling) -> float | None:
    """Requests per second per pod the hpa-rps / keda autoscaler holds: the task's
    `target_rps_per_pod`, else W = C / (1 + h) from `scaling.measured`, else None."""
    if scaling.target_rps_per_pod is not None:
        return scaling.target_rps_per_pod
    if scaling.measured is not None:
        return round(scaling.measured.capacity_rps / (1 + scaling.headroom), 1)
    return None


def quantity(rps: float) -> str:
    """A Kubernetes quantity for a rate: millis, so 61.5 rps is 61500m (never rounded to a whole pod's worth)."""
    return f"{round(rps * 1000)}m"


def derived(scaling: Scaling, cpu_limit: float, max_replicas: int | None = None) -> sizing.Sizing | None:
    """The sizing of `scaling.measured` (None without it). CPU at the working point is taken as
    CPU at capacity x W / C (CPU follows the rate below capacity: a stated assumption; the load
    test's record interpolates the measured steps instead)."""
    m = scaling.measured
    if m is None:
        return None
    h = scaling.headroom
    capacity = sizing.Capacity(m.capacity_rps, m.cpu_at_capacity, m.cpu_at_capacity / (1 + h), m.memory_mib,
                               cpu_limit, m.time_to_healthy_s)
    return sizing.size(capacity, h, scaling.baseline_rps, scaling.peak_rps, max_replicas)


def prod_environment(doc: TaskDoc, service: Service, env, stated: dict):
    """The prod Environment of the kubernetes section with the derived figures where the task
    states none (`stated`: the task's kubernetes.environments.prod mapping). Returns it unchanged
    without `scaling.measured`."""
    scaling = parse_scaling(doc, service)
    s = derived(scaling, env.cpu)
    if s is None:
        return env
    f = s.figures
    low, high = env.min_replicas, env.max_replicas
    if "min_replicas" not in stated and "replicas" not in stated:
        low = scaling.min_replicas or f.get("min_replicas", low)
    if "max_replicas" not in stated:
        high = scaling.max_replicas or f.get("max_replicas", high)
    high = max(high, low)
    changes = {"min_replicas": low, "max_replicas": high, "replicas": min(max(env.replicas, low), high)}
    if "cpu" not in stated:
        changes["cpu"] = f["cpu_limit_m"] / 1000
        changes["cpu_request"] = f["cpu_request_m"] / 1000
    if "memory" not in stated:
        changes["memory"] = int(f["memory_mib"]) * 2**20
    return dataclasses.replace(env, **changes)


def cpu_utilization(doc: TaskDoc, service: Service, stated: object, default: int) -> int:
    """The HPA's CPU target: the task's `kubernetes.cpu_utilization`, else the derived one with
    `scaling.measured`, else the default."""
    if stated is not None:
        return int(stated)
    s = derived(parse_scaling(doc, service), 1.0)
    return int(s.figures["hpa_cpu_utilization"]) if s is not None else default


def node_pool_max(instance_type: str, prod, dependencies: int) -> tuple[int, str] | None:
    """Nodes the prod environment needs at its maximum replicas and requests (None when kit has no
    allocatable figures for the node type)."""
    request = prod.cpu_request if prod.cpu_request is not None else prod.cpu / 2
    found = sizing.nodes_for(instance_type, prod.max_replicas, math.ceil(request * 1000),
                             prod.memory // 2**20, other_pods=dependencies)
    return found if found and found[0] > 0 else None
