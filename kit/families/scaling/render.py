"""Scaling family: the load test as a deliverable (loadtest/locustfile.py and its README) and a
VerticalPodAutoscaler in recommendation mode (k8s/scaling/vpa.yaml); pure, from the Spec."""
from __future__ import annotations

from kit.families.scaling import plan
from kit.model import Spec
from kit.render import render_variant

FIRST_STEP_RPS, STEP_FACTOR, STEP_COUNT = 5.0, 1.35, 13
STEP_S, WARMUP_S, LEAD_IN_S = 4, 1, 3
RATE_PER_USER = 2.0


def steps() -> list[float]:
    """Offered rates: geometric from 5 rps by 1.35 (13 steps, up to about 180 rps)."""
    return [round(FIRST_STEP_RPS * STEP_FACTOR ** i, 1) for i in range(STEP_COUNT)]


def objective(spec: Spec) -> dict:
    slo = spec.option("slo")
    return {"threshold_s": slo.latency_threshold_s, "threshold_ms": round(slo.latency_threshold_s * 1000),
            "objective": slo.latency_objective, "error_budget": round(100 - slo.availability, 4)}


def autoscaling_objects(spec: Spec) -> dict:
    """The prometheus-adapter rule (hpa-rps) or the KEDA ScaledObject (keda) for the app's request
    counter (slo.metrics.requests, as the observability family reads it); nothing without a counter
    (scaling.integration fails saying so) or for hpa-cpu."""
    scaling = spec.option("scaling")
    counter = spec.option("slo").metrics.requests
    target = plan.target_rps(scaling)
    if not counter or target is None or scaling.mechanism == "hpa-cpu":
        return {"adapter": {}, "keda": {}}
    if scaling.mechanism == "hpa-rps":
        return {"adapter": {"counter": counter, "metric": plan.rps_metric(counter), "window": plan.RATE_WINDOW,
                            "target": plan.quantity(target)}, "keda": {}}
    k = spec.option("kubernetes")
    return {"adapter": {}, "keda": {"threshold": f"{target:g}",
                                    "server": f"http://prometheus-operated.{k.monitoring_namespace}.svc:9090",
                                    "environments": [
        {"name": env.name, "namespace": f"{k.namespace}-{env.name}", "min": env.min_replicas, "max": env.max_replicas,
         "fallback": env.max_replicas,
         "query": f'sum(rate({counter}{{namespace="{k.namespace}-{env.name}"}}[{plan.RATE_WINDOW}]))'}
        for env in k.environments]}}


def staging(spec: Spec) -> dict:
    """The environment a rerun of the load test measures (staging, else the first one): its namespace
    and autoscaler bounds, for the README's steps that pin it to one pod."""
    k = spec.options.get("kubernetes")
    if k is None or not k.environments:
        return {"namespace": f"{spec.name}-staging", "min": 2, "max": 2}
    env = next((e for e in k.environments if e.name == "staging"), k.environments[0])
    return {"namespace": f"{k.namespace}-{env.name}", "min": env.min_replicas, "max": env.max_replicas}


def render_scaling(spec: Spec) -> dict[str, str]:
    scaling = spec.option("scaling")
    if not scaling.mix:
        return {}
    files = render_variant("scaling", "default", {
        "name": spec.name, "labels": spec.labels, "mix": list(scaling.mix), "mix_source": scaling.mix_source,
        "steps": steps(), "step_s": STEP_S, "warmup_s": WARMUP_S, "lead_in_s": LEAD_IN_S, "rate_per_user": RATE_PER_USER,
        "mechanism": scaling.mechanism, "staging": staging(spec), **objective(spec), **autoscaling_objects(spec)})
    keda = autoscaling_objects(spec)["keda"]
    for env in (keda or {}).get("environments", []):
        files.update({f"k8s/overlays/{env['name']}/{path}": text for path, text in render_variant(
            "scaling", "overlay", {"name": spec.name, "labels": spec.labels, "keda": keda, "env": env}).items()})
    return {path: text for path, text in files.items() if text.strip()}


def overlay_scaledobject(spec: Spec) -> bool:
    """Whether render_scaling puts a ScaledObject into each overlay (k8s/overlays/<env>/scaledobject.yaml):
    the kubernetes family lists it in the overlay's resources exactly then."""
    scaling = spec.options.get("scaling")
    return bool(scaling is not None and scaling.mix and autoscaling_objects(spec)["keda"])


def work_notes(spec: Spec) -> list[str]:
    scaling = spec.option("scaling")
    load = (f"baseline {scaling.baseline_rps:g} rps, peak {scaling.peak_rps:g} rps"
            if scaling.baseline_rps is not None and scaling.peak_rps is not None else "no expected load stated")
    fed = "sized from scaling.measured" if scaling.measured else "no measured figures fed back yet"
    return [f"Scaling: {load}, headroom {scaling.headroom:.0%}, mechanism {scaling.mechanism}; {fed}. "
            f"The load test offers {', '.join(f'{s:g}' for s in steps())} rps, {STEP_S} s a step "
            f"(loadtest/locustfile.py); request mix from {scaling.mix_source}."]
