"""The HPA replayed over a daily load profile, with the measured per-pod capacity: pure Python.

The algorithm as Kubernetes publishes it (https://kubernetes.io/docs/concepts/workloads/autoscaling/
horizontal-pod-autoscale/#algorithm-details; kubernetes/website content/en/docs/concepts/workloads/
autoscaling/horizontal-pod-autoscale.md):
- every sync period (15 s, --horizontal-pod-autoscaler-sync-period)
  desiredReplicas = ceil[currentReplicas * (currentMetricValue / desiredMetricValue)];
- no change while the ratio is within the tolerance (0.1, --horizontal-pod-autoscaler-tolerance);
- for a scale-up, pods not yet ready count as using nothing (the docs: "the controller ... assumes
  those pods are consuming 0% of the desired metric"), so the ratio is demand over ready pods;
- behavior (KEP-853, autoscaling/v2 HPAScalingRules): the stabilisation window keeps the highest
  recommendation of the window for a scale-down (default 300 s) and the lowest for a scale-up (default
  0 s); the default scale-up policies allow doubling or +4 pods per 15 s (the larger), scale-down is
  limited by the HPA's own policy (kit's: 1 pod per 60 s).
Model assumptions, stated on the page: the metric is the rate per pod (CPU is taken as proportional to
it, as the load test shows up to capacity), metrics are current (no metrics-server lag), a new pod is
ready `pod_start_s` after it is created (the measured time to healthy), and when the nodes are full a
pod waits `node_delay_s` more for a new node (an assumption, not measured)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

SYNC_S = 15
TOLERANCE = 0.1


@dataclass(frozen=True)
class Behavior:
    up_window_s: int = 0
    down_window_s: int = 300
    up_percent: int = 100            # per up_period_s
    up_pods: int = 4
    up_period_s: int = 15
    down_pods: int = 1               # per down_period_s
    down_period_s: int = 60


DEFAULT_BEHAVIOR = Behavior()


@dataclass(frozen=True)
class Profile:
    """A day's demand in requests per second, one value per sync period."""
    points: tuple[float, ...]
    step_s: int = SYNC_S


def daily_profile(baseline: float, peak: float, spike: float = 1.5, step_s: int = SYNC_S) -> Profile:
    """Night at half the baseline, a morning ramp to the baseline, a ramp to the peak at midday
    held for two hours, a 10-minute spike of `spike` x peak, and an evening decline."""
    def demand(t_h: float) -> float:
        if t_h < 6:
            return baseline * 0.5
        if t_h < 8:
            return baseline * (0.5 + 0.5 * (t_h - 6) / 2)
        if t_h < 11:
            return baseline + (peak - baseline) * (t_h - 8) / 3
        if t_h < 13:
            return peak * spike if 12 <= t_h < 12 + 10 / 60 else peak
        if t_h < 18:
            return peak - (peak - baseline) * (t_h - 13) / 5
        return baseline - baseline * 0.5 * (t_h - 18) / 6
    return Profile(tuple(round(demand(i * step_s / 3600), 3) for i in range(24 * 3600 // step_s)), step_s)


@dataclass
class Result:
    t_s: list[int] = field(default_factory=list)
    demand: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)      # the HPA's count (pods created)
    ready: list[int] = field(default_factory=list)
    capacity: list[float] = field(default_factory=list)    # ready x C
    lag: list[tuple[int, int, float]] = field(default_factory=list)   # (start s, end s, worst demand/capacity)


def simulate(profile: Profile, capacity_rps: float, target_rps: float, min_replicas: int, max_replicas: int,
             pod_start_s: float, node_delay_s: float = 90.0, pods_per_node: int = 0, start_nodes: int = 0,
             behavior: Behavior = DEFAULT_BEHAVIOR) -> Result:
    """Replay the profile; `target_rps` is the per-pod rate the HPA aims at (W), `capacity_rps` what a
    pod serves within the objective (C). pods_per_node 0: nodes never run out."""
    res, step = Result(), profile.step_s
    replicas = min_replicas
    born: list[float] = [-1e9] * replicas          # when each pod becomes ready
    history: list[tuple[int, int]] = []             # (t, recommendation)
    changes: list[tuple[int, int]] = []             # (t, +/- pods) for the rate policies
    nodes = start_nodes or (math.ceil(replicas / pods_per_node) if pods_per_node else 0)
    node_ready_at: list[float] = []
    for i, demand in enumerate(profile.points):
        t = i * step
        ready = sum(1 for b in born if b <= t)
        ratio = demand / (max(ready, 1) * target_rps)
        proposal = replicas if abs(ratio - 1) <= TOLERANCE else math.ceil(max(ready, 1) * ratio)
        proposal = max(min_replicas, min(max_replicas, proposal))
        history.append((t, proposal))
        if proposal > replicas:
            window = [r for ts, r in history if ts > t - behavior.up_window_s] or [proposal]
            wanted = max(replicas, min(window))
            added = sum(d for ts, d in changes if d > 0 and ts > t - behavior.up_period_s)
            start = replicas - added
            limit = max(math.floor(start * (1 + behavior.up_percent / 100)), start + behavior.up_pods)
            wanted = min(wanted, limit)
        else:
            window = [r for ts, r in history if ts > t - behavior.down_window_s] or [proposal]
            wanted = min(replicas, max(window))
            removed = -sum(d for ts, d in changes if d < 0 and ts > t - behavior.down_period_s)
            wanted = max(wanted, replicas - max(0, behavior.down_pods - removed))
        if wanted > replicas:
            for _ in range(wanted - replicas):
                delay = pod_start_s
                if pods_per_node:
                    usable = nodes + sum(1 for n in node_ready_at if n <= t)
                    if len(born) + 1 > (nodes + len(node_ready_at)) * pods_per_node:
                        node_ready_at.append(t + node_delay_s)
                        delay += node_delay_s
                    elif len(born) + 1 > usable * pods_per_node:
                        delay += max(0.0, min(n for n in node_ready_at if n > t) - t)
                born.append(t + delay)
        elif wanted < replicas:
            born = sorted(born)[:wanted]
        if wanted != replicas:
            changes.append((t, wanted - replicas))
            replicas = wanted
        ready = sum(1 for b in born if b <= t)
        res.t_s.append(t)
        res.demand.append(demand)
        res.replicas.append(replicas)
        res.ready.append(ready)
        res.capacity.append(round(ready * capacity_rps, 3))
    res.lag = lag_intervals(res)
    return res


def lag_intervals(res: Result) -> list[tuple[int, int, float]]:
    """Intervals where demand exceeds what the ready pods carry within the objective."""
    out: list[tuple[int, int, float]] = []
    start, worst = None, 0.0
    for t, d, c in zip(res.t_s, res.demand, res.capacity, strict=True):
        over = d > c
        if over and start is None:
            start, worst = t, 0.0
        if over:
            worst = max(worst, d / c if c else math.inf)
        if not over and start is not None:
            out.append((start, t, round(worst, 2)))
            start = None
    if start is not None:
        out.append((start, res.t_s[-1] + (res.t_s[1] - res.t_s[0] if len(res.t_s) > 1 else 0), round(worst, 2)))
    return out
