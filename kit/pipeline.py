"""The one pass: Spec -> files -> evidence. Each step is a plain function the CLI and the
notebooks call."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from kit.evidence import Evidence, load_evidence, save_evidence
from kit.families import families
from kit.render import write_files
from kit.spec import Spec

EVIDENCE_DIR = "evidence"


def render_family(spec: Spec, family: str) -> dict[str, str]:
    return families()[family].render(spec)


def generate(spec: Spec, out: Path | None = None, only: tuple[str, ...] = ()) -> dict[str, str]:
    """Render every family in memory first (a render error writes nothing), then write."""
    out = Path(out or spec.output)
    files: dict[str, str] = {}
    for name, family in families().items():
        if not only or name in only:
            files.update(family.render(spec))
    write_files(files, out)
    (out / ".kit-output").write_text("This folder is written by kit and replaced as a whole by `kit run`.\n")
    return files


def verify_family(spec: Spec, family: str, ctx, *, sandbox: bool = True,
                  progress: Callable[[str], None] = lambda _m: None) -> list[Evidence]:
    fam = families()[family]
    records: list[Evidence] = []
    for check in fam.static_checks:
        progress(f"{family}: static checks")
        records += check(spec, ctx)
    if sandbox:
        for check in fam.sandbox_checks:
            progress(f"{family}: sandbox run")
            records += check(spec, ctx)
    return records


def evidence_path(out: Path, family: str) -> Path:
    return Path(out) / EVIDENCE_DIR / f"{family}.json"


def save_family_evidence(out: Path, family: str, records: list[Evidence]) -> Path:
    path = evidence_path(out, family)
    save_evidence(records, path)
    return path


def collect_evidence(out: Path) -> list[Evidence]:
    """All records, in pipeline order: the task first, then each family as registered."""
    order = ["task", *families()]
    records: list[Evidence] = []
    for name in order:
        path = evidence_path(out, name)
        if path.is_file():
            records += load_evidence(path)
    return records


def write_evidence_json(out: Path) -> Path:
    path = Path(out) / "evidence.json"
    save_evidence(collect_evidence(out), path)
    return path

