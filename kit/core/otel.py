"""OpenTelemetry settings shared by every deliverable that runs the app (compose, Kubernetes).

The SDK's standard variables, so any OpenTelemetry-instrumented app picks them up unchanged. They
are set only when the app has an OpenTelemetry SDK among its dependencies: without one nothing
reads them, and settings nothing reads mislead whoever operates the service.
"""
from __future__ import annotations

from kit.model import Spec

OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
# distributions that read OTEL_* (the SDK itself, the distro that bundles it, the auto-instrumentation)
SDKS = ("opentelemetry-sdk", "opentelemetry-distro", "opentelemetry-instrumentation")


def has_sdk(spec: Spec) -> bool:
    return any(name in spec.facts.dependencies for name in SDKS)


def otel_env(spec: Spec, collector_host: str, environment: str) -> tuple[tuple[str, str], ...]:
    """OTEL_* settings pointing the app at a collector reachable as `collector_host`; none when
    the app has no OpenTelemetry SDK."""
    if not has_sdk(spec):
        return ()
    return (
        ("OTEL_SERVICE_NAME", spec.name),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{collector_host}:{OTLP_HTTP_PORT}"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_RESOURCE_ATTRIBUTES", f"deployment.environment={environment},service.namespace={spec.name}"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
    )


def otel_settings_rule(spec: Spec, files: dict[str, str]) -> list[str]:
    """OTEL_* appears in a deliverable exactly when the app has an SDK to read it: the
    OpenTelemetry SDK specification defines these variables for SDKs
    (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/); an app
    without one ignores them, so setting them claims tracing that does not exist."""
    mentioning = sorted(rel for rel, text in files.items()
                        if "OTEL_EXPORTER_OTLP_ENDPOINT" in text and not rel.endswith(".md"))
    if not has_sdk(spec):
        return [f"{rel} sets OTEL_* but the app has no OpenTelemetry SDK ({', '.join(SDKS)})" for rel in mentioning]
    wanted = [rel for rel in ("monitoring/compose.monitoring.yaml",) if rel in files]
    return [f"{rel} does not give the app its OTEL_* settings although it has an OpenTelemetry SDK"
            for rel in wanted if rel not in mentioning]
