"""Observability static checks: promtool (config, rules, unit tests), amtool, and kit's own
structural rules (annotations and runbooks, the dashboard, consistency with the Spec)."""
from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from kit.core.context import VerifyContext
from kit.core.tools import tool_version
from kit.evidence import Evidence, run_tool
from kit.families.observability import namespaces as mns
from kit.families.observability import routing, rules, sources
from kit.families.observability import runbook_checks as rbc
from kit.families.observability import structure as struct
from kit.model import Spec

PROM = "monitoring/prometheus.yml"
PROM_K8S = "monitoring/prometheus-kubernetes.yml"
RULES = ("monitoring/rules/recording.yml", "monitoring/rules/alerts.yml")
TESTS = "monitoring/rules/tests.yml"
ALERTMANAGER = "monitoring/alertmanager.yml"
PROMETHEUS_RULE = "k8s/monitoring/base/prometheusrule.yaml"


def _prom() -> str:
    return f"promtool {tool_version(['promtool', '--version'])}"


def _promtool_config(spec: Spec, ctx: VerifyContext) -> Evidence:
    return run_tool("observability.promtool_config", PROM, "promtool check config: the compose scrape config and "
                    "the rule files it loads", ["promtool", "check", "config", PROM], tool=_prom(), cwd=ctx.deliverables)


def _promtool_rules(spec: Spec, ctx: VerifyContext) -> Evidence:
    return run_tool("observability.promtool_rules", "monitoring/rules/", "promtool check rules: recording and "
                    "alerting rules", ["promtool", "check", "rules", *RULES], tool=_prom(), cwd=ctx.deliverables)


def _amtool(spec: Spec, ctx: VerifyContext) -> Evidence:
    return run_tool("observability.amtool", ALERTMANAGER, "amtool check-config: the Alertmanager config",
                    ["amtool", "check-config", ALERTMANAGER], tool=f"amtool {tool_version(['amtool', '--version'])}", cwd=ctx.deliverables)


def _kustomize(spec: Spec, ctx: VerifyContext) -> Evidence:
    """`kubectl kustomize` on every environment's monitoring overlay (each builds the base too): one
    record, failed when any overlay fails, with every command and the failing overlays' output."""
    envs = mns.overlay_envs(ctx.files)
    title = "kubectl kustomize builds each environment's monitoring overlay"
    if not envs:
        return Evidence("observability.kustomize", f"{mns.OVERLAYS}/", title, "failed", tool="kubectl kustomize",
                        reason=f"no monitoring overlay under {mns.OVERLAYS}/")
    runs = {env: run_tool("observability.kustomize", f"{mns.OVERLAYS}/{env}", title,
                          ["kubectl", "kustomize", f"{mns.OVERLAYS}/{env}"], tool="kubectl kustomize",
                          cwd=ctx.deliverables) for env in envs}
    failed = [env for env, r in runs.items() if not r.passed]
    return Evidence("observability.kustomize", f"{mns.OVERLAYS}/", title, "failed" if failed else "passed",
                    tool="kubectl kustomize", command=" && ".join(r.command for r in runs.values()),
                    duration_s=round(sum(r.duration_s for r in runs.values()), 3),
                    reason="; ".join(f"{mns.OVERLAYS}/{env}: {runs[env].reason}" for env in failed),
                    figures={"overlays": envs, "failed": failed},
                    log="\n".join(f"{env}: {runs[env].log}" for env in failed))


def _compose(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    from kit.families.observability.compose_checks import compose_checks
    return compose_checks(spec, ctx)


def _crds(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    from kit.families.observability.crd import crd_checks
    return crd_checks(ctx.files)


def _kubernetes_validate(spec: Spec, ctx: VerifyContext) -> Evidence:
    from kit.families.observability.crd import kubernetes_validate
    return kubernetes_validate(ctx.files)


# evidence id (or id prefix) -> the check producing it, in the order evidence is reported
CHECKS: dict[str, Callable[[Spec, VerifyContext], Evidence | list[Evidence]]] = {
    "observability.slo_rules": lambda spec, ctx: slo_source(spec, ctx.files),
    "observability.promtool_config": _promtool_config,
    "observability.promtool_config_k8s": lambda spec, ctx: kubernetes_config(ctx.deliverables, _prom()),
    "observability.promtool_rules": _promtool_rules,
    "observability.promtool_test": lambda spec, ctx: rule_tests(ctx.files, ctx.deliverables),
    "observability.prometheusrule": lambda spec, ctx: prometheus_rule(ctx.files, _prom()),
    "observability.amtool": _amtool,
    "observability.alertmanager_policy": lambda spec, ctx: struct.alertmanager_policy(ctx.files[ALERTMANAGER]),
    "observability.annotations": lambda spec, ctx: struct.annotations(ctx.files),
    "observability.dashboard": lambda spec, ctx: struct.dashboard(ctx.files),
    "observability.dashboard_promql": lambda spec, ctx: dashboard_promql(ctx.files, _prom()),
    "observability.runbooks": lambda spec, ctx: rbc.runbook_pages(spec, ctx.files),
    "observability.runbook_promql": lambda spec, ctx: runbook_promql(ctx.files, _prom()),
    "observability.runbook_base": lambda spec, ctx: rbc.runbook_base(spec, ctx.files),
    "observability.consistency": lambda spec, ctx: struct.consistency(spec, ctx.files),
    "observability.fluent_bit": lambda spec, ctx: struct.fluent_bit(spec, ctx.files),
    "observability.log_rotation": lambda spec, ctx: struct.log_rotation(ctx.files),
    "observability.otel_collector": lambda spec, ctx: struct.otel_collector(ctx.files),
    "observability.kustomize": _kustomize,
    "observability.compose": _compose,
    "observability.crd": _crds,
    "observability.k8s_schema": _kubernetes_validate,
    "observability.rule.operator_selector": lambda spec, ctx: rules.operator_selector(spec, ctx.files),
    "observability.rule.exported_labels": lambda spec, ctx: rules.exported_labels(spec, ctx.files),
    "observability.rule.fluent_bit_version": lambda spec, ctx: rules.fluent_bit_version(spec, ctx.files),
    "observability.rule.env_routing": lambda spec, ctx: routing.env_routing(spec, ctx),
    "observability.rule.dashboard_sources": lambda spec, ctx: sources.dashboard_sources(spec, ctx.files),
    "observability.rule.otel_sdk": lambda spec, ctx: _otel_sdk(spec, ctx),
    "observability.rule.secret_names": lambda spec, ctx: _secret_names(spec, ctx),
    "observability.rule.scrape_paths": lambda spec, ctx: rules.scrape_paths(spec, ctx.files),
    "observability.rule.dropped_metrics": lambda spec, ctx: rules.dropped_metrics(spec, ctx.files),
    "observability.rule.nonprod_severity": lambda spec, ctx: rules.nonprod_severity(spec, ctx.files),
    "observability.rule.monitoring_namespaces": lambda spec, ctx: mns.monitoring_namespaces(spec, ctx.files),
    "observability.rule.runbook_links": lambda spec, ctx: rbc.runbook_links(spec, ctx.files),
}


def _secret_names(spec: Spec, ctx: VerifyContext) -> Evidence:
    """The exporters' ExternalSecret keys are valid names in the cloud's store: the same rule as
    kubernetes.rule.secret-names (which reads the app overlays), on every environment's monitoring
    overlay (k8s/monitoring/overlays/<env>/exporters.yaml)."""
    from kit.families.kubernetes.secret_names import secret_names_rule
    rels = [f"{mns.OVERLAYS}/{env}/exporters.yaml" for env in mns.overlay_envs(ctx.files)]
    rels = [rel for rel in rels if rel in ctx.files]
    rel = ", ".join(rels) or f"{mns.OVERLAYS}/"
    objects = [d for r in rels for d in yaml.safe_load_all(ctx.files[r]) if d]
    problems = secret_names_rule(spec, objects)
    return Evidence("observability.rule.secret_names", rel, "the exporters' ExternalSecret keys are valid secret "
                    "names in the declared cloud's store", "failed" if problems else "passed", tool="kit",
                    reason="; ".join(problems), figures={"external_secrets": sum(
                        o.get("kind") == "ExternalSecret" for o in objects)})


def _otel_sdk(spec: Spec, ctx: VerifyContext) -> Evidence:
    from kit.core.otel import has_sdk, otel_settings_rule
    problems = otel_settings_rule(spec, ctx.files)
    return Evidence("observability.rule.otel_sdk", "monitoring/compose.monitoring.yaml, k8s/",
                    "OTEL_* settings are given exactly when the app has an OpenTelemetry SDK to read them",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems),
                    figures={"sdk": has_sdk(spec)})


def static_checks(spec: Spec, ctx: VerifyContext, only: str = "") -> list[Evidence]:
    """Every static check; with `only`, just the checks whose id is (a prefix of) it."""
    records: list[Evidence] = []
    for key, check in CHECKS.items():
        if only and not only.startswith(key):
            continue
        result = check(spec, ctx)
        records += result if isinstance(result, list) else [result]
    return records


def slo_source(spec: Spec, files: dict[str, str]) -> Evidence:
    """Where the SLO rules' metric names came from, and that the recording rules on disk use them;
    without a request counter there are none."""
    m = spec.option("slo").metrics
    origin = "detected in the source" if m.detected else "named in the task (slo.metrics)"
    if not m.requests:
        return Evidence("observability.slo_rules", "monitoring/rules/recording.yml", "SLO recording rules and "
                        "burn-rate alerts are generated from the app's request metrics", "skipped",
                        reason="no request counter found in the source (a prometheus_client Counter whose name "
                               "contains 'request'): only target-down, restart and saturation alerts are generated; "
                               "name the metrics in the task: slo.metrics.requests / duration / in_flight")
    recording = files.get("monitoring/rules/recording.yml", "")
    unused = [name for name in (m.requests, m.duration)
              if name and not re.search(rf"\b{re.escape(name)}(_bucket|_count|_sum)?\b", recording)]
    return Evidence("observability.slo_rules", "monitoring/rules/recording.yml", "SLO recording rules and burn-rate "
                    "alerts are generated from the app's request metrics", "failed" if unused else "passed",
                    tool="kit", reason=f"the recording rules do not use {', '.join(unused)}" if unused else "",
                    figures={"requests": m.requests, "duration": m.duration or "(none)",
                             "in_flight": m.in_flight or "(none)", "origin": origin})


def kubernetes_config(root: Path, tool: str) -> Evidence:
    """Debian's promtool is built without Kubernetes service discovery, so a copy with each
    kubernetes_sd_configs replaced by an empty static_configs is checked (relabelling, rule
    files and the rest as written); the evidence says so."""
    data = yaml.safe_load((root / PROM_K8S).read_text()) or {}
    for job in data.get("scrape_configs") or []:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": []}]
    with tempfile.TemporaryDirectory(prefix="kit-prom-") as tmp:
        copy = Path(tmp) / "prometheus-kubernetes.yml"
        copy.write_text(yaml.safe_dump(data, sort_keys=False))
        shutil.copytree(root / "monitoring" / "rules", Path(tmp) / "rules")
        record = run_tool("observability.promtool_config_k8s", PROM_K8S, "promtool check config: the Kubernetes "
                          "(prometheus.io/* annotations) scrape config", ["promtool", "check", "config", str(copy)],
                          tool=tool)
    record.command = record.command.replace(str(copy), f"<{PROM_K8S} copy>")
    record.fallback = ("Debian's promtool 2.42 has no Kubernetes service discovery: kubernetes_sd_configs was "
                       "replaced by an empty static_configs in the copy checked")
    return record


def rule_tests(files: dict[str, str], root: Path) -> Evidence:
    """promtool's unit tests, plus kit's rule that every alert has a firing and a silent case."""
    record = run_tool("observability.promtool_test", TESTS, "promtool test rules: every alert fires on failing "
                      "series and stays silent on healthy ones", ["promtool", "test", "rules", TESTS],
                      tool=f"promtool {tool_version(['promtool', '--version'])}", cwd=root)
    coverage = struct.test_coverage(files[RULES[1]], files[TESTS])
    record.figures.update(coverage["figures"])
    if record.passed and coverage["problems"]:
        record.status, record.reason = "failed", "; ".join(coverage["problems"])
    return record


def _with_rules_file(groups: list, check: str, deliverable: str, title: str, tool: str) -> Evidence:
    with tempfile.TemporaryDirectory(prefix="kit-rules-") as tmp:
        path = Path(tmp) / "rules.yml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        record = run_tool(check, deliverable, title, ["promtool", "check", "rules", str(path)], tool=tool)
    record.command = record.command.replace(str(path), f"<{deliverable} as a rules file>")
    return record


def prometheus_rule(files: dict[str, str], tool: str) -> Evidence:
    """The PrometheusRule's groups pass promtool and equal monitoring/rules/*.yml exactly."""
    obj = yaml.safe_load(files[PROMETHEUS_RULE]) or {}
    groups = (obj.get("spec") or {}).get("groups") or []
    record = _with_rules_file(groups, "observability.prometheusrule", PROMETHEUS_RULE,
                              "the PrometheusRule's groups pass promtool check rules and equal the rule files", tool)
    expected = [g for rel in RULES for g in (yaml.safe_load(files[rel]) or {}).get("groups", [])]
    if record.passed and groups != expected:
        record.status, record.reason = "failed", "spec.groups differ from monitoring/rules/*.yml"
    return record


def dashboard_promql(files: dict[str, str], tool: str) -> Evidence:
    """Every dashboard expression parses as PromQL: each becomes a recording rule for promtool."""
    exprs = struct.dashboard_exprs(files)
    rules = [{"record": f"kit:dashboard_expr:{i}", "expr": e} for i, (_p, e) in enumerate(exprs)]
    record = _with_rules_file([{"name": "dashboard", "rules": rules}], "observability.dashboard_promql",
                              struct.DASHBOARD, "every dashboard expression parses as PromQL (promtool)", tool)
    record.figures["expressions"] = len(exprs)
    return record



def runbook_promql(files: dict[str, str], tool: str) -> Evidence:
    """Every query a runbook tells on-call to run parses as PromQL: each becomes a recording rule for promtool."""
    queries = rbc.all_queries(files)
    rules = [{"record": f"kit:runbook_query:{i}", "expr": q} for i, (_rel, q) in enumerate(queries)]
    record = _with_rules_file([{"name": "runbooks", "rules": rules}], "observability.runbook_promql",
                              "monitoring/runbooks/", "every runbook query parses as PromQL (promtool)", tool)
    record.figures["queries"] = len(queries)
    return record
