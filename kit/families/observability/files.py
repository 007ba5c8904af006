"""Rule files and their promtool unit tests as deterministic text; the runbook pages come from
runbooks.py."""
from __future__ import annotations

import re

import yaml

from kit.families.observability import runbooks as rb
from kit.families.observability.options import Slo
from kit.families.observability.promrules import Alert, all_alerts
from kit.families.observability.sli import recording_rules
from kit.model import Spec

RECORDING_FILE = "recording.yml"
ALERTS_FILE = "alerts.yml"
INSTANCE = "{{ $labels.instance }}"


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def runbook_link(slo: Slo, alert: Alert) -> str:
    """<base>/<Alert>.html: the page the site publishes for the alert (runbooks.runbook_link)."""
    return rb.runbook_link(slo, alert.name)


def nonprod_namespaces(spec: Spec) -> list[str]:
    k8s = spec.option("kubernetes")
    return [f"{k8s.namespace}-{env.name}" for env in k8s.environments if env.name != "prod"]


def severity_template(spec: Spec) -> str:
    """A page from a dev or staging namespace is a ticket (rules.nonprod_severity): Prometheus
    expands templates in alerting rules' labels, and `match` is an unanchored regexp match."""
    pattern = "^(" + "|".join(nonprod_namespaces(spec)) + ")$"
    return f'{{{{ if match "{pattern}" $labels.namespace }}}}ticket{{{{ else }}}}page{{{{ end }}}}'


def severity_value(spec: Spec, severity: str) -> str:
    return severity_template(spec) if severity == "page" and nonprod_namespaces(spec) else severity


def effective_severity(spec: Spec, severity: str, namespace: str) -> str:
    return "ticket" if severity == "page" and namespace in nonprod_namespaces(spec) else severity


def alert_rule(spec: Spec, alert: Alert, slo: Slo, for_: str | None = None) -> dict:
    return {"alert": alert.name, "expr": alert.expr, "for": for_ or alert.for_,
            "labels": {"severity": severity_value(spec, alert.severity), "service": spec.name},
            "annotations": {"summary": alert.summary, "description": alert.description,
                            "runbook_url": runbook_link(slo, alert)}}


def recording_doc(spec: Spec, slo: Slo) -> dict:
    rules = [{"record": r.record, "expr": r.expr, "labels": r.labels} for r in recording_rules(spec, slo)]
    return {"groups": [{"name": f"{spec.name}-slo-recording", "rules": rules}]} if rules else {"groups": []}


def alerts_doc(spec: Spec, slo: Slo, for_: str | None = None) -> dict:
    groups: dict[str, list] = {}
    for alert in all_alerts(spec, slo):
        groups.setdefault(alert.group, []).append(alert_rule(spec, alert, slo, for_))
    return {"groups": [{"name": f"{spec.name}-{name}", "rules": rules} for name, rules in groups.items()]}


def _case(spec: Spec, alert: Alert, slo: Slo, series: dict[str, str], fire: bool, when: str = "",
          labels: dict[str, str] | None = None) -> dict:
    expected, labels = [], labels or alert.test.labels
    if fire:
        annotations = alert_rule(spec, alert, slo)["annotations"]
        annotations = {k: v.replace(INSTANCE, labels.get("instance", "")) for k, v in annotations.items()}
        severity = effective_severity(spec, alert.severity, labels.get("namespace", ""))
        expected = [{"exp_labels": {**labels, "severity": severity, "service": spec.name},
                     "exp_annotations": annotations}]
    return {"interval": "1m", "name": f"{alert.name} {'fires' if fire else 'stays silent'}{when}",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": [{"eval_time": alert.test.eval_time, "alertname": alert.name, "exp_alerts": expected}]}


def tests_doc(spec: Spec, slo: Slo) -> dict:
    """Two promtool cases per alert (its firing series raise it, its silent series do not), plus
    a slow burn and the alert's further cases (another namespace, probes, per-pod limits)."""
    tests = []
    for alert in all_alerts(spec, slo):
        tests.append(_case(spec, alert, slo, alert.test.firing, True))
        tests.append(_case(spec, alert, slo, alert.test.silent, False))
        if alert.test.between:   # a slow burn opens a ticket and does not page
            tests.append(_case(spec, alert, slo, alert.test.between, alert.severity == "warn", " on a slow burn"))
        for when, series, labels in alert.test.extra:
            tests.append(_case(spec, alert, slo, series, labels is not None, when, labels))
    return {"rule_files": [RECORDING_FILE, ALERTS_FILE], "evaluation_interval": "5m", "tests": tests}


def runbooks(spec: Spec, slo: Slo) -> dict[str, str]:
    """One page per alert and an index (kit/families/observability/runbooks.py)."""
    return rb.runbooks(spec, slo)


def shorten_for(text: str, for_: str) -> str:
    """A sandbox copy of a rule file with every `for:` set to `for_` (recorded as such)."""
    return re.sub(r"^(\s*for: ).*$", rf"\g<1>{for_}", text, flags=re.M)
