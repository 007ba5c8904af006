"""Finding the external tools and their versions (one place for every family)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path


def venv_tool(name: str) -> str:
    """A tool installed in kit's own venv (hadolint, check-jsonschema, mkdocs...), else on PATH."""
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else (shutil.which(name) or name)


@cache
def _version(argv: tuple[str, ...]) -> str:
    exe = shutil.which(argv[0]) or str(Path(sys.executable).with_name(argv[0]))
    try:
        out = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(r"\d+\.\d+(\.\d+)?", out.stdout + out.stderr)
    return match.group(0) if match else "unknown"


def tool_version(argv: list[str]) -> str:
    """The first dotted version number `argv` prints, or "unknown" (asked once per process)."""
    return _version(tuple(argv))


def version_probe(argv: list[str]):
    """For kit doctor: (found, what it printed of its version)."""
    def probe() -> tuple[bool, str]:
        exe = shutil.which(argv[0]) or str(Path(sys.executable).with_name(argv[0]))
        try:
            proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc) if not isinstance(exc, FileNotFoundError) else "not found"
        text = (proc.stdout or proc.stderr).strip().splitlines()
        versioned = [row for row in text if "version" in row.lower() and any(ch.isdigit() for ch in row)]
        return proc.returncode == 0, (versioned or text or [""])[0].strip()
    return probe
