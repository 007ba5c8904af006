"""Sizing from a measured per-pod capacity: pure arithmetic, each figure with its formula.

C = per-pod capacity (the highest achieved rate whose step held the latency objective), h = headroom,
W = C / (1 + h) the working point a pod is kept at. Requests are what a pod used at capacity, so a
scheduled pod always has the CPU its capacity was measured with; the HPA scales when pods pass W."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

MIN_CPU_M = 50
MEMORY_STEP_MI = 16
MEMORY_FACTOR = 1.5          # memory request = limit = 1.5 x the highest use seen (Guaranteed memory)
HA_FLOOR = 2                 # one pod drained or restarting must leave one serving

# Node types: (vCPU, memory GiB, max pods). Allocatable as the EKS AMI reserves it
# (awslabs/amazon-eks-ami, bootstrap: kube-reserved memory = 11 MiB x max pods + 255 MiB; CPU 6 % of
# the first core, 1 % of the second, 0.5 % of cores 3-4, 0.25 % above; eviction-hard 100 MiB).
# Max pods from the VPC CNI's eni-max-pods table. Other types: the node count is not sized.
NODE_TYPES = {
    "t3.medium": (2, 4, 17), "t3.large": (2, 8, 35), "m5.large": (2, 8, 29), "m6i.large": (2, 8, 29),
    "m6i.xlarge": (4, 16, 58), "m6i.2xlarge": (8, 32, 58), "c6i.large": (2, 4, 29), "c6i.xlarge": (4, 8, 58),
}
SYSTEM_PODS_CPU_M, SYSTEM_PODS_MEMORY_MI = 200, 300   # stated assumption: daemonsets (CNI, kube-proxy, log shipper)


@dataclass(frozen=True)
class Capacity:
    """What the load test measured for one pod."""
    capacity_rps: float          # C
    cpu_at_capacity: float       # cores used at C
    cpu_at_working: float        # cores used at W (interpolated between steps)
    memory_mib: float            # the highest memory seen
    cpu_limit: float             # cores the pod ran under
    time_to_healthy_s: float = 10.0


@dataclass
class Sizing:
    figures: dict[str, object] = field(default_factory=dict)
    formulas: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def put(self, name: str, value: object, formula: str) -> None:
        self.figures[name] = value
        self.formulas[name] = formula

    def rows(self) -> list[tuple[str, object, str]]:
        return [(k, v, self.formulas[k]) for k, v in self.figures.items()]


def ceil_to(value: float, step: int) -> int:
    return int(math.ceil(value / step - 1e-9) * step)


def interpolate(points: list[tuple[float, float]], x: float) -> float:
    """y at x on the polyline through (x, y) points sorted by x (flat beyond the ends)."""
    points = sorted(points)
    if not points:
        return 0.0
    if x <= points[0][0]:
        return points[0][1] * (x / points[0][0] if points[0][0] else 1)
    for (x0, y0), (x1, y1) in pairwise(points):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) if x1 > x0 else y1
    return points[-1][1]


def size(capacity: Capacity, headroom: float, baseline_rps: float | None, peak_rps: float | None,
         max_replicas: int | None = None) -> Sizing:
    s = Sizing()
    c, h = capacity.capacity_rps, headroom
    working = c / (1 + h)
    s.put("capacity_rps", round(c, 1), "C = highest achieved rate of a step holding the latency objective")
    s.put("working_rps", round(working, 1), f"W = C / (1 + h) = {c:.1f} / {1 + h:g}")
    cpu_m = max(MIN_CPU_M, ceil_to(capacity.cpu_at_capacity * 1000, 10))
    s.put("cpu_request_m", cpu_m, f"ceil10(CPU at C) = ceil10({capacity.cpu_at_capacity * 1000:.0f}m), "
                                  f"at least {MIN_CPU_M}m")
    limit_m = max(cpu_m, round(capacity.cpu_limit * 1000))
    s.put("cpu_limit_m", limit_m, f"max(request, the limit the test ran under = {capacity.cpu_limit * 1000:.0f}m)")
    memory = ceil_to(capacity.memory_mib * MEMORY_FACTOR, MEMORY_STEP_MI)
    s.put("memory_mib", memory, f"request = limit = ceil16({MEMORY_FACTOR:g} x highest use "
                                f"{capacity.memory_mib:.0f}Mi)")
    target = max(10, min(100, math.floor(100 * capacity.cpu_at_working / (cpu_m / 1000))))
    s.put("hpa_cpu_utilization", target, f"floor(100 x CPU at W / request) = floor(100 x "
                                         f"{capacity.cpu_at_working * 1000:.0f}m / {cpu_m}m), within 10-100")
    s.put("rps_per_pod_target", round(working, 1), "W (hpa-rps / keda target per pod)")
    if baseline_rps is not None:
        low = max(HA_FLOOR, math.ceil(baseline_rps / working))
        s.put("min_replicas", low, f"max({HA_FLOOR}, ceil(baseline / W)) = max({HA_FLOOR}, "
                                   f"ceil({baseline_rps:g} / {working:.1f}))")
    if peak_rps is not None:
        floor = max(HA_FLOOR, math.ceil(baseline_rps / working)) if baseline_rps is not None else HA_FLOOR
        high = max(floor, math.ceil(peak_rps / working))     # never below the derived minimum
        s.put("max_replicas", high, f"max(min_replicas, ceil(peak / W)) = max({floor}, "
                                    f"ceil({peak_rps:g} / {working:.1f}))")
        if max_replicas is not None and max_replicas * c < peak_rps:
            s.problems.append(f"peak_rps {peak_rps:g} needs {math.ceil(peak_rps / c)} pods at the measured "
                              f"{c:.1f} rps per pod; max_replicas {max_replicas} carries only "
                              f"{max_replicas * c:.1f} rps")
    return s


def allocatable(node_type: str) -> tuple[int, int, int] | None:
    """(CPU millicores, memory MiB, max pods) a node of this type offers to pods, or None."""
    if node_type not in NODE_TYPES:
        return None
    cores, gib, max_pods = NODE_TYPES[node_type]
    shares = [0.06, 0.01, 0.005, 0.005] + [0.0025] * max(0, cores - 4)
    reserved_cpu = round(sum(shares[:cores]) * 1000)
    reserved_mem = 11 * max_pods + 255 + 100
    return cores * 1000 - reserved_cpu, gib * 1024 - reserved_mem, max_pods


def nodes_for(node_type: str, pods: int, cpu_m: int, memory_mib: int, other_pods: int = 0) -> tuple[int, str] | None:
    """Nodes for `pods` app pods (plus one surge pod) at these requests, and the formula."""
    found = allocatable(node_type)
    if found is None:
        return None
    cpu, mem, max_pods = found
    free_cpu, free_mem = cpu - SYSTEM_PODS_CPU_M, mem - SYSTEM_PODS_MEMORY_MI
    per_node = min(free_cpu // cpu_m, free_mem // memory_mib, max_pods - 4)
    if per_node < 1:
        return 0, f"a pod ({cpu_m}m, {memory_mib}Mi) does not fit a {node_type} ({free_cpu}m, {free_mem}Mi free)"
    count = math.ceil((pods + 1 + other_pods) / per_node)
    return count, (f"ceil((pods {pods} + 1 surge + {other_pods} other) / {per_node} per node); per node = "
                   f"min({free_cpu}m / {cpu_m}m, {free_mem}Mi / {memory_mib}Mi) on a {node_type} "
                   f"(allocatable {cpu}m, {mem}Mi minus {SYSTEM_PODS_CPU_M}m, {SYSTEM_PODS_MEMORY_MI}Mi of daemonsets)")
