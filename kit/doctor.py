"""`kit doctor`: what is present and what is missing, each missing thing with its exact fix. The
core's own needs are listed here; each family's tools come from its declaration."""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from kit.core.tools import venv_tool, version_probe

SETUP = "bash scripts/setup.sh"


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def diagnose() -> list[Finding]:
    from kit.sandbox.engine import engine_version
    out = [Finding("python", sys.version_info >= (3, 11), sys.version.split()[0], "install Python 3.11+")]
    ok, text = version_probe(["docker", "--version"])()
    out.append(Finding("docker CLI", ok, text, "apt-get install -y docker.io (or run " + SETUP + ")"))
    version = engine_version() if ok else None
    out.append(Finding("Docker engine", version is not None, f"server {version}" if version else "no answer",
                       f"start one: {SETUP} (starts dockerd in the background when none answers)"))
    pip = Path(sys.executable).with_name("pip")
    for name, fix in (("mkdocs", f"{pip} install 'mkdocs-material>=9.6,<9.9' (or {SETUP})"),
                      ("pypi-server", f"{pip} install 'pypiserver>=2.3,<2.5' (or {SETUP})"),
                      ("chromium", "apt-get install -y chromium (the site test opens pages in it)"),
                      ("jupyter-lab", f"{pip} install 'jupyterlab>=4.6,<4.7' (or {SETUP}); kit lab starts it")):
        ok, text = version_probe([venv_tool(name), "--version"])()
        out.append(Finding(name, ok, text, fix))
    ok, text = version_probe(["dot", "-V"])()
    out.append(Finding("graphviz (dot)", ok, text, "apt-get install -y graphviz (the site's diagrams)"))
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    out.append(Finding("debootstrap", Path(debootstrap).exists(), debootstrap, "apt-get install -y debootstrap"))
    try:
        import ipykernel  # noqa: F401
        out.append(Finding("Jupyter kernel (ipykernel)", True, "python3 kernel for papermill"))
    except ImportError:
        out.append(Finding("Jupyter kernel (ipykernel)", False, "not installed", f"{pip} install 'ipykernel>=6.29,<8'"))
    out += family_tools()
    out += _standins() if version is not None else [
        Finding("stand-in images", False, "unknown: no engine to ask", "start the engine, then: kit prepare")]
    return out


def family_tools() -> list[Finding]:
    """Every tool a family declares, once each, named with the families that need it."""
    from kit.families import families
    users: dict[str, list[str]] = {}
    tools = {}
    for family in families().values():
        for tool in family.tools:
            tools.setdefault(tool.name, tool)
            users.setdefault(tool.name, []).append(family.name)
    out = []
    for name, tool in tools.items():
        ok, text = tool.version()
        out.append(Finding(f"{name} ({', '.join(users[name])})", ok, text or "not found", tool.fix))
    return out


def _standins() -> list[Finding]:
    from kit.sandbox.engine import image_exists
    from kit.sandbox.standins import STANDINS
    return [Finding(f"stand-in {s.tag}", image_exists(s.tag), s.note, "kit prepare")
            for s in STANDINS.values()]
