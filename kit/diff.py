"""`kit diff`: what regenerating would change in the output folder, as a unified diff."""
from __future__ import annotations

import difflib
from pathlib import Path

from kit.families import render_all
from kit.model import Spec


def diff_deliverables(spec: Spec, out: Path | None = None) -> list[str]:
    """Unified diff lines between the files on disk and a fresh render (pure: writes nothing)."""
    out = Path(out or spec.output)
    lines: list[str] = []
    for rel, new in sorted(render_all(spec).items()):
        path = out / rel
        old = path.read_text() if path.is_file() else ""
        if old != new:
            lines += difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                          fromfile=f"a/{rel}" if path.is_file() else "/dev/null",
                                          tofile=f"b/{rel}")
    return lines
