"""Build an image with the docker CLI and BuildKit (not docker-py's legacy builder)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kit.errors import SandboxError
from kit.evidence import excerpt
from kit.sandbox.engine import LABEL, docker

COPY_SKIP = {".git", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache", ".pytest_cache",
             ".tox", "kit-out", ".env", "secrets"}


def _skip(directory: str, names: list[str]) -> list[str]:
    """Never copy VCS data, caches, local secrets or kit's own output into a build context."""
    here = Path(directory)
    return [n for n in names if n in COPY_SKIP or (n.startswith(".env.") and n != ".env.example")
            or (here / n / ".kit-output").is_file() or (n.startswith(".") and n.endswith(".previous"))]


@contextmanager
def staged_repo(source: Path, deliverables: dict[str, str]) -> Iterator[Path]:
    """The repository as it will look once the deliverables are dropped in: a temporary copy
    of the source with the files overlaid. The source itself is never touched."""
    root = Path(tempfile.mkdtemp(prefix="kit-stage-"))
    try:
        shutil.copytree(source, root, dirs_exist_ok=True, ignore=_skip)
        root.chmod(0o700)   # copytree copies the source folder's mode onto it
        for rel, content in deliverables.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            if rel.endswith(".sh"):
                path.chmod(0o755)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def context_digest(root: Path) -> str:
    """A content hash of the build context, so an unchanged context reuses its image."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    seconds: float
    size_bytes: int
    layers: list[dict]          # [{"created_by": ..., "size": bytes}] oldest first
    log: str


def build_image(context: Path, tag: str, build_args: dict[str, str], *, network: str = "host",
                timeout: float = 900) -> BuiltImage:
    args = ["build", "--progress", "plain", "--network", network, "--label", f"{LABEL}=true",
            "-t", tag]
    for key, value in sorted(build_args.items()):
        args += ["--build-arg", f"{key}={value}"]
    start = time.monotonic()
    proc = docker(*args, str(context), check=False, timeout=timeout)
    seconds = round(time.monotonic() - start, 2)
    log = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        errors = [r.split(" ", 2)[-1] for r in log.splitlines() if "ERROR" in r and "executor failed" not in r]
        why = f": {errors[0].strip()[:300]}" if errors else ""
        raise SandboxError(f"docker build failed (exit {proc.returncode}){why}", logs=excerpt(log, 30))
    return BuiltImage(tag=tag, seconds=seconds, size_bytes=image_size(tag), layers=image_layers(tag),
                      log=excerpt(log, 25))


def image_size(tag: str) -> int:
    return int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())


def image_layers(tag: str) -> list[dict]:
    out = docker("history", "--no-trunc", "--format", "{{json .}}", tag).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    layers = []
    for row in reversed(rows):
        created = row.get("CreatedBy", "").replace("/bin/sh -c #(nop) ", "").replace(" # buildkit", "").strip()
        created = re.sub(r"map\[(\d+)/tcp:\{\}\]", r"\1", created)          # EXPOSE map[8000/tcp:{}]
        created = re.sub(r"^HEALTHCHECK &\{.*", "HEALTHCHECK", created)     # Go's struct dump
        created = created or "base image layer (imported)"
        layers.append({"created_by": created[:120], "size": _parse_size(row.get("Size", "0B"))})
    return layers


def _parse_size(text: str) -> int:
    """A size as `docker history` prints it (0B, 12.3kB, 45.6MB); anything else is an error, not 0."""
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB)", text.strip())
    if not match:
        raise SandboxError(f"docker history printed a layer size kit cannot read: {text!r}")
    return int(float(match.group(1)) * units[match.group(2)])


