"""Detection: what the source shows. The task overrides anything detected.

A stack is a detector here (`kit/detect/<stack>.py`) plus a container template
(`templates/container/<stack>/`); everything downstream reads the one Service model."""
from __future__ import annotations

from pathlib import Path

STACKS = ("python", "node", "go")
MARKERS = {"python": ("requirements.txt", "pyproject.toml"), "node": ("package.json",), "go": ("go.mod",)}


def detect_stack(source: Path) -> str:
    """The stack whose marker files the source holds; Python first, so a Python service that
    also carries a package.json (front-end assets) stays what it was. "" when none."""
    source = Path(source)
    for stack in STACKS:
        if any((source / name).is_file() for name in MARKERS[stack]):
            return stack
    return ""
