"""The Grafana dashboard: RED (rate, errors, duration) for the service, saturation, the SLO
burn rates, and its dependencies' key panels (from their exporters, when those are scraped)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from kit.options.slo import Slo
from kit.spec import Spec

DATASOURCE_UID = "prometheus"
RATE = "$__rate_interval"
DEPENDENCY_PANELS = {   # kind -> (exporter, [(title, expr, unit)])
    "postgres": ("postgres_exporter", [("PostgreSQL up", "pg_up", "none"),
                                       ("PostgreSQL connections", "sum(pg_stat_database_numbackends)", "none")]),
    "redis": ("redis_exporter", [("Redis up", "redis_up", "none"),
                                 ("Redis memory used", "redis_memory_used_bytes", "bytes")]),
}


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str
    needs: str = ""         # an exporter the compose stack does not run: not evaluated live


def _panel(pid: int, title: str, targets: list[Target], unit: str, x: int, y: int, w: int = 12) -> dict:
    needs = sorted({t.needs for t in targets if t.needs})
    described = {"description": f"Needs {needs[0]} scraped by Prometheus (not part of the compose stack)"} if needs else {}
    return {"id": pid, "type": "timeseries", "title": title, **described,
            "datasource": {"type": "prometheus", "uid": DATASOURCE_UID},
            "gridPos": {"h": 8, "w": w, "x": x, "y": y},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(65 + i), "expr": t.expr, "legendFormat": t.legend,
                         "datasource": {"type": "prometheus", "uid": DATASOURCE_UID}}
                        for i, t in enumerate(targets)]}


def panel_specs(spec: Spec, slo: Slo) -> list[tuple[str, list[Target], str]]:
    m, sel = slo.metrics, f'job="{spec.name}"'
    rows: list[tuple[str, list[Target], str]] = [("Targets up", [Target(f"up{{{sel}}}", "{{instance}}")], "none")]
    if m.requests:
        rows += [
            ("Request rate by status", [Target(f"sum by ({m.status_label}) (rate({m.requests}{{{sel}}}[{RATE}]))",
                                               f"{{{{{m.status_label}}}}}")], "reqps"),
            ("Error ratio (5xx)", [Target(f'(sum(rate({m.requests}{{{sel},{m.status_label}=~"5.."}}[{RATE}])) or vector(0))'
                                          f" / sum(rate({m.requests}{{{sel}}}[{RATE}]))", "5xx share")], "percentunit")]
    if m.duration:
        rows.append(("Latency quantiles", [
            Target(f"histogram_quantile({q}, sum by (le) (rate({m.duration}_bucket{{{sel}}}[{RATE}])))", f"p{int(q * 100)}")
            for q in (0.5, 0.95, 0.99)], "s"))
    if m.requests:
        rows.append(("SLO error ratio (5m) vs objective", [
            Target(f'slo:sli_error:ratio_rate5m{{service="{spec.name}"}}', "{{slo}}")], "percentunit"))
    if m.in_flight:
        rows.append(("Requests in flight", [Target(f"sum({m.in_flight}{{{sel}}})", "in flight")], "none"))
    if spec.metrics_path:
        rows += [("CPU (share of limit)", [Target(f"rate(process_cpu_seconds_total{{{sel}}}[{RATE}]) / {spec.cpu:g}",
                                                  "{{instance}}")], "percentunit"),
                 ("Memory (share of limit)", [Target(f"process_resident_memory_bytes{{{sel}}} / {spec.memory}",
                                                     "{{instance}}")], "percentunit")]
    for dep in spec.dependencies:
        exporter, panels = DEPENDENCY_PANELS.get(dep.kind, ("", []))
        rows += [(f"{dep.name}: {title}", [Target(expr, dep.name, needs=exporter)], unit) for title, expr, unit in panels]
    return rows


def dashboard(spec: Spec, slo: Slo) -> dict:
    panels = [_panel(i + 1, title, targets, unit, x=(i % 2) * 12, y=(i // 2) * 8)
              for i, (title, targets, unit) in enumerate(panel_specs(spec, slo))]
    return {"uid": f"kit-{spec.name}"[:40], "title": f"{spec.name} service (RED)", "schemaVersion": 39,
            "version": 1, "editable": True, "timezone": "utc", "tags": ["kit", spec.name],
            "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
            "templating": {"list": []}, "annotations": {"list": []}, "panels": panels}


def dashboard_json(spec: Spec, slo: Slo) -> str:
    return json.dumps(dashboard(spec, slo), indent=2, sort_keys=False) + "\n"


def live_expr(expr: str, window: str = "1m") -> str:
    """A dashboard expression as Prometheus itself evaluates it (Grafana's variables filled)."""
    return expr.replace(RATE, window)
