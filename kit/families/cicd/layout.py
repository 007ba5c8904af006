"""Where the deliverables go in the user's repository, and the rule that the pipelines' paths
resolve there.

The repository root is the project root (the folder holding .claude/). GitHub runs only the
workflows in `.github/workflows` at the root of the repository, and GitLab reads
`.gitlab-ci.yml` there, so those files go to the root; every other deliverable (Dockerfile,
compose, k8s/, terraform/, monitoring/) goes into the service's source folder, the Docker build
context. Sources: https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax
("You must store workflow files in the .github/workflows directory of your repository") and
https://docs.github.com/en/actions/concepts/workflows-and-actions/workflows ("GitHub searches
the .github/workflows directory in the root of your repository"); github/docs#32458."""
from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import yaml

from kit.model import Spec

ROOT_FILES = (".github/", ".gitlab-ci.yml")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".claude", "kit-out"}
OVERLAY_PREFIX = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*k8s/overlays/)")
EXPR = re.compile(r"\$\{\{[^}]*\}\}|\$\{?\w+\}?")


def at_repository_root(path: str) -> bool:
    """The deliverables GitHub and GitLab read only at the repository root."""
    return path == ".gitlab-ci.yml" or path.startswith(".github/")


def source_dir(spec: Spec) -> str:
    """The service's source folder relative to the repository root, POSIX, '.' for the root
    itself; '..' first when the source is outside the project."""
    rel = os.path.relpath(spec.source, spec.project)
    return PurePosixPath(*Path(rel).parts).as_posix() if rel != "." else "."


def in_repository(spec: Spec, path: str) -> str:
    """Where a deliverable lands in the repository."""
    src = source_dir(spec)
    return path if at_repository_root(path) or src == "." else f"{src}/{path}"


def repository_tree(spec: Spec, files: dict[str, str]) -> set[str]:
    """The repository after the deliverables are copied in: the source's files and every
    deliverable at its place, with every folder they imply."""
    src = source_dir(spec)
    paths = {in_repository(spec, p) for p in files}
    if spec.source.is_dir():
        for folder, dirs, names in os.walk(spec.source):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            rel = os.path.relpath(folder, spec.source)
            for name in names:
                inner = name if rel == "." else f"{Path(rel).as_posix()}/{name}"
                paths.add(inner if src == "." else f"{src}/{inner}")
    tree = set(paths)
    for path in paths:
        tree.update(str(parent) for parent in PurePosixPath(path).parents if str(parent) != ".")
    return tree | {"."}


def _norm(path: str) -> str:
    return os.path.normpath(path.strip().strip('"').rstrip("/")) if path.strip() else "."


def _github_paths(wf: dict, overlays: list[str]) -> list[tuple[str, str, str]]:
    """(where, path, what it must be) for every path a GitHub workflow resolves from the root."""
    out = []
    for name, job in (wf.get("jobs") or {}).items():
        job = job or {}
        default_dir = (((job.get("defaults") or {}).get("run") or {}).get("working-directory"))
        if default_dir:
            out.append((f"jobs.{name}.defaults", default_dir, "dir"))
        for i, step in enumerate(job.get("steps") or []):
            where, args = f"jobs.{name}.steps[{i}]", (step or {}).get("with") or {}
            if step.get("working-directory"):
                out += [(where, step["working-directory"].replace("${{ inputs.overlay }}", o), "dir")
                        for o in overlays]
            for key, kind in (("context", "context"), ("file", "file"), ("dockerfile", "file"),
                              ("cache-dependency-path", "file")):
                if args.get(key):
                    out.append((f"{where}.with.{key}", str(args[key]), kind))
            for prefix in OVERLAY_PREFIX.findall(str(step.get("run") or "")):
                out += [(f"{where}.run", f"{prefix}{o}/kustomization.yaml", "file") for o in overlays]
    return out


def _gitlab_paths(data: dict, overlays: list[str]) -> list[tuple[str, str, str]]:
    out = []
    src = ((data.get("variables") or {}).get("SOURCE_DIR"))
    if src is not None:
        out.append(("variables.SOURCE_DIR", str(src), "context"))
    for name, job in data.items():
        if not isinstance(job, dict):
            continue
        key = (job.get("cache") or {}).get("key")
        out += [(f"{name}.cache.key.files", f, "file") for f in (key.get("files") or [] if isinstance(key, dict) else [])]
        script = "\n".join(str(s) for s in job.get("script") or [])
        script = script.replace("${SOURCE_DIR}", str(src or ".")).replace("$SOURCE_DIR", str(src or "."))
        out += [(f"{name}.script", m, "file") for m in re.findall(r"--file\s+\"?([^\s\"]+)", script)]
        out += [(f"{name}.script", m, "file") for m in re.findall(r"hadolint\s+(?:--[\w-]+\s+\S+\s+)*\"?([^\s\"]+)",
                                                                   script)]
        for prefix in OVERLAY_PREFIX.findall(script):
            out += [(f"{name}.script", f"{prefix}{o}/kustomization.yaml", "file") for o in overlays]
    return out


def layout_problems(spec: Spec, files: dict[str, str], overlays: list[str]) -> list[str]:
    """The pipelines sit at the repository root, and every path they use (working directories,
    build context, Dockerfile, dependency file, Kustomize overlays) resolves from the root to the
    service's source and the deliverables placed beside it."""
    src = source_dir(spec)
    problems = [] if not src.startswith("..") else [
        f"service.source {src} is outside the project (the repository root): the pipelines cannot reach it"]
    tree = repository_tree(spec, files)
    checks = []
    for path in sorted(p for p in files if p.startswith(".github/workflows/")):
        if not in_repository(spec, path).startswith(".github/workflows/"):
            problems.append(f"{path}: lands at {in_repository(spec, path)}, where GitHub never runs it")
        checks += [(f"{path} {w}", p, k) for w, p, k in _github_paths(yaml.safe_load(files[path]) or {}, overlays)]
    if ".gitlab-ci.yml" in files:
        checks += [(f".gitlab-ci.yml {w}", p, k)
                   for w, p, k in _gitlab_paths(yaml.safe_load(files[".gitlab-ci.yml"]) or {}, overlays)]
    for where, raw, kind in sorted(set(checks)):
        if EXPR.search(raw.replace("${{ inputs.overlay }}", "")):
            continue                                  # a runtime value: nothing to resolve here
        path = _norm(raw)
        if kind == "context" and ("Dockerfile" if path == "." else f"{path}/Dockerfile") not in tree:
            problems.append(f"{where}: build context {raw!r} holds no Dockerfile in the repository")
        elif kind != "context" and path not in tree:
            problems.append(f"{where}: {raw!r} does not exist in the repository "
                            f"(source folder {src!r}, workflows at the root)")
    return problems
