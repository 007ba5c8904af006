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


def owner_pid(kind: str, ident: str) -> str:
    """The pid of the kit process that made this resource ('' when it carries none)."""
    fmt = "{{index .Config.Labels \"%s\"}}" if kind == "container" else "{{index .Labels \"%s\"}}"
    pid = docker(kind, "inspect", "--format", fmt % PID_LABEL, ident, check=False).stdout.strip()
    return "" if pid == "<no value>" else pid


def _owned_by_live_process(kind: str, ident: str) -> bool:
    pid = owner_pid(kind, ident)
    return bool(pid) and _alive(pid)


def left_behind(spare_others: bool = True) -> dict[str, list[str]]:
    """Sandbox resources nobody is using: those of runs whose process is gone, and this
    process's own. With ``spare_others``, resources of another live kit process (a second test
    run on the same engine) are not counted: they are that run's to clean up."""
    found = sandbox_resources()
    if not spare_others:
        return found
    me = str(os.getpid())
    kinds = {"containers": "container", "networks": "network", "volumes": "volume"}

    def mine_or_orphaned(kind: str, ident: str) -> bool:
        pid = owner_pid(kind, ident)
        return not pid or pid == me or not _alive(pid)
    return {k: [i for i in ids if mine_or_orphaned(kinds[k], i)] for k, ids in found.items()}


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
