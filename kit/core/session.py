"""A verification session: read the deliverables back from disk, stage the repo, run checks."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kit.core.context import VerifyContext
from kit.errors import KitError
from kit.model import Spec
from kit.sandbox.build import context_digest, staged_repo
from kit.sandbox.engine import image_exists


def read_deliverables(out: Path, paths: Iterable[str]) -> dict[str, str]:
    """The files as they are on disk (verification reads deliverables, it never renders)."""
    files = {}
    for rel in paths:
        path = Path(out) / rel
        if not path.is_file():
            raise KitError(f"{path} is missing: run `kit generate` first")
        files[rel] = path.read_text()
    return files


@contextmanager
def session(spec: Spec, out: Path, paths: Iterable[str]) -> Iterator[VerifyContext]:
    """`paths`: the deliverables kit generates (the orchestrator knows them from the families)."""
    out = Path(out)
    files = read_deliverables(out, paths)
    with staged_repo(spec.source, files) as staged:
        yield VerifyContext(deliverables=out, files=files, staged=staged)


def image_tag(spec: Spec, ctx: VerifyContext) -> str:
    """The sandbox image for this exact build context (same context, same tag)."""
    return f"kit-sandbox/{spec.name}:{context_digest(ctx.staged)}"


def existing_image(spec: Spec, ctx: VerifyContext) -> str:
    """The image the container family built for this context, or "" when there is none."""
    if not ctx.image and image_exists(image_tag(spec, ctx)):
        ctx.image = image_tag(spec, ctx)
    return ctx.image
