"""Observability family: Prometheus scrape config and SLO rules with promtool tests,
Alertmanager, a Grafana dashboard, runbooks, Fluent Bit and OpenTelemetry Collector configs,
and prometheus-operator objects (k8s/monitoring/)."""
from __future__ import annotations

from kit.families import Family, register
from kit.monitoring import files as mfiles
from kit.monitoring.dashboard import dashboard_json
from kit.otel import OTLP_GRPC_PORT, OTLP_HTTP_PORT, otel_env
from kit.render import render_variant
from kit.spec import Spec


COLLECTOR_HOST = "otel-collector"      # the collector's service name in compose.monitoring.yaml


def _indented(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + row if row else row for row in text.rstrip("\n").splitlines())


def render_observability(spec: Spec) -> dict[str, str]:
    slo = spec.option("slo")
    recording, alerts = mfiles.recording_doc(spec, slo), mfiles.alerts_doc(spec, slo)
    groups = {"groups": recording["groups"] + alerts["groups"]}
    files = render_variant("observability", "default", {
        "name": spec.name, "port": spec.port, "metrics_path": spec.metrics_path or "/metrics",
        "metrics_port": spec.metrics_port,
        "recording_yaml": mfiles.dump(recording), "alerts_yaml": mfiles.dump(alerts),
        "tests_yaml": mfiles.dump(mfiles.tests_doc(spec, slo)),
        "dashboard_json": dashboard_json(spec, slo),
        "rule_groups_yaml": _indented(mfiles.dump(groups), 2),
        "otel_grpc_port": OTLP_GRPC_PORT, "otel_http_port": OTLP_HTTP_PORT,
        "otel_env": list(otel_env(spec, COLLECTOR_HOST, "compose")),
    })
    files.update(mfiles.runbooks(spec, slo))
    return files


def _static(spec, ctx):
    from kit.verify.observability import static_checks
    return static_checks(spec, ctx)


def _sandbox(spec, ctx):
    from kit.verify.observability_live import sandbox_checks
    return sandbox_checks(spec, ctx)


FAMILY = register(Family(name="observability", title="Observability", notebook="60_observability",
                         template="observability/default", render=render_observability,
                         static_checks=(_static,), sandbox_checks=(_sandbox,)))
