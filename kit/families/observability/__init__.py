"""Observability family: Prometheus scrape configs, SLO recording rules and burn-rate alerts with
promtool tests, Alertmanager, Grafana, Fluent Bit, the OpenTelemetry Collector and the
prometheus-operator objects; promtool, amtool, schemas, and a live Prometheus stand-in run."""
from __future__ import annotations

from kit.core.family import Family, Option, Tool
from kit.core.tools import version_probe
from kit.families.observability import checks, live, options
from kit.families.observability.notes import integration
from kit.families.observability.render import render_observability, work_notes

FAMILY = Family(
    name="observability", title="Observability", notebook="60_observability", template="observability/default",
    render=render_observability, option=Option("slo", options.SCHEMA, options.parse),
    static_checks=(checks.static_checks,), sandbox_checks=(live.sandbox_checks,),
    needs=("container",),
    tools=(
        Tool("promtool", version_probe(["promtool", "--version"]),
             "apt-get install -y --no-install-recommends prometheus (or bash scripts/setup.sh)"),
        Tool("amtool", version_probe(["amtool", "--version"]),
             "apt-get install -y --no-install-recommends prometheus-alertmanager (or bash scripts/setup.sh)"),
        Tool("kubernetes-validate", version_probe(["kubernetes-validate", "--version"]),
             "pip install 'kubernetes-validate>=1.37,<1.38' into kit's venv (or bash scripts/setup.sh)"),
    ),
    highlights=("monitoring/alertmanager.yml#^route:",),
    work_notes=work_notes,
    purposes=(
        ("monitoring/prometheus.yml", "Prometheus scrape configuration for compose"),
        ("monitoring/prometheus-kubernetes.yml", "Prometheus scrape configuration for Kubernetes without the operator"),
        ("monitoring/rules/recording.yml", "SLO recording rules"),
        ("monitoring/rules/alerts.yml", "burn-rate and resource alerts with runbook links"),
        ("monitoring/rules/tests.yml", "promtool unit tests of the alerts"),
        ("monitoring/alertmanager.yml", "alert routing by environment and severity, with inhibition"),
        ("monitoring/compose.monitoring.yaml", "compose override adding Prometheus, Alertmanager and the exporters"),
        ("monitoring/grafana/*", "Grafana dashboard and provisioning"),
        ("monitoring/fluent-bit/*", "Fluent Bit log shipping configuration"),
        ("monitoring/otel-collector.yaml", "OpenTelemetry Collector configuration"),
        ("monitoring/runbooks/index.md", "index of the runbooks"),
        ("monitoring/runbooks/*", "the runbook an alert links to"),
        ("k8s/monitoring/base/*", "prometheus-operator objects: ServiceMonitors, PrometheusRule, Fluent Bit"),
        ("k8s/monitoring/overlays/*", "one environment's exporters and their NetworkPolicies"),
    ),
    integration=integration,
)
