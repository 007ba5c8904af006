"""Run the generated compose stack through testcontainers' DockerCompose, dependency images
swapped for local stand-ins by an override file (recorded as such)."""
from __future__ import annotations

import json
import secrets as pysecrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from kit.config import Settings, testcontainers_environment
from kit.errors import SandboxError
from kit.evidence import excerpt
from kit.model import Spec
from kit.sandbox.engine import docker, run_labels

OVERRIDE = "compose.kit-sandbox.yaml"
PROJECT_PREFIX = "kitsbx-"


@dataclass
class Stack:
    project: str
    testcontainers: object       # testcontainers DockerCompose
    url: str
    up_seconds: float
    services: list[dict]
    staged: Path
    files: tuple[str, ...] = ("compose.yaml", OVERRIDE)

    def compose(self, *args: str) -> None:
        """Run a compose verb on this stack's project, e.g. ``stack.compose("stop", "db")``."""
        docker("compose", "-p", self.project, *(a for f in self.files for a in ("-f", f)), *args, cwd=self.staged)

    def port(self, service: str, container_port: int) -> int:
        """The loopback port Docker published for a service's container port."""
        return int(self.testcontainers.get_service_host_and_port(service, container_port)[1])


def override_file(spec: Spec, image: str, standins: dict[str, str], project: str,
                  start_period_s: float = 90, extra: dict[str, dict] | None = None,
                  volumes: tuple[str, ...] = ()) -> dict:
    """The sandbox's only changes: project name, the built image, stand-ins, a loopback port
    chosen by Docker, a faster health interval, no restarts of the app (a crash fails fast
    instead of looping), and kit's labels on everything. `extra` changes (or adds) further
    services, e.g. those of another compose file in the run; `volumes` are its named volumes."""
    labels = run_labels()
    services = {spec.name: {"image": image, "pull_policy": "never", "labels": labels, "restart": "no",
                            "ports": [f"127.0.0.1::{spec.port}"],
                            "healthcheck": {"interval": "1s", "start_period": f"{start_period_s:g}s"}}}
    for dep in spec.dependencies:
        services[dep.name] = {"image": standins[dep.image], "pull_policy": "never", "labels": labels,
                              "healthcheck": {"interval": "1s"}}
    for name, changes in (extra or {}).items():
        services[name] = {**services.get(name, {}), **changes, "labels": labels}
    data = {"name": project, "services": services, "networks": {"backend": {"labels": labels}}}
    named = [dep.volume for dep in spec.dependencies] + list(volumes)
    if named:
        data["volumes"] = {volume: {"labels": labels} for volume in named}
    return data


def write_override(staged: Path, spec: Spec, image: str, standins: dict[str, str], project: str,
                   extra: dict[str, dict] | None = None, volumes: tuple[str, ...] = ()) -> Path:
    start = Settings.load().health_timeout_s
    text = yaml.safe_dump(override_file(spec, image, standins, project, start, extra, volumes), sort_keys=True)
    # ports and volumes are merged by compose; !override replaces a service's list instead
    text = text.replace("    ports:\n", "    ports: !override\n").replace("    volumes:\n", "    volumes: !override\n")
    path = staged / OVERRIDE
    path.write_text(text)
    return path


def write_placeholder_secrets(staged: Path, spec: Spec) -> None:
    folder = staged / "secrets"
    folder.mkdir(exist_ok=True)
    for name in spec.secrets:
        (folder / name).write_text("kit-sandbox-" + pysecrets.token_hex(8))


def compose_ps(staged: Path, project: str) -> list[dict]:
    proc = docker("compose", "-p", project, "ps", "--all", "--format", "json", cwd=staged, check=False)
    out = proc.stdout.strip()
    if not out:
        return []
    if out.startswith("["):
        return json.loads(out)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def compose_logs(staged: Path, project: str) -> str:
    proc = docker("compose", "-p", project, "logs", "--no-color", "--tail", "40", cwd=staged, check=False)
    return excerpt(proc.stdout + proc.stderr, 60)


@contextmanager
def run_stack(spec: Spec, staged: Path, image: str, standins: dict[str, str], files: tuple[str, ...] = (),
              extra: dict[str, dict] | None = None, volumes: tuple[str, ...] = ()) -> Iterator[Stack]:
    """compose.yaml (plus `files`, e.g. an override of the deliverables) with the sandbox override
    last; `extra` and `volumes` as in override_file."""
    from testcontainers.compose import DockerCompose
    testcontainers_environment()
    project = f"{PROJECT_PREFIX}{spec.name}-{uuid.uuid4().hex[:8]}"
    write_placeholder_secrets(staged, spec)
    write_override(staged, spec, image, standins, project, extra, volumes)
    names = ("compose.yaml", *files, OVERRIDE)
    compose = DockerCompose(context=str(staged), compose_file_name=list(names), wait=True, pull=False, build=False)
    start = time.monotonic()
    try:
        try:
            compose.start()
        except subprocess.CalledProcessError as exc:
            raise SandboxError(f"`docker compose up --wait` failed (exit {exc.returncode}): "
                               "a service did not become healthy",
                               logs=compose_logs(staged, project)) from None
        up = round(time.monotonic() - start, 2)
        _host, port = compose.get_service_host_and_port(spec.name, spec.port)
        yield Stack(project, compose, f"http://127.0.0.1:{port}", up, compose_ps(staged, project), staged, names)
    finally:
        compose.stop(down=True)


def leftovers(project: str) -> dict[str, int]:
    """Containers, networks and volumes still carrying the project's label."""
    counts = {}
    for kind in ("container", "network", "volume"):
        args = [kind, "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"]
        if kind == "container":
            args = ["ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"]
        counts[kind] = len(docker(*args).stdout.split())
    return counts
