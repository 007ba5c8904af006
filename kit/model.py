"""The service model's types. Every deliverable is rendered from a Spec and nothing else;
kit.spec builds it from the task and the source."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kit.detect.go import GoFacts
from kit.detect.node import NodeFacts
from kit.detect.python import PythonFacts
from kit.task import TaskDoc

UV_PIN = "uv==0.13.9"          # exports uv.lock inside the build
SERVER_PINS = {"gunicorn": "gunicorn==23.0.0", "uvicorn": "uvicorn==0.32.1"}
DEFAULT_PYTHON = "3.11"
DEFAULT_GO = "1.22"             # go.mod without a go directive
GO_RUNTIME_IMAGE = "gcr.io/distroless/static-debian12:nonroot"
GO_NONROOT_UID = 65532           # distroless's nonroot user
DEFAULT_NODE = "22"            # the Node.js LTS line used when the source states none
PLACEHOLDER_REGISTRY = "registry.example.com"   # service.image unset: a placeholder, reported as such


@dataclass(frozen=True)
class Dependency:
    kind: str                 # postgres | redis
    name: str                 # hostname the app uses = compose service name
    version: str
    image: str                # the real image deliverables name
    port: int
    volume: str
    data_path: str
    app_env: tuple[tuple[str, str], ...]   # settings the app gets to reach it
    env: tuple[tuple[str, str], ...]       # settings the dependency itself gets
    secret: str = ""                       # the secret the dependency shares with the app
    healthcheck: tuple[str, ...] = ()
    command: tuple[str, ...] = ()


CONSTRAINTS_FILE = "docker/constraints.txt"    # where kit writes service.constraints' pins


@dataclass(frozen=True)
class Service:
    """What the task and the source say about the service itself: everything but the optional
    task sections, which the families parse from it (kit.families.parse_options)."""
    name: str
    title: str
    project: Path              # the folder holding .claude/
    source: Path
    output: Path
    python: str
    base_image: str
    framework: str
    app: str
    requirements_file: str
    lock_file: str
    command: tuple[str, ...]
    extra_packages: tuple[str, ...]
    port: int
    health_path: str           # "" when the health check is a TCP fallback
    health_fallback: str       # why a fallback is used; "" when the task or source names a path
    metrics_path: str
    metrics_port: int
    uid: int
    image: str                 # the image repository CI pushes to and Kubernetes pulls (no tag)
    cpu: float                 # cores one instance may use
    memory: int                # bytes one instance may use
    env: tuple[tuple[str, str], ...]
    secrets: tuple[str, ...]
    dependencies: tuple[Dependency, ...]
    task: TaskDoc = field(repr=False, compare=False)
    facts: PythonFacts | NodeFacts | GoFacts = field(repr=False, compare=False, default=PythonFacts())
    # the stack (kit/detect/<stack>.py, templates/container/<stack>/): python | node | go. Only the
    # container image, CI build steps and default metric names fork on it.
    stack: str = "python"
    # pip constraints (service.constraints): the file the image installs with `-c`, relative to the
    # build context (the user's own, or docker/constraints.txt that kit writes from the pins)
    constraints_file: str = ""
    constraints: tuple[str, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.name, "app.kubernetes.io/part-of": self.name,
                "app.kubernetes.io/managed-by": "kit"}

    def all_env(self) -> tuple[tuple[str, str], ...]:
        merged = {"PORT": str(self.port)}
        for dep in self.dependencies:
            merged.update(dict(dep.app_env))
        merged.update(dict(self.env))
        return tuple(sorted(merged.items()))


@dataclass(frozen=True)
class Spec(Service):
    """The one service model: the Service plus every family's parsed task section."""
    options: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    def option(self, key: str):
        """The parsed task section `key` (kubernetes, ci, cloud, slo): kit/families/<name>/options.py."""
        return self.options[key]
