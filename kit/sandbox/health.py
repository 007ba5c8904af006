"""Readiness: poll Docker's own health status and HTTP endpoints, never a fixed sleep."""
from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from kit.errors import SandboxError
from kit.sandbox.engine import docker

POLL_S = 0.2
CLIENT_ERROR_STREAK = 5   # (all Docker keeps) probes answered with the same HTTP 4xx: a wrong path or host check


def _client_error_streak(probes: list[dict]) -> bool:
    """The app answers, but always with the same 4xx: waiting out the start period won't help."""
    recent = probes[-CLIENT_ERROR_STREAK:]
    return (len(recent) == CLIENT_ERROR_STREAK and len({p["output"] for p in recent}) == 1
            and re.search(r"HTTP Error 4\d\d", recent[0]["output"] or "") is not None)


@dataclass(frozen=True)
class HealthResult:
    status: str          # healthy | unhealthy | exited | timeout
    seconds: float
    probes: list[dict]   # Docker's last health probe results
    exit_code: int | None = None

    def explain(self) -> str:
        """Why it is not healthy, in one line a person can act on."""
        last = self.probes[-1]["output"].splitlines()[-1] if self.probes and self.probes[-1]["output"] else ""
        probe = f"; last probe: {last}" if last else ""
        if self.status == "exited":
            return f"the container exited (code {self.exit_code}) after {self.seconds} s, before becoming healthy"
        if self.status == "unhealthy":
            return f"Docker marked it unhealthy after {self.seconds} s{probe}"
        if self.status == "client-error":
            return (f"the health probe got the same HTTP 4xx {CLIENT_ERROR_STREAK} times in a row "
                    f"(after {self.seconds} s){probe}: the path or the app's host check is wrong")
        if self.status == "timeout":
            return f"not healthy after {self.seconds} s (Docker status still 'starting'){probe}"
        return f"health status: {self.status}"


def container_state(container_id: str) -> dict:
    import json
    out = docker("inspect", "--format", "{{json .State}}", container_id).stdout
    return json.loads(out)


def wait_healthy(container_id: str, timeout: float, name: str = "container") -> HealthResult:
    """Wait for Docker's health status. Fail fast when the container exits or turns unhealthy."""
    start = time.monotonic()
    while True:
        state = container_state(container_id)
        health = state.get("Health") or {}
        status = health.get("Status", "none")
        elapsed = round(time.monotonic() - start, 2)
        probes = [{"exit": p.get("ExitCode"), "output": (p.get("Output") or "").strip()[-300:]}
                  for p in health.get("Log") or []]
        if not state.get("Running", False):
            return HealthResult("exited", elapsed, probes, state.get("ExitCode"))
        if status in ("healthy", "unhealthy"):
            return HealthResult(status, elapsed, probes)
        if _client_error_streak(probes):
            return HealthResult("client-error", elapsed, probes)
        if status == "none":
            raise SandboxError(f"{name} has no HEALTHCHECK, so Docker cannot report its health")
        if elapsed > timeout:
            return HealthResult("timeout", elapsed, probes)
        time.sleep(POLL_S)


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str, str]:
    """Status, content type and body of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, "", str(exc)


def wait_http(url: str, want_ok: bool, timeout: float) -> tuple[bool, float, int]:
    """Poll until the endpoint's 200-ness equals ``want_ok``. Returns (reached, seconds, last status)."""
    start = time.monotonic()
    while True:
        status = http_get(url, timeout=2)[0]
        elapsed = round(time.monotonic() - start, 2)
        if (status == 200) == want_ok:
            return True, elapsed, status
        if elapsed > timeout:
            return False, elapsed, status
        time.sleep(POLL_S)
