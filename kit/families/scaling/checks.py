"""Scaling checks: the deliverables' own rules (static), and the load test run for real in the
sandbox, with the sizing derived from it compared with the generated manifests and the HPA replayed
over a day (kit/families/scaling/rules.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from kit.core.context import VerifyContext
from kit.errors import SandboxError
from kit.evidence import Evidence
from kit.families.scaling import autoscalers, loadtest, rules, scaleout
from kit.families.scaling.render import STEP_S, WARMUP_S, objective, steps
from kit.model import Spec

LOCUSTFILE, VPA, HPA = "loadtest/locustfile.py", "k8s/scaling/vpa.yaml", "k8s/base/autoscaling.yaml"
CPU_CAP = 0.5        # cores: on a 2-core machine the app gets at most half a core, the generator the rest
TOOL = "locust 2.47.0 (headless, FastHttpUser) + Docker stats"


def static_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    if LOCUSTFILE not in ctx.files:
        return [Evidence("scaling.locustfile", LOCUSTFILE, "the load test script", "skipped",
                         reason="no HTTP path to load: no route besides health and metrics was detected and "
                                "scaling.mix names none")]
    behavior = (rules.hpa_behavior(ctx.files.get(HPA, "")) if spec.option("scaling").mechanism != "keda"
                else rules.hpa_behavior(autoscalers.scaledobject_text(ctx.files), keda=True))
    return [_compiles(ctx), _vpa(spec, ctx), behavior, *autoscalers.checks(spec, ctx.files),
            rules.measured_record(spec, ctx.files)]


def _compiles(ctx: VerifyContext) -> Evidence:
    try:
        compile(ctx.files[LOCUSTFILE], LOCUSTFILE, "exec")
        ok, reason = True, ""
    except SyntaxError as exc:
        ok, reason = False, f"line {exc.lineno}: {exc.msg}"
    return Evidence("scaling.locustfile", LOCUSTFILE, "the locustfile is valid Python (it is also run for real)",
                    "passed" if ok else "failed", tool="python compile()", reason=reason)


def _vpa(spec: Spec, ctx: VerifyContext) -> Evidence:
    vpa = yaml.safe_load(ctx.files[VPA]) or {}
    deployment = yaml.safe_load(ctx.files.get("k8s/base/deployment.yaml", "")) or {}
    problems = []
    if (vpa.get("spec") or {}).get("updatePolicy", {}).get("updateMode") != "Off":
        problems.append("updateMode is not \"Off\": a VPA acting on pods would fight the CPU HPA")
    ref = (vpa.get("spec") or {}).get("targetRef") or {}
    if (ref.get("kind"), ref.get("name")) != (deployment.get("kind"), (deployment.get("metadata") or {}).get("name")):
        problems.append(f"targetRef {ref} does not name the Deployment in k8s/base/deployment.yaml")
    containers = [c["name"] for c in ((deployment.get("spec") or {}).get("template") or {}).get("spec", {})
                  .get("containers", [])]
    policies = ((vpa.get("spec") or {}).get("resourcePolicy") or {}).get("containerPolicies") or []
    if any(p.get("containerName") not in (*containers, "*") for p in policies):
        problems.append(f"a containerPolicy names no container of the Deployment ({containers})")
    return Evidence("scaling.vpa", VPA, "the VPA recommends only (updateMode Off) for the Deployment kit generates",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems))


def sandbox_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    ids = ("scaling.loadtest", "scaling.generator", "scaling.mix", "scaling.scaleout", "scaling.sizing",
           "scaling.simulation")
    from kit.core.session import existing_image
    if LOCUSTFILE not in ctx.files:
        return [Evidence(i, LOCUSTFILE, i, "skipped", reason="no HTTP path to load") for i in ids]
    from kit.config import Settings
    if not Settings.load().loadtest:
        return [Evidence(i, LOCUSTFILE, i, "skipped", reason="KIT_LOADTEST=off: the load test was turned off "
                         "for this run") for i in ids]
    if not existing_image(spec, ctx):
        return [Evidence(i, LOCUSTFILE, i, "skipped", reason="the image did not build") for i in ids]
    from kit.families.container.checks import unhealthy_verdict
    unhealthy = unhealthy_verdict(ctx)
    if unhealthy:
        return [Evidence(i, LOCUSTFILE, i, "skipped", reason=f"the container run failed first ({unhealthy}); "
                         "there is no healthy app to load") for i in ids]
    try:
        run = measure(spec, ctx)
    except (SandboxError, RuntimeError, OSError) as exc:
        return [Evidence("scaling.loadtest", LOCUSTFILE, "the load test runs", "failed", tool=TOOL,
                         reason=str(exc), log=getattr(exc, "logs", ""))]
    records = [run.record, run.generator, run.mix]
    records.append(run.scaleout or Evidence("scaling.scaleout", "compose.yaml", "two replicas behind a load "
                                            "balancer", "skipped", reason="no per-pod capacity was measured"))
    if run.capacity_rps > 0:
        sizing_record, sized = rules.sizing_record(spec, ctx.files, run)
        records.append(sizing_record)
        records.append(rules.simulation_record(spec, ctx.files, run, sized))
    ctx.facts["scaling"] = run
    return records


class Run:
    """One load test's results, as the records and the sizing read them."""

    def __init__(self, steps_: list[loadtest.Step], capacity: float, broke: bool, cpu_limit: float,
                 memory_limit: str, time_to_healthy_s: float, record: Evidence, generator: Evidence, mix: Evidence):
        self.steps, self.capacity_rps, self.broke, self.cpu_limit = steps_, capacity, broke, cpu_limit
        self.memory_limit, self.time_to_healthy_s = memory_limit, time_to_healthy_s
        self.record, self.generator, self.mix = record, generator, mix
        self.scaleout: Evidence | None = None


def host_note(before: float, after: float) -> dict:
    """The host's one-minute load average around the run: on a machine shared with other work the
    measured tail latency includes theirs."""
    cores = os.cpu_count() or 1
    worst = round(max(before, after), 2)
    return {"load_average": worst, "cores": cores, "busy": worst > 1.5 * cores}


def declared_limits(spec: Spec, files: dict[str, str]) -> tuple[float, str]:
    """The app's CPU (cores) and memory limits as compose.yaml declares them."""
    app = ((yaml.safe_load(files.get("compose.yaml", "")) or {}).get("services") or {}).get(spec.name) or {}
    limits = ((app.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    return float(limits.get("cpus", spec.cpu)), str(limits.get("memory", f"{spec.memory // 2**20}m"))


def _time_to_healthy(ctx: VerifyContext, fallback: float) -> float:
    for record in ctx.evidence.get("container", []):
        if record.check == "container.healthy" and record.passed:
            return float(record.figures.get("time_to_healthy_s", fallback))
    return fallback


def measure(spec: Spec, ctx: VerifyContext) -> Run:
    from kit.sandbox.compose_run import run_stack
    from kit.sandbox.engine import docker
    declared_cpu, memory = declared_limits(spec, ctx.files)
    cap = min(declared_cpu, CPU_CAP)
    images = {dep.image: ctx.standin(dep.image) for dep in spec.dependencies}
    standins = {real: used for real, used in images.items() if real != used}
    goal = objective(spec)
    offered = steps()
    limits = {"deploy": {"resources": {"limits": {"cpus": f"{cap:g}", "memory": memory}}}}
    locustfile = Path(ctx.staged) / LOCUSTFILE
    lb_image = ctx.standin(scaleout.LB_IMAGE)
    extra = {spec.name: limits, scaleout.LB: scaleout.lb_service(Path(ctx.staged), spec, lb_image)}
    start = time.monotonic()
    load_before = os.getloadavg()[0]
    scaled = None
    with run_stack(spec, ctx.staged, ctx.image, images, extra=extra) as stack:
        container = docker("compose", "-p", stack.project, "ps", "-q", spec.name, cwd=ctx.staged).stdout.strip()
        with loadtest.StatsRecorder(container) as stats:
            data, output, argv = loadtest.run_locust(locustfile, stack.url, STEP_S, offered)
        up_s = stack.up_seconds
        capacity = loadtest.capacity_of(loadtest.summarise(data, stats.samples, offered, goal["threshold_s"],
                                                           goal["objective"], goal["error_budget"], WARMUP_S))[0]
        if capacity > 0:
            scaled = scaleout.compare(spec, stack, locustfile, capacity,
                                      {**standins, scaleout.LB_IMAGE: lb_image}, offered[-1])
    per_step = loadtest.summarise(data, stats.samples, offered, goal["threshold_s"], goal["objective"],
                                  goal["error_budget"], WARMUP_S)
    capacity, at, broke = loadtest.capacity_of(per_step)
    host = host_note(load_before, os.getloadavg()[0])
    ok = capacity > 0 and bool(stats.samples)
    table = [s.as_dict() for s in per_step]
    note = (f"the objective broke at {next(s.offered_rps for s in per_step if not s.holds):g} rps offered"
            if broke else f"every step held: the capacity is at least {capacity:g} rps (the steps end at "
                          f"{offered[-1]:g})")
    proof = (f"a real Locust load against the app image kit built, run by Docker under limits of {cap:g} CPU "
             f"(compose.yaml declares {declared_cpu:g}; capped at {CPU_CAP:g} so that the 2-core machine measures "
             f"the app, not the generator) and {memory} memory, dependencies up through compose; not a kubelet")
    figures = {"capacity_rps": capacity, "objective_broken": broke, "steps": table, "cpu_limit": cap,
               "declared_cpu_limit": declared_cpu, "memory_limit": memory, "stack_up_s": up_s,
               "url": stack.url, "objective": goal, "how": proof, "docker_stats_samples": len(stats.samples),
               "locust_csv": data.get("csv", "")[:2000], "host_load": host}
    if at is not None:
        figures["at_capacity"] = {"cpu": at.app_cpu, "memory_mib": at.app_memory_mib, "p99_ms": at.p99_ms}
        figures["measured_block"] = (f"measured: {{capacity_rps: {capacity:g}, cpu_at_capacity: {at.app_cpu:g}, "
                                     f"memory_mib: {max(s.app_memory_mib for s in per_step):g}, "
                                     f"time_to_healthy_s: {_time_to_healthy(ctx, up_s):g}}}")
    reason = "" if ok else ("no step held the objective" if capacity <= 0 else f"no Docker stats: {stats.error}")
    if host["busy"]:
        reason += "; " if reason else ""
        note += "; "
        busy = (f"the machine was busy (load average {host['load_average']:g} on {host['cores']} cores): other "
                 "processes' CPU adds to the tail latency, so the capacity is a lower bound")
        reason, note = (reason + busy if reason else reason), note + busy
    record = Evidence("scaling.loadtest", LOCUSTFILE, "per-pod capacity measured by a step load within the "
                      "latency objective", "passed" if ok else "failed", tool=TOOL, command=" ".join(argv[1:]),
                      duration_s=round(time.monotonic() - start, 2), reason=reason or note, figures=figures,
                      log=output, standins=standins)
    busiest = max((s.generator_cpu for s in per_step), default=0.0)
    gen_ok = busiest < loadtest.GENERATOR_CPU_LIMIT
    generator = Evidence("scaling.generator", LOCUSTFILE, "the load generator is not the bottleneck",
                         "passed" if gen_ok else "failed", tool="getrusage of the Locust process",
                         figures={"generator_cpu_by_step": [s.generator_cpu for s in per_step],
                                  "limit_cores": loadtest.GENERATOR_CPU_LIMIT, "app_cpu_limit": cap},
                         reason="" if gen_ok else f"Locust used {busiest:g} cores in a step (one process "
                                "saturates near one core): the measurement is the generator's, not the app's")
    by_path = loadtest.failures_by_path(data)
    bad = [f"GET {p} failed {f} of {n}" for p, (n, f) in by_path.items() if n and f / n > 0.5]
    mix = Evidence("scaling.mix", LOCUSTFILE, "every path of the request mix is served",
                   "failed" if bad else "passed", tool="locust", figures={"by_path": by_path},
                   reason="; ".join(bad) + (": the app does not serve it (scaling.mix)" if bad else ""),
                   standins=standins)
    run = Run(per_step, capacity, broke, cap, memory, _time_to_healthy(ctx, up_s), record, generator, mix)
    run.scaleout = scaled
    return run
