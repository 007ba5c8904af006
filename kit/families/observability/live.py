"""The live check: the generated compose stack plus a real Prometheus (Debian's 2.42 as a
stand-in image) loading the generated config and rules, shortened for the sandbox."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from kit.core.context import VerifyContext
from kit.errors import SandboxError
from kit.evidence import Evidence
from kit.families.observability import evaluate as ev
from kit.families.observability.files import shorten_for
from kit.model import Spec
from kit.sandbox.compose_run import leftovers, run_stack
from kit.sandbox.prometheus import REAL_IMAGE, Prometheus, run_prometheus, stack_network

DELIVERABLE = "monitoring/prometheus.yml"
SANDBOX_DIR = "kit-monitoring-sandbox"
INTERVAL, FOR = "1s", "5s"
CHANGES = (f"sandbox copy: scrape and evaluation interval {INTERVAL} (generated: 15s), scrape_timeout {INTERVAL}, "
           f"every `for:` {FOR} (generated: 2m to 15m), alerting section dropped (no Alertmanager image here)")
IDS = ("observability.live.up", "observability.live.metrics", "observability.live.rules",
       "observability.live.queries", "observability.live.json_logs", "observability.live.target_down")


def sandbox_config(ctx: VerifyContext) -> Path:
    """The generated prometheus.yml and rules, with the sandbox's shorter intervals."""
    folder = ctx.staged / SANDBOX_DIR
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "rules").mkdir(parents=True)
    config = yaml.safe_load(ctx.files[DELIVERABLE])
    config["global"].update({"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL})
    config.pop("alerting", None)
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for rel in ("monitoring/rules/recording.yml", "monitoring/rules/alerts.yml"):
        (folder / "rules" / Path(rel).name).write_text(shorten_for(ctx.files[rel], FOR))
    for path in [folder, folder / "rules", *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def _skipped(reason: str) -> list[Evidence]:
    return [Evidence(i, DELIVERABLE, i, "skipped", reason=reason) for i in IDS]


def sandbox_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    from kit.core.session import existing_image
    from kit.families.container.checks import unhealthy_verdict
    if not existing_image(spec, ctx):
        return _skipped("the image did not build")
    if not spec.metrics_path:
        return _skipped("the service exposes no metrics path (service.metrics), so there is nothing to scrape")
    unhealthy = unhealthy_verdict(ctx)
    if unhealthy:
        return _skipped(f"the container run failed first ({unhealthy})")
    images = {dep.image: ctx.standin(dep.image) for dep in spec.dependencies}
    prom_image = ctx.standin(REAL_IMAGE)
    standins = {real: used for real, used in {**images, REAL_IMAGE: prom_image}.items() if real != used}
    folder = sandbox_config(ctx)
    records: list[Evidence] = []
    project = ""
    try:
        with run_stack(spec, ctx.staged, ctx.image, images) as stack:
            project = stack.project
            with run_prometheus(folder, stack_network(project), prom_image) as prom:
                records = live_records(spec, ctx, stack, prom)
    except SandboxError as exc:
        done = {r.check for r in records}
        records += [Evidence(i, DELIVERABLE, i, "failed", reason=str(exc), log=exc.logs, tool="prometheus (stand-in)")
                    for i in IDS if i not in done][:1]
    for r in records:
        r.standins = standins
        r.figures.setdefault("sandbox", CHANGES)
    if project:
        left = leftovers(project)
        records.append(Evidence("observability.live.cleanup", DELIVERABLE, "the stack and Prometheus leave nothing "
                                "behind", "failed" if any(left.values()) else "passed", tool="docker", figures=left))
    return records


def live_records(spec: Spec, ctx: VerifyContext, stack, prom: Prometheus) -> list[Evidence]:
    traffic = ev.Traffic(stack.url, spec)
    up = ev.target_up(spec, prom, traffic)
    if not up.passed:
        return [up] + [Evidence(i, DELIVERABLE, i, "skipped", reason="the app target is not up") for i in IDS[1:]]
    started = time.time() - up.duration_s
    records = [up, ev.metrics_present(spec, ctx.files, prom, traffic)]
    records.append(ev.rules_healthy(prom))
    records.append(ev.queries(spec, ctx.files, prom, traffic))
    records[-1].figures["series"] = ev.series(spec, prom, started, traffic)
    records.append(ev.json_logs(spec, stack))
    records.append(ev.target_down(spec, stack, prom))
    return records
