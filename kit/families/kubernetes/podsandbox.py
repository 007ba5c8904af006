"""Pod sandbox checks: the image under the dev overlay's pod spec, probed like the kubelet."""
from __future__ import annotations

import time
from pathlib import Path

from kit.core.context import VerifyContext
from kit.errors import SandboxError
from kit.evidence import Evidence
from kit.families.kubernetes.pod import PodSandbox, Probe, probe_once, run_pod, translate
from kit.model import Spec
from kit.sandbox.health import CLIENT_ERROR_STREAK

DELIVERABLE = "k8s/base/deployment.yaml"
IDS = ("kubernetes.pod.settings", "kubernetes.pod.startup", "kubernetes.pod.readiness", "kubernetes.pod.liveness")
OVERLAY = "dev"


def _objects(ctx: VerifyContext) -> list[dict]:
    """The dev overlay as static_checks built it, or built now when they did not run."""
    built = ctx.facts.get("k8s_objects", {}).get(OVERLAY)
    if built:
        return built
    from kit.core.k8s import build_overlay
    record, objects = build_overlay(ctx.deliverables, OVERLAY)
    if not record.passed:
        raise SandboxError(f"kubectl kustomize k8s/overlays/{OVERLAY} failed: {record.reason}", logs=record.log)
    return objects


def sandbox_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    from kit.core.session import existing_image
    if not existing_image(spec, ctx):
        return [Evidence(i, DELIVERABLE, i, "skipped", reason="the image did not build") for i in IDS]
    managed = dict(spec.option("kubernetes").managed)
    images = {d.image: ctx.standin(d.image) for d in spec.dependencies if d.name not in managed}
    standins = {real: used for real, used in images.items() if real != used}
    start, records = time.monotonic(), []
    try:
        run = translate(_objects(ctx), spec.name)
        with run_pod(spec, ctx.image, run, images) as pod:
            records.append(settings_evidence(pod))
            timeline: list[dict] = []
            startup = startup_phase(pod, timeline)
            records.append(startup)
            if startup.passed:
                records += steady_phase(pod, timeline)
            else:
                records += [Evidence(i, DELIVERABLE, i, "skipped", reason="the startup probe never passed")
                            for i in IDS[2:]]
            for rec in records:
                rec.standins = standins
            records[-1].figures["timeline"] = timeline
    except SandboxError as exc:
        records = [Evidence(IDS[0], DELIVERABLE, "the app runs under its pod spec", "failed",
                            tool="testcontainers", reason=str(exc), log=exc.logs,
                            duration_s=round(time.monotonic() - start, 2), standins=standins)]
    return records


def settings_evidence(pod: PodSandbox) -> Evidence:
    """The restrictions are really in force: read back from Docker and from inside the container."""
    run, host = pod.run, pod.inspect
    attrs = pod.app.get_wrapped_container().attrs
    problems = []
    expect = {"ReadonlyRootfs": run.read_only, "CapDrop": list(run.cap_drop) or None,
              "Memory": run.mem_limit, "NanoCpus": run.nano_cpus}
    for key, want in expect.items():
        if host.get(key) != want:
            problems.append(f"{key} is {host.get(key)!r}, the pod spec asks {want!r}")
    if run.no_new_privileges and "no-new-privileges:true" not in (host.get("SecurityOpt") or []):
        problems.append("no-new-privileges is not set")
    if sorted(host.get("Tmpfs") or {}) != sorted(run.tmpfs):
        problems.append(f"tmpfs mounts {sorted(host.get('Tmpfs') or {})} differ from the emptyDirs {sorted(run.tmpfs)}")
    if attrs["Config"].get("User") != run.user:
        problems.append(f"user {attrs['Config'].get('User')!r}, the pod spec asks {run.user!r}")
    inside = {}
    alive, code = pod.running()
    if alive and getattr(pod, "shell_less", False):
        # distroless (a Go image): no id, no sh. The uid is the kernel's view of PID 1; the read-only
        # root is Docker's ReadonlyRootfs above, not probed from inside
        status = Path(f"/proc/{attrs['State']['Pid']}/status")
        rows = status.read_text().splitlines() if status.is_file() else []
        inside["id -u"] = next((r.split()[1] for r in rows if r.startswith("Uid:")), "")
        inside["write /"] = "not probed from inside: the image has no shell (ReadonlyRootfs read from Docker)"
        if run.user and inside["id -u"] != run.user.split(":")[0]:
            problems.append(f"the process runs as uid {inside['id -u']}")
    elif alive:
        inside["id -u"] = pod.app.exec(["id", "-u"]).output.decode().strip()
        inside["write /"] = pod.app.exec(["sh", "-c", "touch /kit-probe 2>&1 || echo refused"]).output.decode().strip()
        if run.user and inside["id -u"] != run.user.split(":")[0]:
            problems.append(f"the process runs as uid {inside['id -u']}")
        if run.read_only and "refused" not in inside["write /"]:
            problems.append("writing to / succeeded: the root filesystem is not read-only")
    return Evidence(IDS[0], DELIVERABLE, "the container runs under the pod spec's restrictions "
                    "(user, read-only root with emptyDir tmpfs, no capabilities, no new privileges, limits)",
                    "failed" if problems else "passed", tool="docker inspect + docker exec",
                    reason="; ".join(problems),
                    figures={"user": run.user, "read_only": run.read_only, "tmpfs": sorted(run.tmpfs),
                             "cap_drop": list(run.cap_drop), "memory": run.mem_limit, "nano_cpus": run.nano_cpus,
                             "secret_mounts": [p for p, _ in run.secret_mounts], "inside": inside,
                             "running": alive, "exit_code": code, "not_translated": list(run.not_translated),
                             "env_from_configmap": sorted(run.env)})


def _probe(pod: PodSandbox, probe: Probe, timeline: list[dict]) -> bool:
    alive, code = pod.running()
    if not alive:
        timeline.append({"t": round(time.monotonic() - pod.started, 2), "probe": probe.kind, "ok": False,
                         "detail": f"container exited (code {code})"})
        return False
    ok, detail = probe_once(pod.url, probe)
    timeline.append({"t": round(time.monotonic() - pod.started, 2), "probe": probe.kind, "ok": ok, "detail": detail})
    return ok


def _get(pod: PodSandbox, kind: str) -> Probe | None:
    return next((p for p in pod.run.probes if p.kind == kind), None)


def startup_phase(pod: PodSandbox, timeline: list[dict]) -> Evidence:
    probe = _get(pod, "startupProbe")
    title = "the startup probe passes within its budget (period x failureThreshold)"
    if probe is None:
        return Evidence(IDS[1], DELIVERABLE, title, "failed", tool="kit prober", reason="no startupProbe")
    failures = 0
    while True:
        tick = time.monotonic()
        if _probe(pod, probe, timeline):
            return Evidence(IDS[1], DELIVERABLE, title, "passed", tool="kit prober (kubelet semantics)",
                            duration_s=timeline[-1]["t"],
                            figures={"seconds": timeline[-1]["t"], "probes": failures + 1, "path": probe.path,
                                     "period_s": probe.period, "failure_threshold": probe.failure_threshold})
        failures += 1
        exited = "exited" in timeline[-1]["detail"]
        same_4xx = _client_error_streak(timeline)
        if exited or same_4xx or failures >= probe.failure_threshold:
            if exited:
                why = f"the {timeline[-1]['detail']} before the startup probe passed"
            elif same_4xx:
                why = (f"the startup probe got the same {timeline[-1]['detail']} {CLIENT_ERROR_STREAK} times in a "
                       "row: the path or the app's host check is wrong (the kubelet would go on until "
                       f"{probe.failure_threshold} failures, then restart the container)")
            else:
                why = (f"the startup probe failed {failures} times ({timeline[-1]['detail']}): the kubelet "
                       "would kill and restart the container")
            return Evidence(IDS[1], DELIVERABLE, title, "failed", tool="kit prober (kubelet semantics)",
                            reason=why, duration_s=timeline[-1]["t"], log=pod.logs(),
                            figures={"probes": failures, "path": probe.path})
        time.sleep(max(0.0, probe.period - (time.monotonic() - tick)))


def _client_error_streak(timeline: list[dict]) -> bool:
    """The same HTTP 4xx on the last few probes: deterministic, waiting longer changes nothing."""
    last = [t["detail"] for t in timeline[-CLIENT_ERROR_STREAK:]]
    return (len(last) == CLIENT_ERROR_STREAK and len(set(last)) == 1
            and last[0].startswith("HTTP 4"))


def steady_phase(pod: PodSandbox, timeline: list[dict]) -> list[Evidence]:
    """Readiness and liveness on their own periods, for one full period of the slower one."""
    probes = [p for p in (_get(pod, "readinessProbe"), _get(pod, "livenessProbe")) if p]
    window = max((p.period for p in probes), default=0)
    due = {p.kind: time.monotonic() for p in probes}
    results = {p.kind: [] for p in probes}
    end = time.monotonic() + window
    while time.monotonic() <= end + 0.05:
        for p in probes:
            if time.monotonic() >= due[p.kind]:
                results[p.kind].append(_probe(pod, p, timeline))
                due[p.kind] += p.period
        time.sleep(max(0.0, min(due.values()) - time.monotonic()))
    out = []
    for kind, check, title in (("readinessProbe", IDS[2], "the readiness probe passes: the pod joins the Service"),
                               ("livenessProbe", IDS[3], "the liveness probe keeps passing: no restart")):
        oks, probe = results.get(kind, []), _get(pod, kind)
        if probe is None:
            out.append(Evidence(check, DELIVERABLE, title, "failed", reason=f"no {kind}"))
            continue
        streak = _longest_failure_streak(oks)
        ok = bool(oks) and oks[-1] and (kind == "readinessProbe" or streak < probe.failure_threshold)
        out.append(Evidence(check, DELIVERABLE, title, "passed" if ok else "failed",
                            tool="kit prober (kubelet semantics)",
                            reason="" if ok else f"{oks.count(False)} of {len(oks)} probes failed",
                            log="" if ok else pod.logs(),
                            figures={"probes": len(oks), "passed": oks.count(True), "period_s": probe.period,
                                     "timeout_s": probe.timeout, "failure_threshold": probe.failure_threshold,
                                     "path": probe.path, "window_s": window}))
    return out


def _longest_failure_streak(oks: list[bool]) -> int:
    best = run = 0
    for ok in oks:
        run = 0 if ok else run + 1
        best = max(best, run)
    return best
