"""Remove every sandbox resource kit left behind (after a crash or a kill -9)."""
from __future__ import annotations

from kit.sandbox.compose_run import PROJECT_PREFIX
from kit.sandbox.engine import LABEL, docker


def _ids(*args: str) -> list[str]:
    return docker(*args).stdout.split()


def sandbox_resources() -> dict[str, list[str]]:
    """Containers, networks and volumes labelled by kit or belonging to a kit compose project."""
    found = {"containers": _ids("ps", "-aq", "--filter", f"label={LABEL}"),
             "networks": _ids("network", "ls", "-q", "--filter", f"label={LABEL}"),
             "volumes": _ids("volume", "ls", "-q", "--filter", f"label={LABEL}")}
    rows = docker("ps", "-a", "--format", '{{.ID}} {{.Label "com.docker.compose.project"}}').stdout
    found["containers"] += [cid for cid, _, project in (r.partition(" ") for r in rows.splitlines())
                            if project.startswith(PROJECT_PREFIX) and cid not in found["containers"]]
    return found


def sweep() -> dict[str, int]:
    found = sandbox_resources()
    if found["containers"]:
        docker("rm", "-f", "-v", *found["containers"])
    if found["networks"]:
        docker("network", "rm", *found["networks"], check=False)
    if found["volumes"]:
        docker("volume", "rm", "-f", *found["volumes"], check=False)
    return {k: len(v) for k, v in found.items()}
