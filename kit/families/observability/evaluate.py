"""What the live check asks the sandbox Prometheus, through its HTTP API on 127.0.0.1."""
from __future__ import annotations

import json
import time

import yaml

from kit.errors import SandboxError
from kit.evidence import Evidence
from kit.families.observability.dashboard import live_expr
from kit.families.observability.promql import is_recorded, metric_matchers
from kit.families.observability.sources import PLATFORM_METRICS
from kit.model import Spec
from kit.sandbox.health import http_get
from kit.sandbox.prometheus import Prometheus

DELIVERABLE = "monitoring/prometheus.yml"
DASHBOARD = "monitoring/grafana/dashboards/service.json"
RULE_FILES = ("monitoring/rules/recording.yml", "monitoring/rules/alerts.yml")
TOOL = "prometheus 2.42 (stand-in) HTTP API"
UP_TIMEOUT_S, DATA_TIMEOUT_S, ALERT_TIMEOUT_S = 60, 90, 60
NOT_FOUND_PATH = "/kit-sandbox-not-found"


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


def dashboard_exprs(files: dict[str, str]) -> list[tuple[str, str]]:
    """(panel title, expr as Prometheus sees it)."""
    return [(panel["title"], live_expr(target["expr"])) for panel in json.loads(files[DASHBOARD]).get("panels") or []
            for target in panel.get("targets") or []]


def used_by_job(spec: Spec, files: dict[str, str]) -> dict[str, set[str]]:
    """job -> the scraped metrics the rules and the dashboard select from it (the app's job when
    a selector names none); recorded names, `up` and the platform's metrics left out."""
    exprs = [e for _, e, _ in rule_exprs(files)] + [e for _, e in dashboard_exprs(files)]
    used: dict[str, set[str]] = {}
    for expr in exprs:
        for name, matchers in metric_matchers(expr):
            if is_recorded(name) or name == "up" or name in PLATFORM_METRICS:
                continue
            jobs = [v for label, op, v in matchers if label == "job" and op == "="] or [spec.name]
            for job in jobs:
                used.setdefault(job, set()).add(name)
    return used


def _scraped(prom: Prometheus, job: str) -> set[str]:
    return set(prom.api("label/__name__/values", **{"match[]": f'{{job="{job}"}}'}).get("data") or [])


def metrics_present(spec: Spec, files: dict[str, str], prom: Prometheus, traffic: Traffic) -> Evidence:
    """Every metric the rules and the dashboard select is in the scrape of the job they select it
    from: the app's, or a dependency exporter's."""
    used = used_by_job(spec, files)

    def missing() -> dict[str, list[str]]:
        return {job: sorted(names - _scraped(prom, job)) for job, names in used.items() if names - _scraped(prom, job)}
    try:
        _, seconds = prom.wait_for("every used metric in the scrape", lambda: not missing(), DATA_TIMEOUT_S, traffic)
        absent = {}
    except SandboxError:
        absent, seconds = missing(), DATA_TIMEOUT_S
    meta = prom.api("targets/metadata", match_target=f'{{job="{spec.name}"}}').get("data") or []
    families = sorted({(m.get("metric", ""), m.get("type", ""), m.get("help", "")) for m in meta})
    return Evidence("observability.live.metrics", DELIVERABLE, "every metric the rules and dashboard use is in the "
                    "scrape of the job it is selected from", "failed" if absent else "passed", tool=TOOL,
                    duration_s=seconds, reason="; ".join(f"not in the scrape of job {j}: {', '.join(n)}"
                                                         for j, n in absent.items()),
                    figures={"metrics_used": sum(len(n) for n in used.values()),
                             "metric_families_scraped": len(_scraped(prom, spec.name)),
                             "used": sorted(used.get(spec.name, set())),
                             "exporter_metrics": {j: sorted(n) for j, n in used.items() if j != spec.name},
                             "platform_metrics_not_scraped": sorted(PLATFORM_METRICS),
                             "families": [list(f) for f in families]})


def exporters_up(spec: Spec, files: dict[str, str], prom: Prometheus) -> Evidence:
    """Each dependency's exporter is scraped and reaches its dependency (`<kind>_up` is 1), and
    the dashboard's panels on it return samples."""
    from kit.families.observability import exporters
    values, problems, panels = {}, [], {}
    for dep in exporters.watched(spec):
        job, up_metric = exporters.job(dep), exporters.KINDS[dep.kind].metrics[0]
        result, error = prom.query(f'{up_metric}{{job="{job}",namespace="compose"}}')
        values[job] = {up_metric: float(result[0]["value"][1]) if result else None}
        if error or not result or values[job][up_metric] != 1:
            problems.append(f"{up_metric}{{job={job!r}}} is {values[job][up_metric]} {error}".strip())
        for title, expr in dashboard_exprs(files):
            if f'job="{job}"' in expr:
                panels[title] = len(prom.query(expr)[0])
    problems += [f"panel {t!r} returns no samples" for t, n in panels.items() if not n]
    title = ("the dependencies' exporters run beside them, reach them, and the dashboard's dependency panels "
             "return data")
    if not values:     # nothing to prove: the service has no dependency kit watches with an exporter
        return Evidence("observability.live.exporters", "monitoring/compose.monitoring.yaml", title, "skipped",
                        tool=TOOL, reason="the service has no dependency with an exporter", figures={"up": {}})
    return Evidence("observability.live.exporters", "monitoring/compose.monitoring.yaml", title,
                    "failed" if problems else "passed", tool=TOOL, reason="; ".join(problems),
                    figures={"up": values, "panel_samples": panels})


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
    expected to have data (recording rules, every panel) return samples."""
    exprs = [(f"rule {n}", e, data) for n, e, data in rule_exprs(files)]
    exprs += [(f"panel {t}", e, True) for t, e in dashboard_exprs(files)]

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
                    "without error; recording rules and every dashboard panel return samples",
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
    m, sel = slo.metrics, f'job="{spec.name}",namespace="compose"'   # not the sandbox's overlay copies
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
               and a["labels"].get("job") == spec.name and a["labels"].get("namespace") == "compose"]
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
