"""Remove every sandbox resource kit left behind (after a crash or a kill -9)."""
from __future__ import annotations

import os

from kit.sandbox.compose_run import PROJECT_PREFIX
from kit.sandbox.engine import LABEL, PID_LABEL, RUN_LABEL, docker


def _ids(*args: str) -> list[str]:
    return docker(*args).stdout.split()


def sandbox_resources(run: str = "") -> dict[str, list[str]]:
    """Containers, networks and volumes labelled by kit (by one run, when ``run`` is given) or
    belonging to a kit compose project."""
    label = f"{RUN_LABEL}={run}" if run else LABEL
    found = {"containers": _ids("ps", "-aq", "--filter", f"label={label}"),
             "networks": _ids("network", "ls", "-q", "--filter", f"label={label}"),
             "volumes": _ids("volume", "ls", "-q", "--filter", f"label={label}")}
    if run:
        return found
    rows = docker("ps", "-a", "--format", '{{.ID}} {{.Label "com.docker.compose.project"}}').stdout
    found["containers"] += [cid for cid, _, project in (r.partition(" ") for r in rows.splitlines())
                            if project.startswith(PROJECT_PREFIX) and cid not in found["containers"]]
    return found


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _owned_by_live_process(kind: str, ident: str) -> bool:
    fmt = "{{index .Config.Labels \"%s\"}}" if kind == "container" else "{{index .Labels \"%s\"}}"
    pid = docker(kind, "inspect", "--format", fmt % PID_LABEL, ident, check=False).stdout.strip()
    return bool(pid) and pid != "<no value>" and _alive(pid)


def sweep(run: str = "", everything: bool = False) -> dict[str, int]:
    """Remove sandbox resources: one run's, or those whose kit process is gone (a crash, a
    kill -9). ``everything`` also takes resources of kit runs still going."""
    found = sandbox_resources(run)
    if not run and not everything:
        kinds = {"containers": "container", "networks": "network", "volumes": "volume"}
        found = {k: [i for i in ids if not _owned_by_live_process(kinds[k], i)] for k, ids in found.items()}
    if found["containers"]:
        docker("rm", "-f", "-v", *found["containers"])
    if found["networks"]:
        docker("network", "rm", *found["networks"], check=False)
    if found["volumes"]:
        docker("volume", "rm", "-f", *found["volumes"], check=False)
    return {k: len(v) for k, v in found.items()}


def sweep_images() -> int:
    """Remove kit's sandbox images (kit-sandbox/*): the cache of earlier builds. Stand-ins stay."""
    rows = docker("images", "--format", "{{.Repository}}:{{.Tag}}", "kit-sandbox/*").stdout.split()
    if rows:
        docker("rmi", "-f", *rows, check=False)
    return len(rows)
