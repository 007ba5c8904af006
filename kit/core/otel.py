"""OpenTelemetry settings shared by every deliverable that runs the app (compose, Kubernetes).

The SDK's standard variables, so any OpenTelemetry-instrumented app picks them up unchanged.
"""
from __future__ import annotations

from kit.model import Spec

OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318


def otel_env(spec: Spec, collector_host: str, environment: str) -> tuple[tuple[str, str], ...]:
    """OTEL_* settings pointing the app at a collector reachable as `collector_host`."""
    return (
        ("OTEL_SERVICE_NAME", spec.name),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{collector_host}:{OTLP_HTTP_PORT}"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_RESOURCE_ATTRIBUTES", f"deployment.environment={environment},service.namespace={spec.name}"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
    )
