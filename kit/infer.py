"""A task written as prose only (no YAML front matter): the front matter kit would use, inferred from
the project folder and the source. Every inferred value is marked as such in the reports; `kit init`
prints it for the user to paste. kit never writes task.md.

What is inferred, and from where:
- service.source: the project root when it holds a stack's marker file (requirements.txt,
  pyproject.toml, package.json, go.mod), else the one folder below it (two levels deep) that does;
- service.name: the project folder's name, lower-cased to a DNS label;
- dependencies: Postgres and Redis, from the client libraries the source depends on.
Everything else (stack, framework, app, port, health and metrics paths) is what the detectors find
for any task. Where inference cannot decide, the error names the key to add.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kit.detect import MARKERS, detect_stack
from kit.errors import DetectionError

SKIP = {".git", ".claude", "node_modules", "vendor", ".venv", "venv", "kit-out", "__pycache__", "tests", "test",
        "docs", "examples"}
# client libraries (normalized names: PyPI, npm, Go module paths) -> the dependency they talk to
CLIENTS = {
    "postgres": ("psycopg", "psycopg2", "psycopg2-binary", "psycopg-binary", "asyncpg", "pg8000", "pg",
                 "postgres", "pg-promise", "github.com/lib/pq", "github.com/jackc/pgx/v5", "github.com/jackc/pgx/v4"),
    "redis": ("redis", "hiredis", "ioredis", "github.com/redis/go-redis/v9", "github.com/go-redis/redis/v8",
              "github.com/gomodule/redigo"),
}


def infer_front_matter(task_path: Path, root: Path) -> dict[str, Any]:
    """The front matter for a prose-only task at `task_path` whose project root is `root`."""
    source = _source(task_path, root)
    service: dict[str, Any] = {"name": _dns_label(root.resolve().name), "source": _rel(source, root)}
    data: dict[str, Any] = {"service": service}
    deps = _dependencies(source)
    if deps:
        data["dependencies"] = [{"kind": kind, "name": "db" if kind == "postgres" else "cache"} for kind in deps]
    return data


def _source(task_path: Path, root: Path) -> Path:
    if detect_stack(root):
        return root
    found = []
    for depth in (1, 2):
        for folder in sorted(root.glob("/".join(["*"] * depth))):
            parts = folder.relative_to(root).parts
            if folder.is_dir() and not any(p in SKIP or p.startswith(".") for p in parts) and detect_stack(folder):
                found.append(folder)
        if found:
            break
    if len(found) == 1:
        return found[0]
    markers = ", ".join(sorted({m for names in MARKERS.values() for m in names}))
    if not found:
        raise DetectionError(f"the task has no front matter and no folder under {root} holds a service ({markers})",
                             file=str(task_path), field="service.source",
                             hint="add front matter with service.source: the folder holding the service's code")
    names = ", ".join(_rel(f, root) for f in found)
    raise DetectionError(f"the task has no front matter and several folders hold a service: {names}",
                         file=str(task_path), field="service.source",
                         hint=f"add front matter naming one: ---\\nservice:\\n  source: {_rel(found[0], root)}\\n---")


def _dependencies(source: Path) -> list[str]:
    stack = detect_stack(source)
    names: set[str] = set()
    if stack == "python":
        from kit.detect.python import detect_python
        names = set(detect_python(source, source).dependencies)
    elif stack == "node":
        from kit.detect.node import detect_node
        names = set(detect_node(source).dependencies)
    elif stack == "go":
        from kit.detect.go import detect_go
        names = set(detect_go(source).requires)
    return [kind for kind, clients in CLIENTS.items() if names & set(clients)]


def _dns_label(name: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "service"


def _rel(path: Path, root: Path) -> str:
    return str(path.resolve().relative_to(root.resolve())) or "."


def front_matter_text(data: dict[str, Any], inferred: bool) -> str:
    """The front matter as a user would paste it into task.md."""
    import yaml
    head = ("# inferred by kit from the source (kit init); check each value, then paste this at the top of "
            "task.md\n" if inferred else "# the front matter task.md already has\n")
    return "---\n" + head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False) + "---\n"
