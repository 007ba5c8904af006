"""kit's structural rules for the monitoring deliverables (no external tool): each returns
Evidence naming every problem it finds."""
from __future__ import annotations

import json

import yaml

from kit.evidence import Evidence
from kit.model import Spec

ALERTS = "monitoring/rules/alerts.yml"
DASHBOARD = "monitoring/grafana/dashboards/service.json"
DATASOURCES = "monitoring/grafana/provisioning/datasources/prometheus.yml"
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")


def _record(check: str, deliverable: str, title: str, problems: list[str], **figures) -> Evidence:
    return Evidence(check, deliverable, title, "failed" if problems else "passed", tool="kit",
                    reason="; ".join(problems), figures=figures)


def alert_rules(text: str) -> list[dict]:
    data = yaml.safe_load(text) or {}
    return [r for g in data.get("groups") or [] for r in g.get("rules") or [] if "alert" in r]


def test_coverage(alerts_text: str, tests_text: str) -> dict:
    """Every alert has a case expecting it to fire and one expecting silence."""
    names = [r["alert"] for r in alert_rules(alerts_text)]
    cases = (yaml.safe_load(tests_text) or {}).get("tests") or []
    fires, silent = set(), set()
    for case in cases:
        for t in case.get("alert_rule_test") or []:
            (fires if t.get("exp_alerts") else silent).add(t.get("alertname"))
    problems = [f"{n} has no test where it fires" for n in names if n not in fires]
    problems += [f"{n} has no test where it stays silent" for n in names if n not in silent]
    return {"problems": problems, "figures": {"alerts": len(names), "test_cases": len(cases),
                                              "alerts_fire_tested": len(fires & set(names)),
                                              "alerts_silence_tested": len(silent & set(names))}}


def annotations(files: dict[str, str]) -> Evidence:
    """Every alert has summary, description and runbook_url, a severity, and a runbook page."""
    problems = []
    rules = alert_rules(files[ALERTS])
    for rule in rules:
        missing = [a for a in REQUIRED_ANNOTATIONS if not (rule.get("annotations") or {}).get(a)]
        if missing:
            problems.append(f"{rule['alert']} lacks {', '.join(missing)}")
        severity = str((rule.get("labels") or {}).get("severity"))
        if severity not in ("page", "warn") and not (severity.endswith("ticket{{ else }}page{{ end }}")):
            problems.append(f"{rule['alert']} has no severity page or warn (or kit's page-in-prod-only template)")
        if f"monitoring/runbooks/{rule['alert']}.md" not in files:
            problems.append(f"{rule['alert']} has no runbook page monitoring/runbooks/{rule['alert']}.md")
    return _record("observability.annotations", ALERTS, "every alert has summary, description, runbook_url, a "
                   "severity and a generated runbook page", problems, alerts=len(rules))


SECRET_KEYS = ("password", "credentials", "api_key", "token", "secret", "routing_key", "service_key", "api_url")


def _keys(node: object) -> list[str]:
    if isinstance(node, dict):
        return [k for key, value in node.items() for k in (str(key), *_keys(value))]
    if isinstance(node, list):
        return [k for item in node for k in _keys(item)]
    return []


def alertmanager_policy(text: str) -> Evidence:
    data = yaml.safe_load(text) or {}
    route, problems = data.get("route") or {}, []
    matchers = [m for r in route.get("routes") or [] for m in r.get("matchers") or []]
    for severity in ("page", "warn"):
        if f'severity="{severity}"' not in matchers:
            problems.append(f"no route for severity={severity}")
    if not route.get("group_by"):
        problems.append("the route does not group alerts")
    if not any('severity="page"' in (r.get("source_matchers") or []) and 'severity="warn"' in
               (r.get("target_matchers") or []) for r in data.get("inhibit_rules") or []):
        problems.append("no inhibition of warn by page")
    for receiver in data.get("receivers") or []:
        for key in _keys(receiver):
            if any(s in key for s in SECRET_KEYS) and not key.endswith("_file"):
                problems.append(f"receiver {receiver.get('name')} sets {key} (use a *_file setting)")
    return _record("observability.alertmanager_policy", "monitoring/alertmanager.yml", "routes by severity, "
                   "grouping, page inhibits warn, placeholder receivers with no secrets", problems,
                   receivers=len(data.get("receivers") or []))


def dashboard_exprs(files: dict[str, str]) -> list[tuple[dict, str]]:
    from kit.families.observability.dashboard import live_expr
    data = json.loads(files[DASHBOARD])
    return [(p, live_expr(t.get("expr", ""))) for p in data.get("panels") or [] for t in p.get("targets") or []]


def dashboard(files: dict[str, str]) -> Evidence:
    """Unique panel ids, every datasource reference provisioned, every target with an expression."""
    problems = []
    try:
        data = json.loads(files[DASHBOARD])
    except json.JSONDecodeError as exc:
        return _record("observability.dashboard", DASHBOARD, "the dashboard is valid JSON", [str(exc)])
    uids = {d.get("uid") for d in (yaml.safe_load(files[DATASOURCES]) or {}).get("datasources") or []}
    panels = data.get("panels") or []
    ids = [p.get("id") for p in panels]
    problems += [f"panel id {i} is used {ids.count(i)} times" for i in sorted(set(ids), key=str) if ids.count(i) > 1]
    for var in (data.get("templating") or {}).get("list") or []:
        ref = var.get("datasource")
        if var.get("type") == "query" and (not ref or ref.get("uid") not in uids):
            problems.append(f"variable {var.get('name')} references datasource {(ref or {}).get('uid')!r}, not "
                            f"provisioned in {DATASOURCES} ({sorted(uids)})")
    targets = 0
    for panel in panels:
        refs = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets") or []]
        for ref in refs:
            if not ref or ref.get("uid") not in uids:
                problems.append(f"panel {panel.get('id')} ({panel.get('title')}) references datasource "
                                f"{(ref or {}).get('uid')!r}, not provisioned in {DATASOURCES} ({sorted(uids)})")
        for t in panel.get("targets") or []:
            targets += 1
            if not str(t.get("expr", "")).strip():
                problems.append(f"panel {panel.get('id')} ({panel.get('title')}) target {t.get('refId')} has no expr")
        if not panel.get("targets"):
            problems.append(f"panel {panel.get('id')} ({panel.get('title')}) has no targets")
    return _record("observability.dashboard", DASHBOARD, "dashboard: unique panel ids, datasources resolve, "
                   "every target has an expression", problems, panels=len(panels), targets=targets)


def consistency(spec: Spec, files: dict[str, str]) -> Evidence:
    """The scrape target, ServiceMonitor and rules agree with the service model."""
    problems = []
    prom = yaml.safe_load(files["monitoring/prometheus.yml"]) or {}
    job = next((j for j in prom.get("scrape_configs") or [] if j.get("job_name") == spec.name), None)
    if not spec.metrics_path:    # no app scrape at all (rules.scrape_paths says why)
        if job is not None:
            problems.append(f"a scrape job {spec.name} exists but the service has no metrics path")
        if "k8s/monitoring/base/servicemonitor.yaml" in files:
            problems.append("an app ServiceMonitor exists but the service has no metrics path")
    elif job is None:
        problems.append(f"no scrape job named {spec.name}")
    else:
        targets = [t for s in job.get("static_configs") or [] for t in s.get("targets") or []]
        if targets != [f"{spec.name}:{spec.metrics_port}"]:
            problems.append(f"scrape targets {targets} != {spec.name}:{spec.metrics_port}")
        if job.get("metrics_path", "/metrics") != spec.metrics_path:
            problems.append(f"scrape path {job.get('metrics_path')} != service metrics path {spec.metrics_path}")
    if spec.metrics_path:
        sm = next((d for d in yaml.safe_load_all(files.get("k8s/monitoring/base/servicemonitor.yaml", ""))
                   if d and (d.get("metadata") or {}).get("name") == spec.name), {})
        paths = [e.get("path") for e in (sm.get("spec") or {}).get("endpoints") or []]
        if paths != [spec.metrics_path]:
            problems.append(f"ServiceMonitor paths {paths} != {spec.metrics_path}")
        selector = ((sm.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if selector != {"app.kubernetes.io/name": spec.name}:
            problems.append(f"ServiceMonitor selects {selector}, not app.kubernetes.io/name={spec.name}")
    for rule in alert_rules(files[ALERTS]):
        if f'job="{spec.name}"' not in rule["expr"] and f'service="{spec.name}"' not in rule["expr"]:
            problems.append(f"{rule['alert']} does not select job or service {spec.name}")
    return _record("observability.consistency", "monitoring/", "scrape job, target, path and ServiceMonitor match "
                   "the service model; every alert selects the service", problems)


def fluent_bit(spec: Spec, files: dict[str, str]) -> Evidence:
    """Policy: JSON log decoding, Kubernetes metadata, a placeholder output, the overlays' namespaces."""
    problems = []
    data = yaml.safe_load(files["monitoring/fluent-bit/fluent-bit.yaml"]) or {}
    parsers = {p.get("name"): p for p in data.get("parsers") or []}
    pipe = data.get("pipeline") or {}
    inputs, filters, outputs = (pipe.get(k) or [] for k in ("inputs", "filters", "outputs"))
    for i in inputs:
        if i.get("parser") and i["parser"] not in parsers:
            problems.append(f"input {i.get('name')} uses undefined parser {i['parser']}")
        k8s = spec.option("kubernetes")
        for env in k8s.environments:
            if f"_{k8s.namespace}-{env.name}_" not in str(i.get("path", "")):
                problems.append(f"input {i.get('name')} does not tail the logs of the {env.name} overlay's "
                                f"namespace {k8s.namespace}-{env.name}")
    kube = [f for f in filters if f.get("name") == "kubernetes"]
    if not kube:
        problems.append("no kubernetes filter (pod metadata)")
    for f in kube:
        parser = f.get("merge_parser")
        if parser not in parsers or parsers[parser].get("format") != "json":
            problems.append(f"kubernetes filter merge_parser {parser!r} is not a JSON parser")
    if not outputs:
        problems.append("no output")
    for o in outputs:
        if o.get("match") is None:
            problems.append(f"output {o.get('name')} matches nothing")
    daemonset = [d for d in yaml.safe_load_all(files["k8s/monitoring/base/fluent-bit.yaml"]) if d]
    config = next((d["data"]["fluent-bit.yaml"] for d in daemonset if d.get("kind") == "ConfigMap"), "")
    if yaml.safe_load(config) != data:
        problems.append("the DaemonSet's ConfigMap differs from monitoring/fluent-bit/fluent-bit.yaml")
    return _record("observability.fluent_bit", "monitoring/fluent-bit/fluent-bit.yaml", "Fluent Bit: parsers "
                   "defined, JSON logs decoded, Kubernetes metadata, an output; the DaemonSet carries the same "
                   "config", problems, parsers=len(parsers), outputs=len(outputs))


def otel_collector(files: dict[str, str]) -> Evidence:
    """Every pipeline's components are defined, batch runs in each, OTLP ports match kit/core/otel.py."""
    from kit.core.otel import OTLP_GRPC_PORT, OTLP_HTTP_PORT
    data, problems = yaml.safe_load(files["monitoring/otel-collector.yaml"]) or {}, []
    pipelines = ((data.get("service") or {}).get("pipelines")) or {}
    for name, pipe in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for comp in pipe.get(kind) or []:
                if comp not in (data.get(kind) or {}):
                    problems.append(f"pipeline {name} uses undefined {kind[:-1]} {comp}")
        if "batch" not in (pipe.get("processors") or []):
            problems.append(f"pipeline {name} has no batch processor")
    protocols = (((data.get("receivers") or {}).get("otlp") or {}).get("protocols")) or {}
    for proto, port in (("grpc", OTLP_GRPC_PORT), ("http", OTLP_HTTP_PORT)):
        if not str((protocols.get(proto) or {}).get("endpoint", "")).endswith(f":{port}"):
            problems.append(f"OTLP {proto} does not listen on {port} (the app's OTEL_* settings use it)")
    if "traces" not in pipelines:
        problems.append("no traces pipeline")
    return _record("observability.otel_collector", "monitoring/otel-collector.yaml", "OpenTelemetry Collector: "
                   "pipelines reference defined components, batch everywhere, OTLP on kit's ports", problems,
                   pipelines=len(pipelines))


def log_rotation(files: dict[str, str]) -> Evidence:
    """Every compose service logs through json-file with a size cap and a file count."""
    services = (yaml.safe_load(files["compose.yaml"]) or {}).get("services") or {}
    problems = []
    for name, svc in services.items():
        logging = (svc or {}).get("logging") or {}
        options = logging.get("options") or {}
        if logging.get("driver") != "json-file" or not options.get("max-size") or not options.get("max-file"):
            problems.append(f"{name} does not rotate its json-file logs (max-size, max-file)")
    return _record("observability.log_rotation", "compose.yaml", "compose rotates every service's logs "
                   "(json-file, max-size, max-file)", problems, services=len(services))
