"""The Docker engine and CLI: find them, check them, run them with BuildKit."""
from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from kit.config import Settings
from kit.errors import EngineMissing, SandboxError

LABEL = "org.kit.sandbox"            # on every container, network, volume and image kit makes
RUN_LABEL = f"{LABEL}.run"           # the kit run that made it (see kit.config.run_id)
PID_LABEL = f"{LABEL}.pid"           # the process owning that run, so a sweep spares live runs


def run_labels() -> dict[str, str]:
    from kit.config import run_id, run_pid
    return {LABEL: "true", RUN_LABEL: run_id(), PID_LABEL: run_pid()}
SETUP_HINT = "run scripts/setup.sh (as root on Debian) or see `kit doctor`"


def docker_env() -> dict[str, str]:
    """Environment for docker CLI calls: BuildKit on (needs the buildx plugin)."""
    env = dict(os.environ)
    env["DOCKER_BUILDKIT"] = "1"
    env.setdefault("BUILDKIT_PROGRESS", "plain")
    return env


@lru_cache(maxsize=1)
def docker_cli() -> str:
    path = shutil.which("docker")
    if not path:
        raise EngineMissing(f"the docker CLI is not installed; {SETUP_HINT}")
    return path


def docker(*args: str, check: bool = True, timeout: float = 600, input: str | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; on failure raise SandboxError carrying its output."""
    argv = [docker_cli(), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=docker_env(), timeout=timeout,
                          input=input, cwd=cwd)
    if check and proc.returncode != 0:
        raise SandboxError(f"`docker {' '.join(args[:3])} ...` failed (exit {proc.returncode})",
                           logs=(proc.stdout or "") + (proc.stderr or ""))
    return proc


def engine_version() -> str | None:
    """The server version, or None when no engine answers."""
    try:
        proc = subprocess.run([docker_cli(), "version", "--format", "{{.Server.Version}}"],
                              capture_output=True, text=True, timeout=20)
    except (EngineMissing, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def require_engine() -> str:
    """The engine's version; raise EngineMissing with the fix when none answers."""
    version = engine_version()
    if version is None:
        raise EngineMissing(f"no Docker engine answers at {Settings.load().docker_host}; "
                            f"{SETUP_HINT}")
    return version


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False, timeout=30).returncode == 0
