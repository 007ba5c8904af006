"""Compose family: compose.yaml with the app and its dependencies, and .env.example."""
from __future__ import annotations

from kit.families.container.render import healthcheck_command
from kit.model import Spec
from kit.render import render_variant
from kit.resources import compose_memory

# the Dockerfile's package-mirror build argument per stack (templates/container/<stack>/Dockerfile.j2)
MIRRORS = {"python": ("PIP_INDEX_URL", "https://pypi.org/simple"),
           "node": ("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/"),
           "go": ("GOPROXY", "https://proxy.golang.org,direct")}


def render_compose(spec: Spec) -> dict[str, str]:
    return render_variant("compose", "default", {
        "name": spec.name, "port": spec.port, "env": list(spec.all_env()),
        "secrets": list(spec.secrets), "dependencies": list(spec.dependencies),
        "healthcheck": ["CMD", *healthcheck_command(spec)],
        "cpus": f"{spec.cpu:g}", "memory": compose_memory(spec.memory), "mirror": list(MIRRORS[spec.stack]),
    })
