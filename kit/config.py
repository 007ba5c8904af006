"""Every environment variable kit reads, in one place. A bad value names the variable."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kit.errors import KitError


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise KitError(f"environment variable {name}: expected a number, got {raw!r}") from None


def _switch(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off", "1", "0", "true", "false"):
        raise KitError(f"environment variable {name}: expected on or off, got {raw!r}")
    return raw in ("on", "1", "true")


@dataclass(frozen=True)
class Settings:
    state_dir: Path          # caches: wheelhouses, debootstrap, logs
    docker_host: str
    health_timeout_s: float  # how long a container may take to become healthy
    terraform_mirror: Path   # provider packages for offline `terraform validate`
    loadtest: bool = True    # KIT_LOADTEST=off: the scaling family's load test is skipped (with that reason)

    @classmethod
    def load(cls) -> Settings:
        state = Path(os.environ.get("KIT_STATE_DIR") or Path.home() / ".cache" / "kit")
        return cls(
            state_dir=state,
            docker_host=os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
            health_timeout_s=_float("KIT_HEALTH_TIMEOUT", 90.0),
            terraform_mirror=Path(os.environ.get("KIT_TF_MIRROR") or state / "tools" / "terraform-providers"),
            loadtest=_switch("KIT_LOADTEST", True),
        )


def testcontainers_environment() -> None:
    """testcontainers must talk to the engine on loopback and must not pull ryuk."""
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    os.environ["TESTCONTAINERS_CONNECTION_MODE"] = "docker_host"
    os.environ["TC_HOST"] = "127.0.0.1"


def run_id() -> str:
    """One id per kit run, shared with the notebook kernels it starts (they inherit the
    environment), so everything one run created can be found and removed by its label."""
    import uuid
    if not os.environ.get("KIT_RUN_ID"):
        os.environ["KIT_RUN_ID"] = uuid.uuid4().hex[:12]
        os.environ["KIT_RUN_PID"] = str(os.getpid())
    return os.environ["KIT_RUN_ID"]


def run_pid() -> str:
    """The process that owns this run (the CLI, not a notebook kernel)."""
    run_id()
    return os.environ.get("KIT_RUN_PID") or str(os.getpid())


def new_run() -> str:
    """Start a new run in this process (the CLI calls this once); kernels it starts inherit it."""
    os.environ.pop("KIT_RUN_ID", None)
    os.environ.pop("KIT_RUN_PID", None)
    return run_id()
