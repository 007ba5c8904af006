"""What the live check asks the sandbox Prometheus, through its HTTP API on 127.0.0.1."""
from __future__ import annotations

import json
import re
import time

import yaml

from kit.errors import SandboxError
from kit.evidence import Evidence
from kit.families.observability.dashboard import live_expr
from kit.families.observability.promql import is_recorded, metric_names
from kit.families.observability.promrules import MEMORY_LIMIT
from kit.model import Spec
from kit.sandbox.health import http_get
from kit.sandbox.prometheus import Prometheus

DELIVERABLE = "monitoring/prometheus.yml"
DASHBOARD = "monitoring/grafana/dashboards/service.json"
RULE_FILES = ("monitoring/rules/recording.yml", "monitoring/rules/alerts.yml")
NEEDS = re.compile(r"^From (\S+) \(job")
TOOL = "prometheus 2.42 (stand-in) HTTP API"
UP_TIMEOUT_S, DATA_TIMEOUT_S, ALERT_TIMEOUT_S = 60, 90, 60
NOT_FOUND_PATH = "/kit-sandbox-not-found"
PLATFORM_METRICS = {MEMORY_LIMIT}   # cAdvisor's (Kubernetes); the rules fall back without it, as in compose


class Traffic:
    """A few requests per tick, so request, error and latency series have samples."""

    def __init__(self, url: str, spec: Spec):
        self.urls = [url + p for p in (spec.health_path, NOT_FOUND_PATH) if p]
        self.sent = 0

    def __call__(self) -> None:
        for url in self.urls:
            http_get(url, timeout=3)
            self.sent += 1


def _target_error(spec: Spec, prom: Prometheus) -> str:
    active = prom.api("targets", state="active").get("data", {}).get("activeTargets", [])
    mine = [t for t in active if t.get("labels", {}).get("job") == spec.name]
    return mine[0].get("lastError", "") if mine else f"Prometheus has no target for job {spec.name}"


def target_up(spec: Spec, prom: Prometheus, traffic: Traffic) -> Evidence:
    title = f"Prometheus scrapes {spec.name} at {spec.metrics_path}: up == 1"
    start = time.monotonic()

    def up_or_clear_error():
        result, _ = prom.query(f'up{{job="{spec.name}"}} == 1')
        if result:
            return True
        error = _target_error(spec, prom)
        if "server returned HTTP status" in error and time.monotonic() - start > 3:
            raise SandboxError(error)
        return False
    try:
        _, seconds = prom.wait_for(f"up{{job={spec.name!r}}} == 1", up_or_clear_error, UP_TIMEOUT_S, traffic)
    except SandboxError as exc:
        error = _target_error(spec, prom) or str(exc)
        reason = f"the target is down: {error}"
        if "status 404" in error:
            reason = (f"the app does not serve metrics at {spec.metrics_path}: Prometheus got HTTP 404 from "
                      f"http://{spec.name}:{spec.metrics_port}{spec.metrics_path} (set service.metrics to the path "
                      "the app serves its Prometheus metrics on)")
        return Evidence("observability.live.up", DELIVERABLE, title, "failed", tool=TOOL, reason=reason,
                        log=prom.logs())
    return Evidence("observability.live.up", DELIVERABLE, title, "passed", tool=TOOL, duration_s=seconds,
                    figures={"seconds_to_up": seconds})


def rule_exprs(files: dict[str, str]) -> list[tuple[str, str, bool]]:
    """(name, expr, expected to have data): recording rules have data, alerts stay quiet."""
    out = []
    for rel in RULE_FILES:
        for group in (yaml.safe_load(files[rel]) or {}).get("groups") or []:
            for rule in group.get("rules") or []:
                out.append((rule.get("record") or rule.get("alert"), rule["expr"], "record" in rule))
    return out


def dashboard_exprs(files: dict[str, str]) -> list[tuple[str, str, str]]:
    """(panel title, expr as Prometheus sees it, exporter it needs or "")."""
    out = []
    for panel in json.loads(files[DASHBOARD]).get("panels") or []:
        needs = NEEDS.match(panel.get("description", ""))
        for target in panel.get("targets") or []:
            out.append((panel["title"], live_expr(target["expr"]), needs.group(1) if needs else ""))
    return out


def metrics_present(spec: Spec, files: dict[str, str], prom: Prometheus, traffic: Traffic) -> Evidence:
    """Every metric the rules and the dashboard select is in the app's scrape (a dependency
    exporter's metrics are listed apart: the compose stack runs no exporter)."""
    used = {n for _, e, _ in rule_exprs(files) for n in metric_names(e) if not is_recorded(n)}
    exporter = {n for _, e, needs in dashboard_exprs(files) if needs for n in metric_names(e)}
    used |= {n for _, e, needs in dashboard_exprs(files) if not needs for n in metric_names(e) if not is_recorded(n)}
    used -= PLATFORM_METRICS

    def scraped() -> set[str]:
        names = set(prom.api("label/__name__/values", **{"match[]": f'{{job="{spec.name}"}}'}).get("data") or [])
        return names if used <= names else set()
    try:
        names, seconds = prom.wait_for("every used metric in the scrape", scraped, DATA_TIMEOUT_S, traffic)
        missing = []
    except SandboxError:
        names = set(prom.api("label/__name__/values", **{"match[]": f'{{job="{spec.name}"}}'}).get("data") or [])
        missing, seconds = sorted(used - names), DATA_TIMEOUT_S
    meta = prom.api("targets/metadata", match_target=f'{{job="{spec.name}"}}').get("data") or []
    families = sorted({(m.get("metric", ""), m.get("type", ""), m.get("help", "")) for m in meta})
    return Evidence("observability.live.metrics", DELIVERABLE, "every metric the rules and dashboard use is in the "
                    "app's scrape", "failed" if missing else "passed", tool=TOOL, duration_s=seconds,
                    reason=f"not in the scrape of job {spec.name}: {', '.join(missing)}" if missing else "",
                    figures={"metrics_used": len(used), "metric_families_scraped": len(names),
                             "used": sorted(used), "exporter_metrics_not_scraped": sorted(exporter),
                             "platform_metrics_not_scraped": sorted(PLATFORM_METRICS),
                             "families": [list(f) for f in families]})


def rules_healthy(prom: Prometheus) -> Evidence:
    groups = prom.api("rules").get("data", {}).get("groups", [])
    rules = [r for g in groups for r in g.get("rules", [])]
    bad = [f"{r.get('name')}: {r.get('lastError')}" for r in rules if r.get("health") != "ok"]
    return Evidence("observability.live.rules", "monitoring/rules/", "Prometheus loaded every rule and evaluates "
                    "each without error", "failed" if bad or not rules else "passed", tool=TOOL,
                    reason="; ".join(bad[:5]) or ("" if rules else "no rules loaded"),
                    figures={"groups": len(groups), "rules": len(rules)})


def queries(spec: Spec, files: dict[str, str], prom: Prometheus, traffic: Traffic) -> Evidence:
    """Every rule and dashboard expression through /api/v1/query: none errors, and the ones
    expected to have data (recording rules, the app's panels) return samples."""
    exprs = [(f"rule {n}", e, data) for n, e, data in rule_exprs(files)]
    exprs += [(f"panel {t}", e, not needs) for t, e, needs in dashboard_exprs(files)]

    def evaluate():
        results = [(label, *prom.query(e), want) for label, e, want in exprs]
        pending = [label for label, res, err, want in results if want and not res and not err]
        return results if not pending else None
    try:
        results, seconds = prom.wait_for("every expected expression to return samples", evaluate,
                                         DATA_TIMEOUT_S, traffic)
    except SandboxError:
        results, seconds = [(label, *prom.query(e), want) for label, e, want in exprs], DATA_TIMEOUT_S
    errors = [f"{label}: {err}" for label, _, err, _ in results if err]
    empty = [label for label, res, err, want in results if want and not res and not err]
    problems = errors + [f"{label}: no samples" for label in empty]
    return Evidence("observability.live.queries", "monitoring/", "every rule and dashboard expression evaluates "
                    "without error; recording rules and the app's panels return samples",
                    "failed" if problems else "passed", tool=TOOL, duration_s=seconds,
                    reason="; ".join(problems[:6]),
                    figures={"evaluated": len(results), "with_samples": sum(1 for r in results if r[1]),
                             "expected_samples": sum(1 for r in results if r[3]), "errors": len(errors),
                             "requests_sent": traffic.sent})


SERIES_POINTS = 20


def series(spec: Spec, prom: Prometheus, start: float, traffic: Traffic) -> dict[str, list]:
    """Live series for the notebook: request rate and latency quantiles, collected (traffic
    flowing) until the request rate has SERIES_POINTS points."""
    def enough():
        found = _series(spec, prom, start, time.time())
        rate = next(iter(found.values()), [])
        return found if len(rate) >= SERIES_POINTS else None
    try:
        return prom.wait_for(f"{SERIES_POINTS} points of request rate", enough, 60, traffic)[0]
    except SandboxError:
        return _series(spec, prom, start, time.time())


def _series(spec: Spec, prom: Prometheus, start: float, end: float) -> dict[str, list]:
    slo = spec.option("slo")
    m, sel = slo.metrics, f'job="{spec.name}"'
    wanted = {}
    if m.requests:
        wanted["request rate (req/s)"] = f"sum(rate({m.requests}{{{sel}}}[5s]))"
    if m.duration:
        for q in (0.5, 0.95, 0.99):
            wanted[f"p{int(q * 100)} latency (s)"] = (f"histogram_quantile({q}, sum by (le) "
                                                     f"(rate({m.duration}_bucket{{{sel}}}[5s])))")
    out = {}
    for label, expr in wanted.items():
        result = prom.query_range(expr, start, end)
        out[label] = [[round(float(t) - start, 1), float(v)] for t, v in (result[0]["values"] if result else [])
                      if v not in ("NaN", "+Inf", "-Inf")]
    return out


def target_down(spec: Spec, stack, prom: Prometheus) -> Evidence:
    """Stop the app: TargetDown goes pending, then firing (sandbox `for:` 5s)."""
    title = "stopping the app makes TargetDown go pending, then firing"
    timeline: list[list] = []
    start = time.monotonic()
    stack.compose("stop", spec.name)

    def state():
        alerts = prom.api("alerts").get("data", {}).get("alerts", [])
        now = [a["state"] for a in alerts if a["labels"].get("alertname") == "TargetDown"
               and a["labels"].get("job") == spec.name]
        current = now[0] if now else "inactive"
        if not timeline or timeline[-1][1] != current:
            timeline.append([round(time.monotonic() - start, 2), current])
        return current == "firing"
    try:
        _, seconds = prom.wait_for("TargetDown to fire", state, ALERT_TIMEOUT_S)
    except SandboxError as exc:
        return Evidence("observability.live.target_down", "monitoring/rules/alerts.yml", title, "failed", tool=TOOL,
                        reason=f"{exc}; states seen: {timeline}", figures={"timeline": timeline})
    states = [s for _, s in timeline]
    ok = "pending" in states and states.index("pending") < states.index("firing")
    at = {s: t for t, s in reversed(timeline)}
    return Evidence("observability.live.target_down", "monitoring/rules/alerts.yml", title,
                    "passed" if ok else "failed", tool=f"docker compose stop + {TOOL}", duration_s=seconds,
                    reason="" if ok else f"never seen pending before firing: {timeline}",
                    figures={"pending_after_s": at.get("pending"), "firing_after_s": at.get("firing"),
                             "for": "5s (sandbox; generated 2m)", "timeline": timeline})


def json_logs(spec: Spec, stack) -> Evidence:
    """The app's stdout in the running stack is one JSON object per line (what Fluent Bit's
    JSON parser and the json-file driver expect); stderr (the server's own lines) is apart."""
    from kit.sandbox.engine import docker
    title = "the app writes its logs to stdout as one JSON object per line"
    ids = docker("compose", "-p", stack.project, "ps", "-q", spec.name, cwd=stack.staged, check=False).stdout.split()
    if not ids:
        return Evidence("observability.live.json_logs", "monitoring/fluent-bit/fluent-bit.yaml", title, "failed",
                        tool="docker logs", reason=f"no running container for {spec.name}")
    lines = [row for row in docker("logs", ids[0], check=False).stdout.splitlines() if row.strip()]
    bad = []
    for row in lines:
        try:
            if not isinstance(json.loads(row), dict):
                bad.append(row)
        except json.JSONDecodeError:
            bad.append(row)
    # kit recommends JSON lines; an app that logs otherwise still ships (Fluent Bit keeps the raw
    # line), so that is reported as not proven rather than as a broken deliverable
    ok = bool(lines) and not bad
    reason = "" if ok else (f"{len(bad)} of {len(lines)} stdout lines are not JSON objects, e.g. {bad[0][:120]!r}: "
                            "kit recommends one JSON object per line (Fluent Bit then keeps the raw line)"
                            if bad else "the app wrote nothing to stdout during the run, so its log format is "
                            "not proven")
    return Evidence("observability.live.json_logs", "monitoring/fluent-bit/fluent-bit.yaml", title,
                    "passed" if ok else "skipped", tool="docker logs (stdout only)", reason=reason,
                    figures={"stdout_lines": len(lines), "json_lines": len(lines) - len(bad)},
                    log="\n".join(lines[-3:])[:600])
