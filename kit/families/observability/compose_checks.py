"""monitoring/compose.monitoring.yaml: the compose-spec schema, `docker compose config` merged
with compose.yaml, and consistency (the app's OTEL_* settings, loopback ports, mounted files)."""
from __future__ import annotations

import yaml

from kit.core.context import VerifyContext
from kit.core.otel import otel_env
from kit.evidence import Evidence, run_tool
from kit.model import Spec
from kit.sandbox.engine import docker_cli

OVERRIDE = "monitoring/compose.monitoring.yaml"


def compose_checks(spec: Spec, ctx: VerifyContext) -> list[Evidence]:
    from kit.core.tools import tool_version, venv_tool
    cj = venv_tool("check-jsonschema")
    schema = run_tool("observability.compose_schema", OVERRIDE, "the monitoring override validates against the "
                      "compose-spec schema", [cj, "--builtin-schema", "vendor.compose-spec", OVERRIDE],
                      tool=f"check-jsonschema {tool_version([cj, '--version'])}", cwd=ctx.deliverables)
    config = run_tool("observability.compose_config", OVERRIDE, "docker compose accepts compose.yaml with the "
                      "monitoring override (config --quiet)",
                      [docker_cli(), "compose", "-f", "compose.yaml", "-f", OVERRIDE, "config", "--quiet"],
                      tool="docker compose", cwd=ctx.deliverables)
    return [schema, config, consistency(spec, ctx.files)]


def consistency(spec: Spec, files: dict[str, str]) -> Evidence:
    from kit.families.observability.render import COLLECTOR_HOST
    data = yaml.safe_load(files[OVERRIDE]) or {}
    services, problems = data.get("services") or {}, []
    env = (services.get(spec.name) or {}).get("environment") or {}
    want = dict(otel_env(spec, COLLECTOR_HOST, "compose"))
    if env != want:
        problems.append(f"the app's OTEL_* settings differ from kit/core/otel.py::otel_env: {sorted(set(want.items()) ^ set(env.items()))}")
    if COLLECTOR_HOST not in services:
        problems.append(f"no {COLLECTOR_HOST} service for OTEL_EXPORTER_OTLP_ENDPOINT to reach")
    for name, svc in services.items():
        for port in (svc or {}).get("ports") or []:
            if not str(port).startswith("127.0.0.1:"):
                problems.append(f"{name} publishes {port} beyond 127.0.0.1")
        for volume in (svc or {}).get("volumes") or []:
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                rel = source[2:]
                if rel not in files and not any(f.startswith(rel + "/") for f in files):
                    problems.append(f"{name} mounts {source}, which kit does not generate")
        if name != spec.name and not (svc or {}).get("image"):
            problems.append(f"{name} has no image")
    return Evidence("observability.compose_consistency", OVERRIDE, "the monitoring override gives the app kit's "
                    "OTEL_* settings, publishes on 127.0.0.1 only and mounts only generated files",
                    "failed" if problems else "passed", tool="kit", reason="; ".join(problems),
                    figures={"services": sorted(services)})
