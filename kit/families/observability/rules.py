"""Cross-system rules: what the systems the monitoring deliverables meet enforce, where kit cannot
run them (prometheus-operator and kube-prometheus-stack, Fluent Bit). Each rule cites the other
system's source and returns its own evidence record."""
from __future__ import annotations

import yaml

from kit.evidence import Evidence
from kit.model import Spec

SERVICE_MONITORS = "k8s/monitoring/servicemonitor.yaml"
PROMETHEUS_RULE = "k8s/monitoring/prometheusrule.yaml"


def _record(check: str, deliverable: str, title: str, problems: list[str], **figures) -> Evidence:
    return Evidence(check, deliverable, title, "failed" if problems else "passed", tool="kit (rule)",
                    reason="; ".join(problems), figures=figures)


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def operator_selector(spec: Spec, files: dict[str, str]) -> Evidence:
    """Every ServiceMonitor and PrometheusRule carries the labels the declared Prometheus selects.

    kube-prometheus-stack renders its Prometheus with `serviceMonitorSelector` and `ruleSelector`
    `matchLabels: {release: <helm release name>}` unless told otherwise; objects without that label
    are ignored: prometheus-community/helm-charts @ cf408a290aec489277a94450bb3511432477a53a,
    charts/kube-prometheus-stack/templates/prometheus/prometheus.yaml:193-202 (serviceMonitorSelector)
    and :277-286 (ruleSelector), values.yaml:4447-4456 and :4472-4481
    (`*SelectorNilUsesHelmValues: true`). The selector is the task's (slo.prometheus_release,
    slo.operator_labels), kube-prometheus-stack's default otherwise."""
    slo = spec.option("slo")
    selector = dict(slo.prometheus_selector)
    problems, checked = [], []
    for rel, kind in ((SERVICE_MONITORS, "ServiceMonitor"), (PROMETHEUS_RULE, "PrometheusRule")):
        for obj in _docs(files[rel]):
            if obj.get("kind") != kind:
                continue
            name = (obj.get("metadata") or {}).get("name")
            labels = (obj.get("metadata") or {}).get("labels") or {}
            checked.append(f"{kind}/{name}")
            missing = {k: v for k, v in selector.items() if labels.get(k) != v}
            if missing:
                problems.append(f"{kind} {name} lacks {', '.join(f'{k}={v}' for k, v in missing.items())}: "
                                f"kube-prometheus-stack's Prometheus selects {selector} ({slo.selector_source}) "
                                "and would ignore it")
    if not checked:
        problems.append("no ServiceMonitor or PrometheusRule found")
    return _record("observability.rule.operator_selector", SERVICE_MONITORS, "every ServiceMonitor and the "
                   "PrometheusRule carry the labels the declared Prometheus's selectors match", problems,
                   selector=selector, selector_source=slo.selector_source, objects=checked)
