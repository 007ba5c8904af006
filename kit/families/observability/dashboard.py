"""The Grafana dashboard: RED (rate, errors, duration) for the service, saturation, the SLO
burn rates, and its dependencies' key panels (from the exporters kit deploys beside them)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from kit.families.observability import exporters
from kit.families.observability.options import Slo
from kit.families.observability.promrules import memory_ratio
from kit.families.observability.sli import excluded_paths
from kit.model import Spec

DATASOURCE_UID = "prometheus"
RATE = "$__rate_interval"
NAMESPACE = 'namespace=~"$namespace"'     # the dashboard's namespace variable (compose, or an overlay's)
DEPENDENCY_PANELS = {   # kind -> [(title, expr with {sel}, unit)], from the dependency's exporter (exporters.py)
    "postgres": [("PostgreSQL up", "pg_up{{{sel}}}", "none"),
                 ("PostgreSQL connections", "sum by (namespace) (pg_stat_database_numbackends{{{sel}}})", "none")],
    "redis": [("Redis up", "redis_up{{{sel}}}", "none"),
              ("Redis memory used", "redis_memory_used_bytes{{{sel}}}", "bytes")],
}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str
    source: str = ""        # the exporter producing it (job), "" for the app's own metrics


def _panel(pid: int, title: str, targets: list[Target], unit: str, x: int, y: int, w: int = 12) -> dict:
    sources = sorted({t.source for t in targets if t.source})
    described = {"description": f"From {sources[0]}, deployed beside the dependency by kit"} if sources else {}
    return {"id": pid, "type": "timeseries", "title": title, **described,
            "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
            "gridPos": {"h": 8, "w": w, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + i), "expr": t.expr, "legendFormat": t.legend,
                         "datasource": {"type": "prometheus", "uid": DATASOURCE_UID}}
                        for i, t in enumerate(targets)]}


def panel_specs(spec: Spec, slo: Slo) -> list[tuple[str, list[Target], str]]:
    m, sel = slo.metrics, f'job="{spec.name}",{NAMESPACE}'
    sli = sel + excluded_paths(spec, slo)       # probe and scrape requests left out, as in the SLO rules
    rows: list[tuple[str, list[Target], str]] = [("Targets up", [Target(f"up{{{sel}}}", "{{namespace}} {{instance}}")],
                                                  "none")] if spec.metrics_path else []   # not scraped without
    if m.requests and spec.metrics_path:
        total = f"sum by (namespace) (rate({m.requests}{{{sli}}}[{RATE}]))"
        rows += [
            ("Request rate by status", [Target(f"sum by (namespace, {m.status_label}) (rate({m.requests}{{{sel}}}[{RATE}]))",
                                               f"{{{{namespace}}}} {{{{{m.status_label}}}}}")], "reqps"),
            ("Error ratio (5xx)", [Target(f'(sum by (namespace) (rate({m.requests}{{{sli},{m.status_label}=~"5.."}}[{RATE}]))'
                                          f" or 0 * {total}) / {total}", "{{namespace}} 5xx share")], "percentunit")]
    if m.duration and spec.metrics_path:
        rows.append(("Latency quantiles", [
            Target(f"histogram_quantile({q}, sum by (namespace, le) (rate({m.duration}_bucket{{{sli}}}[{RATE}])))",
                   f"{{{{namespace}}}} p{int(q * 100)}")
            for q in (0.5, 0.95, 0.99)], "s"))
    if m.requests and spec.metrics_path:
        rows.append(("SLO error ratio (5m) vs objective", [
            Target(f'slo:sli_error:ratio_rate5m{{service="{spec.name}",{NAMESPACE}}}', "{{namespace}} {{slo}}")],
            "percentunit"))
    if m.in_flight and spec.metrics_path:
        rows.append(("Requests in flight", [Target(f"sum by (namespace) ({m.in_flight}{{{sel}}})", "{{namespace}}")],
                     "none"))
    if spec.metrics_path and spec.option("slo").process_metrics:
        rows += [("CPU (share of the base limit)", [Target(f"rate(process_cpu_seconds_total{{{sel}}}[{RATE}]) / {spec.cpu:g}",
                                                  "{{namespace}} {{instance}}")], "percentunit"),
                 ("Memory (share of the container's limit)",
                  [Target(memory_ratio(spec).replace(f'{{job="{spec.name}"}}', f"{{{sel}}}"),
                          "{{namespace}} {{instance}}")], "percentunit")]
    for dep in exporters.watched(spec):
        source, sel = f"{exporters.KINDS[dep.kind].program} (job {exporters.job(dep)})", f'job="{exporters.job(dep)}",{NAMESPACE}'
        rows += [(f"{dep.name}: {title}", [Target(expr.format(sel=sel), "{{namespace}}", source)], unit)
                 for title, expr, unit in DEPENDENCY_PANELS[dep.kind]]
    return rows


def dashboard(spec: Spec, slo: Slo) -> dict:
    panels = [_panel(i + 1, title, targets, unit, x=(i % 2) * 12, y=(i // 2) * 8)
              for i, (title, targets, unit) in enumerate(panel_specs(spec, slo))]
    return {"uid": f"kit-{spec.name}"[:40], "title": f"{spec.name} service (RED)", "schemaVersion": 39,
            "version": 1, "editable": True, "timezone": "utc", "tags": ["kit", spec.name],
            "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
            "templating": {"list": [namespace_variable(spec)]}, "annotations": {"list": []}, "panels": panels}


def namespace_variable(spec: Spec) -> dict:
    """$namespace: compose, or the Kubernetes overlays' namespaces; All by default."""
    jobs = [spec.name] if spec.metrics_path else [exporters.job(d) for d in exporters.watched(spec)]
    job = f'job="{jobs[0]}"' if len(jobs) == 1 else f'job=~"{"|".join(jobs or [spec.name])}"'
    query = f"label_values(up{{{job}}}, namespace)"   # the app's job, or its exporters' when it is not scraped
    return {"name": "namespace", "label": "namespace", "type": "query",
            "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
            "definition": query, "query": {"query": query, "refId": "namespace"}, "refresh": 2,
            "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1}


def dashboard_json(spec: Spec, slo: Slo) -> str:
    return json.dumps(dashboard(spec, slo), indent=2, sort_keys=False) + "\n"


def live_expr(expr: str, window: str = "1m") -> str:
    """A dashboard expression as Prometheus itself evaluates it (Grafana's variables filled:
    the rate window, and every namespace)."""
    return expr.replace(RATE, window).replace("$namespace", ".*")
