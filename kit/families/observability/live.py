"""The live check: the generated compose stack with its monitoring override (compose.yaml +
monitoring/compose.monitoring.yaml) on stand-in images: Prometheus, Alertmanager and the
dependencies' exporters run as generated, with the sandbox's shorter intervals, and a local
webhook receiver takes Alertmanager's notifications. One stack serves every live check."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import yaml

from kit.core.context import VerifyContext
from kit.errors import SandboxError
from kit.evidence import Evidence
from kit.families.observability import alerting
from kit.families.observability import evaluate as ev
from kit.families.observability.files import shorten_for
from kit.model import Spec
from kit.sandbox.compose_run import leftovers, run_stack
from kit.sandbox.prometheus import Prometheus

DELIVERABLE = "monitoring/prometheus.yml"
MONITORING = "monitoring/compose.monitoring.yaml"
SANDBOX_DIR = "kit-monitoring-sandbox"
NOT_RUN = ("grafana", "otel-collector")    # no stand-in image here: checked statically only
INTERVAL, FOR, INHIBITED_FOR = "1s", "5s", "8s"
SANDBOX_ENVS = ("dev", "prod")             # the app is also scraped under these overlays' namespaces
CHANGES = (f"sandbox copy: scrape and evaluation interval {INTERVAL} (generated: 15s), scrape_timeout {INTERVAL}, "
           f"every `for:` {FOR} (generated: 2m to 15m); the app scraped three times, as namespace compose and as "
           f"the dev and prod overlays' namespaces, so routing by environment runs on real alerts; an added warning "
           f"{alerting.INHIBITED} (`up == 0`, for {INHIBITED_FOR}) for the page to inhibit; Alertmanager's group_wait "
           f"{alerting.GROUP_WAIT} and group_interval {alerting.GROUP_INTERVAL} and its webhooks sent to a local "
           f"receiver; {' and '.join(NOT_RUN)} not started (no image here)")
IDS = ("observability.live.up", "observability.live.metrics", "observability.live.rules",
       "observability.live.queries", "observability.live.exporters", "observability.live.json_logs",
       "observability.live.target_down", "observability.live.alert_routing", "observability.live.inhibition")


def sandbox_config(spec: Spec, ctx: VerifyContext) -> Path:
    """The generated prometheus.yml, rules and alertmanager.yml with the sandbox's changes (CHANGES)."""
    folder = ctx.staged / SANDBOX_DIR
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "rules").mkdir(parents=True)
    config = yaml.safe_load(ctx.files[DELIVERABLE])
    config["global"].update({"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL})
    config["rule_files"] = list(config.get("rule_files") or []) + ["rules/kit-sandbox.yml"]
    namespace = spec.option("kubernetes").namespace
    app = next(job for job in config["scrape_configs"] if job["job_name"] == spec.name)
    targets = app["static_configs"][0]["targets"]
    app["static_configs"] += [{"targets": targets, "labels": {"namespace": f"{namespace}-{env}"}} for env in SANDBOX_ENVS]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    for rel in ("monitoring/rules/recording.yml", "monitoring/rules/alerts.yml"):
        (folder / "rules" / Path(rel).name).write_text(shorten_for(ctx.files[rel], FOR))
    (folder / "rules" / "kit-sandbox.yml").write_text(alerting.inhibited_rule(spec, INHIBITED_FOR))
    (folder / "alertmanager.yml").write_text(alerting.sandbox_alertmanager(ctx.files[alerting.ALERTMANAGER]))
    for path in [folder, folder / "rules", *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def monitoring_overrides(ctx: VerifyContext) -> tuple[dict[str, dict], dict[str, str]]:
    """The sandbox's changes to the monitoring override's services (stand-in images, the sandbox
    configs, loopback ports chosen by Docker) and real image -> stand-in for each."""
    services = (yaml.safe_load(ctx.files[MONITORING]) or {}).get("services") or {}
    extra, images = {}, {}
    for name, svc in services.items():
        if name in NOT_RUN:
            extra[name] = {"profiles": ["kit-not-run"]}
        elif (svc or {}).get("image"):
            images[svc["image"]] = ctx.standin(svc["image"])
            extra[name] = {"image": images[svc["image"]], "pull_policy": "never", "restart": "no"}
    here = f"./{SANDBOX_DIR}"
    extra["prometheus"].update({"ports": ["127.0.0.1::9090"], "healthcheck": {"interval": "1s"}, "volumes": [
        f"{here}/prometheus.yml:/etc/prometheus/prometheus.yml:ro", f"{here}/rules:/etc/prometheus/rules:ro",
        "prometheus-data:/prometheus"]})
    extra["alertmanager"].update({"ports": ["127.0.0.1::9093"], "healthcheck": {"interval": "1s"},
                                  "volumes": [f"{here}/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro"]})
    extra[alerting.WEBHOOK] = alerting.webhook_service(ctx.standin("python:3.11-slim-bookworm"))
    return extra, images


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
    sandbox_config(spec, ctx)
    extra, monitoring = monitoring_overrides(ctx)
    standins = {real: used for real, used in {**images, **monitoring}.items() if real != used}
    for secret in (yaml.safe_load(ctx.files[MONITORING]) or {}).get("secrets") or {}:
        (ctx.staged / "secrets").mkdir(exist_ok=True)
        (ctx.staged / "secrets" / secret).write_text("kit-sandbox-placeholder")
    records: list[Evidence] = []
    project = ""
    try:
        with run_stack(spec, ctx.staged, ctx.image, images, files=(MONITORING,), extra=extra,
                       volumes=("prometheus-data", "grafana-data")) as stack:
            project = stack.project
            records = live_records(spec, ctx, stack)
    except SandboxError as exc:
        done = {r.check for r in records}
        records += [Evidence(i, DELIVERABLE, i, "failed", reason=str(exc), log=exc.logs, tool="prometheus (stand-in)")
                    for i in IDS if i not in done][:1]
    for r in records:
        r.standins = standins
        r.figures.setdefault("sandbox", CHANGES)
    if project:
        left = leftovers(project)
        records.append(Evidence("observability.live.cleanup", DELIVERABLE, "the stack and its monitoring leave "
                                "nothing behind", "failed" if any(left.values()) else "passed", tool="docker",
                                figures=left))
    return records


def _container(stack, service: str) -> str:
    from kit.sandbox.engine import docker
    ids = docker("compose", "-p", stack.project, "ps", "-q", service, cwd=stack.staged, check=False).stdout.split()
    return ids[0] if ids else service


def live_records(spec: Spec, ctx: VerifyContext, stack) -> list[Evidence]:
    prom = Prometheus(f"http://127.0.0.1:{stack.port('prometheus', 9090)}", _container(stack, "prometheus"))
    traffic = ev.Traffic(stack.url, spec)
    up = ev.target_up(spec, prom, traffic)
    if not up.passed:
        return [up] + [Evidence(i, DELIVERABLE, i, "skipped", reason="the app target is not up") for i in IDS[1:]]
    started = time.time() - up.duration_s
    records = [up, ev.metrics_present(spec, ctx.files, prom, traffic)]
    records.append(ev.rules_healthy(prom))
    records.append(ev.queries(spec, ctx.files, prom, traffic))
    records[-1].figures["series"] = ev.series(spec, prom, started, traffic)
    records.append(ev.exporters_up(spec, ctx.files, prom))
    records.append(ev.json_logs(spec, stack))
    stopped = time.monotonic()
    records.append(ev.target_down(spec, stack, prom))
    webhook = f"http://127.0.0.1:{stack.port(alerting.WEBHOOK, alerting.WEBHOOK_PORT)}"
    records += alerting.deliveries(spec, webhook, f"http://127.0.0.1:{stack.port('alertmanager', 9093)}", stopped)
    return records
