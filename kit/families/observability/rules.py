"""Cross-system rules: what the systems the monitoring deliverables meet enforce, where kit cannot
run them (prometheus-operator and kube-prometheus-stack, Fluent Bit). Each rule cites the other
system's source and returns its own evidence record."""
from __future__ import annotations

import re

import yaml

from kit.evidence import Evidence
from kit.families.observability.promql import selectors
from kit.families.observability.sli import OPERATOR_TARGET_LABELS
from kit.model import Spec

SERVICE_MONITORS = "k8s/monitoring/base/servicemonitor.yaml"
PROMETHEUS_RULE = "k8s/monitoring/base/prometheusrule.yaml"


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
    for rel in sorted(r for r in files if r.startswith("k8s/monitoring/") and r.endswith(".yaml")):
        for obj in _docs(files[rel]):
            kind = obj.get("kind")
            if kind not in ("ServiceMonitor", "PrometheusRule"):
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


def exported_labels(spec: Spec, files: dict[str, str]) -> Evidence:
    """An app label that clashes with a target label prometheus-operator sets is matched under its
    exported_ name too in the rules the PrometheusRule ships.

    The operator sets `namespace`, `service`, `pod`, `container`, `job` and `endpoint` (the
    endpoint's port name) on every ServiceMonitor target (Prometheus adds `instance`) and writes `honor_labels: false` unless
    the ServiceMonitor says otherwise (a Prometheus with `overrideHonorLabels` forces false):
    prometheus-operator/prometheus-operator @ 6adcebc5076c34f4f55f8f5f7b1e528929373ac7,
    pkg/prometheus/promcfg.go:2135-2148 and :2180-2206 (the relabelings), :1965 and :499-506
    (AddHonorLabels), pkg/apis/monitoring/v1/types.go:595-598 (HonorLabels, default false).
    With honor_labels false Prometheus renames the scraped label to exported_<name>:
    prometheus/prometheus @ d15adb9ad7e5d9fbde3a9a8f30200593a5a14d86,
    docs/configuration/configuration.md:353-356. So `endpoint!~"/healthz"` alone sees the port
    name and filters nothing once the operator scrapes the app."""
    m = spec.option("slo").metrics
    clashing = sorted({m.path_label, m.status_label} & set(OPERATOR_TARGET_LABELS))
    groups = ((yaml.safe_load(files[PROMETHEUS_RULE]) or {}).get("spec") or {}).get("groups") or []
    problems, checked = [], 0
    for rule in (r for g in groups for r in g.get("rules") or []):
        name = rule.get("record") or rule.get("alert")
        for matchers in selectors(str(rule.get("expr", ""))):
            for label, op, value in matchers:
                if label not in clashing:
                    continue
                checked += 1
                if (f"exported_{label}", op, value) not in matchers:
                    problems.append(f'{name} matches {label}{op}"{value}" but not exported_{label}{op}"{value}": '
                                    f"through prometheus-operator {label} holds the target's value and the app's "
                                    f"{label} arrives as exported_{label}")
    return _record("observability.rule.exported_labels", PROMETHEUS_RULE, "app labels that clash with "
                   "prometheus-operator's target labels are matched under their exported_ names too",
                   sorted(set(problems))[:6], app_labels=sorted({m.path_label, m.status_label} - {""}),
                   operator_target_labels=sorted(OPERATOR_TARGET_LABELS), clashing=clashing,
                   matchers_checked=checked)


FLUENT_BIT_CONFIG = "monitoring/fluent-bit/fluent-bit.yaml"
FLUENT_BIT_DAEMONSET = "k8s/monitoring/base/fluent-bit.yaml"
# top-level sections of Fluent Bit's YAML config -> the first release whose loader reads them; (0,) for
# the ones v3.1.10's loader already reads (no minimum checked further back)
FLUENT_BIT_SECTIONS = {"env": (0,), "service": (0,), "pipeline": (0,), "includes": (0,), "customs": (0,),
                       "parsers": (3, 2, 0), "multiline_parsers": (3, 2, 0)}


def _version(image: str) -> tuple[int, ...] | None:
    match = re.search(r":v?(\d+)\.(\d+)(?:\.(\d+))?(?:-[\w.]+)?$", image.split("@", 1)[0])
    return tuple(int(g or 0) for g in match.groups()) if match else None


def fluent_bit_version(spec: Spec, files: dict[str, str]) -> Evidence:
    """The YAML config's sections are ones the pinned Fluent Bit image reads.

    Top-level `parsers:` and `multiline_parsers:` first appear in the YAML loader in v3.2.0:
    fluent/fluent-bit @ 50512ed56aad32f07d98a723cb217f0251bb52e8 (tag v3.2.0),
    src/config_format/flb_cf_yaml.c:1555-1562; at tag v3.1.10 (e28f4479958918faa41615158a744d29b0f893fa)
    the same loader knows only env, pipeline, service, customs and includes (lines 951-1013) and
    treats any other key as an unknown section. Added by https://github.com/fluent/fluent-bit/pull/9513;
    docs: fluent/fluent-bit-docs @ f92ae08080ee108c2d1a2969f9d7e3d3b4c35950,
    administration/configuring-fluent-bit/yaml.md:5-17 ("In Fluent Bit v3.2 and later, YAML
    configuration files support all of the settings and features that classic configuration files
    support"). For the sections 3.1.10 already reads no older minimum was checked."""
    config = yaml.safe_load(files[FLUENT_BIT_CONFIG]) or {}
    images = [c.get("image", "") for d in _docs(files[FLUENT_BIT_DAEMONSET]) if d.get("kind") == "DaemonSet"
              for c in ((d.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
              if "fluent-bit" in str(c.get("image", ""))]
    needed = {key: FLUENT_BIT_SECTIONS.get(key) for key in config}
    problems = [f"unknown top-level section {key!r} (no Fluent Bit release kit knows reads it)"
                for key, need in needed.items() if need is None]
    if not images:
        problems.append("no fluent-bit container in the DaemonSet")
    for image in images:
        have = _version(image)
        if have is None:
            problems.append(f"{image}: no version in the tag, so the sections used cannot be checked (pin 3.2 or later)")
            continue
        for key, need in needed.items():
            if need and have < need:
                problems.append(f"{image} is {'.'.join(map(str, have))}, but the config's top-level {key}: "
                                f"section needs Fluent Bit {'.'.join(map(str, need))} or later")
    minimum = max((n for n in needed.values() if n), default=(0,))   # (0,) < any version tuple
    return _record("observability.rule.fluent_bit_version", FLUENT_BIT_DAEMONSET, "the Fluent Bit image the "
                   "DaemonSet pins reads every section its YAML config uses", problems, images=images,
                   sections=sorted(config), needs=".".join(map(str, minimum)))


PROMETHEUS_CONFIG = "monitoring/prometheus.yml"
APP_DEPLOYMENT = "k8s/base/deployment.yaml"
EXPORTER_PATH = "/metrics"      # postgres_exporter's and redis_exporter's --web.telemetry-path default


def scrape_paths(spec: Spec, files: dict[str, str]) -> Evidence:
    """Every scrape target the deliverables define points at a path the service model says serves
    metrics, and no alert watches an app target that is never scraped.

    A scrape whose answer is not HTTP 200 fails, and a failed scrape sets `up` to 0
    (https://prometheus.io/docs/concepts/jobs_instances/#automatically-generated-labels-and-time-series:
    "up{job, instance}: 1 if the instance is healthy, i.e. reachable, or 0 if the scrape failed";
    prometheus/prometheus scrape/scrape.go, `server returned HTTP status`). A job without
    `metrics_path` scrapes `/metrics` (docs/configuration/configuration.md, scrape_config
    `metrics_path`, default /metrics), and so does a ServiceMonitor endpoint without `path`
    (prometheus-operator pkg/apis/monitoring/v1/servicemonitor_types.go, Endpoint.Path: "If empty,
    Prometheus uses the default value (e.g. /metrics)"). So an app with no metrics path scraped at
    a guessed /metrics gets 404s, `up == 0` for ever, and a TargetDown page on the first deploy;
    without any target, `absent(up{job=...})` (TargetMissing) fires for ever instead. The
    exporters serve their metrics at /metrics (their default telemetry path)."""
    problems, targets = [], []
    exporter_jobs = {f"{d.name}-exporter" for d in spec.dependencies}
    want = spec.metrics_path

    def judge(where: str, is_app: bool, path: str | None) -> None:
        path = path or "/metrics"
        targets.append(f"{where} -> {path}")
        if is_app and not want:
            problems.append(f"{where} scrapes {spec.name} at {path}, but the service model has no metrics path: "
                            "the scrape fails, up stays 0 and TargetDown fires for ever")
        elif is_app and path != want:
            problems.append(f"{where} scrapes {spec.name} at {path}, but it serves metrics at {want}")
        elif not is_app and path != EXPORTER_PATH:
            problems.append(f"{where} scrapes {path}, not the exporter's {EXPORTER_PATH}")

    prom = yaml.safe_load(files.get(PROMETHEUS_CONFIG, "")) or {}
    for job in prom.get("scrape_configs") or []:
        name = job.get("job_name")
        if name == "prometheus":
            continue
        if name != spec.name and name not in exporter_jobs:
            problems.append(f"{PROMETHEUS_CONFIG}: job {name} scrapes a target the service model does not know")
            continue
        judge(f"{PROMETHEUS_CONFIG} job {name}", name == spec.name, job.get("metrics_path"))
    for rel in sorted(r for r in files if r.startswith("k8s/monitoring/") and r.endswith(".yaml")):
        for obj in _docs(files[rel]):
            if obj.get("kind") != "ServiceMonitor":
                continue
            sel = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
            is_app = sel.get("app.kubernetes.io/name") == spec.name
            for ep in (obj.get("spec") or {}).get("endpoints") or []:
                judge(f"{rel} ServiceMonitor {(obj.get('metadata') or {}).get('name')}", is_app, ep.get("path"))
    for obj in _docs(files.get(APP_DEPLOYMENT, "")):
        notes = ((((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {})
        if notes.get("prometheus.io/scrape") == "true":
            judge(f"{APP_DEPLOYMENT} prometheus.io/path", True, notes.get("prometheus.io/path"))
    for group in (yaml.safe_load(files.get("monitoring/rules/alerts.yml", "")) or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            if not want and re.search(rf'\bup\{{[^}}]*job="{re.escape(spec.name)}"', str(rule.get("expr", ""))):
                problems.append(f"alert {rule.get('alert')} watches up{{job=\"{spec.name}\"}}, a target that is "
                                "never scraped (no metrics path): it fires for ever")
    return _record("observability.rule.scrape_paths", PROMETHEUS_CONFIG, "every scrape target points at a path the "
                   "service model says serves metrics; no alert watches an app target that is not scraped",
                   problems, metrics_path=want or "(none)", targets=targets)


# kube-prometheus-stack's default kubelet.serviceMonitor.cAdvisorMetricRelabelings (action: drop on __name__)
KPS_DROPPED = ("container_cpu_(cfs_throttled_seconds_total|load_average_10s|system_seconds_total|user_seconds_total)",
               "container_fs_(io_current|io_time_seconds_total|io_time_weighted_seconds_total|reads_merged_total|"
               "sector_reads_total|sector_writes_total|writes_merged_total)",
               "container_memory_(mapped_file|swap)", "container_(file_descriptors|tasks_state|threads_max)",
               "container_spec.*")


def dropped_metrics(spec: Spec, files: dict[str, str]) -> Evidence:
    """The Kubernetes rules and the dashboard read no metric the declared kube-prometheus-stack
    drops by default.

    kube-prometheus-stack's kubelet ServiceMonitor drops, before ingestion, every cAdvisor series
    matching `container_spec.*` ("Drop container spec metrics that overlap with
    kube-state-metrics") and a few more container_cpu/fs/memory/process series:
    prometheus-community/helm-charts, charts/kube-prometheus-stack/values.yaml,
    `kubelet.serviceMonitor.cAdvisorMetricRelabelings` (the regexes in KPS_DROPPED). A rule that
    divides by `container_spec_memory_limit_bytes` there never sees a limit and silently falls
    back; kube-state-metrics' `kube_pod_container_resource_limits{resource="memory"}`
    (kubernetes/kube-state-metrics docs/metrics/workload/pod-metrics.md) carries the same limit.
    Prometheus's relabel `regex` is anchored at both ends
    (https://prometheus.io/docs/prometheus/latest/configuration/configuration/#relabel_config)."""
    from kit.families.observability.promql import metric_names
    pattern = re.compile("|".join(f"(?:{r})" for r in KPS_DROPPED))
    groups = ((yaml.safe_load(files.get(PROMETHEUS_RULE, "")) or {}).get("spec") or {}).get("groups") or []
    exprs = [(r.get("alert") or r.get("record"), str(r.get("expr", ""))) for g in groups for r in g.get("rules") or []]
    from kit.families.observability.structure import dashboard_exprs
    exprs += [(f"dashboard panel {(p or {}).get('title')}", e) for p, e in dashboard_exprs(files)]
    problems, read = [], set()
    for name, expr in exprs:
        for metric in metric_names(expr):
            read.add(metric)
            if pattern.fullmatch(metric):
                problems.append(f"{name} reads {metric}, which kube-prometheus-stack drops by default "
                                "(kubelet.serviceMonitor.cAdvisorMetricRelabelings): it is never there")
    return _record("observability.rule.dropped_metrics", PROMETHEUS_RULE, "the Kubernetes rules and the dashboard "
                   "read no metric kube-prometheus-stack drops by default", sorted(set(problems)),
                   dropped_patterns=list(KPS_DROPPED), metrics_read=sorted(read))


_TEMPLATE = re.compile(r'^\{\{ if match "(?P<re>[^"]+)" \$labels\.namespace \}\}(?P<then>\w+)\{\{ else \}\}(?P<else>\w+)\{\{ end \}\}$')


def _severity_in(value: str, namespace: str) -> str | None:
    """The severity an alert firing with this namespace label carries: the literal, or kit's
    template evaluated; None for a template kit does not know (it may page anywhere)."""
    if "{{" not in value:
        return value
    m = _TEMPLATE.match(value)
    if not m:
        return None
    return m["then"] if re.search(m["re"], namespace) else m["else"]


def nonprod_severity(spec: Spec, files: dict[str, str]) -> Evidence:
    """No alert in the PrometheusRule that can fire for a dev or staging namespace carries
    `severity: page` there.

    On Kubernetes, routing is the operator's: an AlertmanagerConfig is namespaced, and with the
    Alertmanager's default `alertmanagerConfigMatcherStrategy` (`OnNamespace`) the operator adds a
    `namespace="<the AlertmanagerConfig's namespace>"` matcher to its routes, so one placed in the
    monitoring namespace never sees the overlays' alerts (`OnNamespaceExceptForAlertmanagerNamespace`
    needs prometheus-operator v0.84 and an edit of the Alertmanager resource):
    prometheus-operator pkg/alertmanager/amcfg.go (getEnforcer, namespaceEnforcer) and
    Documentation/api-reference (AlertmanagerConfigMatcherStrategy,
    https://prometheus-operator.dev/docs/api-reference/api/#monitoring.coreos.com/v1.AlertmanagerConfigMatcherStrategy).
    kube-prometheus-stack's own Alertmanager routes by severity only. So the severity itself must
    not page outside prod: alerting rules' label values are templates expanded per alert
    (https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/, "labels ... can be
    templated"; `match` is the unanchored regexp match of
    https://prometheus.io/docs/prometheus/latest/configuration/template_reference/). An
    `absent(...)` alert carries no namespace label, so it must not page at all. The compose
    counterpart is observability.rule.env_routing."""
    from kit.families.observability.files import nonprod_namespaces
    nonprod = nonprod_namespaces(spec)
    groups = ((yaml.safe_load(files.get(PROMETHEUS_RULE, "")) or {}).get("spec") or {}).get("groups") or []
    problems, seen = [], {}
    for rule in (r for g in groups for r in g.get("rules") or [] if r.get("alert")):
        value = str((rule.get("labels") or {}).get("severity", ""))
        unlabelled = "absent(" in str(rule.get("expr", "")) and "namespace=" not in str(rule.get("expr", ""))
        for namespace in (["(none: absent() has no namespace label)"] if unlabelled else nonprod):
            severity = _severity_in(value, "" if unlabelled else namespace)
            seen[f"{rule['alert']}@{namespace}"] = severity or "?"
            if severity is None or severity == "page":
                problems.append(f"{rule['alert']} can fire for {namespace} with severity "
                                f"{severity or 'from an unknown template'}: dev and staging would page")
    return _record("observability.rule.nonprod_severity", PROMETHEUS_RULE, "no alert that can fire for a dev or "
                   "staging namespace carries severity page in the Kubernetes rules", problems,
                   nonprod_namespaces=nonprod, severities=seen)
