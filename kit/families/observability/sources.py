"""Rule: every metric the dashboard queries is produced by a scrape target the deliverables define,
in each setup they support: compose (monitoring/prometheus.yml), prometheus-operator (the
ServiceMonitors and the Services they select) and Kubernetes without the operator
(monitoring/prometheus-kubernetes.yml and the pods it keeps)."""
from __future__ import annotations

import re

import yaml

from kit.evidence import Evidence
from kit.families.observability import exporters
from kit.families.observability.promql import is_recorded, metric_matchers
from kit.families.observability.promrules import MEMORY_LIMIT
from kit.model import Spec

DASHBOARD = "monitoring/grafana/dashboards/service.json"
# prometheus_client's default ProcessCollector (prometheus/client_python @
# 038b5bd9357929a1e4e0cfa16c0c407a66702c0b, prometheus_client/process_collector.py, collect())
PROCESS_METRICS = {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
                   "process_virtual_memory_bytes", "process_open_fds", "process_max_fds"}
# metrics from the cluster, not from a target kit defines; the expressions reading them fall back without them
PLATFORM_METRICS = {MEMORY_LIMIT: "kube-state-metrics, scraped by the cluster's own monitoring (kube-prometheus-stack) "
                                  "(the memory panel falls back to the base limit without it)"}


def _docs(files: dict[str, str], prefix: str) -> list[dict]:
    return [d for rel, text in sorted(files.items()) if rel.startswith(prefix) and rel.endswith(".yaml")
            for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def producers(spec: Spec) -> dict[str, set[str]]:
    """job -> the metrics its targets export: the app's request metrics and prometheus_client's
    process metrics; each exporter's documented ones (exporters.KINDS)."""
    m = spec.option("slo").metrics
    app = {m.requests, m.in_flight} | ({f"{m.duration}_{s}" for s in ("bucket", "count", "sum")} if m.duration else set())
    process = PROCESS_METRICS if spec.metrics_path and spec.option("slo").process_metrics else set()
    out = {spec.name: (app | process) - {""}}
    for dep in exporters.watched(spec):
        out[exporters.job(dep)] = set(exporters.KINDS[dep.kind].metrics)
    return out


def compose_jobs(files: dict[str, str]) -> set[str]:
    config = yaml.safe_load(files["monitoring/prometheus.yml"]) or {}
    return {j["job_name"] for j in config.get("scrape_configs") or []
            if any(s.get("targets") for s in j.get("static_configs") or [])}


def _app_namespaces(spec: Spec) -> list[str]:
    k8s = spec.option("kubernetes")
    return [f"{k8s.namespace}-{env.name}" for env in k8s.environments]


def _placed(spec: Spec, files: dict[str, str], kinds: tuple[str, ...]) -> list[tuple[str, dict]]:
    """(namespace, object): the base's objects in every overlay's namespace, k8s/monitoring's (base and
    every environment's overlay) in their own."""
    base = [(ns, o) for o in _docs(files, "k8s/base/") if o.get("kind") in kinds for ns in _app_namespaces(spec)]
    return base + [((o.get("metadata") or {}).get("namespace", ""), o) for o in _docs(files, "k8s/monitoring/")
                   if o.get("kind") in kinds]


def operator_jobs(spec: Spec, files: dict[str, str]) -> set[str]:
    """The job of every Service a ServiceMonitor selects: its jobLabel's value, else the Service's
    name (prometheus-operator @ 6adcebc5076c34f4f55f8f5f7b1e528929373ac7, pkg/prometheus/promcfg.go:2176-2191),
    for endpoints naming one of the Service's ports."""
    jobs = set()
    services = _placed(spec, files, ("Service",))
    for sm in (d for d in _docs(files, "k8s/monitoring/") if d.get("kind") == "ServiceMonitor"):
        sm_spec = sm.get("spec") or {}
        want = (sm_spec.get("selector") or {}).get("matchLabels") or {}
        names = (sm_spec.get("namespaceSelector") or {}).get("matchNames") or []
        ports = {e.get("port") for e in sm_spec.get("endpoints") or []}
        for ns, svc in services:
            labels = (svc.get("metadata") or {}).get("labels") or {}
            svc_ports = {p.get("name") for p in (svc.get("spec") or {}).get("ports") or []}
            if ns in names and all(labels.get(k) == v for k, v in want.items()) and ports & svc_ports:
                jobs.add(labels.get(sm_spec.get("jobLabel", "")) or svc["metadata"]["name"])
    return jobs


def _meta(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def relabel(labels: dict[str, str], rules: list[dict]) -> dict[str, str] | None:
    """Prometheus's keep, drop and replace relabel actions (anchored regex, ';' separator);
    None when the target is dropped."""
    labels = dict(labels)
    for rule in rules:
        action = str(rule.get("action", "replace")).lower()
        value = ";".join(labels.get(s, "") for s in rule.get("source_labels") or [])
        match = re.fullmatch(str(rule.get("regex", "(.*)")), value)
        if (action == "keep" and not match) or (action == "drop" and match):
            return None
        if action == "replace" and match:
            replacement = re.sub(r"\$\{?(\d+)\}?", r"\\\1", str(rule.get("replacement", "$1")))
            labels[rule["target_label"]] = match.expand(replacement)
    return labels


def plain_kubernetes_jobs(spec: Spec, files: dict[str, str]) -> set[str]:
    """The job label of every pod a kubernetes_sd pod job keeps, after its relabelling."""
    config = yaml.safe_load(files["monitoring/prometheus-kubernetes.yml"]) or {}
    pods = []
    for ns, obj in _placed(spec, files, ("Deployment", "StatefulSet")):
        meta = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
        pods.append({"__meta_kubernetes_namespace": ns,
                     **{f"__meta_kubernetes_pod_label_{_meta(k)}": str(v) for k, v in (meta.get("labels") or {}).items()},
                     **{f"__meta_kubernetes_pod_annotation_{_meta(k)}": str(v)
                        for k, v in (meta.get("annotations") or {}).items()}})
    jobs = set()
    for job in config.get("scrape_configs") or []:
        for sd in job.get("kubernetes_sd_configs") or []:
            names = (sd.get("namespaces") or {}).get("names")
            for pod in pods:
                if names is None or pod["__meta_kubernetes_namespace"] in names:
                    kept = relabel({**pod, "job": job["job_name"]}, job.get("relabel_configs") or [])
                    if kept is not None:
                        jobs.add(kept.get("job", job["job_name"]))
    return jobs


def dashboard_sources(spec: Spec, files: dict[str, str]) -> Evidence:
    """Every metric a dashboard panel queries comes from a scrape target the deliverables define.

    `up` exists for every target Prometheus scrapes (https://prometheus.io/docs/concepts/jobs_instances:
    "For each instance scrape, Prometheus stores a sample in the following time series: up{job=...}");
    a recorded name must be recorded by monitoring/rules/recording.yml; any other name must be one
    the job's targets export: the app's request metrics and prometheus_client's process metrics
    (PROCESS_METRICS), or an exporter's (exporters.KINDS, each citing the exporter's source)."""
    import json
    made, recorded = producers(spec), set()
    for group in (yaml.safe_load(files["monitoring/rules/recording.yml"]) or {}).get("groups") or []:
        recorded |= {r["record"] for r in group.get("rules") or [] if "record" in r}
    setups = {"compose (monitoring/prometheus.yml)": compose_jobs(files)}
    if "k8s/monitoring/base/servicemonitor.yaml" in files:
        setups["prometheus-operator (ServiceMonitors)"] = operator_jobs(spec, files)
        setups["Kubernetes without the operator (prometheus-kubernetes.yml)"] = plain_kubernetes_jobs(spec, files)
    problems, used = [], set()
    for panel in json.loads(files[DASHBOARD]).get("panels") or []:
        for target in panel.get("targets") or []:
            for name, matchers in metric_matchers(str(target.get("expr", ""))):
                used.add(name)
                if is_recorded(name):
                    if name not in recorded:
                        problems.append(f"panel {panel.get('title')!r}: {name} is recorded by no rule")
                    continue
                if name in PLATFORM_METRICS:
                    continue
                wanted = {v for label, op, v in matchers if label == "job" and op == "="}
                for setup, jobs in setups.items():
                    candidates = (wanted & jobs) if wanted else jobs
                    if wanted and not candidates:
                        problems.append(f"panel {panel.get('title')!r}: {setup} defines no scrape job "
                                        f"{', '.join(sorted(wanted))} (for {name})")
                    elif name != "up" and not any(name in made.get(j, set()) for j in candidates):
                        problems.append(f"panel {panel.get('title')!r}: no target of {setup} exports {name} "
                                        f"(jobs {', '.join(sorted(candidates)) or 'none'})")
    return Evidence("observability.rule.dashboard_sources", DASHBOARD, "every metric the dashboard queries is "
                    "produced by a scrape target the deliverables define (compose, operator, plain Kubernetes)",
                    "failed" if problems else "passed", tool="kit (rule)", reason="; ".join(sorted(set(problems))[:6]),
                    figures={"setups": {k: sorted(v) for k, v in setups.items()},
                             "producers": {k: sorted(v) for k, v in made.items()}, "metrics": sorted(used),
                             "platform_metrics": PLATFORM_METRICS,
                             "exporter_sources": {k.program: k.source for k in exporters.KINDS.values()}})
