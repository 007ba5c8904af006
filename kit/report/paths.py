"""Machine paths out of what people read: the site and work.md name the project, kit's venv, the
home folder and temporary folders by placeholders, never by this machine's absolute paths."""
from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from kit.model import Spec


def scrub(text: str, spec: Spec) -> str:
    """Replace this machine's absolute paths with `$PROJECT`, `$KIT_VENV`, `$KIT`, `~/.cache/kit` and
    `$TMPDIR`. Paths inside images and deliverables (`/root/.cache/pip`, `/tmp` mounts) stay."""
    pairs = [(str(spec.output), "$PROJECT/" + _under(spec.output, spec.project)),
             (str(spec.source), "$PROJECT/" + _under(spec.source, spec.project)),
             (str(spec.project), "$PROJECT"), (sys.prefix, "$KIT_VENV"),
             (str(Path(__file__).resolve().parents[2]), "$KIT"),
             (str(Path.home() / ".cache" / "kit"), "~/.cache/kit")]   # kit's own state, not the image's paths
    for old, new in sorted(pairs, key=lambda p: -len(p[0])):
        if old and old != "/":
            text = text.replace(old, new.rstrip("/"))
    tmp = re.escape(tempfile.gettempdir().rstrip("/"))
    return re.sub(tmp + r"/(?:[^/\s'\"`<>)]+/)*", "$TMPDIR/", text)


def _under(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name
