"""A sandbox Prometheus beside a running compose stack: one container on the stack's network,
its API published on 127.0.0.1 (an ephemeral port), carrying kit's run labels, removed on exit."""
from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kit.errors import SandboxError
from kit.evidence import excerpt
from kit.sandbox.engine import docker, run_labels
from kit.sandbox.health import POLL_S, http_get

REAL_IMAGE = "prom/prometheus:v2.42.0"     # the version Debian's package (the stand-in) carries
MOUNT = "/etc/kit-monitoring"


@dataclass
class Prometheus:
    url: str
    container: str

    def api(self, path: str, **params: str) -> dict:
        query = urllib.parse.urlencode(params)
        status, _, body = http_get(f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""), timeout=10)
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise SandboxError(f"Prometheus answered {path} with status {status}: {body[:200]}",
                               logs=self.logs()) from None
        return data

    def query(self, expr: str) -> tuple[list, str]:
        """(result, error): the instant vector now, or the error Prometheus gave."""
        data = self.api("query", query=expr)
        if data.get("status") != "success":
            return [], f"{data.get('errorType')}: {data.get('error')}"
        return data["data"]["result"], ""

    def query_range(self, expr: str, start: float, end: float, step: str = "1s") -> list:
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=step)
        return data["data"]["result"] if data.get("status") == "success" else []

    def logs(self) -> str:
        proc = docker("logs", "--tail", "40", self.container, check=False)
        return excerpt(proc.stdout + proc.stderr)

    def wait_for(self, what: str, test, timeout: float, tick=lambda: None):
        """Poll `test()` until it returns something truthy; SandboxError with the logs on timeout."""
        start = time.monotonic()
        while True:
            tick()
            found = test()
            if found:
                return found, round(time.monotonic() - start, 2)
            if time.monotonic() - start > timeout:
                raise SandboxError(f"timed out after {timeout:.0f} s waiting for {what}", logs=self.logs())
            time.sleep(POLL_S)


def stack_network(project: str) -> str:
    names = docker("network", "ls", "--filter", f"label=com.docker.compose.project={project}",
                   "--format", "{{.Name}}").stdout.split()
    if not names:
        raise SandboxError(f"the compose project {project} has no network to attach Prometheus to")
    return names[0]


@contextmanager
def run_prometheus(config_dir: Path, network: str, image: str, timeout: float = 60) -> Iterator[Prometheus]:
    name = f"kitsbx-prometheus-{uuid.uuid4().hex[:8]}"
    labels = [arg for key, value in run_labels().items() for arg in ("--label", f"{key}={value}")]
    config_dir.chmod(0o755)
    docker("run", "-d", "--name", name, "--network", network, "-p", "127.0.0.1::9090", *labels,
           "-v", f"{config_dir}:{MOUNT}:ro", image, f"--config.file={MOUNT}/prometheus.yml",
           "--storage.tsdb.path=/prometheus", "--web.listen-address=0.0.0.0:9090")
    try:
        port = docker("port", name, "9090/tcp").stdout.split()[0].rsplit(":", 1)[1]
        prom = Prometheus(f"http://127.0.0.1:{port}", name)
        prom.wait_for("Prometheus to be ready", lambda: http_get(prom.url + "/-/ready")[0] == 200, timeout)
        yield prom
    finally:
        docker("rm", "-f", "-v", name, check=False)
