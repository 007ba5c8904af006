"""A sandbox Prometheus's HTTP API, published on 127.0.0.1 (an ephemeral port): queries, waits and
its container's logs."""
from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass

from kit.errors import SandboxError
from kit.evidence import excerpt
from kit.sandbox.engine import docker
from kit.sandbox.health import POLL_S, http_get


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
