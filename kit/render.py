"""Pure, deterministic rendering: the same Spec gives byte-identical files."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

from kit.errors import RenderError
from kit.fsutil import write_atomic


def templates_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "templates", here / "_templates"):
        if candidate.is_dir():
            return candidate
    raise RenderError("templates/", "the templates folder is missing from this installation")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    # a double-quoted Dockerfile word: JSON escapes quotes and backslashes, and Docker would
    # expand $ in LABEL/ENV values, so it is escaped too
    env.filters["dockerstr"] = lambda value: json.dumps(str(value), ensure_ascii=False).replace("$", "\\$")
    return env


def manifest(family: str, variant: str) -> dict[str, Any]:
    path = templates_dir() / family / variant / "manifest.yaml"
    return yaml.safe_load(path.read_text())


def render_variant(family: str, variant: str, context: dict[str, Any]) -> dict[str, str]:
    """Render every file of a template variant; the context must match its manifest."""
    spec = manifest(family, variant)
    declared, given = set(spec["variables"]), set(context)
    if declared != given:
        raise RenderError(f"{family}/{variant}", "context does not match manifest.yaml: missing "
                          f"{sorted(declared - given)}, undeclared {sorted(given - declared)}")
    files = {}
    for out_name, template_name in spec["files"].items():
        name = f"{family}/{variant}/{template_name}"
        try:
            files[out_name] = environment().get_template(name).render(**context)
        except jinja2.TemplateError as exc:
            raise RenderError(name, str(exc)) from exc
    return files


def write_files(files: dict[str, str], root: Path) -> list[Path]:
    """Write rendered files under root, each atomically. Shell scripts get the exec bit."""
    written = []
    for rel, content in sorted(files.items()):
        path = Path(root) / rel
        write_atomic(path, content, mode=0o755 if rel.endswith(".sh") else 0o644)
        written.append(path)
    return written
