"""The SLIs: error ratios per namespace over the burn-rate windows, from the app's request
metrics, with probe and scrape traffic left out under every name the route label can have."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from kit.families.observability.options import Slo
from kit.model import Spec

RATE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
ERROR_RECORD = "slo:sli_error:ratio_rate{w}"
REGEX_SPECIAL = re.compile(r"([.+*?()\[\]{}|^$\\])")
# labels prometheus-operator sets on every ServiceMonitor target (pkg/prometheus/promcfg.go), with the
# value a test series gets; an app label of the same name arrives renamed exported_<name> (honorLabels false)
OPERATOR_TARGET_LABELS = {"namespace": "", "service": "", "pod": "", "container": "", "job": "",
                          "endpoint": "http", "instance": ""}


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)


def path_label_names(slo: Slo) -> list[str]:
    """The names the app's route label has in Prometheus: its own, and exported_<it> as well when
    prometheus-operator sets a target label of that name (`endpoint`, the port name) and renames
    the app's."""
    label = slo.metrics.path_label
    return [label, f"exported_{label}"] if label in OPERATOR_TARGET_LABELS else [label]


def excluded_paths(spec: Spec, slo: Slo) -> str:
    """`,endpoint!~"/healthz|/metrics",exported_endpoint!~"/healthz|/metrics"`: probe and scrape
    traffic left out of the SLIs, scraped directly or through prometheus-operator (empty when the
    request metrics carry no route label). A missing label matches as empty, so each matcher
    passes where its name is absent."""
    paths = [p for p in dict.fromkeys((spec.health_path, spec.metrics_path)) if p]
    if not slo.metrics.path_label or not paths:
        return ""
    pattern = "|".join(REGEX_SPECIAL.sub(r"\\\\\1", p) for p in paths)   # \\. in a PromQL string is \.
    return "".join(f',{name}!~"{pattern}"' for name in path_label_names(slo))


def sli_selector(spec: Spec, slo: Slo) -> str:
    return f'job="{spec.name}"{excluded_paths(spec, slo)}'


def recording_rules(spec: Spec, slo: Slo) -> list[Recording]:
    """Error ratios per namespace (each Kubernetes overlay, or compose): one environment's
    errors never count against another's budget."""
    m, job = slo.metrics, sli_selector(spec, slo)
    if not m.requests or not spec.metrics_path:   # no metrics path: nothing of the app is scraped
        return []
    rules = []
    for w in RATE_WINDOWS:
        errors = f'sum by (namespace) (rate({m.requests}{{{job},{m.status_label}=~"5.."}}[{w}]))'
        total = f"sum by (namespace) (rate({m.requests}{{{job}}}[{w}]))"
        rules.append(Recording(ERROR_RECORD.format(w=w), f"(\n{errors}\nor\n0 * {total}\n)\n/\n{total}",
                               {"service": spec.name, "slo": "availability"}))
        if m.duration:
            fast = f'sum by (namespace) (rate({m.duration}_bucket{{{job},le="{slo.latency_le}"}}[{w}]))'
            count = f"sum by (namespace) (rate({m.duration}_count{{{job}}}[{w}]))"
            rules.append(Recording(ERROR_RECORD.format(w=w), f"1 - (\n{fast}\n/\n{count}\n)",
                                   {"service": spec.name, "slo": "latency"}))
    return rules
