"""Observability family: Prometheus scrape config and SLO rules with promtool tests,
Alertmanager, a Grafana dashboard, runbooks, Fluent Bit and OpenTelemetry Collector configs,
and prometheus-operator objects: the environment-independent base k8s/monitoring/base/ and one overlay per
environment, k8s/monitoring/overlays/<env>/, adding that environment's exporters and NetworkPolicies
(each cluster runs one environment)."""
from __future__ import annotations

from kit.core.otel import OTLP_GRPC_PORT, OTLP_HTTP_PORT, otel_env
from kit.families.kubernetes.secret_names import remote_key
from kit.families.observability import exporters as exp
from kit.families.observability import files as mfiles
from kit.families.observability.dashboard import dashboard_json
from kit.model import Spec
from kit.render import render_variant

COLLECTOR_HOST = "otel-collector"      # the collector's service name in compose.monitoring.yaml
# 3.2 is the first release whose YAML config reads a top-level parsers section (rules.fluent_bit_version)
FLUENT_BIT_IMAGE = "cr.fluentbit.io/fluent/fluent-bit:3.2.10"
MONITORING_BASE = "k8s/monitoring/base"
MONITORING_OVERLAYS = "k8s/monitoring/overlays"


def monitoring_overlay(env: str) -> str:
    """The folder of an environment's monitoring kustomization (base plus its exporters)."""
    return f"{MONITORING_OVERLAYS}/{env}"


def exporters_file(env: str) -> str:
    return f"{monitoring_overlay(env)}/exporters.yaml"


def _indented(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + row if row else row for row in text.rstrip("\n").splitlines())


def render_observability(spec: Spec) -> dict[str, str]:
    slo, k8s = spec.option("slo"), spec.option("kubernetes")
    recording, alerts = mfiles.recording_doc(spec, slo), mfiles.alerts_doc(spec, slo)
    groups = {"groups": recording["groups"] + alerts["groups"]}
    files = render_variant("observability", "default", {
        "name": spec.name, "port": spec.port, "metrics_path": spec.metrics_path,   # empty: the app serves no metrics, so no app scrape
        "monitoring_namespace": k8s.monitoring_namespace, "operator_labels": [list(p) for p in slo.operator_labels],
        "selector_source": slo.selector_source,
        "app_namespaces": [f"{k8s.namespace}-{env.name}" for env in k8s.environments],
        "ticket_namespaces": [f"{k8s.namespace}-{env.name}" for env in k8s.environments if env.name != "prod"],
        "page_namespace": f"{k8s.namespace}-prod",
        "metrics_port": spec.metrics_port,
        "recording_yaml": mfiles.dump(recording), "alerts_yaml": mfiles.dump(alerts),
        "tests_yaml": mfiles.dump(mfiles.tests_doc(spec, slo)),
        "dashboard_json": dashboard_json(spec, slo),
        "rule_groups_yaml": _indented(mfiles.dump(groups), 2),
        **exporter_context(spec), "fluent_bit_image": FLUENT_BIT_IMAGE, "otel_grpc_port": OTLP_GRPC_PORT, "otel_http_port": OTLP_HTTP_PORT,
        "otel_env": list(otel_env(spec, COLLECTOR_HOST, "compose")),
    })
    files.update(mfiles.runbooks(spec, slo))
    if not spec.metrics_path:     # nothing to scrape: a target at a guessed path would be down forever
        files.pop("k8s/monitoring/base/servicemonitor.yaml")
    if not exp.watched(spec):
        files.pop("k8s/monitoring/base/servicemonitor-exporters.yaml")
    files.update(monitoring_overlays(spec))
    return files


def monitoring_overlays(spec: Spec) -> dict[str, str]:
    """k8s/monitoring/overlays/<env>/: the base plus only that environment's exporters, their Secret
    and the NetworkPolicy in its namespace, so a cluster running one environment applies one overlay."""
    k8s, on_k8s, files = spec.option("kubernetes"), exp.k8s_exporters(spec), {}
    for env in k8s.environments:
        namespace = f"{k8s.namespace}-{env.name}"
        mine = [e for e in on_k8s if e["target_namespace"] == namespace]
        rendered = render_variant("observability", "monitoring-overlay", {
            "name": spec.name, "env": env.name, "app_namespace": namespace,
            "monitoring_namespace": k8s.monitoring_namespace, "exporters": bool(mine), "k8s_exporters": mine,
            "exporter_secrets": [(s, remote_key(spec.name, s, spec.option("cloud").provider))
                                 for s in sorted({e["secret"] for e in mine if e["secret"]})],
            "exporter_secret": exp.secret_name(spec), "secrets_mode": k8s.secrets, "secret_store": k8s.secret_store,
            "secrets_dir": exp.SECRETS_DIR, "target_label": exp.TARGET_NAMESPACE})
        if not mine:
            rendered.pop("exporters.yaml")
        files.update({f"{monitoring_overlay(env.name)}/{rel}": text for rel, text in rendered.items()})
    return files


def exporter_context(spec: Spec) -> dict:
    on_k8s = exp.k8s_exporters(spec)
    meta = "_".join(exp.TARGET_NAMESPACE.replace(".", "_").replace("/", "_").replace("-", "_").split("_"))
    return {"compose_exporters": exp.compose_exporters(spec), "k8s_exporters": on_k8s,
            "component": exp.COMPONENT, "target_label": exp.TARGET_NAMESPACE,
            "target_meta": f"__meta_kubernetes_service_label_{meta}", "target_meta_pod": f"__meta_kubernetes_pod_label_{meta}"}


def work_notes(spec: Spec) -> list[str]:
    slo = spec.option("slo")
    m = slo.metrics
    rules = (f"- SLOs over {slo.window_days} days: availability {slo.availability:g}% and "
             f"{slo.latency_objective:g}% of requests under {slo.latency_threshold_s * 1000:g} ms, from "
             f"`{m.requests}` and `{m.duration}`; multi-window multi-burn-rate alerts (page on a fast burn, "
             "ticket on a slow one)." if m.requests else
             "- No request counter was found, so no SLO rules are written: only target-down, restart and "
             "saturation alerts.")
    if not spec.metrics_path:
        rules = ("- The service serves no metrics (no metrics path in the service model), so the app is not "
                 "scraped: no scrape job or ServiceMonitor for it, no TargetDown, TargetMissing, saturation or "
                 "SLO rules (a guessed /metrics would answer 404, `up` would stay 0 and TargetDown would page "
                 "on the first deploy). Only the dependencies' exporters are scraped; expose metrics "
                 "(prometheus_client) to get the app's alerts.")
    return [rules,
            "- Every alert has summary, description and runbook annotations; each is unit-tested with "
            "generated `promtool test rules` cases (fires when it should, silent when it should not).",
            "- Each alert has a runbook (`monitoring/runbooks/<Alert>.md`, published in the site as "
            "`runbooks/<Alert>.html`): symptoms, impact (the SLO budget figures), the dashboard panels and "
            "PromQL to read, diagnosis steps for compose and Kubernetes (the overlays' namespaces and the "
            "dependencies), mitigation, rollback through the deploy workflow, and escalation placeholders. "
            + ("Alerts link to " + f"`{spec.option('slo').runbook_url}/<Alert>.html`." if spec.option("slo").runbook_source
               else "No site address is set (`slo.site_url`), so alerts link to the site-relative "
               "`runbooks/<Alert>.html`."),
            "- On Kubernetes the page alerts' severity is a template that gives `ticket` in the dev and staging "
            "namespaces (an AlertmanagerConfig in the monitoring namespace would only see its own namespace's "
            "alerts under prometheus-operator's default matcher strategy), and TargetMissing is a warning.",
            "- Alertmanager sends every alert from dev and staging to tickets and routes the rest by "
            "severity (only prod and compose page), with a page suppressing its warnings; receivers are "
            "placeholders. Grafana dashboard and provisioning, exporters for the dependencies, Fluent Bit "
            "and OpenTelemetry Collector configs, and the base `k8s/monitoring/base/` (ServiceMonitors carrying "
            f"{', '.join(f'{k}: {v}' for k, v in spec.option('slo').operator_labels) or 'no selector labels'}, "
            "PrometheusRule, Fluent Bit DaemonSet) with one overlay per environment, "
            "`k8s/monitoring/overlays/<env>/`, adding only that environment's exporters and NetworkPolicies: "
            "each cluster runs one environment, so apply `k8s/overlays/<env>` and then "
            "`kubectl apply -k k8s/monitoring/overlays/<env>`.",
            "- Cross-system rules check what kube-prometheus-stack, prometheus-operator, Fluent Bit and "
            "Alertmanager enforce (selector labels, exported_ labels, config sections per version, "
            "routing by environment) and that every dashboard metric has a scrape target.",
            "- The live check (sandbox mode) runs the compose stack with its monitoring override on "
            "stand-ins (Debian's Prometheus, Alertmanager and exporters, older than the pinned images), "
            "stops the app and checks that TargetDown fires, the prod page reaches the pager, dev files a "
            "ticket and the warning is inhibited; its records (`observability.live.*`) say what passed "
            "(the sandbox shortens intervals and `for:`, and says so)."]
