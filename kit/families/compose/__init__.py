"""Compose family: compose.yaml with the app and its dependencies, and .env.example; the
compose-spec schema, `docker compose config`, and the stack brought up for real."""
from __future__ import annotations

from kit.core.family import ChecklistItem, Criterion, Family, Tool
from kit.core.tools import version_probe
from kit.families.compose import checks
from kit.families.compose.notes import integration
from kit.families.compose.render import render_compose

FAMILY = Family(
    name="compose", title="Compose stack", notebook="20_compose", template="compose/default",
    render=render_compose,
    static_checks=(checks.static_checks,), sandbox_checks=(checks.sandbox_checks,),
    needs=("container",),
    checklist=(
        ChecklistItem("compose.yaml is valid (compose-spec schema, docker compose config) and consistent",
                      ("compose.schema", "compose.config", "compose.consistency")),
        ChecklistItem("The compose stack comes up healthy with its dependencies, and is removed without "
                      "leftovers", ("compose.up", "compose.health", "compose.cleanup")),
    ),
    criteria=(
        Criterion(r"secret|\.env\.example|placeholder|credential", ("compose.env_example", "compose.consistency"), 80),
        Criterion(r"(healthy|health).*(postgres|redis|depend|compose|stack)|(postgres|redis|compose|stack).*healthy",
                  ("compose.up", "compose.health"), 90),
    ),
    tools=(
        Tool("check-jsonschema", version_probe(["check-jsonschema", "--version"]),
             "pip install 'check-jsonschema>=0.33,<0.40' into kit's venv (or bash scripts/setup.sh)"),
        Tool("docker compose v2", version_probe(["docker", "compose", "version"]),
             "bash scripts/setup.sh installs the plugin from Debian trixie's package"),
    ),
    purposes=(
        ("compose.yaml", "the app with its dependencies, health checks, limits and secrets, for local runs"),
        (".env.example", "the non-secret settings compose reads, with placeholders"),
    ),
    integration=integration,
)
