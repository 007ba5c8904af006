"""What the measurement says about the generated files: the sizing derived from it, compared with
the figures the manifests and the Terraform node pool carry; the HPA's behaviour; and the HPA replayed
over a day. Generation is pure and runs before verification, so the measurement never rewrites the
files of the same run: where the files differ from it, the record says so with both figures and the
task field to change (or `scaling.measured` to feed it back; docs/families/scaling.md)."""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import yaml

from kit.evidence import Evidence
from kit.families.scaling import simulate, sizing
from kit.model import Spec
from kit.resources import parse_cpu, parse_memory

if TYPE_CHECKING:
    from kit.families.scaling.checks import Run

HPA_FILE = "k8s/base/autoscaling.yaml"
LASTING_LAG_S = 120      # a lag longer than this in the replayed day fails the simulation record
NODE_DELAY_S = 90.0      # stated assumption: a new node is ready 90 s after the autoscaler asks for it


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text or "") if isinstance(d, dict)]


def hpa_of(files: dict[str, str]) -> dict:
    return next((d for d in _docs(files.get(HPA_FILE, "")) if d.get("kind") == "HorizontalPodAutoscaler"), {})


def hpa_behavior(text: str, keda: bool = False) -> Evidence:
    """The HPA sets both directions' stabilisation windows and a scale-down policy (autoscaling/v2
    HPAScalingRules; without them a short dip removes pods that the next burst needs again). With
    KEDA, the behavior its ScaledObject gives the HPA it creates (spec.advanced.horizontalPodAutoscalerConfig)."""
    if keda:
        so = next((d for d in _docs(text) if d.get("kind") == "ScaledObject"), {})
        behavior = ((((so.get("spec") or {}).get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {})
                    .get("behavior") or {})
    else:
        hpa = next((d for d in _docs(text) if d.get("kind") == "HorizontalPodAutoscaler"), {})
        behavior = (hpa.get("spec") or {}).get("behavior") or {}
    problems = [f"behavior.{side} sets no stabilizationWindowSeconds" for side in ("scaleUp", "scaleDown")
                if "stabilizationWindowSeconds" not in (behavior.get(side) or {})]
    if not (behavior.get("scaleDown") or {}).get("policies"):
        problems.append("behavior.scaleDown has no policy limiting how fast pods are removed")
    return Evidence("scaling.hpa_behavior", "k8s/overlays/<env>/scaledobject.yaml" if keda else HPA_FILE, "the HPA's behavior sets stabilisation windows and a "
                    "scale-down policy", "failed" if problems else "passed", tool="kit",
                    reason="; ".join(problems), figures={"behavior": behavior})


def behavior_of(files: dict[str, str]) -> simulate.Behavior:
    """The generated HPA's behavior, as the simulation replays it (API defaults where unset)."""
    b = (hpa_of(files).get("spec") or {}).get("behavior") or {}
    up, down = b.get("scaleUp") or {}, b.get("scaleDown") or {}
    ups = {p["type"]: p for p in up.get("policies") or []}
    downs = {p["type"]: p for p in down.get("policies") or []}
    return simulate.Behavior(
        up_window_s=int(up.get("stabilizationWindowSeconds", 0)),
        down_window_s=int(down.get("stabilizationWindowSeconds", 300)),
        up_percent=int(ups.get("Percent", {}).get("value", 100)), up_pods=int(ups.get("Pods", {}).get("value", 4)),
        up_period_s=int((ups.get("Pods") or ups.get("Percent") or {}).get("periodSeconds", 15)),
        down_pods=int(downs.get("Pods", {}).get("value", 1)),
        down_period_s=int(downs.get("Pods", {}).get("periodSeconds", 60)))


def generated(files: dict[str, str], env: str = "prod") -> dict:
    """The figures the generated files carry for one environment."""
    out: dict = {}
    kust = files.get(f"k8s/overlays/{env}/kustomization.yaml", "")
    for key in ("minReplicas", "maxReplicas"):
        found = re.search(rf"/spec/{key}, value: (\d+)", kust)
        if found:
            out[key] = int(found.group(1))
    patch = _docs(files.get(f"k8s/overlays/{env}/patch-deployment.yaml", ""))
    container = (((patch[0].get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers", [{}])[0] \
        if patch else {}
    res = container.get("resources") or {}
    if res:
        out["cpu_request_m"] = round(parse_cpu(res["requests"]["cpu"]) * 1000)
        out["cpu_limit_m"] = round(parse_cpu(res["limits"]["cpu"]) * 1000)
        out["memory_request_mib"] = parse_memory(res["requests"]["memory"]) // 2**20
    metrics = (hpa_of(files).get("spec") or {}).get("metrics") or []
    out["hpa_cpu_utilization"] = next((m["resource"]["target"].get("averageUtilization") for m in metrics
                                       if m.get("type") == "Resource"), None)
    pdb = next((d for d in _docs(files.get(HPA_FILE, "")) if d.get("kind") == "PodDisruptionBudget"), {})
    out["pdb"] = (pdb.get("spec") or {}).get("maxUnavailable", 1)
    return out


def sizing_record(spec: Spec, files: dict[str, str], run: Run) -> tuple[Evidence, sizing.Sizing]:
    scaling = spec.option("scaling")
    at = next((s for s in run.steps if s.achieved_rps == run.capacity_rps), run.steps[0])
    points = [(s.achieved_rps, s.app_cpu) for s in run.steps if s.holds]
    working = run.capacity_rps / (1 + scaling.headroom)
    capacity = sizing.Capacity(run.capacity_rps, at.app_cpu, sizing.interpolate(points, working),
                               max(s.app_memory_mib for s in run.steps), run.cpu_limit, run.time_to_healthy_s)
    have = generated(files)
    high = scaling.max_replicas or have.get("maxReplicas")
    s = sizing.size(capacity, scaling.headroom, scaling.baseline_rps, scaling.peak_rps, high)
    problems, warnings = list(s.problems), []
    pairs = (("min_replicas", "minReplicas", "kubernetes.environments.prod.min_replicas"),
             ("max_replicas", "maxReplicas", "kubernetes.environments.prod.max_replicas"),
             ("cpu_request_m", "cpu_request_m", "kubernetes.environments.prod.cpu (requests are half the limit)"),
             ("hpa_cpu_utilization", "hpa_cpu_utilization", "kubernetes.cpu_utilization"))
    for ours, theirs, field in pairs:
        if ours in s.figures and have.get(theirs) is not None and s.figures[ours] != have[theirs]:
            warnings.append(f"{ours}: the manifests carry {have[theirs]}, the measurement gives {s.figures[ours]} "
                            f"({s.formulas[ours]}); set {field}, or commit this run's measured block as scaling.measured "
                            "(generation then sizes it where the task states no figure)")
    mem_derived = s.figures["memory_mib"]
    if have.get("memory_request_mib") is not None and have["memory_request_mib"] < mem_derived:
        warnings.append(f"memory: the manifests request {have['memory_request_mib']}Mi, below the {mem_derived}Mi "
                        "derived from the highest use; set kubernetes.environments.prod.memory")
    if scaling.baseline_rps is not None and have.get("minReplicas"):
        serving = have["minReplicas"] - int(have["pdb"]) if isinstance(have["pdb"], int) else have["minReplicas"] - 1
        if serving * run.capacity_rps < scaling.baseline_rps:
            problems.append(f"during a drain the PodDisruptionBudget lets {have['pdb']} of the {have['minReplicas']} "
                            f"minimum pods go: {serving} pod(s) carry {serving * run.capacity_rps:.1f} rps, below the "
                            f"baseline {scaling.baseline_rps:g} rps")
    _nodes(spec, s, have, warnings)
    state = "failed" if problems else "passed"
    reason = "; ".join(problems + ([f"warning: {w}" for w in warnings]))
    return Evidence("scaling.sizing", "k8s/overlays/prod", "the generated replica bounds, requests and node pool "
                    "hold the expected load at the measured capacity", state, tool="kit (kit/families/scaling/"
                    "sizing.py)", reason=reason, figures={"derived": s.figures, "formulas": s.formulas,
                                                          "generated": have, "warnings": warnings,
                                                          "problems": problems}), s


def _nodes(spec: Spec, s: sizing.Sizing, have: dict, warnings: list[str]) -> None:
    cloud = spec.options.get("cloud")
    if cloud is None or "cpu_request_m" not in have:
        return
    pods = have.get("maxReplicas", 1)
    found = sizing.nodes_for(cloud.instance_type, pods, have["cpu_request_m"], have["memory_request_mib"],
                             other_pods=len(spec.dependencies))
    if found is None:
        s.put("prod_nodes", None, f"{cloud.instance_type}: kit has no allocatable figures for it")
        return
    count, formula = found
    s.put("prod_nodes", count, formula)
    if count > cloud.max_nodes:
        warnings.append(f"prod at max_replicas {pods} needs {count} {cloud.instance_type} nodes; the Terraform node "
                        f"pool allows {cloud.max_nodes} (cloud.node_pool.max)")


def simulation_record(spec: Spec, files: dict[str, str], run: Run, s: sizing.Sizing) -> Evidence:
    scaling = spec.option("scaling")
    have = generated(files)
    if scaling.baseline_rps is None or scaling.peak_rps is None:
        return Evidence("scaling.simulation", HPA_FILE, "the HPA keeps up with a day's load (simulated)",
                        "skipped", reason="the task states no baseline_rps and peak_rps to build a day from")
    low = scaling.min_replicas or have.get("minReplicas", 1)
    high = scaling.max_replicas or have.get("maxReplicas", 1)
    profile = simulate.daily_profile(scaling.baseline_rps, scaling.peak_rps)
    per_node = 0
    cloud = spec.options.get("cloud")
    if cloud is not None and "cpu_request_m" in have and sizing.allocatable(cloud.instance_type):
        cpu, mem, _ = sizing.allocatable(cloud.instance_type)
        per_node = max(1, min((cpu - sizing.SYSTEM_PODS_CPU_M) // have["cpu_request_m"],
                              (mem - sizing.SYSTEM_PODS_MEMORY_MI) // have["memory_request_mib"]))
    behavior = behavior_of(files)
    result = simulate.simulate(profile, run.capacity_rps, s.figures["working_rps"], low, high,
                               pod_start_s=run.time_to_healthy_s, node_delay_s=NODE_DELAY_S,
                               pods_per_node=per_node, behavior=behavior)
    lasting = [lag for lag in result.lag if lag[1] - lag[0] > LASTING_LAG_S]
    text = ", ".join(f"{_clock(a)}-{_clock(b)} (demand {w:g}x capacity)" for a, b, w in result.lag)
    every = 60 // simulate.SYNC_S      # the chart's series at one point a minute; the lag is found every 15 s
    figures = {"t_s": result.t_s[::every], "demand": result.demand[::every], "replicas": result.replicas[::every],
               "ready": result.ready[::every], "capacity": result.capacity[::every], "lag": result.lag, "bounds": [low, high], "pods_per_node": per_node,
               "assumptions": {"sync_period_s": simulate.SYNC_S, "tolerance": simulate.TOLERANCE,
                               "pod_start_s": run.time_to_healthy_s, "node_delay_s": NODE_DELAY_S,
                               "behavior": behavior.__dict__, "target_rps_per_pod": s.figures["working_rps"]}}
    reason = (f"capacity lags demand: {text}" if result.lag else "capacity never lags demand") + \
        (f"; {len(lasting)} interval(s) longer than {LASTING_LAG_S} s" if lasting else "")
    return Evidence("scaling.simulation", HPA_FILE, "the HPA keeps up with a day's load (baseline, ramp, peak, "
                    "spike) at the measured capacity (simulated)", "failed" if lasting else "passed",
                    tool="kit HPA replay (kit/families/scaling/simulate.py)", reason=reason, figures=figures,
                    proof="emulated")


def _clock(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def replicas_for(rps: float, capacity_rps: float, headroom: float) -> int:
    return math.ceil(rps * (1 + headroom) / capacity_rps)


TERRAFORM_PROD = "terraform/environments/prod/variables.tf"


def _stated(spec: Spec) -> tuple[dict, dict, dict]:
    """The task's own prod figures: kubernetes.environments.prod, the kubernetes section, cloud.node_pool."""
    data = spec.task.data
    kube = data.get("kubernetes") or {}
    return ((kube.get("environments") or {}).get("prod") or {}), kube, ((data.get("cloud") or {}).get("node_pool") or {})


def expected_from_measured(spec: Spec) -> tuple[dict, dict, list[str]] | None:
    """(figure -> what the generated files must carry, figure -> formula, warnings where the task's
    own number wins over the derived one), from the task's scaling.measured; None without it."""
    from kit.families.scaling import plan
    from kit.resources import parse_cpu, parse_memory
    scaling = spec.option("scaling")
    prod_stated, kube, pool = _stated(spec)
    limit = parse_cpu(prod_stated["cpu"]) if "cpu" in prod_stated else spec.cpu
    s = plan.derived(scaling, limit)
    if s is None:
        return None
    f, want, why, warnings = s.figures, {}, {}, []

    def pick(name: str, task_value, task_field: str, derived_name: str) -> None:
        derived_value = f.get(derived_name)
        if task_value is not None:
            want[name], why[name] = task_value, f"the task's {task_field}"
            if derived_value is not None and derived_value != task_value:
                warnings.append(f"{name}: the task states {task_value} ({task_field}), the measurement gives "
                                f"{derived_value} ({s.formulas[derived_name]}); the task's figure is kept")
        elif derived_value is not None:
            want[name], why[name] = derived_value, s.formulas[derived_name]
    low = prod_stated.get("min_replicas", prod_stated.get("replicas", scaling.min_replicas))
    pick("minReplicas", low, "kubernetes.environments.prod.min_replicas" if "min_replicas" in prod_stated or
         "replicas" in prod_stated else "scaling.min_replicas", "min_replicas")
    high = prod_stated.get("max_replicas", scaling.max_replicas)
    pick("maxReplicas", high, "kubernetes.environments.prod.max_replicas" if "max_replicas" in prod_stated
         else "scaling.max_replicas", "max_replicas")
    pick("cpu_request_m", round(parse_cpu(prod_stated["cpu"]) * 500) if "cpu" in prod_stated else None,
         "kubernetes.environments.prod.cpu (requests are half the limit)", "cpu_request_m")
    pick("memory_request_mib", parse_memory(prod_stated["memory"]) // 2**20 if "memory" in prod_stated else None,
         "kubernetes.environments.prod.memory", "memory_mib")
    if scaling.mechanism == "hpa-cpu":
        pick("hpa_cpu_utilization", kube.get("cpu_utilization"), "kubernetes.cpu_utilization", "hpa_cpu_utilization")
    else:
        target = plan.target_rps(scaling)
        want["rps_per_pod"], why["rps_per_pod"] = target, ("the task's scaling.target_rps_per_pod"
                                                           if scaling.target_rps_per_pod else s.formulas["working_rps"])
    cloud = spec.options.get("cloud")
    if cloud is not None:
        found = plan.node_pool_max(cloud.instance_type, spec.option("kubernetes").env("prod"), len(spec.dependencies))
        if "max" in pool:
            want["node_max_size"], why["node_max_size"] = pool["max"], "the task's cloud.node_pool.max"
            if found and max(cloud.min_nodes, found[0]) != pool["max"]:
                warnings.append(f"node_max_size: the task states {pool['max']} (cloud.node_pool.max), prod at its "
                                f"figures needs {max(cloud.min_nodes, found[0])} ({found[1]}); the task's figure is kept")
        elif found:
            want["node_max_size"], why["node_max_size"] = max(cloud.min_nodes, found[0]), found[1]
    return want, why, warnings


def carried(spec: Spec, files: dict[str, str]) -> dict:
    """The figures the generated files carry, by the names expected_from_measured uses."""
    have = generated(files)
    out = {k: have[k] for k in ("minReplicas", "maxReplicas", "cpu_request_m", "memory_request_mib",
                                "hpa_cpu_utilization") if have.get(k) is not None}
    from kit.resources import parse_cpu
    for _, hpa in _hpas(files):
        for m in (hpa.get("spec") or {}).get("metrics") or []:
            if m.get("type") == "Pods":
                out["rps_per_pod"] = round(parse_cpu(str(m["pods"]["target"]["averageValue"])), 3)
    from kit.families.scaling.autoscalers import scaledobject_text
    for so in _docs(scaledobject_text(files)):
        if not str((so.get("metadata") or {}).get("namespace", "")).endswith("-prod"):
            continue          # one ScaledObject per environment: the measured figures are prod's
        sos = so.get("spec") or {}
        out["minReplicas"], out["maxReplicas"] = sos.get("minReplicaCount"), sos.get("maxReplicaCount")
        for trigger in sos.get("triggers") or []:
            out["rps_per_pod"] = float((trigger.get("metadata") or {}).get("threshold", "nan"))
    found = re.search(r'variable "node_max_size" \{[^}]*?default\s*=\s*(\d+)', files.get(TERRAFORM_PROD, ""), re.S)
    if found:
        out["node_max_size"] = int(found.group(1))
    return out


def _hpas(files: dict[str, str]) -> list[tuple[str, dict]]:
    return [(HPA_FILE, d) for d in _docs(files.get(HPA_FILE, "")) if d.get("kind") == "HorizontalPodAutoscaler"]


def measured_record(spec: Spec, files: dict[str, str]) -> Evidence:
    """With scaling.measured in the task, the prod overlay, the HPA (or ScaledObject) and the Terraform
    node pool carry the figures derived from it, or the task's own where it states them (a warning
    then names both). A file that carries neither fails."""
    title = ("the prod overlay, the autoscaler and the Terraform node pool carry the figures derived from "
             "scaling.measured (or the task's own)")
    found = expected_from_measured(spec)
    if found is None:
        return Evidence("scaling.measured", "k8s/overlays/prod", title, "skipped", reason="the task commits no "
                        "scaling.measured block: the files carry the task's figures or kit's defaults; the "
                        "sandbox's scaling.sizing record compares them with this run's measurement")
    want, why, warnings = found
    have = carried(spec, files)
    problems = [f"{name}: the files carry {have.get(name, 'nothing')}, expected {value} ({why[name]})"
                for name, value in want.items()
                if have.get(name) is None or not math.isclose(float(have[name]), float(value), abs_tol=1e-6)]
    reason = "; ".join(problems + [f"warning: {w}" for w in warnings])
    return Evidence("scaling.measured", "k8s/overlays/prod, " + TERRAFORM_PROD, title,
                    "failed" if problems else "passed", tool="kit (kit/families/scaling/plan.py, sizing.py)",
                    reason=reason, figures={"expected": want, "carried": have, "why": why, "warnings": warnings})
